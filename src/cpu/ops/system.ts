/**
 * System instructions (SDM vol. 2 for each instruction; vol. 3 for the system state they touch):
 * control/debug registers, descriptor tables and segment loads, LAR/LSL/VERR/VERW, far
 * transfers, IRET, INT n, MSRs, CPUID, TSC, interrupt flag, port I/O, TLB/cache maintenance,
 * SWAPGS, SYSCALL/SYSRET, SYSENTER/SYSEXIT, and the VMX instructions (decoded here, given
 * meaning by Cpu.vmx).
 *
 * Privileged instructions raise #GP(0) at CPL > 0. Everything that can fault is checked before
 * architectural state changes (faults are precise). Not modelled (documented gaps): call gates,
 * task switches and task gates, IRET with NT=1 (#GP(0)), LDT-based selectors (the LDT can be
 * loaded but descriptors are read from the GDT only), the TSS I/O permission bitmap (CPL > IOPL
 * is always #GP(0)), virtual-8086 mode and 16-bit code, hardware breakpoints (DR0-DR7 are stored
 * only), TF single-step #DB, #AC alignment checks, MONITOR/MWAIT/RDPID/XGETBV (#UD: not in
 * CPUID), non-flat CS/DS/ES/SS bases for code addresses (RIP is treated as linear).
 */

import { ACC_USER, ACC_WRITE } from "../../mmu/walker.js";
import { CR0_TS, CR4_PCIDE, CR4_TSD, EFER_LMA, EFER_SCE } from "../../x86/control.js";
import { F1D_APIC } from "../../x86/cpuid.js";
import { GP, OF_, UD } from "../../x86/exceptions.js";
import { AC, AF, CF, DF, ID, IF, IOPL, NT, OF, PF, RF, SF, TF, VIF, VIP, VM, ZF } from "../../x86/flags.js";
import * as VX from "../../x86/vmx.js";
import {
  VMXI_INVEPT,
  VMXI_INVVPID,
  VMXI_VMCALL,
  VMXI_VMCLEAR,
  VMXI_VMFUNC,
  VMXI_VMLAUNCH,
  VMXI_VMPTRLD,
  VMXI_VMPTRST,
  VMXI_VMREAD,
  VMXI_VMRESUME,
  VMXI_VMWRITE,
  VMXI_VMXOFF,
  VMXI_VMXON,
} from "../../x86/vmx.js";
import { CPU_HLT_EXITING, CPU_INVLPG_EXITING, CPU_RDTSC_EXITING, CPU2_WBINVD_EXITING } from "../../x86/vmx-controls.js";
import { isCanonical as canonical } from "../canonical.js";
import * as CH from "../charges.js";
import { crExists, drIndex, readCr, readDr, writeCr, writeCr0, writeDr } from "../control-regs.js";
import type { Cpu } from "../cpu.js";
import { checkGeneralDetect, ioAccess, movSsLoaded } from "../debug.js";
import { BASE_RIP, type Insn } from "../insn.js";
import { deliverEvent } from "../interrupts.js";
import { readMsr, readTsc, writeMsr } from "../msr.js";
import { iretUnblocksNmi } from "../nmi.js";
import type { OpDef } from "../opdef.js";
import {
  AR_CODE,
  AR_CODE32_KERNEL,
  AR_CODE32_USER,
  AR_CODE64_KERNEL,
  AR_CODE64_USER,
  AR_CONFORMING,
  AR_DATA_KERNEL,
  AR_DATA_USER,
  AR_L,
  AR_RW,
  AR_S,
  checkFarCode,
  checkReturnCode,
  checkReturnStack,
  commitCode,
  type Descriptor,
  farCode,
  farStack,
  loadDataSegment,
  loadLdtr,
  loadTaskRegister,
  nullInaccessibleSegments,
  nullSegment,
  readDescriptor,
  setSegment,
} from "../segments.js";
import { vmxInstructionInfo } from "../vmx/insn-info.js";
import { checkMode, vmxInstruction } from "../vmx/instructions.js";
import { shadowAccess } from "../vmx/shadow.js";
import { elementLinear, elementLinearHi } from "./string.js";

/** Scratch for 64-bit results (no allocation). */
const t = new Int32Array(4);

function priv(c: Cpu): void {
  if (c.cpl !== 0) c.raise(GP, 0);
}

function iopl(c: Cpu): number {
  return (c.flagsBase >> 12) & 3;
}

function lma(c: Cpu): boolean {
  return (c.efer & EFER_LMA) !== 0;
}

/** High half of the address `lo + n` computed by addr() (0 outside 64-bit mode). */
let aHi = 0;
function addr(c: Cpu, lo: number, hi: number, n: number): number {
  const r = (lo + n) | 0;
  aHi = c.mode64 ? (r >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi) : 0;
  return r;
}

/** Check that the last byte of a `len`-byte store at lo:hi is writable (multi-part stores stay precise). */
function probeWrite(c: Cpu, lo: number, hi: number, len: number): void {
  const e = addr(c, lo, hi, len - 1);
  c.translate(e, aHi, ACC_WRITE | (c.cpl === 3 ? ACC_USER : 0));
}

/** RSP += n (stack-address size: 64 in 64-bit mode, else ESP). */
function addRsp(c: Cpu, n: number): void {
  if (n === 0) return;
  const lo = c.lo[4];
  const r = (lo + n) | 0;
  if (c.mode64 && r >>> 0 < lo >>> 0) c.hi[4] = (c.hi[4] + 1) | 0;
  c.lo[4] = r;
}

// =====================================================================================
// Control and debug registers
// =====================================================================================

/** MOV r, CRn (0F 20): operand is 64-bit in 64-bit mode, 32-bit otherwise; mod ignored. */
function movFromCr(c: Cpu, i: Insn): void {
  if (!crExists(c, i.reg)) c.raise(UD);
  priv(c);
  if (c.nonRoot) c.vmxUnit.checkCrRead(i, i.reg, i.rm);
  readCr(c, i.reg, t);
  if (c.nonRoot) {
    // Host-owned CR0/CR4 bits read from the read shadows (SDM vol. 3, 24.6.6).
    if (i.reg === 0) t[0] = c.vmxUnit.shadowCr0(t[0]);
    else if (i.reg === 4) t[0] = c.vmxUnit.shadowCr4(t[0]);
  }
  if (c.mode64) c.set64(i.rm, t[0], t[1]);
  else c.set32(i.rm, t[0]);
}

/** MOV CRn, r (0F 22). Side effects in control-regs.ts. */
function movToCr(c: Cpu, i: Insn): void {
  if (!crExists(c, i.reg)) c.raise(UD);
  priv(c);
  let lo = c.lo[i.rm];
  if (c.nonRoot) {
    c.vmxUnit.checkCrWrite(i, i.reg, lo, i.rm);
    // A MOV to CR0/CR4 that does not exit leaves the host-owned bits unchanged (SDM vol. 3, 25.3).
    if (i.reg === 0) lo = (lo & ~c.vmxUnit.cr0Mask) | (c.cr0 & c.vmxUnit.cr0Mask);
    else if (i.reg === 4) lo = (lo & ~c.vmxUnit.cr4Mask) | (c.cr4 & c.vmxUnit.cr4Mask);
  }
  if (i.reg !== 8) c.chargeEvent(CH.CHARGE_CR_WRITE);
  writeCr(c, i.reg, lo, c.mode64 ? c.hi[i.rm] : 0);
}

