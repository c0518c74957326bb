import { GP, NP, SS_, TS } from "../x86/exceptions.js";
import type { Cpu } from "./cpu.js";

/** Access-rights bits in VMCS "AR" layout (SDM vol. 3, 24.4.1): type 3:0, S 4, DPL 6:5, P 7, AVL 12, L 13, D/B 14, G 15. */
export const AR_P = 0x80;
export const AR_S = 0x10;
export const AR_CODE = 0x8;
export const AR_L = 0x2000;
export const AR_DB = 0x4000;
export const AR_G = 0x8000;
/** An unusable (null-loaded) segment, as VMX marks it. */
export const AR_UNUSABLE = 0x10000;

/** A descriptor read from the GDT, decoded. */
export interface Descriptor {
  baseLo: number;
  baseHi: number;
  limit: number;
  ar: number;
}

const scratch: Descriptor = { baseLo: 0, baseHi: 0, limit: 0, ar: 0 };

/**
 * Read the descriptor for `sel` from the GDT (LDT selectors are not supported: #GP).
 * `vector`/`wide` say which fault a bad selector raises and whether it is a 16-byte system descriptor.
 * Returns a shared scratch object (no allocation); callers copy what they need.
 */
export function readDescriptor(c: Cpu, sel: number, vector: number, wide: boolean): Descriptor {
  if ((sel & 4) !== 0) c.raise(vector, sel & 0xfffc); // LDT descriptors are out of scope
  const off = sel & 0xfff8;
  if (off + (wide ? 15 : 7) > c.gdtrLimit) c.raise(vector, sel & 0xfffc);
  const a = (c.gdtrBaseLo + off) | 0;
  const d0 = c.readSys(a, c.gdtrBaseHi, 4);
  const d1 = c.readSys((a + 4) | 0, c.gdtrBaseHi, 4);
  scratch.ar = ((d1 >>> 8) & 0xff) | (((d1 >>> 20) & 0xf) << 12);
  let limit = (d0 & 0xffff) | (d1 & 0xf0000);
  if ((scratch.ar & AR_G) !== 0) limit = ((limit << 12) | 0xfff) >>> 0;
  scratch.limit = limit >>> 0;
  scratch.baseLo = ((d0 >>> 16) | ((d1 & 0xff) << 16) | (d1 & 0xff000000)) | 0;
  scratch.baseHi = wide ? c.readSys((a + 8) | 0, c.gdtrBaseHi, 4) : 0;
  return scratch;
}

/** Load a segment register's hidden state directly (loaders, SYSCALL/SYSRET, VM entry). */
export function setSegment(c: Cpu, seg: number, sel: number, baseLo: number, baseHi: number, limit: number, ar: number): void {
  c.segSel[seg] = sel & 0xffff;
  c.segBaseLo[seg] = baseLo;
  c.segBaseHi[seg] = baseHi;
  c.segLimit[seg] = limit >>> 0;
  c.segAr[seg] = ar;
}

/**
 * MOV/POP to a data segment register or SS in protected/long mode (SDM vol. 3, 5.4–5.6,
 * simplified: no conforming-segment subtleties, no LDT). A null selector is allowed for data
 * segments (and for SS in 64-bit mode at CPL < 3).
 */
export function loadDataSegment(c: Cpu, seg: number, sel: number): void {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) {
    if (seg === 2 && (!c.mode64 || c.cpl === 3 || (sel & 3) !== c.cpl)) c.raise(GP, 0);
    setSegment(c, seg, sel, 0, 0, 0, AR_UNUSABLE);
    return;
  }
  const d = readDescriptor(c, sel, GP, false);
  const rpl = sel & 3;
  const dpl = (d.ar >> 5) & 3;
  if ((d.ar & AR_S) === 0) c.raise(GP, sel & 0xfffc);
  if (seg === 2) {
    // SS: writable data segment with RPL = DPL = CPL.
    if ((d.ar & AR_CODE) !== 0 || (d.ar & 2) === 0 || rpl !== c.cpl || dpl !== c.cpl) c.raise(GP, sel & 0xfffc);
    if ((d.ar & AR_P) === 0) c.raise(SS_, sel & 0xfffc);
  } else {
    // Data or readable code.
    if ((d.ar & AR_CODE) !== 0 && (d.ar & 2) === 0) c.raise(GP, sel & 0xfffc);
    if ((d.ar & AR_P) === 0) c.raise(NP, sel & 0xfffc);
  }
  setSegment(c, seg, sel, d.baseLo, 0, d.limit, d.ar);
}

/**
 * Load CS for a far JMP/CALL/RET/IRET to `sel` at privilege `newCpl` (gates and task switches
 * are out of scope: a system descriptor raises #GP). Updates the mode (64-bit when CS.L).
 */
export function loadCodeSegment(c: Cpu, sel: number, newCpl: number): void {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) c.raise(GP, 0);
  const d = readDescriptor(c, sel, GP, false);
  if ((d.ar & AR_S) === 0 || (d.ar & AR_CODE) === 0) c.raise(GP, sel & 0xfffc);
  if ((d.ar & AR_P) === 0) c.raise(NP, sel & 0xfffc);
  setSegment(c, 1, (sel & 0xfffc) | newCpl, d.baseLo, 0, d.limit, d.ar);
  c.setCpl(newCpl);
  c.updateMode();
}

/** LTR: load the task register from a 64-bit (16-byte) or 32-bit available TSS descriptor. */
export function loadTaskRegister(c: Cpu, sel: number): void {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) c.raise(GP, 0);
  const lma = c.mode64 || (c.efer & 0x400) !== 0;
  const d = readDescriptor(c, sel, GP, lma);
  const type = d.ar & 0xf;
  if ((d.ar & AR_S) !== 0 || (type !== 9 && type !== 1)) c.raise(GP, sel & 0xfffc);
  if ((d.ar & AR_P) === 0) c.raise(NP, sel & 0xfffc);
  c.trSel = sel;
  c.trBaseLo = d.baseLo;
  c.trBaseHi = d.baseHi;
  c.trLimit = d.limit;
  c.trAr = (d.ar & ~0xf) | (type | 2); // mark busy
  // Set the busy bit in the GDT descriptor (type 9 → 0xB).
  const a = (c.gdtrBaseLo + (sel & 0xfff8) + 5) | 0;
  c.writeSys(a, c.gdtrBaseHi, 1, c.readSys(a, c.gdtrBaseHi, 1) | 2);
}

/** Raise #TS for a bad TSS stack pointer fetch. */
export function tssFault(c: Cpu): never {
  return c.raise(TS, c.trSel & 0xfffc);
}
