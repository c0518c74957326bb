import { readFileSync } from "node:fs";
import { bundledKernelPath } from "../paths.js";
import { getStack } from "../stacks/index.js";
import type { StackRunResult } from "../stacks/stack.js";
import { workloadCmdline } from "./workloads.js";

/** One workload on one stack, with and without the block compiler. */
export interface WorkloadBenchRow {
  stack: string;
  workload: string;
  instructions: number;
  /**
   * Best-of-runs MIPS: guest instructions per CPU second (user + system, this process's threads,
   * V8's compiler threads included) of the whole stack run, machine set-up and boot included.
   * CPU time rather than wall time: on a shared machine it moves far less with the load.
   */
  jit: number;
  interpreter: number;
  /** jit / interpreter. */
  ratio: number;
  /** Instructions, cycles and every counter equal in every run, both ways. */
  identical: boolean;
}

export interface WorkloadBenchOptions {
  stacks: string[];
  workloads: string[];
  /** Iterations per run (default: each workload's own default in the guest kernel). */
  iters?: number;
  runs: number;
  memory: number;
}

const round = (x: number) => Number(x.toFixed(1));

/** A run and its guest instructions per CPU microsecond (= MIPS). */
interface Timed {
  r: StackRunResult;
  mips: number;
}

/** Unknown stacks or workloads: the same errors `run` gives, before anything runs. */
export function checkWorkloadBench(opts: WorkloadBenchOptions): void {
  for (const s of opts.stacks) getStack(s);
  for (const w of opts.workloads) workloadCmdline(w, opts.iters);
}

/**
 * `nestlab bench workloads`: every workload on every stack run interpreted and compiled in one
 * process, runs interleaved (off, on, off, on…) so the machine's noise hits both alike; best of
 * `runs` each. The first runs of a process also pay for V8 warming up the interpreter and
 * compiling the blocks; best-of-runs reports the warmed-up figure (blocks are shared by source
 * text, so a later run reuses what V8 optimized). Each run is a whole stack run: machine
 * set-up, boot and workload.
 */
export function benchWorkloads(opts: WorkloadBenchOptions, onRow?: (r: WorkloadBenchRow) => void): WorkloadBenchRow[] {
  checkWorkloadBench(opts);
  const image = new Uint8Array(readFileSync(bundledKernelPath()));
  const rows: WorkloadBenchRow[] = [];
  for (const stack of opts.stacks) {
    const s = getStack(stack);
    for (const workload of opts.workloads) {
      const once = (jit: boolean): Timed => {
        const t0 = process.cpuUsage();
        const r = s.run({
          image,
          cmdline: workloadCmdline(workload, opts.iters),
          memory: opts.memory,
          maxInstructions: Number.MAX_SAFE_INTEGER,
          jit: { enabled: jit },
        });
        const t = process.cpuUsage(t0);
        return { r, mips: r.instructions / (t.user + t.system) };
      };
      const off: Timed[] = [];
      const on: Timed[] = [];
      for (let k = 0; k < opts.runs; k++) {
        off.push(once(false));
        on.push(once(true));
      }
      const key = (t: Timed) => JSON.stringify([t.r.instructions, t.r.cycles, t.r.counters, t.r.exitStatus]);
      const ref = key(off[0]);
      const best = (ts: Timed[]) => Math.max(...ts.map((t) => t.mips));
      const row: WorkloadBenchRow = {
        stack,
        workload,
        instructions: off[0].r.instructions,
        jit: round(best(on)),
        interpreter: round(best(off)),
        ratio: Number((best(on) / best(off)).toFixed(2)),
        identical: [...off, ...on].every((r) => key(r) === ref),
      };
      rows.push(row);
      onRow?.(row);
    }
  }
  return rows;
}
