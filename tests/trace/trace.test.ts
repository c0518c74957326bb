/**
 * `run --trace`: the Chrome Trace Event JSON is well formed (required fields, timestamps that never
 * go back on a track, slices that nest), the top-level slices of each level's tracks add up to
 * that level's ledger total (slices are measured on the simulated clock, the ledger is what was
 * charged: a charge at the wrong moment or level breaks the sum), the counter tracks end at the
 * run's own counters, and tracing changes nothing the run reports.
 */
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { LedgerLine } from "../../src/cost/ledger.js";
import { bundledKernelPath } from "../../src/paths.js";
import { getStack } from "../../src/stacks/index.js";
import type { StackRunResult } from "../../src/stacks/stack.js";
import { chromeTraceJson } from "../../src/trace/chrome-json.js";
import { type TimelineEvent, TimelineRecorder } from "../../src/trace/timeline.js";

const kernel = new Uint8Array(readFileSync(bundledKernelPath()));
const GHZ = 2.5; // the default profile's clock (cascadelake-kvm)

interface TraceEvent {
  ph: string;
  name: string;
  cat?: string;
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  s?: string;
  args?: Record<string, unknown>;
}

function run(stack: string, workload: string, trace?: TimelineRecorder): StackRunResult {
  return getStack(stack).run({
    image: kernel,
    cmdline: `workload=${workload} iters=20`,
    memory: 64 * 1024 * 1024,
    maxInstructions: 50_000_000,
    trace,
  });
}

function traced(stack: string, workload: string, limit?: number) {
  const rec = new TimelineRecorder(limit);
  const result = run(stack, workload, rec);
  const text = chromeTraceJson(rec, { ghz: GHZ });
  return {
    rec,
    result,
    text,
    doc: JSON.parse(text) as { traceEvents: TraceEvent[]; otherData: Record<string, unknown> },
  };
}

/**
 * Required fields per phase, timestamps per track in order, and slices nested on each track.
 * Returns the problems found (one expect on the list keeps a long trace quick to check).
 */
function formatProblems(events: TraceEvent[]): string[] {
  const bad: string[] = [];
  const tracks = new Map<string, TraceEvent[]>();
  for (const e of events) {
    const where = JSON.stringify(e);
    if (!["M", "X", "i", "C"].includes(e.ph)) bad.push(`phase: ${where}`);
    if (typeof e.name !== "string" || !Number.isInteger(e.pid) || !Number.isInteger(e.tid)) bad.push(`ids: ${where}`);
    if (e.ph === "M") {
      // process_name / thread_name carry a name; the sort indexes a number.
      const ok = e.name.endsWith("_name") ? typeof e.args?.name === "string" : typeof e.args?.sort_index === "number";
      if (!ok) bad.push(`metadata: ${where}`);
      continue;
    }
    if (typeof e.ts !== "number" || e.ts < 0) bad.push(`ts: ${where}`);
    if (e.ph === "X" && !(typeof e.dur === "number" && e.dur >= 0)) bad.push(`dur: ${where}`);
    if (e.ph === "C" && !Object.values(e.args ?? {}).every((v) => typeof v === "number")) bad.push(`counter: ${where}`);
    const k = `${e.pid}/${e.tid}/${e.ph === "C" ? e.name : ""}`;
    const list = tracks.get(k) ?? [];
    list.push(e);
    tracks.set(k, list);
  }
  const EPS = 1e-3; // µs: starts and ends are each rounded to 0.1 ns
  for (const list of tracks.values()) {
    for (let i = 1; i < list.length; i++)
      if ((list[i].ts as number) < (list[i - 1].ts as number)) bad.push(`back in time: ${JSON.stringify(list[i])}`);
    const stack: TraceEvent[] = [];
    for (const e of list) {
      if (e.ph !== "X") continue;
      const start = e.ts as number;
      while (stack.length > 0) {
        const top = stack[stack.length - 1];
        if (start >= (top.ts as number) + (top.dur as number) - EPS) stack.pop();
        else break;
      }
      const parent = stack[stack.length - 1];
      // Inside its parent, or it would overlap it: slices on a track must nest.
      if (parent !== undefined && start + (e.dur as number) > (parent.ts as number) + (parent.dur as number) + EPS)
        bad.push(`overlaps ${JSON.stringify(parent)}: ${JSON.stringify(e)}`);
      stack.push(e);
    }
  }
  return bad;
}

function checkFormat(events: TraceEvent[]): void {
  expect(formatProblems(events).slice(0, 5)).toEqual([]);
}

/** Cycles of each level's top-level slices (the recorder's own events, exact), by pid - 1. */
function topLevelCyclesByLevel(events: readonly TimelineEvent[]): Record<number, number> {
  const byTrack = new Map<string, TimelineEvent[]>();
  for (const e of events) {
    if (e.ph !== "X") continue;
    const k = `${e.pid}/${e.tid}`;
    byTrack.set(k, [...(byTrack.get(k) ?? []), e]);
  }
  const out: Record<number, number> = {};
  for (const list of byTrack.values()) {
    list.sort((a, b) => a.start - b.start || b.dur - a.dur);
    let end = -1;
    for (const e of list) {
      // Nested in the previous top-level slice (1e-5: below the file's 0.1 ns rounding, above float noise).
      if (e.start < end - 1e-5) continue;
      out[e.pid - 1] = (out[e.pid - 1] ?? 0) + e.dur;
      end = e.start + e.dur;
    }
  }
  return out;
}

