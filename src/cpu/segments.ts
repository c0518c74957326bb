/**
 * Segment descriptors and segment-register loads in protected and IA-32e mode (SDM vol. 3,
 * chapters 3 and 5). Scope: GDT descriptors only (an LDT selector raises the fault the caller
 * names), no call/task gates, no task switches, no 16-bit TSS. Descriptor "accessed" bits are
 * not written back. Segment bases other than FS/GS are assumed flat (0) by the rest of the core.
 */

import { isCanonical } from "../x86/canonical.js";
import { GP, NP, SS_, TS } from "../x86/exceptions.js";
import type { Cpu } from "./cpu.js";
import { lma } from "./ops/system-common.js";

export { AR_CODE, AR_CONFORMING, AR_DB, AR_G, AR_L, AR_P, AR_RW, AR_S, AR_UNUSABLE } from "../x86/segment-ar.js";

import { AR_CODE, AR_CONFORMING, AR_DB, AR_G, AR_L, AR_P, AR_RW, AR_S, AR_UNUSABLE } from "../x86/segment-ar.js";

/** AR values of the fixed segments SYSCALL/SYSRET/SYSENTER load (SDM vol. 2, SYSCALL/SYSRET). */
export const AR_CODE64_KERNEL = 0xa09b; // G, L, P, DPL 0, S, execute/read accessed
export const AR_CODE64_USER = 0xa0fb;
export const AR_CODE32_KERNEL = 0xc09b;
export const AR_CODE32_USER = 0xc0fb;
export const AR_DATA_KERNEL = 0xc093; // G, B, P, DPL 0, S, read/write accessed
export const AR_DATA_USER = 0xc0f3;

/** A descriptor read from the GDT, decoded. */
export interface Descriptor {
  baseLo: number;
  baseHi: number;
  limit: number;
  ar: number;
}

const scratch: Descriptor = { baseLo: 0, baseHi: 0, limit: 0, ar: 0 };
/** The code descriptor a far transfer validated (checkFarCode / checkReturnCode). */
export const farCode: Descriptor = { baseLo: 0, baseHi: 0, limit: 0, ar: 0 };
/** The stack descriptor a return to an outer level validated (checkReturnStack). */
export const farStack: Descriptor = { baseLo: 0, baseHi: 0, limit: 0, ar: 0 };

/**
 * Read the descriptor for `sel` from the GDT (LDT selectors are not supported: fault).
 * `vector`/`wide` say which fault a bad selector raises and whether it is a 16-byte system descriptor.
 * Fills `out` (default: a shared scratch object; no allocation) and returns it.
 */
export function readDescriptor(
  c: Cpu,
  sel: number,
  vector: number,
  wide: boolean,
  out: Descriptor = scratch,
): Descriptor {
  if ((sel & 4) !== 0) c.raise(vector, sel & 0xfffc); // LDT descriptors are out of scope
  const off = sel & 0xfff8;
  if (off + (wide ? 15 : 7) > c.gdtrLimit) c.raise(vector, sel & 0xfffc);
  const a = (c.gdtrBaseLo + off) | 0;
  const d0 = c.readSys(a, c.gdtrBaseHi, 4);
  const d1 = c.readSys((a + 4) | 0, c.gdtrBaseHi, 4);
  out.ar = ((d1 >>> 8) & 0xff) | (((d1 >>> 20) & 0xf) << 12);
  let limit = (d0 & 0xffff) | (d1 & 0xf0000);
  if ((out.ar & AR_G) !== 0) limit = ((limit << 12) | 0xfff) >>> 0;
  out.limit = limit >>> 0;
  out.baseLo = (d0 >>> 16) | ((d1 & 0xff) << 16) | (d1 & 0xff000000) | 0;
  out.baseHi = wide ? c.readSys((a + 8) | 0, c.gdtrBaseHi, 4) : 0;
  return out;
}

/** Load a segment register's hidden state directly (loaders, SYSCALL/SYSRET, VM entry). */
export function setSegment(
  c: Cpu,
  seg: number,
  sel: number,
  baseLo: number,
  baseHi: number,
  limit: number,
  ar: number,
): void {
  c.segSel[seg] = sel & 0xffff;
  c.segBaseLo[seg] = baseLo;
  c.segBaseHi[seg] = baseHi;
  c.segLimit[seg] = limit >>> 0;
  c.segAr[seg] = ar;
}

/** Load a null selector: the segment becomes unusable with base 0 (Intel behaviour, also for FS/GS). */
export function nullSegment(c: Cpu, seg: number, sel: number): void {
  setSegment(c, seg, sel & 3, 0, 0, 0, AR_UNUSABLE);
}

