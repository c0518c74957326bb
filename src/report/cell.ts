/**
 * One cell of a comparison: a workload on a stack, measured the way `compare` does. The guest
 * measures itself (cycles per iteration, read with RDTSC from the simulated clock); exits and the
 * ledger per iteration are measured differentially — a run with N iterations and one with 2N — so
 * boot and set-up cancel out. The CLI and a browser page both call this.
 */
import type { LedgerLine } from "../cost/ledger.js";
import { loadProfile, type ProfileSpec } from "../cost/profile.js";
import type { JitOptions } from "../cpu/jit/options.js";
import type { L0Policy } from "../machine/tunables.js";
import { getStack } from "../stacks/index.js";
import type { ExitCount, L1EptPages, StackRunResult } from "../stacks/stack.js";
import { eventsOf } from "../stats/run-stats.js";
import { workloadCmdline } from "./workloads.js";

export interface CellOptions {
  memory: number;
  maxInstructions: number;
  maxCycles?: number;
  profile?: ProfileSpec;
  /** Iterations of the first run (the second runs twice as many); default: the guest's own. */
  iters?: number;
  /** npv stack: eager or on-demand L2 memory mapping by L1. */
  npvMap?: "eager" | "demand";
  /** Block compiler settings (simulated results are the same either way). */
  jit?: Partial<JitOptions>;
  /** Extra kernel command-line words for every run (e.g. "pti=on"). */
  kernelArgs?: string;
  /** L0 policy overrides (the same for every stack of the comparison). */
  l0?: Partial<L0Policy>;
  /** nvmx stacks: the L1 hypervisor image (default: the bundled l1hv). */
  l1Image?: Uint8Array;
  /** `--cache-model off` (false): walk references charged flat (StackRunOptions.cacheModel). */
  cacheModel?: boolean;
  /** `--l1-ept-pages 2m`: l1hv's EPT12 leaves (StackRunOptions.l1EptPages); absent: 4 KiB. */
  l1EptPages?: L1EptPages;
}

/** One (level, category) share of the cycles of an iteration. */
export interface LedgerShare {
  level: number;
  category: string;
  cycles: number;
}

/** One exit reason's rate. */
export interface ExitRate {
  level: string;
  reason: string;
  perIter: number;
}

export interface CompareCell {
  stack: string;
  workload: string;
  ok: boolean;
  /** "ok", "skipped by the guest", or why the cell failed (the guest's FAIL reason or the run's stop). */
  message: string;
  iterations: number;
  cyclesPerIter: number;
  /** The same in ns at the profile's clock (one decimal). */
  nsPerIter: number;
  /** Exits per iteration, by level name ("L0", …). */
  exitsPerIter: Record<string, number>;
  /** Exits per iteration by "level.reason". */
  exitReasonsPerIter: Record<string, number>;
  instructions: number;
  wallSeconds: number;
  /** How the first run stopped ("debug-exit", "triple-fault", "cycle-limit", …). */
  stop: string;
  /** The top exit reasons per iteration (at most `TOP_EXITS`), most frequent first. */
  topExits: ExitRate[];
  /** Cycles per iteration by (level, category), from the ledger, N/2N differential. */
  ledgerPerIter: LedgerShare[];
  /** Nested stacks that count them: world switches per iteration ("L2-L0", "L1-L0"). */
  worldSwitchesPerIter?: Record<string, number>;
}

export const TOP_EXITS = 3;

/** Rates below this are noise of the N/2N method (boot-time exits that do not cancel exactly). */
const MIN_RATE = 0.005;

/** The cell's key of an exit reason handled at a level ("L0.cpuid"), and what it names. */
type ReasonKeys = Map<string, { level: string; reason: string }>;

function exitTotals(
  exits: ExitCount[],
  keys: ReasonKeys,
): { byLevel: Record<string, number>; byReason: Record<string, number> } {
  const byLevel: Record<string, number> = {};
  const byReason: Record<string, number> = {};
  for (const e of exits) {
    const level = `L${e.handledBy}`;
    const key = `${level}.${e.reason}`;
    keys.set(key, { level, reason: e.reason });
    byLevel[level] = (byLevel[level] ?? 0) + e.count;
    byReason[key] = (byReason[key] ?? 0) + e.count;
  }
  return { byLevel, byReason };
}

function diffPerIter(a: Record<string, number>, b: Record<string, number>, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const d = ((b[k] ?? 0) - (a[k] ?? 0)) / n;
    if (Math.abs(d) >= MIN_RATE) out[k] = Math.round(d * 100) / 100;
  }
  return out;
}

/** The world switches a run counted (nested stacks that count them), by kind ("L2-L0"). */
function worldSwitches(r: StackRunResult): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of eventsOf(r.events, "world_switches")) out[e.name] = e.count;
  return out;
}