/** MOV r, DRn (0F 21). */
function movFromDr(c: Cpu, i: Insn): void {
  const n = drIndex(c, i.reg);
  priv(c);
  checkGeneralDetect(c);
  readDr(c, n, t);
  if (c.mode64) c.set64(i.rm, t[0], t[1]);
  else c.set32(i.rm, t[0]);
}

/** MOV DRn, r (0F 23). */
function movToDr(c: Cpu, i: Insn): void {
  const n = drIndex(c, i.reg);
  priv(c);
  checkGeneralDetect(c);
  writeDr(c, n, c.lo[i.rm], c.mode64 ? c.hi[i.rm] : 0);
}

/** CLTS (0F 06): clear CR0.TS. */
function clts(c: Cpu, i: Insn): void {
  priv(c);
  if (c.nonRoot) {
    c.vmxUnit.checkClts(i);
    if ((c.vmxUnit.cr0Mask & CR0_TS) !== 0) return; // a host-owned TS stays as it is (25.3)
  }
  c.cr0 &= ~CR0_TS;
}

/** SMSW (0F 01 /4): CR0 to a register (operand size) or the low 16 bits to memory. */
function smsw(c: Cpu, i: Insn): void {
  if (i.isMem) {
    c.ea(i);
    c.write16(c.eaLo, c.eaHi, c.nonRoot ? c.vmxUnit.shadowCr0(c.cr0) : c.cr0); // host-owned bits: the shadow (25.3)
  } else c.setReg(i.rm, i.size, c.nonRoot ? c.vmxUnit.shadowCr0(c.cr0) : c.cr0, 0);
}

/** LMSW (0F 01 /6): load CR0 bits 3:0 (PE can be set, not cleared). */
function lmsw(c: Cpu, i: Insn): void {
  priv(c);
  const src = c.readRm(i);
  let v = src & 0xf;
  if (c.nonRoot) {
    c.vmxUnit.checkLmsw(i, src, c.eaLo, c.eaHi);
    v = (v & ~c.vmxUnit.cr0Mask) | (c.cr0 & c.vmxUnit.cr0Mask & 0xf); // host-owned bits stay (25.3)
  }
  writeCr0(c, (c.cr0 & ~0xe) | v | (c.cr0 & 1), 0);
}

// =====================================================================================
// Descriptor tables and segment registers
// =====================================================================================

/** LGDT/LIDT (0F 01 /2 /3): limit16 + base (64-bit in 64-bit mode, 32 or 24 bits otherwise). */
function lgdt(c: Cpu, i: Insn): void {
  priv(c);
  c.ea(i);
  const lo = c.eaLo;
  const hi = c.eaHi;
  const limit = c.read16(lo, hi);
  const b = addr(c, lo, hi, 2);
  let baseLo: number;
  let baseHi = 0;
  if (c.mode64) {
    baseLo = c.read64(b, aHi);
    baseHi = c.vHi;
    // A non-canonical base is #GP(0), as for LTR (SDM vol. 2 LGDT/LIDT, 64-bit mode exceptions;
    // KVM's em_lgdt_lidt makes the same check).
    if (!canonical(baseHi)) c.raise(GP, 0);
  } else {
    baseLo = c.read32(b, aHi);
    if (i.size === 2) baseLo &= 0xffffff;
  }
  if (i.op === 0) {
    c.gdtrLimit = limit;
    c.gdtrBaseLo = baseLo;
    c.gdtrBaseHi = baseHi;
  } else {
    c.idtrLimit = limit;
    c.idtrBaseLo = baseLo;
    c.idtrBaseHi = baseHi;
  }
}

/** SGDT/SIDT (0F 01 /0 /1): store limit16 + base (8 bytes in 64-bit mode, else 4). */
function sgdt(c: Cpu, i: Insn): void {
  c.ea(i);
  const lo = c.eaLo;
  const hi = c.eaHi;
  const limit = i.op === 0 ? c.gdtrLimit : c.idtrLimit;
  const baseLo = i.op === 0 ? c.gdtrBaseLo : c.idtrBaseLo;
  const baseHi = i.op === 0 ? c.gdtrBaseHi : c.idtrBaseHi;
  probeWrite(c, lo, hi, c.mode64 ? 10 : 6);
  c.write16(lo, hi, limit);
  const b = addr(c, lo, hi, 2);
  if (c.mode64) c.write64(b, aHi, baseLo, baseHi);
  else c.write32(b, aHi, baseLo);
}

/** LLDT (0F 00 /2), LTR (0F 00 /3): r/m16 selector. */
function lldt(c: Cpu, i: Insn): void {
  priv(c);
  loadLdtr(c, c.readRm(i) & 0xffff);
}

function ltr(c: Cpu, i: Insn): void {
  priv(c);
  loadTaskRegister(c, c.readRm(i) & 0xffff);
}

/** SLDT (0F 00 /0), STR (0F 00 /1): to a register (zero-extended, operand size) or m16. */
function sldtStr(c: Cpu, i: Insn): void {
  const v = i.op === 0 ? c.ldtrSel : c.trSel;
  if (i.isMem) {
    c.ea(i);
    c.write16(c.eaLo, c.eaHi, v);
  } else c.setReg(i.rm, i.size, v & 0xffff, 0);
}

/** MOV r/m, Sreg (8C): a register gets the selector zero-extended; memory gets 16 bits. */
function movFromSreg(c: Cpu, i: Insn): void {
  if (i.reg > 5) c.raise(UD);
  const v = c.segSel[i.reg] & 0xffff;
  if (i.isMem) {
    c.ea(i);
    c.write16(c.eaLo, c.eaHi, v);
  } else c.setReg(i.rm, i.size, v, 0);
}

/** MOV Sreg, r/m16 (8E): CS is #UD; loading SS blocks interrupts for one instruction. */
function movToSreg(c: Cpu, i: Insn): void {
  const s = i.reg;
  if (s === 1 || s > 5) c.raise(UD);
  loadDataSegment(c, s, c.readRm(i) & 0xffff);
  if (s === 2) {
    c.intShadow = true;
    c.irqCheck = true;
    movSsLoaded(c); // debug traps wait too (SDM vol. 3, 6.8.3)
  }
}

/** PUSH Sreg (06/0E/16/1E, 0F A0/A8): the selector zero-extended to the operand size. */
function pushSreg(c: Cpu, i: Insn): void {
  c.push(i.size, c.segSel[i.op] & 0xffff, 0);
}

/** POP Sreg (07/17/1F, 0F A1/A9): RSP is restored if the segment load faults. */
function popSreg(c: Cpu, i: Insn): void {
  const saveLo = c.lo[4];
  const saveHi = c.hi[4];
  const v = c.pop(i.size) & 0xffff;
  try {
    loadDataSegment(c, i.op, v);
  } catch (e) {
    c.lo[4] = saveLo;
    c.hi[4] = saveHi;
    throw e;
  }
  if (i.op === 2) {
    c.intShadow = true;
    c.irqCheck = true;
    movSsLoaded(c);
  }
}

/**
 * Descriptor probe for LAR/LSL/VERR/VERW: reads the GDT descriptor of `sel` into `probe` and
 * returns false (ZF=0 for the instruction) for a null/LDT/out-of-limit selector or when the
 * privilege rule fails (non-conforming code and data need DPL >= max(CPL, RPL)).
 */