function ledgerByLevel(lines: readonly LedgerLine[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const l of lines) if (l.cycles > 0) out[l.level] = (out[l.level] ?? 0) + l.cycles;
  return out;
}

// Each test is seconds of synchronous work: let the worker's event loop reach its poll phase
// between them, so vitest's 60 s worker RPC timeout cannot fire on a loaded machine.
afterEach(() => new Promise<void>((done) => setImmediate(done)));

describe("run --trace", () => {
  for (const [stack, workload] of [
    ["vm", "io"],
    ["npv", "io"],
    ["npv", "pagefault"],
    ["native", "cpuid"],
  ] as const) {
    it(`${workload} on ${stack}: valid JSON, nested slices, per-level sums equal the ledger`, () => {
      const { rec, result, doc } = traced(stack, workload);
      expect(result.exitStatus).toBe(1);
      expect(doc.otherData.truncated).toBe(false);
      checkFormat(doc.traceEvents);
      const slices = topLevelCyclesByLevel(rec.events);
      const ledger = ledgerByLevel(result.ledger ?? []);
      expect(Object.keys(slices).sort()).toEqual(Object.keys(ledger).sort());
      for (const level of Object.keys(ledger)) {
        expect(slices[Number(level)]).toBeCloseTo(ledger[Number(level)], 3);
      }
      // The same in the file's microseconds (each slice rounded to 0.1 ns at both ends).
      const fileUs: Record<number, number> = {};
      const tops = topLevelCyclesByLevel(
        doc.traceEvents
          .filter((e) => e.ph === "X")
          .map((e) => ({ ...e, ph: "X", cat: e.cat ?? "", start: e.ts as number, dur: e.dur as number })),
      );
      for (const [l, us] of Object.entries(tops)) fileUs[Number(l)] = us;
      const n = doc.traceEvents.length;
      for (const level of Object.keys(ledger)) {
        expect(Math.abs(fileUs[Number(level)] - ledger[Number(level)] / GHZ / 1000)).toBeLessThan(n * 1e-4);
      }
      // Every cycle on the clock is in some top-level slice.
      expect(Object.values(slices).reduce((a, b) => a + b, 0)).toBeCloseTo(result.cycles, 3);
      // The counter tracks end at the run's own counters.
      const last = (name: string) => doc.traceEvents.filter((e) => e.ph === "C" && e.name === name).at(-1)?.args;
      expect(last("TLB misses")?.stlb).toBe(result.counters["mmu.stlb_misses"]);
      expect(last("walk references")?.ept).toBe(result.counters["mmu.ept_refs"]);
    });
  }

  it("npv: exits, handlers, hypercalls, world switches, engine steps and injected interrupts show", () => {
    const { doc } = traced("npv", "io");
    const cats = new Map<string, number>();
    for (const e of doc.traceEvents) cats.set(e.cat ?? e.ph, (cats.get(e.cat ?? e.ph) ?? 0) + 1);
    for (const c of ["run", "exit", "handler", "hypercall", "world-switch", "engine", "inject", "counter"])
      expect(cats.get(c) ?? 0, c).toBeGreaterThan(0);
    const threads = doc.traceEvents.filter((e) => e.ph === "M" && e.name === "thread_name").map((e) => e.args?.name);
    expect(threads).toEqual(expect.arrayContaining(["L1 vCPU0", "L2 vCPU0", "L0 for L1 vCPU0", "L0 for L2 vCPU0"]));
    // Every world switch L1 → L2 on L0's track for the L1 vCPU sits inside an npv hypercall.
    const ws = doc.traceEvents.filter((e) => e.name === "world switch L1 → L2");
    const hc = doc.traceEvents.filter((e) => e.cat === "hypercall");
    for (const w of ws.slice(0, 50)) {
      const inside = hc.some(
        (h) =>
          h.pid === w.pid &&
          h.tid === w.tid &&
          (h.ts as number) <= (w.ts as number) &&
          (w.ts as number) + (w.dur as number) <= (h.ts as number) + (h.dur as number) + 1e-3,
      );
      expect(inside).toBe(true);
    }
  });

  it("tracing changes nothing the run reports (counters, cycles, ledger, exits)", () => {
    for (const stack of ["vm", "npv"]) {
      const plain = run(stack, "io");
      const { result } = traced(stack, "io");
      expect(result.counters).toEqual(plain.counters);
      expect(result.cycles).toBe(plain.cycles);
      expect(result.ledger).toEqual(plain.ledger);
      expect(result.exits).toEqual(plain.exits);
      expect(result.serial).toBe(plain.serial);
    }
  });

  it("--trace-limit bounds the events and the file says it was cut", () => {
    const { rec, doc } = traced("vm", "io", 500);
    expect(rec.events.length).toBe(500);
    expect(rec.dropped).toBeGreaterThan(0);
    expect(doc.otherData.truncated).toBe(true);
    expect(doc.otherData.dropped).toBe(rec.dropped);
    expect(doc.traceEvents.some((e) => e.ph === "i" && e.name.startsWith("trace truncated"))).toBe(true);
    checkFormat(doc.traceEvents);
  });
});
