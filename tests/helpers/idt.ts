import type { Cpu } from "../../src/cpu/cpu.js";
import { hasErrorCode } from "../../src/x86/exceptions.js";
import { run64 } from "./machine.js";

/** Where installTrapIdt puts the IDT and its handler stubs (below the test stack, above page tables). */
export const IDT_BASE = 0x10000;
export const STUB_BASE = 0x11000;
const STUB_STRIDE = 16;

/**
 * Install a 64-bit IDT whose 32 exception vectors point to stubs that just HLT. After a fault
 * the run stops with RIP just past stub `vector`; `trapInfo` decodes that and the frame.
 */
export function installTrapIdt(c: Cpu): void {
  for (let v = 0; v < 32; v++) {
    const off = STUB_BASE + v * STUB_STRIDE;
    c.mem.write8(off, 0xf4); // HLT
    const w0 = (off & 0xffff) | (0x08 << 16);
    const w1 = (off & 0xffff0000) | 0x8e00; // present, DPL 0, 64-bit interrupt gate
    c.mem.write64(IDT_BASE + v * 16, w0 | 0, w1 | 0);
    c.mem.write64(IDT_BASE + v * 16 + 8, 0, 0);
  }
  c.idtrBaseLo = IDT_BASE;
  c.idtrBaseHi = 0;
  c.idtrLimit = 32 * 16 - 1;
}

export interface TrapInfo {
  /** Exception vector, or -1 when the code halted normally. */
  vector: number;
  /** Error code pushed, or -1. */
  errorCode: number;
  /** RIP saved in the exception frame (the faulting instruction). */
  rip: number;
  /** RFLAGS saved in the frame. */
  rflags: number;
}

/** Decode where a run that used installTrapIdt stopped. */
export function trapInfo(c: Cpu): TrapInfo {
  const rip = c.ripLo >>> 0;
  if (rip <= STUB_BASE || rip > STUB_BASE + 32 * STUB_STRIDE) return { vector: -1, errorCode: -1, rip, rflags: 0 };
  const vector = (rip - 1 - STUB_BASE) / STUB_STRIDE;
  let sp = c.lo[4] >>> 0;
  let errorCode = -1;
  if (hasErrorCode(vector)) {
    errorCode = c.mem.read(sp, 4);
    sp += 8;
  }
  return { vector, errorCode, rip: c.mem.read(sp, 4) >>> 0, rflags: c.mem.read(sp + 16, 4) >>> 0 };
}

/**
 * Like run64, with the trap IDT installed: assemble `source` + HLT at CODE_BASE, run until HLT
 * (normal end or a fault's stub) and return the CPU and the trap information.
 */
export function runTrap(source: string, setup?: (c: Cpu) => void, budget = 1_000_000): { cpu: Cpu; trap: TrapInfo } {
  const cpu = run64(
    source,
    (c) => {
      installTrapIdt(c);
      setup?.(c);
    },
    budget,
  );
  return { cpu, trap: trapInfo(cpu) };
}