const probe: Descriptor = { baseLo: 0, baseHi: 0, limit: 0, ar: 0 };
function probeSelector(c: Cpu, sel: number): boolean {
  if ((sel & 0xfffc) === 0 || (sel & 4) !== 0 || (sel & 0xfff8) + 7 > c.gdtrLimit) return false;
  readDescriptor(c, sel, GP, false, probe);
  const ar = probe.ar;
  const conformingCode = (ar & AR_S) !== 0 && (ar & AR_CODE) !== 0 && (ar & AR_CONFORMING) !== 0;
  const dpl = (ar >> 5) & 3;
  return conformingCode || (dpl >= c.cpl && dpl >= (sel & 3));
}

/** A 16-bit selector operand of an instruction whose operand size may be larger (LAR/LSL). */
function readSel16(c: Cpu, i: Insn): number {
  if (!i.isMem) return c.lo[i.rm] & 0xffff;
  c.ea(i);
  return c.read16(c.eaLo, c.eaHi);
}

function setZf(c: Cpu, z: boolean): void {
  const f = c.getFlags();
  c.setFlags(z ? f | ZF : f & ~ZF);
}

/** System descriptor types LAR accepts in IA-32e mode (LDT, 64-bit TSS available/busy, call gate). */
function larSystemOk(c: Cpu, type: number): boolean {
  if (lma(c)) return type === 2 || type === 9 || type === 0xb || type === 0xc;
  return type !== 0 && type !== 8 && type !== 0xa && type !== 0xd;
}

/** LAR r, r/m16 (0F 02; SDM vol. 2 LAR): access rights (descriptor bits 23:8) if visible, ZF=1. */
function lar(c: Cpu, i: Insn): void {
  const sel = readSel16(c, i);
  let ok = probeSelector(c, sel);
  if (ok && (probe.ar & AR_S) === 0) ok = larSystemOk(c, probe.ar & 0xf);
  if (ok) {
    // AR layout back to descriptor bits 23:8: type/S/DPL/P in 15:8, AVL/L/D/G in 23:20.
    const v = ((probe.ar & 0xff) << 8) | ((probe.ar & 0xf000) << 8);
    c.setReg(i.reg, i.size, i.size === 2 ? v & 0xff00 : v, 0);
  }
  setZf(c, ok);
}

/** LSL r, r/m16 (0F 03; SDM vol. 2 LSL): the byte-granular segment limit, ZF=1. */
function lsl(c: Cpu, i: Insn): void {
  const sel = readSel16(c, i);
  let ok = probeSelector(c, sel);
  if (ok && (probe.ar & AR_S) === 0) {
    const type = probe.ar & 0xf;
    ok = type === 2 || type === 9 || type === 0xb || (!lma(c) && (type === 1 || type === 3));
  }
  if (ok) c.setReg(i.reg, i.size, i.size === 2 ? probe.limit & 0xffff : probe.limit | 0, 0);
  setZf(c, ok);
}

/** VERR/VERW r/m16 (0F 00 /4 /5): ZF=1 if the segment is readable/writable at CPL. */
function verrVerw(c: Cpu, i: Insn): void {
  const sel = c.readRm(i) & 0xffff;
  let ok = probeSelector(c, sel) && (probe.ar & AR_S) !== 0;
  if (ok) {
    const code = (probe.ar & AR_CODE) !== 0;
    ok = i.op === 0 ? !code || (probe.ar & AR_RW) !== 0 : !code && (probe.ar & AR_RW) !== 0;
  }
  setZf(c, ok);
}

// =====================================================================================
// Far transfers, IRET, software interrupts
// =====================================================================================

/** Offset checks for a far target in farCode: canonical for 64-bit code, else within the limit. */
let tgtHi = 0;
function farTarget(c: Cpu, lo: number, hi: number, size: number): number {
  if (lma(c) && (farCode.ar & AR_L) !== 0) {
    if (!canonical(hi)) c.raise(GP, 0);
    tgtHi = hi;
    return lo;
  }
  tgtHi = 0;
  if (size === 2) lo &= 0xffff;
  if (lo >>> 0 > farCode.limit) c.raise(GP, 0);
  return lo;
}

/** Far JMP/CALL to a code segment (direct branches only; gates are #GP(selector)). */
function farBranch(c: Cpu, sel: number, offLo: number, offHi: number, size: number, call: boolean): void {
  checkFarCode(c, sel);
  const lo = farTarget(c, offLo, offHi, size);
  const hi = tgtHi;
  if (call) {
    const saveLo = c.lo[4];
    const saveHi = c.hi[4];
    try {
      c.push(size, c.segSel[1] & 0xffff, 0);
      c.push(size, c.ripLo, c.ripHi);
    } catch (e) {
      c.lo[4] = saveLo;
      c.hi[4] = saveHi;
      throw e;
    }
  }
  commitCode(c, sel, c.cpl);
  c.ripLo = lo;
  c.ripHi = hi;
}

/** JMP/CALL ptr16:16/32 (EA, 9A; invalid in 64-bit mode). */
function farPtr(c: Cpu, i: Insn): void {
  farBranch(c, i.imm2 & 0xffff, i.imm, 0, i.size, i.op === 1);
}

/** JMP/CALL m16:16/32/64 (FF /5, FF /3): offset of operand size, then the selector. */
function farMem(c: Cpu, i: Insn): void {
  c.ea(i);
  const lo = c.eaLo;
  const hi = c.eaHi;
  const offLo = c.readMem(lo, hi, i.size);
  const offHi = i.size === 8 ? c.vHi : 0;
  const s = addr(c, lo, hi, i.size);
  const sel = c.read16(s, aHi);
  farBranch(c, sel, offLo, offHi, i.size, i.op === 1);
}

/** RET far (CB, CA iw; SDM vol. 2 RET): same level, or outer level with SS:RSP popped too. */
function retFar(c: Cpu, i: Insn): void {
  const size = i.size;
  const saveLo = c.lo[4];
  const saveHi = c.hi[4];
  try {
    let offLo = c.pop(size);
    const offHi = size === 8 ? c.vHi : 0;
    const sel = c.pop(size) & 0xffff;
    checkReturnCode(c, sel);
    const newCpl = sel & 3;
    offLo = farTarget(c, offLo, offHi, size);
    const hi = tgtHi;
    if (newCpl === c.cpl) {
      commitCode(c, sel, newCpl);
      addRsp(c, i.imm);
    } else {
      addRsp(c, i.imm);
      const spLo = c.pop(size);
      const spHi = size === 8 ? c.vHi : 0;
      const ss = c.pop(size) & 0xffff;
      const target64 = lma(c) && (farCode.ar & AR_L) !== 0;
      const hasSs = checkReturnStack(c, ss, newCpl, target64);
      commitCode(c, sel, newCpl);
      if (hasSs) setSegment(c, 2, ss, farStack.baseLo, 0, farStack.limit, farStack.ar);
      else nullSegment(c, 2, ss);
      c.lo[4] = spLo;
      c.hi[4] = target64 ? spHi : 0;
      addRsp(c, i.imm);
      nullInaccessibleSegments(c, newCpl);
    }
    c.ripLo = offLo;
    c.ripHi = hi;
  } catch (e) {
    c.lo[4] = saveLo;
    c.hi[4] = saveHi;
    throw e;
  }
}

/** RFLAGS bits IRET always loads (VM is never set: no virtual-8086 mode). */
const IRET_BASE = CF | PF | AF | ZF | SF | TF | DF | OF | NT | RF | AC | ID;

/**
 * IRET/IRETD/IRETQ (CF; SDM vol. 2 IRET, vol. 3 6.14.3): pops RIP, CS, RFLAGS; in 64-bit mode
 * (any operand size) or on a return to an outer level, also RSP and SS. IF changes only when
 * CPL <= IOPL, IOPL/VIF/VIP only at CPL 0. NT=1 (task return) is #GP(0): tasks are not modelled.
 */
