/**
 * Checks and address arithmetic the system-instruction families share (cr-dr.ts, descriptors.ts,
 * far.ts, interrupt-insns.ts, msr-cpuid.ts, port-io.ts, cache-tlb.ts, fast-syscall.ts).
 * Privileged instructions raise #GP(0) at CPL > 0, and everything that can fault is checked
 * before architectural state changes (faults are precise).
 */
import { EFER_LMA } from "../../x86/control.js";
import { GP } from "../../x86/exceptions.js";
import type { Cpu } from "../cpu.js";

/** #GP(0) unless CPL = 0. */
export function priv(c: Cpu): void {
  if (c.cpl !== 0) c.raise(GP, 0);
}

/** RFLAGS.IOPL. */
export function iopl(c: Cpu): number {
  return (c.flagsBase >> 12) & 3;
}

/** IA-32e mode (EFER.LMA). */
export function lma(c: Cpu): boolean {
  return (c.efer & EFER_LMA) !== 0;
}

/** High half of the address `lo + n` computed by addr() (0 outside 64-bit mode). */
let aHi = 0;

/** The address lo:hi + n: returns the low half; addrHi() gives the high half. */
export function addr(c: Cpu, lo: number, hi: number, n: number): number {
  const r = (lo + n) | 0;
  aHi = c.mode64 ? (r >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi) : 0;
  return r;
}

/** High half of the last addr() result. */
export function addrHi(): number {
  return aHi;
}