function ledgerByLevelCategory(lines: LedgerLine[] | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of lines ?? []) out[`${l.level}/${l.category}`] = (out[`${l.level}/${l.category}`] ?? 0) + l.cycles;
  return out;
}

function ledgerPerIter(r1: StackRunResult, r2: StackRunResult, n: number): LedgerShare[] {
  const a = ledgerByLevelCategory(r1.ledger);
  const b = ledgerByLevelCategory(r2.ledger);
  const out: LedgerShare[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const d = ((b[k] ?? 0) - (a[k] ?? 0)) / n;
    if (Math.abs(d) < MIN_RATE) continue;
    const [level, category] = k.split("/");
    out.push({ level: Number(level), category, cycles: Math.round(d * 100) / 100 });
  }
  return out.sort((x, y) => x.level - y.level || y.cycles - x.cycles);
}

function topExits(perReason: Record<string, number>, keys: ReasonKeys): ExitRate[] {
  return Object.entries(perReason)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, TOP_EXITS)
    .map(([k, perIter]) => ({ ...(keys.get(k) as { level: string; reason: string }), perIter }));
}

/** Why a run did not give a usable result: the guest's FAIL lines, else how the run stopped. */
function failureReason(r: StackRunResult, workload: string): string {
  if (r.guest.failures.length > 0) {
    return r.guest.failures.map((f) => `${f.name}: ${f.fields.reason ?? "failed"}`).join("; ");
  }
  if (r.outcome.kind === "debug-exit" && r.exitStatus !== 1) {
    return `the guest reported failure (wrote ${((r.exitStatus ?? 1) - 1) / 2} to the debug-exit port)`;
  }
  if (r.outcome.kind === "debug-exit") return `the guest printed no RESULT line for ${workload}`;
  return `${r.outcome.kind}: ${r.outcome.message}`;
}

function worldSwitchesOf(r1: StackRunResult, r2: StackRunResult, n: number): Partial<CompareCell> {
  const w1 = worldSwitches(r1);
  if (Object.keys(w1).length === 0) return {};
  return { worldSwitchesPerIter: diffPerIter(w1, worldSwitches(r2), n) };
}

export function measureCell(stackName: string, workload: string, opts: CellOptions, image: Uint8Array): CompareCell {
  const stack = getStack(stackName);
  const t0 = performance.now();
  const base = {
    stack: stackName,
    workload,
    iterations: 0,
    cyclesPerIter: 0,
    nsPerIter: 0,
    exitsPerIter: {},
    exitReasonsPerIter: {},
    instructions: 0,
    topExits: [],
    ledgerPerIter: [],
  };
  const run = (iters?: number) =>
    stack.run({
      image,
      cmdline: workloadCmdline(workload, iters, opts.kernelArgs),
      memory: opts.memory,
      maxInstructions: opts.maxInstructions,
      maxCycles: opts.maxCycles,
      profile: opts.profile,
      npvMap: opts.npvMap,
      jit: opts.jit,
      l0: opts.l0,
      l1Image: opts.l1Image,
      cacheModel: opts.cacheModel,
      l1EptPages: opts.l1EptPages,
    });
  const wall = () => (performance.now() - t0) / 1000;
  const r1 = run(opts.iters);
  const res1 = r1.guest.results.find((x) => x.name === workload);
  if (r1.exitStatus !== 1 || res1 === undefined || r1.guest.failures.length > 0) {
    return { ...base, ok: false, message: failureReason(r1, workload), stop: r1.outcome.kind, wallSeconds: wall() };
  }
  if (res1.fields.skipped !== undefined) {
    return { ...base, ok: true, message: "skipped by the guest", stop: r1.outcome.kind, wallSeconds: wall() };
  }
  const n = Number(res1.fields.iterations);
  const r2 = run(2 * n);
  const keys: ReasonKeys = new Map();
  const e1 = exitTotals(r1.exits, keys);
  const e2 = exitTotals(r2.exits, keys);
  const exitReasonsPerIter = diffPerIter(e1.byReason, e2.byReason, n);
  const cyclesPerIter = Number(res1.fields.cycles_per_iter);
  const ok = r2.exitStatus === 1 && r2.guest.failures.length === 0;
  return {
    ...base,
    ok,
    message: ok ? "ok" : `second run (${2 * n} iterations): ${failureReason(r2, workload)}`,
    stop: ok ? r1.outcome.kind : r2.outcome.kind,
    iterations: n,
    cyclesPerIter,
    nsPerIter: Math.round((cyclesPerIter / loadProfile(opts.profile).profile.machine.ghz) * 10) / 10,
    exitsPerIter: diffPerIter(e1.byLevel, e2.byLevel, n),
    exitReasonsPerIter,
    instructions: r1.instructions,
    topExits: topExits(exitReasonsPerIter, keys),
    ledgerPerIter: ledgerPerIter(r1, r2, n),
    ...worldSwitchesOf(r1, r2, n),
    wallSeconds: wall(),
  };
}
