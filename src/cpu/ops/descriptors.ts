/**
 * Descriptor tables and descriptor probes: LGDT/LIDT, SGDT/SIDT, LLDT/LTR, SLDT/STR, LAR, LSL,
 * VERR/VERW (SDM vol. 2 for each). Not modelled: LDT-based selectors (the LDT can be loaded but
 * descriptors are read from the GDT only).
 */
import { ACC_USER, ACC_WRITE } from "../../mmu/walker.js";
import { isCanonical as canonical } from "../../x86/canonical.js";
import { GP } from "../../x86/exceptions.js";
import { ZF } from "../../x86/flags.js";
import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";
import {
  AR_CODE,
  AR_CONFORMING,
  AR_RW,
  AR_S,
  type Descriptor,
  loadLdtr,
  loadTaskRegister,
  readDescriptor,
} from "../segments.js";
import { addr, addrHi, lma, priv } from "./system-common.js";

/** Check that the last byte of a `len`-byte store at lo:hi is writable (multi-part stores stay precise). */
function probeWrite(c: Cpu, lo: number, hi: number, len: number): void {
  const e = addr(c, lo, hi, len - 1);
  c.translate(e, addrHi(), ACC_WRITE | (c.cpl === 3 ? ACC_USER : 0));
}

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
    baseLo = c.read64(b, addrHi());
    baseHi = c.vHi;
    // A non-canonical base is #GP(0), as for LTR (SDM vol. 2 LGDT/LIDT, 64-bit mode exceptions;
    // KVM's em_lgdt_lidt makes the same check).
    if (!canonical(baseHi)) c.raise(GP, 0);
  } else {
    baseLo = c.read32(b, addrHi());
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
  if (c.mode64) c.write64(b, addrHi(), baseLo, baseHi);
  else c.write32(b, addrHi(), baseLo);
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

export const DESCRIPTOR_OPS: readonly OpDef[] = [
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
];
