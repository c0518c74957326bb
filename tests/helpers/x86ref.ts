/** BigInt reference helpers for CPU tests (tests only: the emulator never uses BigInt). */
import type { Cpu } from "../../src/cpu/cpu.js";
import { reg, run64, setReg } from "./machine.js";

export { AF, CF, DF, OF, PF, SF, ZF } from "../../src/x86/flags.js";
// Register numbers and flag bits come from the architectural facts in src/x86.
export {
  R8,
  R9,
  R10,
  R11,
  R12,
  R13,
  R14,
  R15,
  RAX,
  RBP,
  RBX,
  RCX,
  RDI,
  RDX,
  RSI,
  RSP,
} from "../../src/x86/registers.js";

import { AF, CF, OF, PF, SF, ZF } from "../../src/x86/flags.js";

export const STATUS = CF | PF | AF | ZF | SF | OF;

export function mask(bits: number): bigint {
  return (1n << BigInt(bits)) - 1n;
}

/** Interpret the low `bits` of v as signed. */
export function sx(v: bigint, bits: number): bigint {
  return BigInt.asIntN(bits, v);
}

export function zx(v: bigint, bits: number): bigint {
  return BigInt.asUintN(bits, v);
}

/** PF bit for a result (even parity of the low byte). */
export function pf(v: bigint): number {
  let b = Number(v & 0xffn);
  let n = 0;
  while (b) {
    n += b & 1;
    b >>= 1;
  }
  return n % 2 === 0 ? PF : 0;
}

/** ZF|SF|PF for a result of `bits`. */
export function szp(v: bigint, bits: number): number {
  const u = zx(v, bits);
  return (u === 0n ? ZF : 0) | ((u >> BigInt(bits - 1)) & 1n ? SF : 0) | pf(u);
}

/**
 * Run `src` (Intel syntax; HLT is appended) with registers preset, and optionally RFLAGS.
 * regs maps register number to a 64-bit value.
 */
export function runRegs(src: string, regs: Record<number, bigint>, flags?: number, extra?: (c: Cpu) => void): Cpu {
  return run64(src, (c) => {
    for (const [r, v] of Object.entries(regs)) setReg(c, Number(r), v);
    if (flags !== undefined) c.setFlags(flags | 2);
    extra?.(c);
  });
}

export { reg, setReg };

/** A deterministic xorshift PRNG producing interesting 64-bit values. */
export class Rng {
  private s: bigint;
  constructor(seed = 0x9e3779b97f4a7c15n) {
    this.s = seed;
  }
  next(): bigint {
    let x = this.s;
    x ^= (x << 13n) & mask(64);
    x ^= x >> 7n;
    x ^= (x << 17n) & mask(64);
    this.s = x & mask(64);
    return this.s;
  }
  /** Random 64-bit values biased towards edge cases. */
  value(): bigint {
    const pick = Number(this.next() % 10n);
    const r = this.next();
    switch (pick) {
      case 0:
        return [0n, 1n, mask(64), 1n << 63n, mask(63), mask(32), 1n << 31n, 0x80n, 0x7fn, 0xffn, 0x8000n][
          Number(r % 11n)
        ];
      case 1:
        return r & 0xffn;
      case 2:
        return r & 0xffffn;
      case 3:
        return r & mask(32);
      case 4:
        return zx(-(r & 0xffffn), 64);
      default:
        return r;
    }
  }
}
