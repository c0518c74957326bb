/**
 * The block compiler changes no simulated result: every bundled workload on every stack, run
 * interpreted (`--no-jit`) and compiled (threshold 2 and no warm-up, so nearly all repeated code
 * is compiled), gives the same `run --json` document — results, instructions, cycles, every
 * counter (exits, TLB, walks, devices) and the ledger — wall time aside.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runJson, WORKLOADS, workloadCmdline } from "../../src/cli/run.js";
import { bundledKernelPath } from "../../src/paths.js";
import { COMPARE_DEFAULT_STACKS, STACKS } from "../../src/stacks/index.js";
import type { StackRunResult } from "../../src/stacks/stack.js";

const kernel = new Uint8Array(readFileSync(bundledKernelPath()));
/** About a tenth of each workload's default iterations: enough for every hot path to compile. */
const ITERS: Record<string, number> = {
  syscall: 500,
  pagefault: 200,
  fork: 20,
  ctxsw: 100,
  exec: 20,
  cpuid: 200,
  msr: 200,
  wrmsr: 200,
  exception: 200,
  pio: 200,
  io: 8,
  tlb: 2000,
  compute: 2,
};

function run(stack: string, workload: string, jit: boolean): StackRunResult {
  const s = STACKS.get(stack);
  if (s === undefined) throw new Error(`no stack ${stack}`);
  return s.run({
    image: kernel,
    cmdline: workloadCmdline(workload, ITERS[workload]),
    memory: 256 * 1024 * 1024,
    maxInstructions: 200_000_000,
    jit: jit ? { enabled: true, threshold: 2, warmup: 0 } : { enabled: false },
  });
}

describe("block compiler: every workload on every stack gives identical JSON with and without it", () => {
  // The stacks every workload passes on with the bundled images (compare's default).
  for (const stack of COMPARE_DEFAULT_STACKS) {
    for (const w of WORKLOADS.filter((x) => x !== "all")) {
      if (ITERS[w] === undefined) throw new Error(`jit-identity: no iteration count for workload ${w}`);
      it(`${stack}: ${w}`, () => {
        const off = run(stack, w, false);
        const on = run(stack, w, true);
        expect(off.exitStatus).toBe(1);
        const json = (r: StackRunResult) => ({ ...runJson(r, ""), wallSeconds: 0 });
        expect(json(on)).toEqual(json(off));
        expect(on.serial).toBe(off.serial);
      });
    }
  }
});
