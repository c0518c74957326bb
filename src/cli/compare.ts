/**
 * `nestlab compare`: the workload suite on every stack (the reporting module measures each cell),
 * with a progress bar on a terminal, cells spread over worker threads, and the result as a table,
 * JSON, CSV or an HTML report.
 */
import { writeFileSync } from "node:fs";
import cliProgress from "cli-progress";
import type { ProfileSpec } from "../cost/profile.js";
import type { JitOptions } from "../cpu/jit/options.js";
import type { L0Policy } from "../machine/tunables.js";
import type { CellOptions, CompareCell } from "../report/cell.js";
import { compareDocument, compareFooter } from "../report/compare-doc.js";
import { profileInfo } from "../report/profile-info.js";
import { renderCsv, renderTable } from "../report/table.js";
import { workloadCmdline } from "../report/workloads.js";
import { getStack, STACKS } from "../stacks/index.js";
import type { L1EptPages } from "../stacks/stack.js";
import { type CellBatch, runCells } from "./cell-pool.js";
import { EXIT, OutputFileError, UsageError } from "./exit-codes.js";
import { checkListL1EptPages } from "./l1-ept-pages.js";
import { writeOut } from "./output.js";
import { readImage } from "./run.js";

export { SUITE } from "../report/workloads.js";

export interface CompareOptions {
  stacks: string[];
  workloads: string[];
  memory: number;
  profile?: ProfileSpec;
  json?: boolean;
  csv?: boolean;
  /** Write the HTML report to this file. */
  report?: string;
  maxInstructions: number;
  maxCycles?: number;
  iters?: number;
  jobs: number;
  /** npv stack: eager or on-demand L2 memory mapping by L1. */
  npvMap?: "eager" | "demand";
  /** Extra kernel command-line words for every run (e.g. "pti=on"). */
  kernelArgs?: string;
  /** nvmx stacks: the L1 hypervisor image file. */
  l1Image?: string;
  /** `--l1-ept-pages`: l1hv's EPT12 leaves on bare-l1 and the nvmx stacks (the others ignore it). */
  l1EptPages?: L1EptPages;
  /** `--no-jit` (false) and `--jit-threshold`. */
  jit?: boolean;
  jitThreshold?: number;
  /** `--l0-intercept-ud` / `--vm-virtio`: L0 policy overrides. */
  l0?: Partial<L0Policy>;
  /** `--cache-model on|off` (default on). */
  cacheModel?: "on" | "off";
  /** For the report: the command line and nestlab's version. */
  commandLine: string;
  version: string;
}

/** The block-compiler settings from `--no-jit` / `--jit-threshold` (cells may run on worker threads). */
export function jitFlags(opts: { jit?: boolean; jitThreshold?: number }): Partial<JitOptions> {
  const j: Partial<JitOptions> = {};
  if (opts.jit === false) j.enabled = false;
  if (opts.jitThreshold !== undefined) {
    j.threshold = opts.jitThreshold;
    j.warmup = 0; // as applyJitFlags (main.ts): a threshold given compiles from the start
  }
  return j;
}

function writeReport(file: string, html: string): void {
  try {
    writeFileSync(file, html);
  } catch (e) {
    throw new OutputFileError(
      `cannot write the report ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

/** A progress bar on a terminal's stderr (none when quiet or not a terminal). */
export function progressBar(what: string, total: number, quiet: boolean) {
  if (quiet || !process.stderr.isTTY) return null;
  const bar = new cliProgress.SingleBar(
    { format: `${what} [{bar}] {value}/{total} {task}`, stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { task: "" });
  return bar;
}

export async function compareCommand(opts: CompareOptions): Promise<number> {
  if (opts.json && opts.csv) throw new UsageError("give --json or --csv, not both");
  for (const s of opts.stacks) getStack(s); // unknown names fail before any work
  for (const w of opts.workloads) workloadCmdline(w);
  checkListL1EptPages(STACKS, opts.stacks, opts.l1EptPages === undefined ? [] : [opts.l1EptPages]);
  const l1Image = opts.l1Image === undefined ? undefined : readImage(opts.l1Image);
  for (const s of opts.stacks) getStack(s).preflight?.({ l1Image });
  const profile = profileInfo(opts.profile);
  if (opts.report !== undefined) writeReport(opts.report, ""); // a path that cannot be written fails before any work
  const cellOpts: CellOptions = {
    memory: opts.memory,
    maxInstructions: opts.maxInstructions,
    maxCycles: opts.maxCycles,
    profile: opts.profile,
    iters: opts.iters,
    npvMap: opts.npvMap,
    jit: jitFlags(opts),
    kernelArgs: opts.kernelArgs,
    l0: opts.l0,
    l1Image,
    cacheModel: opts.cacheModel !== "off",
    ...(opts.l1EptPages === "2m" ? { l1EptPages: opts.l1EptPages } : {}),
  };
  const tasks = opts.workloads.flatMap((workload) => opts.stacks.map((stack) => ({ stack, workload, opts: cellOpts })));
  const t0 = performance.now();
  // Ctrl-C: put the terminal back (cursor, line wrap) before leaving. Installed before the bar
  // draws, so a ^C typed as soon as it shows is never the default (terminal-breaking) kill.
  let pool: CellBatch | undefined;
  const onSigint = () => {
    bar?.stop();
    process.stderr.write("nestlab: interrupted\n");
    void (pool?.cancel() ?? Promise.resolve()).finally(() => process.exit(EXIT.interrupted));
  };
  process.once("SIGINT", onSigint);
  const bar = progressBar("compare", tasks.length, Boolean(opts.json || opts.csv));
  pool = runCells(tasks, opts.jobs, (cell) => bar?.increment({ task: `${cell.workload} on ${cell.stack}` }));
  let cells: CompareCell[];
  try {
    cells = await pool.done;
  } finally {
    process.removeListener("SIGINT", onSigint);
    bar?.stop();
  }
  const wall = (performance.now() - t0) / 1000;
  const doc = compareDocument({ ...opts, profile }, cells, wall);
  if (opts.report !== undefined) {
    // Loaded only for a report: ECharts is most of the CLI's start-up time (about 0.5 s of a
    // `run`), and no other command draws a chart.
    const { renderHtmlReport } = await import("../report/html.js");
    writeReport(opts.report, renderHtmlReport(doc, profile, { commandLine: opts.commandLine, version: opts.version }));
  }
  if (opts.json) writeOut(`${JSON.stringify(doc, null, 2)}\n`);
  else if (opts.csv) writeOut(renderCsv(doc));
  else {
    writeOut(`${renderTable(doc)}\n`);
    writeOut(`\n${compareFooter(doc, profile.cpu, opts.jobs)}`);
    if (opts.report !== undefined) writeOut(`Report: ${opts.report}\n`);
  }
  return cells.every((c) => c.ok) ? EXIT.ok : EXIT.guestFailed;
}
