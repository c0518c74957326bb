import { ARITH, CF } from "../x86/flags.js";
import { LF_ADC, LF_ADD, LF_DEC, LF_INC, LF_NONE, LF_RES, LF_SBB, LF_SUB, PARITY } from "./flags.js";

/**
 * The status flags computed from what the last flag-writing instruction recorded (flags.ts has
 * the kinds). The record lives on the CPU, where the interpreter and compiled blocks write it
 * (`Cpu.setLazy` / `setLazyRes`, field stores kept in cpu.ts because every ALU op makes them);
 * reading it back, which Jcc/SETcc/PUSHF and friends do far less often, is here.
 */
export interface LazyFlagRecord {
  /** Non-status bits always; the status bits too when lfOp is LF_NONE. */
  flagsBase: number;
  lfOp: number;
  lfSize: number;
  lfResLo: number;
  lfResHi: number;
  lfDstLo: number;
  lfDstHi: number;
  lfSrcLo: number;
  lfSrcHi: number;
  lfAux: number;
}

/** The sign bit of a value at the record's operand size. */
function signOf(f: LazyFlagRecord, lo: number, hi: number): number {
  switch (f.lfSize) {
    case 1:
      return (lo >> 7) & 1;
    case 2:
      return (lo >> 15) & 1;
    case 4:
      return lo >>> 31;
    default:
      return hi >>> 31;
  }
}

/** Unsigned a < b at the record's operand size. */
function ult(f: LazyFlagRecord, aLo: number, aHi: number, bLo: number, bHi: number): boolean {
  if (f.lfSize === 8 && aHi !== bHi) return aHi >>> 0 < bHi >>> 0;
  return aLo >>> 0 < bLo >>> 0;
}

/** CF of ADC/SBB: a <u b, or a = b with the carry (borrow) in that aux records. */
function carryWithIn(f: LazyFlagRecord, aLo: number, aHi: number, bLo: number, bHi: number): number {
  return ult(f, aLo, aHi, bLo, bHi) || (f.lfAux !== 0 && aLo === bLo && aHi === bHi) ? 1 : 0;
}

export function lazyCF(f: LazyFlagRecord): number {
  switch (f.lfOp) {
    case LF_NONE:
      return f.flagsBase & CF;
    case LF_ADD:
      return ult(f, f.lfResLo, f.lfResHi, f.lfDstLo, f.lfDstHi) ? 1 : 0;
    case LF_ADC: // result < dst, or equal with a carry in
      return carryWithIn(f, f.lfResLo, f.lfResHi, f.lfDstLo, f.lfDstHi);
    case LF_SUB:
      return ult(f, f.lfDstLo, f.lfDstHi, f.lfSrcLo, f.lfSrcHi) ? 1 : 0;
    case LF_SBB: // dst < src, or equal with a borrow in
      return carryWithIn(f, f.lfDstLo, f.lfDstHi, f.lfSrcLo, f.lfSrcHi);
    case LF_INC:
    case LF_DEC:
      return f.lfAux & 1;
    default:
      return f.lfAux & CF;
  }
}

export function lazyZF(f: LazyFlagRecord): number {
  if (f.lfOp === LF_NONE) return (f.flagsBase >> 6) & 1;
  if (f.lfSize === 8) return (f.lfResLo | f.lfResHi) === 0 ? 1 : 0;
  return f.lfResLo === 0 ? 1 : 0;
}

export function lazySF(f: LazyFlagRecord): number {
  if (f.lfOp === LF_NONE) return (f.flagsBase >> 7) & 1;
  return signOf(f, f.lfResLo, f.lfResHi);
}

export function lazyPF(f: LazyFlagRecord): number {
  if (f.lfOp === LF_NONE) return (f.flagsBase >> 2) & 1;
  return PARITY[f.lfResLo & 0xff] >> 2;
}

export function lazyAF(f: LazyFlagRecord): number {
  switch (f.lfOp) {
    case LF_NONE:
      return (f.flagsBase >> 4) & 1;
    case LF_RES:
      return (f.lfAux >> 4) & 1;
    default:
      return ((f.lfResLo ^ f.lfDstLo ^ f.lfSrcLo) >> 4) & 1;
  }
}

export function lazyOF(f: LazyFlagRecord): number {
  switch (f.lfOp) {
    case LF_NONE:
      return (f.flagsBase >> 11) & 1;
    case LF_ADD:
    case LF_ADC:
    case LF_INC:
      return signOf(
        f,
        (f.lfDstLo ^ f.lfResLo) & (f.lfSrcLo ^ f.lfResLo),
        (f.lfDstHi ^ f.lfResHi) & (f.lfSrcHi ^ f.lfResHi),
      );
    case LF_SUB:
    case LF_SBB:
    case LF_DEC:
      return signOf(
        f,
        (f.lfDstLo ^ f.lfSrcLo) & (f.lfDstLo ^ f.lfResLo),
        (f.lfDstHi ^ f.lfSrcHi) & (f.lfDstHi ^ f.lfResHi),
      );
    default:
      return (f.lfAux >> 11) & 1;
  }
}

/** The full RFLAGS value (low 32 bits; the high half is reserved zero). */
export function lazyFlags(f: LazyFlagRecord): number {
  if (f.lfOp === LF_NONE) return f.flagsBase;
  return (
    (f.flagsBase & ~ARITH) |
    lazyCF(f) |
    (lazyPF(f) << 2) |
    (lazyAF(f) << 4) |
    (lazyZF(f) << 6) |
    (lazySF(f) << 7) |
    (lazyOF(f) << 11)
  );
}