function iret(c: Cpu, i: Insn): void {
  c.chargeEvent(CH.CHARGE_IRET);
  if ((c.flagsBase & NT) !== 0) c.raise(GP, 0);
  iretUnblocksNmi(c); // even if the IRET then faults (SDM vol. 3, 6.7.1)
  const size = i.size;
  const saveLo = c.lo[4];
  const saveHi = c.hi[4];
  try {
    let ripLo = c.pop(size);
    const ripHi = size === 8 ? c.vHi : 0;
    const sel = c.pop(size) & 0xffff;
    let fl = c.pop(size);
    checkReturnCode(c, sel);
    const oldCpl = c.cpl;
    const newCpl = sel & 3;
    ripLo = farTarget(c, ripLo, ripHi, size);
    const rHi = tgtHi;
    const target64 = lma(c) && (farCode.ar & AR_L) !== 0;
    const popSs = c.mode64 || newCpl > oldCpl;
    let spLo = 0;
    let spHi = 0;
    let ss = 0;
    let hasSs = false;
    if (popSs) {
      spLo = c.pop(size);
      spHi = size === 8 ? c.vHi : 0;
      ss = c.pop(size) & 0xffff;
      hasSs = checkReturnStack(c, ss, newCpl, target64);
    }
    // RFLAGS with the privilege rules of the *current* CPL.
    let mask = IRET_BASE;
    if (oldCpl <= iopl(c)) mask |= IF;
    if (oldCpl === 0) mask |= IOPL | VIF | VIP;
    if (size === 2) mask &= 0xffff;
    const old = c.getFlags();
    fl = ((old & ~mask) | (fl & mask)) & ~VM;
    // Commit.
    commitCode(c, sel, newCpl);
    if (popSs) {
      if (hasSs) setSegment(c, 2, ss, farStack.baseLo, 0, farStack.limit, farStack.ar);
      else nullSegment(c, 2, ss);
      c.lo[4] = spLo;
      c.hi[4] = target64 ? spHi : 0;
    }
    c.setFlags(fl);
    c.ripLo = ripLo;
    c.ripHi = rHi;
    if (newCpl > oldCpl) nullInaccessibleSegments(c, newCpl);
  } catch (e) {
    c.lo[4] = saveLo;
    c.hi[4] = saveHi;
    throw e;
  }
}

/** INT imm8 (CD): software interrupt; the gate's DPL must be >= CPL. Returns after INT. */
function intN(c: Cpu, i: Insn): void {
  deliverEvent(c, i.imm & 0xff, -1, false, 1);
}

/** INT3 (CC): #BP as a software interrupt (trap: the saved RIP follows INT3). */
function int3(c: Cpu, _i: Insn): void {
  deliverEvent(c, 3, -1, false, 1);
}

/** INTO (CE, invalid in 64-bit mode): #OF if OF = 1. */
function into(c: Cpu, _i: Insn): void {
  if (c.getOF() !== 0) deliverEvent(c, OF_, -1, false, 1);
}

/** INT1/ICEBP (F1): #DB as a trap without the gate DPL check (SDM vol. 3, 6.15 interrupt 1). */
function int1(c: Cpu, _i: Insn): void {
  deliverEvent(c, 1, -1, false, 0);
}

function ud2(c: Cpu, _i: Insn): void {
  c.raise(UD);
}

// =====================================================================================
// MSRs, CPUID, time
// =====================================================================================

/** RDMSR (0F 32): EDX:EAX = MSR[ECX]. */
function rdmsr(c: Cpu, i: Insn): void {
  priv(c);
  if (c.nonRoot) c.vmxUnit.checkMsr(i, c.lo[1], false);
  c.chargeEvent(CH.CHARGE_MSR);
  readMsr(c, c.lo[1], t);
  c.set32(0, t[0]);
  c.set32(2, t[1]);
}

/** WRMSR (0F 30): MSR[ECX] = EDX:EAX. */
function wrmsr(c: Cpu, i: Insn): void {
  priv(c);
  if (c.nonRoot) c.vmxUnit.checkMsr(i, c.lo[1], true);
  c.chargeEvent(CH.CHARGE_MSR);
  writeMsr(c, c.lo[1], c.lo[0], c.lo[2]);
}

/** CPUID (0F A2): leaf EAX, subleaf ECX, from the CPU model. */
function cpuid(c: Cpu, i: Insn): void {
  if (c.nonRoot) c.vmxUnit.instructionExit(VX.EXIT_CPUID, i); // CPUID always exits (25.1.2)
  c.chargeEvent(CH.CHARGE_CPUID);
  c.model.query(c.lo[0], c.lo[1], t);
  // CPUID.1:EDX.APIC[bit 9] is 0 while IA32_APIC_BASE.EN is 0 (SDM vol. 3, 11.4.3).
  if (c.lo[0] === 1 && c.apicEnabled !== null && !c.apicEnabled()) t[3] &= ~F1D_APIC;
  c.set32(0, t[0]);
  c.set32(3, t[1]);
  c.set32(1, t[2]);
  c.set32(2, t[3]);
}

/** RDTSC (0F 31): simulated cycles + TSC offset; #GP at CPL > 0 with CR4.TSD. */
function rdtsc(c: Cpu, i: Insn): void {
  if ((c.cr4 & CR4_TSD) !== 0 && c.cpl !== 0) c.raise(GP, 0);
  if (c.nonRoot && (c.vmxUnit.proc & CPU_RDTSC_EXITING) !== 0)
    c.vmxUnit.instructionExit(i.opcode === 0x1f9 ? VX.EXIT_RDTSCP : VX.EXIT_RDTSC, i);
  readTsc(c, t);
  c.set32(0, t[0]);
  c.set32(2, t[1]);
}

/** RDTSCP (0F 01 F9): RDTSC plus ECX = IA32_TSC_AUX. */
function rdtscp(c: Cpu, i: Insn): void {
  rdtsc(c, i);
  c.set32(1, c.tscAux);
}

// =====================================================================================
// Interrupt flag and port I/O
// =====================================================================================

/** CLI (FA): #GP(0) if CPL > IOPL (no VME/PVI). */
function cli(c: Cpu, _i: Insn): void {
  if (c.cpl > iopl(c)) c.raise(GP, 0);
  c.flagsBase &= ~IF;
}

/** STI (FB): when IF was 0, interrupts stay blocked until after the next instruction. */
function sti(c: Cpu, _i: Insn): void {
  if (c.cpl > iopl(c)) c.raise(GP, 0);
  if ((c.flagsBase & IF) === 0) {
    c.flagsBase |= IF;
    c.intShadow = true;
    c.irqCheck = true;
  }
}

/**
 * I/O privilege (SDM vol. 1, 18.5): CPL > IOPL is #GP(0). The TSS I/O permission bitmap is not
 * consulted (it would be, on hardware, before faulting): user-mode port access is always denied.
 */
function ioCheck(c: Cpu): void {
  if (c.cpl > iopl(c)) c.raise(GP, 0);
}

function ioSize(i: Insn): 1 | 2 | 4 {
  return i.size === 1 ? 1 : i.size === 2 ? 2 : 4;
}