/**
 * MOV/POP to a data segment register or SS in protected/long mode (SDM vol. 3, 5.5-5.7 and
 * vol. 2 MOV "Operation"). A null selector is allowed for data segments (and for SS in 64-bit
 * mode at CPL < 3 with RPL = CPL). Everything is checked before anything is written.
 */
export function loadDataSegment(c: Cpu, seg: number, sel: number): void {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) {
    if (seg === 2 && (!c.mode64 || c.cpl === 3 || (sel & 3) !== c.cpl)) c.raise(GP, 0);
    nullSegment(c, seg, sel);
    return;
  }
  const d = readDescriptor(c, sel, GP, false);
  const rpl = sel & 3;
  const dpl = (d.ar >> 5) & 3;
  if ((d.ar & AR_S) === 0) c.raise(GP, sel & 0xfffc);
  if (seg === 2) {
    // SS: writable data segment with RPL = DPL = CPL; not present is #SS.
    if ((d.ar & AR_CODE) !== 0 || (d.ar & AR_RW) === 0 || rpl !== c.cpl || dpl !== c.cpl) c.raise(GP, sel & 0xfffc);
    if ((d.ar & AR_P) === 0) c.raise(SS_, sel & 0xfffc);
  } else {
    // Data or readable code; unless conforming code, DPL >= max(CPL, RPL).
    const code = (d.ar & AR_CODE) !== 0;
    if (code && (d.ar & AR_RW) === 0) c.raise(GP, sel & 0xfffc);
    if ((!code || (d.ar & AR_CONFORMING) === 0) && (rpl > dpl || c.cpl > dpl)) c.raise(GP, sel & 0xfffc);
    if ((d.ar & AR_P) === 0) c.raise(NP, sel & 0xfffc);
  }
  setSegment(c, seg, sel, d.baseLo, 0, d.limit, d.ar);
}

/**
 * Validate the target of a far JMP/CALL to a code segment (SDM vol. 2, JMP/CALL "protected mode",
 * direct code-segment branches only; call gates/TSS/task gates raise #GP(selector)). Fills
 * `farCode`. The new CPL is the current CPL.
 */
export function checkFarCode(c: Cpu, sel: number): void {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) c.raise(GP, 0);
  const d = readDescriptor(c, sel, GP, false, farCode);
  const err = sel & 0xfffc;
  if ((d.ar & AR_S) === 0 || (d.ar & AR_CODE) === 0) c.raise(GP, err);
  const dpl = (d.ar >> 5) & 3;
  if ((d.ar & AR_CONFORMING) !== 0) {
    if (dpl > c.cpl) c.raise(GP, err);
  } else if ((sel & 3) > c.cpl || dpl !== c.cpl) c.raise(GP, err);
  if ((d.ar & AR_P) === 0) c.raise(NP, err);
  if (lma(c) && (d.ar & AR_L) !== 0 && (d.ar & AR_DB) !== 0) c.raise(GP, err);
}

/**
 * Validate the CS popped by a far RET or IRET (SDM vol. 2, RET/IRET "protected mode"). Fills
 * `farCode`. The new CPL is the selector's RPL.
 */
export function checkReturnCode(c: Cpu, sel: number): void {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) c.raise(GP, 0);
  const d = readDescriptor(c, sel, GP, false, farCode);
  const err = sel & 0xfffc;
  const rpl = sel & 3;
  if ((d.ar & AR_S) === 0 || (d.ar & AR_CODE) === 0) c.raise(GP, err);
  if (rpl < c.cpl) c.raise(GP, err);
  const dpl = (d.ar >> 5) & 3;
  if ((d.ar & AR_CONFORMING) !== 0 ? dpl > rpl : dpl !== rpl) c.raise(GP, err);
  if ((d.ar & AR_P) === 0) c.raise(NP, err);
  if (lma(c) && (d.ar & AR_L) !== 0 && (d.ar & AR_DB) !== 0) c.raise(GP, err);
}

/**
 * Validate the SS popped by a far RET/IRET that changes privilege, or by a 64-bit IRET
 * (SDM vol. 2, IRET). Returns false for an acceptable null selector (64-bit target at CPL < 3),
 * true when `farStack` holds the descriptor to load.
 */
export function checkReturnStack(c: Cpu, sel: number, newCpl: number, target64: boolean): boolean {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) {
    if (!target64 || newCpl === 3 || (sel & 3) !== newCpl) c.raise(GP, 0);
    return false;
  }
  const err = sel & 0xfffc;
  if ((sel & 3) !== newCpl) c.raise(GP, err);
  const d = readDescriptor(c, sel, GP, false, farStack);
  if ((d.ar & AR_S) === 0 || (d.ar & AR_CODE) !== 0 || (d.ar & AR_RW) === 0) c.raise(GP, err);
  if (((d.ar >> 5) & 3) !== newCpl) c.raise(GP, err);
  if ((d.ar & AR_P) === 0) c.raise(SS_, err);
  return true;
}

