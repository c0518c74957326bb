import { Cpu, STOP_HALT } from "../../src/cpu/cpu.js";
import type { CpuModel } from "../../src/cpu/cpuid.js";
import { enterLongMode } from "../../src/machine/longmode.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { asm } from "./asm.js";

export const CODE_BASE = 0x100000;
export const STACK_TOP = 0x80000;
export const DATA_BASE = 0x200000;

/** A CPU in 64-bit mode over 8 MiB of identity-mapped RAM, ready to run test code. */
export function makeCpu64(memBytes = 8 * 1024 * 1024, model?: CpuModel): Cpu {
  const mem = new PhysicalMemory(memBytes);
  const cpu = new Cpu(mem, model);
  enterLongMode(cpu);
  cpu.lo[4] = STACK_TOP;
  return cpu;
}

/**
 * Assemble `source` (Intel syntax, 64-bit), append HLT, load it at CODE_BASE and run until HLT.
 * Returns the CPU for inspection. Throws if it does not halt within `budget` instructions.
 */
export function run64(source: string, setup?: (c: Cpu) => void, budget = 1_000_000): Cpu {
  const cpu = makeCpu64();
  const code = asm(`${source}\nhlt\n`, 64);
  cpu.mem.writeBytes(CODE_BASE, code);
  cpu.ripLo = CODE_BASE;
  cpu.ripHi = 0;
  setup?.(cpu);
  const stop = cpu.run(budget);
  if (stop !== STOP_HALT)
    throw new Error(`test code did not halt (stop ${stop}, rip ${(cpu.ripLo >>> 0).toString(16)})`);
  return cpu;
}

/** A 64-bit register as a BigInt (tests only; the emulator itself never uses BigInt). */
export function reg(cpu: Cpu, r: number): bigint {
  return (BigInt(cpu.hi[r] >>> 0) << 32n) | BigInt(cpu.lo[r] >>> 0);
}

export function setReg(cpu: Cpu, r: number, v: bigint): void {
  const u = BigInt.asUintN(64, v);
  cpu.lo[r] = Number(u & 0xffffffffn) | 0;
  cpu.hi[r] = Number(u >> 32n) | 0;
}
