import { Cpu, STOP_HALT } from "../cpu/cpu.js";
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
  /** Final RAX, so a broken interpreter shows up as a different checksum. */
  checksumLo: number;
  checksumHi: number;
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let k = 0; k < out.length; k++) out[k] = Number.parseInt(hex.substr(k * 2, 2), 16);
  return out;
}

/** Run the loop `iterations` times (the count is patched into the first instruction's imm32). */
export function runCpuBench(iterations = 3_000_000): CpuBenchResult {
  const mem = new PhysicalMemory(16 * 1024 * 1024);
  const cpu = new Cpu(mem);
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
    checksumLo: cpu.lo[0] >>> 0,
    checksumHi: cpu.hi[0] >>> 0,
  };
}
