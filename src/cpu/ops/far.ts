/**
 * Far transfers: JMP/CALL far (direct branches to code segments), RET far and IRET (SDM vol. 2
 * for each; vol. 3 6.14.3 for IRET in IA-32e mode). Near control flow is in control.ts.
 * Not modelled: call gates, task switches and task gates, IRET with NT=1 (#GP(0)),
 * virtual-8086 mode.
 */

import { isCanonical as canonical } from "../../x86/canonical.js";
import { GP } from "../../x86/exceptions.js";
import { AC, AF, CF, DF, ID, IF, IOPL, NT, OF, PF, RF, SF, TF, VIF, VIP, VM, ZF } from "../../x86/flags.js";
import * as CH from "../charges.js";
import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import { iretCompleted, iretUnblocksNmi } from "../nmi.js";
import type { OpDef } from "../opdef.js";
import {
  AR_L,
  checkFarCode,
  checkReturnCode,
  checkReturnStack,
  commitCode,
  farCode,
  farStack,
  nullInaccessibleSegments,
  nullSegment,
  setSegment,
} from "../segments.js";
import { addr, addrHi, iopl, lma } from "./system-common.js";

/** RSP += n (stack-address size: 64 in 64-bit mode, else ESP). */
function addRsp(c: Cpu, n: number): void {
  if (n === 0) return;
  const lo = c.lo[4];
  const r = (lo + n) | 0;
  if (c.mode64 && r >>> 0 < lo >>> 0) c.hi[4] = (c.hi[4] + 1) | 0;
  c.lo[4] = r;
}

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
  const sel = c.read16(s, addrHi());
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
    iretCompleted(c);
  } catch (e) {
    c.lo[4] = saveLo;
    c.hi[4] = saveHi;
    throw e;
  }
}

export const FAR_OPS: readonly OpDef[] = [
  { name: "ljmp", map: 0, code: 0xea, modrm: false, size: "v", imm: "ptr", op: 0, mode: "no64", exec: farPtr },
  { name: "lcall", map: 0, code: 0x9a, modrm: false, size: "v", imm: "ptr", op: 1, mode: "no64", exec: farPtr },
  { name: "ljmp", map: 0, code: 0xff, ext: 5, form: "mem", modrm: true, size: "v", op: 0, exec: farMem },
  { name: "lcall", map: 0, code: 0xff, ext: 3, form: "mem", modrm: true, size: "v", op: 1, exec: farMem },
  { name: "lret", map: 0, code: 0xcb, modrm: false, size: "v", exec: retFar },
  { name: "lret", map: 0, code: 0xca, modrm: false, size: "v", imm: "iw", exec: retFar },
  { name: "iret", map: 0, code: 0xcf, modrm: false, size: "v", exec: iret },
];