/** IN AL/AX/EAX, imm8 (E4, E5) or DX (EC, ED). */
function inPort(c: Cpu, i: Insn): void {
  ioCheck(c);
  const sz = ioSize(i);
  const port = i.op === 1 ? c.lo[2] & 0xffff : i.imm & 0xff;
  if (c.nonRoot) c.vmxUnit.checkIo(i, port, sz, true, false);
  c.chargeEvent(CH.CHARGE_IO);
  c.setReg(0, sz, c.io.portIn(port, sz), 0);
  if (c.debug.ioMask !== 0) ioAccess(c, port, sz);
}

/** OUT imm8 (E6, E7) or DX (EE, EF), AL/AX/EAX. */
function outPort(c: Cpu, i: Insn): void {
  ioCheck(c);
  const sz = ioSize(i);
  const port = i.op === 1 ? c.lo[2] & 0xffff : i.imm & 0xff;
  if (c.nonRoot) c.vmxUnit.checkIo(i, port, sz, false, false);
  c.chargeEvent(CH.CHARGE_IO);
  const v = c.lo[0];
  c.io.portOut(port, sz, sz === 1 ? v & 0xff : sz === 2 ? v & 0xffff : v >>> 0);
  if (c.debug.ioMask !== 0) ioAccess(c, port, sz);
}

/** Add a signed step to an index register at the address size (32-bit writes zero-extend). */
function stepReg(c: Cpu, r: number, step: number, a8: boolean): void {
  const lo = c.lo[r];
  const n = (lo + step) | 0;
  if (a8) {
    if (step > 0 && n >>> 0 < lo >>> 0) c.hi[r] = (c.hi[r] + 1) | 0;
    else if (step < 0 && n >>> 0 > lo >>> 0) c.hi[r] = (c.hi[r] - 1) | 0;
    c.lo[r] = n;
  } else c.set32(r, n);
}

/** Decrement the count register at the address size; returns true when it reached zero. */
function decCount(c: Cpu, a8: boolean): boolean {
  const lo = c.lo[1];
  if (a8) {
    if (lo === 0) c.hi[1] = (c.hi[1] - 1) | 0;
    c.lo[1] = (lo - 1) | 0;
    return (c.lo[1] | c.hi[1]) === 0;
  }
  c.set32(1, lo - 1);
  return c.lo[1] === 0;
}

/**
 * INS/OUTS (6C-6F), optionally REP: one element per iteration with registers updated after each,
 * so a fault mid-string restarts correctly. INS probes the destination before reading the port.
 */
function insOuts(c: Cpu, i: Insn): void {
  ioCheck(c);
  const sz = ioSize(i);
  const a8 = i.asize === 8;
  const port = c.lo[2] & 0xffff;
  const step = (c.flagsBase & DF) !== 0 ? -sz : sz;
  const isIn = i.op === 0;
  const r = isIn ? 7 : 6; // RDI (ES:) for INS, RSI (seg:, overridable) for OUTS
  const seg = isIn ? 0 : i.seg;
  if (c.nonRoot) {
    const gla = elementLinear(c, r, seg, a8);
    c.vmxUnit.checkIo(i, port, sz, isIn, true, gla, elementLinearHi());
  }
  c.chargeEvent(CH.CHARGE_IO);
  if (i.rep !== 0 && (a8 ? (c.lo[1] | c.hi[1]) === 0 : c.lo[1] === 0)) return;
  for (;;) {
    const lo = elementLinear(c, r, seg, a8);
    const hi = elementLinearHi();
    c.eaStack = false;
    if (isIn) {
      c.translate(lo, hi, ACC_WRITE | (c.cpl === 3 ? ACC_USER : 0));
      const v = c.io.portIn(port, sz);
      c.writeMem(lo, hi, sz, v, 0);
    } else {
      const v = c.readMem(lo, hi, sz);
      c.io.portOut(port, sz, sz === 4 ? v >>> 0 : v);
    }
    if (c.debug.ioMask !== 0) ioAccess(c, port, sz);
    stepReg(c, r, step, a8);
    if (i.rep === 0 || decCount(c, a8)) return;
  }
}

// =====================================================================================
// TLB and cache maintenance
// =====================================================================================

/** INVLPG m (0F 01 /7): drop the translation of the page (no fault for any address). */
function invlpg(c: Cpu, i: Insn): void {
  priv(c);
  c.ea(i);
  if (c.nonRoot && (c.vmxUnit.proc & CPU_INVLPG_EXITING) !== 0) c.vmxUnit.instructionExit(VX.EXIT_INVLPG, i, c.eaLo);
  c.chargeEvent(CH.CHARGE_INVLPG);
  c.mmu.invlpg(c.eaLo, c.eaHi); // TLB model + PSCs; drops the page from the software TLB too
}

/**
 * INVPCID r, m128 (66 0F 38 82): types 0 (address), 1 (PCID), 2 (all incl. global), 3 (all
 * but global). The software TLB is not PCID-tagged: type 0 drops the page in every PCID,
 * types 1-3 flush everything (conservative).
 */
function invpcid(c: Cpu, i: Insn): void {
  c.chargeEvent(CH.CHARGE_INVLPG);
  priv(c);
  const typeLo = c.lo[i.reg];
  const typeHi = c.mode64 ? c.hi[i.reg] : 0;
  if (typeHi !== 0 || typeLo >>> 0 > 3) c.raise(GP, 0);
  c.ea(i);
  const lo = c.eaLo;
  const hi = c.eaHi;
  const pcid = c.read64(lo, hi);
  const pcidHi = c.vHi;
  const a = addr(c, lo, hi, 8);
  const laLo = c.read64(a, aHi);
  const laHi = c.vHi;
  if ((pcid & ~0xfff) !== 0 || pcidHi !== 0) c.raise(GP, 0);
  if (typeLo <= 1 && (c.cr4 & CR4_PCIDE) === 0 && (pcid & 0xfff) !== 0) c.raise(GP, 0);
  if (typeLo === 0 && !canonical(laHi)) c.raise(GP, 0);
  c.mmu.invpcid(typeLo, pcid & 0xfff, laLo, laHi); // TLB model + PSCs (and the software TLB)
}

/** WBINVD/INVD (0F 09, 0F 08): privileged no-ops (no caches are modelled). */
function wbinvd(c: Cpu, i: Insn): void {
  priv(c); // #GP at CPL > 0 comes before the VM exit (SDM vol. 3, 25.1.1)
  if (!c.nonRoot) return;
  if (i.opcode === 0x108) c.vmxUnit.instructionExit(VX.EXIT_INVD, i); // INVD exits unconditionally (25.1.2)
  if ((c.vmxUnit.proc2 & CPU2_WBINVD_EXITING) !== 0) c.vmxUnit.instructionExit(VX.EXIT_WBINVD, i);
}

/** CLFLUSH m8 (0F AE /7): a no-op that still checks the address like a read (without reading MMIO). */
function clflush(c: Cpu, i: Insn): void {
  c.ea(i);
  c.translate(c.eaLo, c.eaHi, c.cpl === 3 ? ACC_USER : 0);
}

function nop(_c: Cpu, _i: Insn): void {}

/** CLAC/STAC (0F 01 CA/CB): clear/set RFLAGS.AC; #UD at CPL > 0. */
function clacStac(c: Cpu, i: Insn): void {
  if (c.cpl !== 0) c.raise(UD);
  const f = c.getFlags();
  c.setFlags(i.op === 1 ? f | AC : f & ~AC);
}

// =====================================================================================
// Fast system calls
// =====================================================================================