/** Commit CS from `farCode` with CPL `newCpl` and recompute the mode. */
export function commitCode(c: Cpu, sel: number, newCpl: number): void {
  setSegment(c, 1, (sel & 0xfffc) | newCpl, farCode.baseLo, 0, farCode.limit, farCode.ar);
  c.setCpl(newCpl);
  c.updateMode();
}

/**
 * After a return to an outer privilege level, null ES/DS/FS/GS whose descriptors the new CPL
 * may not use (data or non-conforming code with DPL < CPL; SDM vol. 2, RET/IRET). Unusable
 * (already null) segments are left alone, so an FS/GS base set through the MSRs survives.
 */
export function nullInaccessibleSegments(c: Cpu, newCpl: number): void {
  for (let s = 0; s < 6; s++) {
    if (s === 1 || s === 2) continue;
    const ar = c.segAr[s];
    if ((ar & AR_UNUSABLE) !== 0) continue;
    const conformingCode = (ar & AR_CODE) !== 0 && (ar & AR_CONFORMING) !== 0;
    if (!conformingCode && ((ar >> 5) & 3) < newCpl) nullSegment(c, s, 0);
  }
}

/**
 * Load CS for a far transfer to `sel` at privilege `newCpl` without privilege checks (loaders and
 * tests; instructions use checkFarCode/checkReturnCode + commitCode). Updates the mode.
 */
export function loadCodeSegment(c: Cpu, sel: number, newCpl: number): void {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) c.raise(GP, 0);
  const d = readDescriptor(c, sel, GP, false, farCode);
  if ((d.ar & AR_S) === 0 || (d.ar & AR_CODE) === 0) c.raise(GP, sel & 0xfffc);
  if ((d.ar & AR_P) === 0) c.raise(NP, sel & 0xfffc);
  commitCode(c, sel, newCpl);
}

/**
 * LTR (SDM vol. 2, LTR): load the task register from an available TSS descriptor: a 16-byte
 * 64-bit TSS (type 9) in IA-32e mode, a 32-bit TSS (type 9) otherwise; the descriptor is
 * marked busy.
 */
export function loadTaskRegister(c: Cpu, sel: number): void {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) c.raise(GP, 0);
  const wide = lma(c);
  const d = readDescriptor(c, sel, GP, wide);
  const type = d.ar & 0xf;
  if ((d.ar & AR_S) !== 0 || type !== 9) c.raise(GP, sel & 0xfffc);
  if ((d.ar & AR_P) === 0) c.raise(NP, sel & 0xfffc);
  if (wide) {
    // The 64-bit base must be canonical (SDM vol. 2, LTR: #GP(selector)).
    if (!isCanonical(d.baseHi)) c.raise(GP, sel & 0xfffc);
  }
  c.trSel = sel;
  c.trBaseLo = d.baseLo;
  c.trBaseHi = d.baseHi;
  c.trLimit = d.limit;
  c.trAr = d.ar | 2; // busy: type 0xB
  const a = (c.gdtrBaseLo + (sel & 0xfff8) + 5) | 0;
  c.writeSys(a, c.gdtrBaseHi, 1, c.readSys(a, c.gdtrBaseHi, 1) | 2);
}

/**
 * LLDT (SDM vol. 2, LLDT): a null selector makes LDTR unusable; otherwise the GDT entry must be
 * a present LDT descriptor (type 2; 16 bytes in IA-32e mode). Nothing else uses the LDT here.
 */
export function loadLdtr(c: Cpu, sel: number): void {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) {
    c.ldtrSel = sel;
    c.ldtrBaseLo = 0;
    c.ldtrBaseHi = 0;
    c.ldtrLimit = 0;
    return;
  }
  const wide = lma(c);
  const d = readDescriptor(c, sel, GP, wide);
  if ((d.ar & AR_S) !== 0 || (d.ar & 0xf) !== 2) c.raise(GP, sel & 0xfffc);
  if ((d.ar & AR_P) === 0) c.raise(NP, sel & 0xfffc);
  // In IA-32e mode the 16-byte descriptor's base must be canonical, as LTR's (KVM's
  // __load_segment_descriptor checks LDT and TSS bases alike: #GP(selector)).
  if (wide && !isCanonical(d.baseHi)) c.raise(GP, sel & 0xfffc);
  c.ldtrSel = sel;
  c.ldtrBaseLo = d.baseLo;
  c.ldtrBaseHi = d.baseHi;
  c.ldtrLimit = d.limit;
}

/** Raise #TS for a bad TSS stack pointer fetch. */
export function tssFault(c: Cpu): never {
  return c.raise(TS, c.trSel & 0xfffc);
}
