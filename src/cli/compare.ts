/**
 * `nestlab compare`: the workload suite on every stack. Per workload and stack it reports the
 * guest's own measurement (cycles per iteration, read with RDTSC from the simulated clock), the
 * ratio to native, and exits per iteration by level. Exits per iteration are measured
 * differentially — a run with N iterations and one with 2N — so boot and set-up cancel out.
 */
import { readFileSync } from "node:fs";
import cliProgress from "cli-progress";
import { bundledKernelPath } from "../paths.js";
import { getStack } from "../stacks/index.js";
import type { StackRunResult } from "../stacks/stack.js";
import { workloadCmdline } from "./run.js";

/** The suite `compare` runs by default (every bundled workload). */
export const SUITE = [
  "syscall",
  "pagefault",
  "fork",
  "ctxsw",
  "exec",
  "cpuid",
  "msr",
  "exception",
  "pio",
  "io",
  "tlb",
  "compute",
];

export interface CompareCell {
  stack: string;
  workload: string;
  ok: boolean;
  message: string;
  iterations: number;
  cyclesPerIter: number;
  /** Exits per iteration, by level name ("L0", …) and reason. */
  exitsPerIter: Record<string, number>;
  exitReasonsPerIter: Record<string, number>;
  instructions: number;
  wallSeconds: number;
}

export interface CompareOptions {
  stacks: string[];
  workloads: string[];
  memory: number;
  profile?: string;
  json?: boolean;
  maxInstructions: number;
  /** npv stack: eager or on-demand L2 memory mapping by L1. */
  npvMap?: "eager" | "demand";
  /** Extra kernel command-line words for every run (e.g. "pti=on"). */
  kernelArgs?: string;
}

function exitTotals(r: StackRunResult): { byLevel: Record<string, number>; byReason: Record<string, number> } {
  const byLevel: Record<string, number> = {};
  const byReason: Record<string, number> = {};
  for (const [k, v] of Object.entries(r.counters)) {
    const m = /^exits\.(L\d)\.(.+)$/.exec(k);
    if (!m) continue;
    byLevel[m[1]] = (byLevel[m[1]] ?? 0) + v;
    byReason[`${m[1]}.${m[2]}`] = (byReason[`${m[1]}.${m[2]}`] ?? 0) + v;
  }
  return { byLevel, byReason };
}

function diffPerIter(a: Record<string, number>, b: Record<string, number>, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const d = ((b[k] ?? 0) - (a[k] ?? 0)) / n;
    if (Math.abs(d) >= 0.005) out[k] = Math.round(d * 100) / 100;
  }
  return out;
}

export function runCell(stackName: string, workload: string, opts: CompareOptions, image: Uint8Array): CompareCell {
  const stack = getStack(stackName);
  const t0 = performance.now();
  const base = {
    stack: stackName,
    workload,
    iterations: 0,
    cyclesPerIter: 0,
    exitsPerIter: {},
    exitReasonsPerIter: {},
    instructions: 0,
  };
  const run = (iters?: number) =>
    stack.run({
      image,
      cmdline: workloadCmdline(workload, iters, opts.kernelArgs),
      memory: opts.memory,
      maxInstructions: opts.maxInstructions,
      profile: opts.profile,
      npvMap: opts.npvMap,
    });
  const r1 = run();
  const res1 = r1.guest.results.find((x) => x.name === workload);
  if (r1.exitStatus !== 1 || res1 === undefined || r1.guest.failures.length > 0) {
    const why =
      r1.guest.failures.map((f) => `${f.name}: ${f.fields.reason ?? "failed"}`).join("; ") || r1.outcome.message;
    return { ...base, ok: false, message: why, wallSeconds: (performance.now() - t0) / 1000 };
  }
  if (res1.fields.skipped !== undefined) {
    return { ...base, ok: true, message: "skipped by the guest", wallSeconds: (performance.now() - t0) / 1000 };
  }
  const n = Number(res1.fields.iterations);
  const r2 = run(2 * n);
  const e1 = exitTotals(r1);
  const e2 = exitTotals(r2);
  return {
    ...base,
    ok: r2.exitStatus === 1,
    message: r2.exitStatus === 1 ? "ok" : r2.outcome.message,
    iterations: n,
    cyclesPerIter: Number(res1.fields.cycles_per_iter),
    exitsPerIter: diffPerIter(e1.byLevel, e2.byLevel, n),
    exitReasonsPerIter: diffPerIter(e1.byReason, e2.byReason, n),
    instructions: r1.instructions,
    wallSeconds: (performance.now() - t0) / 1000,
  };
}