/** SWAPGS (0F 01 F8): exchange GS.base with IA32_KERNEL_GS_BASE; 64-bit mode only, CPL 0. */
function swapgs(c: Cpu, _i: Insn): void {
  if (!c.mode64) c.raise(UD);
  priv(c);
  const lo = c.segBaseLo[5];
  const hi = c.segBaseHi[5];
  c.segBaseLo[5] = c.kernelGsBaseLo;
  c.segBaseHi[5] = c.kernelGsBaseHi;
  c.kernelGsBaseLo = lo;
  c.kernelGsBaseHi = hi;
}

/**
 * SYSCALL (0F 05; SDM vol. 2): RCX = next RIP, R11 = RFLAGS, RFLAGS &= ~IA32_FMASK (and RF),
 * CS = STAR[47:32] & ~3 (flat 64-bit, DPL 0), SS = STAR[47:32] + 8, CPL 0, RIP = LSTAR.
 * #UD outside 64-bit mode or with EFER.SCE = 0 (compatibility-mode SYSCALL is Intel-#UD).
 */
function syscall(c: Cpu, _i: Insn): void {
  c.chargeEvent(CH.CHARGE_SYSCALL);
  if (!c.mode64 || (c.efer & EFER_SCE) === 0) c.raise(UD);
  const flags = c.getFlags();
  c.set64(1, c.ripLo, c.ripHi);
  c.set64(11, flags, 0);
  const sel = c.starHi & 0xffff;
  setSegment(c, 1, sel & 0xfffc, 0, 0, 0xffffffff, AR_CODE64_KERNEL);
  setSegment(c, 2, (sel + 8) & 0xffff, 0, 0, 0xffffffff, AR_DATA_KERNEL);
  c.setCpl(0);
  c.setFlags(flags & ~c.sfmask & ~RF);
  c.ripLo = c.lstarLo;
  c.ripHi = c.lstarHi;
  c.updateMode();
}

/**
 * SYSRET (0F 07; SDM vol. 2): CPL 0 only; RIP = RCX (REX.W: must be canonical, else #GP(0)) or
 * ECX; RFLAGS = (R11 & 3C7FD7h) | 2; CS = STAR[63:48] + 16 (64-bit) or STAR[63:48] (32-bit)
 * with RPL 3; SS = STAR[63:48] + 8 with RPL 3; CPL 3.
 */
function sysret(c: Cpu, i: Insn): void {
  c.chargeEvent(CH.CHARGE_SYSCALL);
  if (!c.mode64 || (c.efer & EFER_SCE) === 0) c.raise(UD);
  priv(c);
  const base = (c.starHi >>> 16) & 0xffff;
  const to64 = i.size === 8;
  let ripHi = 0;
  if (to64) {
    if (!canonical(c.hi[1])) c.raise(GP, 0);
    ripHi = c.hi[1];
  }
  const ripLo = c.lo[1];
  if (to64) setSegment(c, 1, ((base + 16) & 0xffff) | 3, 0, 0, 0xffffffff, AR_CODE64_USER);
  else setSegment(c, 1, base | 3, 0, 0, 0xffffffff, AR_CODE32_USER);
  setSegment(c, 2, ((base + 8) & 0xffff) | 3, 0, 0, 0xffffffff, AR_DATA_USER);
  c.setCpl(3);
  c.setFlags((c.lo[11] & 0x3c7fd7) | 2);
  c.ripLo = ripLo;
  c.ripHi = ripHi;
  c.updateMode();
}

/**
 * SYSENTER (0F 34; SDM vol. 2): #GP(0) if IA32_SYSENTER_CS[15:2] = 0; CS = SYSENTER_CS & ~3
 * (64-bit code in IA-32e mode), SS = CS + 8, RIP/RSP from the SYSENTER MSRs, CPL 0;
 * clears VM, IF and RF.
 */
function sysenter(c: Cpu, _i: Insn): void {
  c.chargeEvent(CH.CHARGE_SYSCALL);
  const cs = c.sysenterCs & 0xfffc;
  if (cs === 0) c.raise(GP, 0);
  const long = lma(c);
  setSegment(c, 1, cs, 0, 0, 0xffffffff, long ? AR_CODE64_KERNEL : AR_CODE32_KERNEL);
  setSegment(c, 2, (cs + 8) & 0xffff, 0, 0, 0xffffffff, AR_DATA_KERNEL);
  c.setCpl(0);
  c.setFlags(c.getFlags() & ~(VM | IF | RF));
  c.ripLo = c.sysenterEipLo;
  c.ripHi = long ? c.sysenterEipHi : 0;
  c.lo[4] = c.sysenterEspLo;
  c.hi[4] = long ? c.sysenterEspHi : 0;
  c.updateMode();
}

/**
 * SYSEXIT (0F 35; SDM vol. 2): CPL 0; to 64-bit code with REX.W (CS = SYSENTER_CS + 32,
 * SS = + 40, RIP = RDX, RSP = RCX, both canonical) or 32-bit (CS + 16, SS + 24); RPL 3.
 */
function sysexit(c: Cpu, i: Insn): void {
  c.chargeEvent(CH.CHARGE_SYSCALL);
  priv(c);
  const cs = c.sysenterCs & 0xfffc;
  if (cs === 0) c.raise(GP, 0);
  const to64 = i.size === 8;
  if (to64 && (!canonical(c.hi[2]) || !canonical(c.hi[1]))) c.raise(GP, 0);
  if (to64) {
    setSegment(c, 1, ((cs + 32) & 0xffff) | 3, 0, 0, 0xffffffff, AR_CODE64_USER);
    setSegment(c, 2, ((cs + 40) & 0xffff) | 3, 0, 0, 0xffffffff, AR_DATA_USER);
  } else {
    setSegment(c, 1, ((cs + 16) & 0xffff) | 3, 0, 0, 0xffffffff, AR_CODE32_USER);
    setSegment(c, 2, ((cs + 24) & 0xffff) | 3, 0, 0, 0xffffffff, AR_DATA_USER);
  }
  c.setCpl(3);
  c.ripLo = c.lo[2];
  c.ripHi = to64 ? c.hi[2] : 0;
  const spLo = c.lo[1];
  const spHi = to64 ? c.hi[1] : 0;
  c.lo[4] = spLo;
  c.hi[4] = spHi;
  c.updateMode();
}

// =====================================================================================
// HLT and VMX
// =====================================================================================

/** HLT: privileged; stops fetching until an interrupt (or forever with IF=0). */
function hlt(c: Cpu, i: Insn): void {
  if (c.cpl !== 0) c.raise(GP, 0);
  if (c.nonRoot && (c.vmxUnit.proc & CPU_HLT_EXITING) !== 0) c.vmxUnit.instructionExit(VX.EXIT_HLT, i);
  c.halt();
}

/**
 * VMX instructions (Insn.op is a VMXI_* constant): the CPU's own VMX for guest software
 * (vmx/instructions.ts; #UD unless CPUID advertises VMX and, but for VMXON, the CPU is in VMX
 * operation), or a hook a test installs in Cpu.vmx.
 */
/** Exit reason of each VMX instruction in non-root operation (25.1.2), by VMXI_* op. */
const VMX_EXIT_REASON: Record<number, number> = {
  [VX.VMXI_VMCALL]: VX.EXIT_VMCALL,
  [VX.VMXI_VMLAUNCH]: VX.EXIT_VMLAUNCH,
  [VX.VMXI_VMRESUME]: VX.EXIT_VMRESUME,
  [VX.VMXI_VMXOFF]: VX.EXIT_VMXOFF,
  [VX.VMXI_VMFUNC]: VX.EXIT_VMFUNC,
  [VX.VMXI_VMPTRLD]: VX.EXIT_VMPTRLD,
  [VX.VMXI_VMCLEAR]: VX.EXIT_VMCLEAR,
  [VX.VMXI_VMXON]: VX.EXIT_VMXON,
  [VX.VMXI_VMPTRST]: VX.EXIT_VMPTRST,
  [VX.VMXI_VMREAD]: VX.EXIT_VMREAD,
  [VX.VMXI_VMWRITE]: VX.EXIT_VMWRITE,
  [VX.VMXI_INVEPT]: VX.EXIT_INVEPT,
  [VX.VMXI_INVVPID]: VX.EXIT_INVVPID,
};

