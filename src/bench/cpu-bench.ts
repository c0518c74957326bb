import { Cpu, STOP_HALT } from "../cpu/cpu.js";
import { type JitOptions, jitOptions } from "../cpu/jit/options.js";
import { enterLongMode } from "../machine/longmode.js";
import { PhysicalMemory } from "../mmu/phys.js";

/**
 * A tight integer loop (hand-assembled x86-64; source in the comment) for `nestlab bench cpu`.
 *
 *   mov ecx, ITER ; xor eax, eax ; mov rbx, 0x123456789 ; mov edi, 0x300000 (a data page)
 * 1: add rax, rbx ; xor rbx, rax ; mov rdx, rax ; and edx, 0x3f8 ; mov [rdi+rdx], rbx
 *    add rbx, [rdi+rdx+8] ; sub rax, 7 ; cmp rax, rbx ; jae 2f ; inc rax
 * 2: dec ecx ; jnz 1b ; hlt
 */
const LOOP_CODE =
  "b940420f0031c048bb8967452301000000bf000030004801d84831c34889c281e2f803000048891c1748035c17084883e8074839d8730348ffc0ffc975d8f4";

export interface CpuBenchResult {
  benchmark: string;
  iterations: number;
  instructions: number;
  seconds: number;
  mips: number;
  /** Simulated cycles and data-TLB accesses: the same with the compiler on or off. */
  cycles: number;
  dataAccesses: number;
  /** Final RAX, so a broken interpreter shows up as a different checksum. */
  checksumLo: number;
  checksumHi: number;
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let k = 0; k < out.length; k++) out[k] = Number.parseInt(hex.substr(k * 2, 2), 16);
  return out;
}

/**
 * Run the loop `iterations` times (the count is patched into the first instruction's imm32),
 * with the block compiler as `jit` says (default: jitDefaults).
 */
export function runCpuBench(iterations = 3_000_000, jit?: Partial<JitOptions>): CpuBenchResult {
  const mem = new PhysicalMemory(16 * 1024 * 1024);
  const cpu = new Cpu(mem);
  if (jit !== undefined) cpu.setJit(jitOptions(jit));
  enterLongMode(cpu);
  const code = hexBytes(LOOP_CODE);
  new DataView(code.buffer).setUint32(1, iterations, true);
  const base = 0x100000;
  mem.writeBytes(base, code);
  cpu.ripLo = base;
  cpu.ripHi = 0;
  cpu.lo[4] = 0x200000;
  const t0 = process.hrtime.bigint();
  let stop = 0;
  while (stop !== STOP_HALT) stop = cpu.run(10_000_000);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    benchmark: "integer-loop",
    iterations,
    instructions: cpu.icount,
    seconds,
    mips: cpu.icount / seconds / 1e6,
    cycles: cpu.cycles(),
    dataAccesses: cpu.dAccesses[0],
    checksumLo: cpu.lo[0] >>> 0,
    checksumHi: cpu.hi[0] >>> 0,
  };
}

export interface CpuBenchComparison {
  benchmark: string;
  iterations: number;
  instructions: number;
  /** Best-of-runs MIPS with the block compiler, and every run's figure. */
  jit: { mips: number; runs: number[] };
  /** Best-of-runs MIPS of the interpreter alone (`--no-jit`). */
  interpreter: { mips: number; runs: number[] };
  /** jit.mips / interpreter.mips. */
  ratio: number;
  /** Instructions, cycles, data accesses and checksum equal in every run, both ways. */
  identical: boolean;
}

/**
 * The same guest with and without the compiler in one sitting, runs interleaved (off, on, off,
 * on…) so that the machine's noise hits both alike; best of `runs` each.
 */
export function compareCpuBench(iterations: number, runs: number, threshold?: number): CpuBenchComparison {
  const off: CpuBenchResult[] = [];
  const on: CpuBenchResult[] = [];
  for (let k = 0; k < runs; k++) {
    off.push(runCpuBench(iterations, { enabled: false }));
    on.push(runCpuBench(iterations, threshold === undefined ? { enabled: true } : { enabled: true, threshold }));
  }
  const best = (rs: CpuBenchResult[]) => Math.max(...rs.map((r) => r.mips));
  const ref = off[0];
  const identical = [...off, ...on].every(
    (r) =>
      r.instructions === ref.instructions &&
      r.cycles === ref.cycles &&
      r.dataAccesses === ref.dataAccesses &&
      r.checksumLo === ref.checksumLo &&
      r.checksumHi === ref.checksumHi,
  );
  const round = (x: number) => Number(x.toFixed(2));
  return {
    benchmark: ref.benchmark,
    iterations,
    instructions: ref.instructions,
    jit: { mips: round(best(on)), runs: on.map((r) => round(r.mips)) },
    interpreter: { mips: round(best(off)), runs: off.map((r) => round(r.mips)) },
    ratio: round(best(on) / best(off)),
    identical,
  };
}
