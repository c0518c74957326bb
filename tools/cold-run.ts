/**
 * Where the CPU time of one cold stack run goes, with and without the block compiler: main-thread
 * CPU (Linux /proc, 10 ms ticks) at milestones of retired guest instructions, and the whole
 * process's CPU (V8's background compiler threads included). Main-thread CPU is what the run's
 * wall time is on an idle machine; it moves far less with the load than wall time does.
 *
 *   node dist/tools/cold-run.js [--stack S] [--workload W] [--iters N] [--no-jit] [--reps N]
 *     [--threshold N] [--warmup N]   (block-compiler settings to try, JitOptions)
 *
 * Each rep is a whole stack run in this process (rep 1 is cold; later reps reuse what V8
 * optimized, including block functions shared by source text). A measuring tool, not part of the
 * simulator: it wraps Cpu.run to look at the instruction count between machine slices.
 */
import { readFileSync } from "node:fs";
import "../src/node-images.js";
import { Cpu } from "../src/cpu/cpu.js";
import type { JitOptions } from "../src/cpu/jit/options.js";
import { bundledKernelPath } from "../src/paths.js";
import { workloadCmdline } from "../src/report/workloads.js";
import { getStack } from "../src/stacks/index.js";

/** Main-thread user + system CPU in ms (utime and stime of /proc/self/task/PID/stat). */
function mainThreadMs(): number {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function arg(name: string, dflt: string): string {
  const k = process.argv.indexOf(name);
  return k > 0 && k + 1 < process.argv.length ? process.argv[k + 1] : dflt;
}

const stack = arg("--stack", "native");
const workload = arg("--workload", "compute");
const iters = Number(arg("--iters", "100"));
const reps = Number(arg("--reps", "1"));
const jit = !process.argv.includes("--no-jit");
/** Block-compiler settings to try (the defaults when not given). */
const jitTry: Partial<JitOptions> = {};
for (const [flag, key] of [
  ["--threshold", "threshold"],
  ["--warmup", "warmup"],
] as const) {
  if (process.argv.includes(flag)) jitTry[key] = Number(arg(flag, "0"));
}
/** Milestones (retired instructions) at which the main thread's CPU is read. */
const MILESTONES = [200_000, 2_000_000, 10_000_000];

const marks: [number, number][] = [];
let nextMark = 0;
const run = Cpu.prototype.run;
Cpu.prototype.run = function measuredRun(this: Cpu, budget: number): number {
  if (nextMark === 0) {
    marks.push([0, mainThreadMs()]); // set-up done: the first slice starts
    nextMark = 1;
  }
  const stop = run.call(this, budget);
  while (nextMark <= MILESTONES.length && this.icount >= MILESTONES[nextMark - 1]) {
    marks.push([MILESTONES[nextMark - 1], mainThreadMs()]);
    nextMark++;
  }
  return stop;
};

const image = new Uint8Array(readFileSync(bundledKernelPath()));
for (let k = 1; k <= reps; k++) {
  marks.length = 0;
  nextMark = 0;
  const m0 = mainThreadMs();
  const p0 = process.cpuUsage();
  const r = getStack(stack).run({
    image,
    cmdline: workloadCmdline(workload, iters),
    memory: 256 << 20,
    maxInstructions: Number.MAX_SAFE_INTEGER,
    jit: { ...jitTry, enabled: jit },
  });
  const p = process.cpuUsage(p0);
  const end = mainThreadMs();
  const procMs = Math.round((p.user + p.system) / 1000);
  const phases = marks.map(([n, t]) => `${n === 0 ? "set-up" : `${n / 1e6}M`} ${t - m0}`).join(", ");
  console.log(
    `${stack}/${workload}/${iters} ${jit ? "jit" : "no-jit"} rep ${k}: ${r.instructions} instructions; main-thread CPU ms at: ${phases}, end ${end - m0}; process CPU ${procMs} ms (other threads ${procMs - (end - m0)})`,
  );
}