/** VMX instructions with an operand the exit describes (27.2.1, 27.2.5); the others carry none. */
function hasVmxOperand(op: number): boolean {
  return op >= VX.VMXI_VMPTRLD;
}

function vmxInsn(c: Cpu, i: Insn): void {
  // In VMX non-root operation every VMX instruction (and VMCALL) exits to the hypervisor, with
  // the operand in the instruction-information field and the displacement in the qualification,
  // but VMREAD/VMWRITE that VMCS shadowing serves (vmx/shadow.ts).
  if (c.nonRoot) {
    if (i.op !== VX.VMXI_VMCALL && i.op !== VX.VMXI_VMFUNC) checkMode(c);
    if (shadowAccess(c, i)) return;
    const reason = VMX_EXIT_REASON[i.op];
    if (!hasVmxOperand(i.op) || !i.isMem)
      c.vmxUnit.exitNow(reason, 0, 0, i.len, hasVmxOperand(i.op) ? vmxInstructionInfo(i) : 0);
    let qlo = i.disp;
    let qhi = i.dispHi;
    if (i.base === BASE_RIP) {
      // RIP-relative: the qualification is displacement + RIP of the next instruction (27.2.1).
      const lo = (c.ripLo >>> 0) + (qlo >>> 0);
      qhi = (qhi + c.ripHi + (lo > 0xffffffff ? 1 : 0)) | 0;
      qlo = lo | 0;
    }
    c.vmxUnit.exitNow(reason, qlo, qhi, i.len, vmxInstructionInfo(i));
  }
  const v = c.vmx;
  if (v === null)
    vmxInstruction(c, i); // the CPU's own VMX (#UD unless CPUID advertises it)
  else v.vmxInstruction(c, i);
}

// =====================================================================================
// Opcode table
// =====================================================================================