export function compareCommand(opts: CompareOptions): number {
  for (const s of opts.stacks) getStack(s); // unknown names fail before any work
  for (const w of opts.workloads) workloadCmdline(w);
  const image = new Uint8Array(readFileSync(bundledKernelPath()));
  const cells: CompareCell[] = [];
  const t0 = performance.now();
  const bar =
    opts.json || !process.stderr.isTTY
      ? null
      : new cliProgress.SingleBar(
          { format: "compare [{bar}] {value}/{total} {task}", stream: process.stderr },
          cliProgress.Presets.shades_classic,
        );
  bar?.start(opts.stacks.length * opts.workloads.length, 0, { task: "" });
  for (const w of opts.workloads) {
    for (const s of opts.stacks) {
      bar?.update({ task: `${w} on ${s}` });
      cells.push(runCell(s, w, opts, image));
      bar?.increment();
    }
  }
  bar?.stop();
  const wall = (performance.now() - t0) / 1000;
  if (opts.json) {
    console.log(
      JSON.stringify(
        {
          stacks: opts.stacks,
          workloads: opts.workloads,
          profile: opts.profile ?? "default",
          ...(opts.kernelArgs ? { kernelArgs: opts.kernelArgs } : {}),
          wallSeconds: Number(wall.toFixed(2)),
          cells,
        },
        null,
        2,
      ),
    );
  } else {
    console.log(renderTable(cells, opts.stacks, opts.workloads));
    console.log(
      `\n${cells.length} cells (two runs each) in ${wall.toFixed(1)} s wall. Cycles are simulated (profile ${opts.profile ?? "default"}${opts.kernelArgs ? `, guest kernel args "${opts.kernelArgs}"` : ""}); exits per iteration are measured between an N- and a 2N-iteration run.`,
    );
  }
  return cells.every((c) => c.ok) ? 0 : 1;
}

export function renderTable(cells: CompareCell[], stacks: string[], workloads: string[]): string {
  const get = (w: string, s: string) => cells.find((c) => c.workload === w && c.stack === s);
  const header = [
    "workload",
    ...stacks.flatMap((s) => (s === "native" ? ["native c/it"] : [`${s} c/it`, `${s}/native`, `${s} exits/it`])),
  ];
  const rows: string[][] = [header];
  for (const w of workloads) {
    const nat = get(w, "native");
    const row = [w];
    for (const s of stacks) {
      const c = get(w, s);
      const cpi = c === undefined ? "-" : !c.ok ? "FAIL" : c.iterations === 0 ? "skip" : String(c.cyclesPerIter);
      if (s === "native") {
        row.push(cpi);
        continue;
      }
      const ratio =
        c?.ok && nat?.ok && nat.cyclesPerIter > 0 && c.iterations > 0
          ? `${(c.cyclesPerIter / nat.cyclesPerIter).toFixed(2)}x`
          : "-";
      const exits =
        c?.ok && c.iterations > 0
          ? Object.entries(c.exitsPerIter)
              .map(([l, v]) => `${l} ${v}`)
              .join(" ") || "0"
          : "-";
      row.push(cpi, ratio, exits);
    }
    rows.push(row);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join("  ");
  return [line(rows[0]), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n");
}