export const SYSTEM_OPS: readonly OpDef[] = [
  { name: "hlt", map: 0, code: 0xf4, modrm: false, size: "v", exec: hlt },
  // Control and debug registers.
  { name: "mov", map: 1, code: 0x20, modrm: true, modIgnored: true, size: "f64", exec: movFromCr },
  { name: "mov", map: 1, code: 0x21, modrm: true, modIgnored: true, size: "f64", exec: movFromDr },
  { name: "mov", map: 1, code: 0x22, modrm: true, modIgnored: true, size: "f64", exec: movToCr },
  { name: "mov", map: 1, code: 0x23, modrm: true, modIgnored: true, size: "f64", exec: movToDr },
  { name: "clts", map: 1, code: 0x06, modrm: false, size: "v", exec: clts },
  { name: "smsw", map: 1, code: 0x01, ext: 4, modrm: true, size: "v", exec: smsw },
  { name: "lmsw", map: 1, code: 0x01, ext: 6, modrm: true, size: "w", exec: lmsw },
  // Descriptor tables.
  { name: "sgdt", map: 1, code: 0x01, ext: 0, form: "mem", modrm: true, size: "v", op: 0, exec: sgdt },
  { name: "sidt", map: 1, code: 0x01, ext: 1, form: "mem", modrm: true, size: "v", op: 1, exec: sgdt },
  { name: "lgdt", map: 1, code: 0x01, ext: 2, form: "mem", modrm: true, size: "v", op: 0, exec: lgdt },
  { name: "lidt", map: 1, code: 0x01, ext: 3, form: "mem", modrm: true, size: "v", op: 1, exec: lgdt },
  { name: "sldt", map: 1, code: 0x00, ext: 0, modrm: true, size: "v", op: 0, exec: sldtStr },
  { name: "str", map: 1, code: 0x00, ext: 1, modrm: true, size: "v", op: 1, exec: sldtStr },
  { name: "lldt", map: 1, code: 0x00, ext: 2, modrm: true, size: "w", exec: lldt },
  { name: "ltr", map: 1, code: 0x00, ext: 3, modrm: true, size: "w", exec: ltr },
  { name: "verr", map: 1, code: 0x00, ext: 4, modrm: true, size: "w", op: 0, exec: verrVerw },
  { name: "verw", map: 1, code: 0x00, ext: 5, modrm: true, size: "w", op: 1, exec: verrVerw },
  { name: "lar", map: 1, code: 0x02, modrm: true, size: "v", rmWord: true, exec: lar },
  { name: "lsl", map: 1, code: 0x03, modrm: true, size: "v", rmWord: true, exec: lsl },
  // Segment registers.
  { name: "mov", map: 0, code: 0x8c, modrm: true, size: "v", exec: movFromSreg },
  { name: "mov", map: 0, code: 0x8e, modrm: true, size: "w", exec: movToSreg },
  { name: "push", map: 0, code: 0x06, modrm: false, size: "d64", op: 0, mode: "no64", exec: pushSreg },
  { name: "pop", map: 0, code: 0x07, modrm: false, size: "d64", op: 0, mode: "no64", exec: popSreg },
  { name: "push", map: 0, code: 0x0e, modrm: false, size: "d64", op: 1, mode: "no64", exec: pushSreg },
  { name: "push", map: 0, code: 0x16, modrm: false, size: "d64", op: 2, mode: "no64", exec: pushSreg },
  { name: "pop", map: 0, code: 0x17, modrm: false, size: "d64", op: 2, mode: "no64", exec: popSreg },
  { name: "push", map: 0, code: 0x1e, modrm: false, size: "d64", op: 3, mode: "no64", exec: pushSreg },
  { name: "pop", map: 0, code: 0x1f, modrm: false, size: "d64", op: 3, mode: "no64", exec: popSreg },
  { name: "push", map: 1, code: 0xa0, modrm: false, size: "d64", op: 4, exec: pushSreg },
  { name: "pop", map: 1, code: 0xa1, modrm: false, size: "d64", op: 4, exec: popSreg },
  { name: "push", map: 1, code: 0xa8, modrm: false, size: "d64", op: 5, exec: pushSreg },
  { name: "pop", map: 1, code: 0xa9, modrm: false, size: "d64", op: 5, exec: popSreg },
  // Far transfers, IRET, software interrupts.
  { name: "ljmp", map: 0, code: 0xea, modrm: false, size: "v", imm: "ptr", op: 0, mode: "no64", exec: farPtr },
  { name: "lcall", map: 0, code: 0x9a, modrm: false, size: "v", imm: "ptr", op: 1, mode: "no64", exec: farPtr },
  { name: "ljmp", map: 0, code: 0xff, ext: 5, form: "mem", modrm: true, size: "v", op: 0, exec: farMem },
  { name: "lcall", map: 0, code: 0xff, ext: 3, form: "mem", modrm: true, size: "v", op: 1, exec: farMem },
  { name: "lret", map: 0, code: 0xcb, modrm: false, size: "v", exec: retFar },
  { name: "lret", map: 0, code: 0xca, modrm: false, size: "v", imm: "iw", exec: retFar },
  { name: "iret", map: 0, code: 0xcf, modrm: false, size: "v", exec: iret },
  { name: "int3", map: 0, code: 0xcc, modrm: false, size: "v", exec: int3 },
  { name: "int", map: 0, code: 0xcd, modrm: false, size: "v", imm: "ib", exec: intN },
  { name: "into", map: 0, code: 0xce, modrm: false, size: "v", mode: "no64", exec: into },
  { name: "int1", map: 0, code: 0xf1, modrm: false, size: "v", exec: int1 },
  { name: "ud2", map: 1, code: 0x0b, modrm: false, size: "v", exec: ud2 },
  // MSRs, CPUID, TSC.
  { name: "wrmsr", map: 1, code: 0x30, modrm: false, size: "v", exec: wrmsr },
  { name: "rdtsc", map: 1, code: 0x31, modrm: false, size: "v", exec: rdtsc },
  { name: "rdmsr", map: 1, code: 0x32, modrm: false, size: "v", exec: rdmsr },
  { name: "cpuid", map: 1, code: 0xa2, modrm: false, size: "v", exec: cpuid },
  { name: "rdtscp", map: 1, code: 0x01, ext: 7, rmExt: 1, modrm: true, size: "v", exec: rdtscp },
  // Interrupt flag and port I/O.
  { name: "cli", map: 0, code: 0xfa, modrm: false, size: "v", exec: cli },
  { name: "sti", map: 0, code: 0xfb, modrm: false, size: "v", exec: sti },
  { name: "in", map: 0, code: 0xe4, modrm: false, size: "b", imm: "ib", op: 0, exec: inPort },
  { name: "in", map: 0, code: 0xe5, modrm: false, size: "v", imm: "ib", op: 0, exec: inPort },
  { name: "out", map: 0, code: 0xe6, modrm: false, size: "b", imm: "ib", op: 0, exec: outPort },
  { name: "out", map: 0, code: 0xe7, modrm: false, size: "v", imm: "ib", op: 0, exec: outPort },
  { name: "in", map: 0, code: 0xec, modrm: false, size: "b", op: 1, exec: inPort },
  { name: "in", map: 0, code: 0xed, modrm: false, size: "v", op: 1, exec: inPort },
  { name: "out", map: 0, code: 0xee, modrm: false, size: "b", op: 1, exec: outPort },
  { name: "out", map: 0, code: 0xef, modrm: false, size: "v", op: 1, exec: outPort },
  { name: "insb", map: 0, code: 0x6c, modrm: false, size: "b", op: 0, exec: insOuts },
  { name: "ins", map: 0, code: 0x6d, modrm: false, size: "v", op: 0, exec: insOuts },
  { name: "outsb", map: 0, code: 0x6e, modrm: false, size: "b", op: 1, exec: insOuts },
  { name: "outs", map: 0, code: 0x6f, modrm: false, size: "v", op: 1, exec: insOuts },
  // TLB and caches.
  { name: "invlpg", map: 1, code: 0x01, ext: 7, form: "mem", modrm: true, size: "v", exec: invlpg },
  { name: "invpcid", map: 2, code: 0x82, prefix: 0x66, form: "mem", modrm: true, size: "f64", exec: invpcid },
  { name: "invd", map: 1, code: 0x08, modrm: false, size: "v", exec: wbinvd },
  { name: "wbinvd", map: 1, code: 0x09, modrm: false, size: "v", exec: wbinvd },
  { name: "clflush", map: 1, code: 0xae, ext: 7, form: "mem", modrm: true, size: "b", exec: clflush },
  { name: "lfence", map: 1, code: 0xae, ext: 5, form: "reg", modrm: true, size: "v", exec: nop },
  { name: "mfence", map: 1, code: 0xae, ext: 6, form: "reg", modrm: true, size: "v", exec: nop },
  { name: "sfence", map: 1, code: 0xae, ext: 7, form: "reg", modrm: true, size: "v", exec: nop },
  { name: "clac", map: 1, code: 0x01, ext: 1, rmExt: 2, modrm: true, size: "v", op: 0, exec: clacStac },
  { name: "stac", map: 1, code: 0x01, ext: 1, rmExt: 3, modrm: true, size: "v", op: 1, exec: clacStac },
  // Fast system calls.
  { name: "swapgs", map: 1, code: 0x01, ext: 7, rmExt: 0, modrm: true, size: "v", exec: swapgs },
  { name: "syscall", map: 1, code: 0x05, modrm: false, size: "v", exec: syscall },
  { name: "sysret", map: 1, code: 0x07, modrm: false, size: "v", exec: sysret },
  { name: "sysenter", map: 1, code: 0x34, modrm: false, size: "v", exec: sysenter },
  { name: "sysexit", map: 1, code: 0x35, modrm: false, size: "v", exec: sysexit },
  // VMX (SDM vol. 3, chapter 31); Insn.op = VMXI_*.
  { name: "vmcall", map: 1, code: 0x01, ext: 0, rmExt: 1, modrm: true, size: "v", op: VMXI_VMCALL, exec: vmxInsn },
  { name: "vmlaunch", map: 1, code: 0x01, ext: 0, rmExt: 2, modrm: true, size: "v", op: VMXI_VMLAUNCH, exec: vmxInsn },
  { name: "vmresume", map: 1, code: 0x01, ext: 0, rmExt: 3, modrm: true, size: "v", op: VMXI_VMRESUME, exec: vmxInsn },
  { name: "vmxoff", map: 1, code: 0x01, ext: 0, rmExt: 4, modrm: true, size: "v", op: VMXI_VMXOFF, exec: vmxInsn },
  { name: "vmfunc", map: 1, code: 0x01, ext: 2, rmExt: 4, modrm: true, size: "v", op: VMXI_VMFUNC, exec: vmxInsn },
  {
    name: "vmptrld",
    map: 1,
    code: 0xc7,
    ext: 6,
    prefix: 0,
    form: "mem",
    modrm: true,
    size: "q",
    op: VMXI_VMPTRLD,
    exec: vmxInsn,
  },
  {
    name: "vmclear",
    map: 1,
    code: 0xc7,
    ext: 6,
    prefix: 0x66,
    form: "mem",
    modrm: true,
    size: "q",
    op: VMXI_VMCLEAR,
    exec: vmxInsn,
  },
  {
    name: "vmxon",
    map: 1,
    code: 0xc7,
    ext: 6,
    prefix: 0xf3,
    form: "mem",
    modrm: true,
    size: "q",
    op: VMXI_VMXON,
    exec: vmxInsn,
  },
  {
    name: "vmptrst",
    map: 1,
    code: 0xc7,
    ext: 7,
    prefix: 0,
    form: "mem",
    modrm: true,
    size: "q",
    op: VMXI_VMPTRST,
    exec: vmxInsn,
  },
  { name: "vmread", map: 1, code: 0x78, prefix: 0, modrm: true, size: "f64", op: VMXI_VMREAD, exec: vmxInsn },
  { name: "vmwrite", map: 1, code: 0x79, prefix: 0, modrm: true, size: "f64", op: VMXI_VMWRITE, exec: vmxInsn },
  {
    name: "invept",
    map: 2,
    code: 0x80,
    prefix: 0x66,
    form: "mem",
    modrm: true,
    size: "f64",
    op: VMXI_INVEPT,
    exec: vmxInsn,
  },
  {
    name: "invvpid",
    map: 2,
    code: 0x81,
    prefix: 0x66,
    form: "mem",
    modrm: true,
    size: "f64",
    op: VMXI_INVVPID,
    exec: vmxInsn,
  },
];
