/**
 * `--cache-model off` changes what page-walk references cost and nothing else: the same guest run
 * with the data-cache model on and off executes the same instructions, takes the same exits and
 * makes the same walks and references; only the walk charges differ (by cache level when on, the
 * flat `mmu.walk_ref` each when off). The guest's timer is off (`tick=0`), and so is the executed
 * L1's own tick (`l1Tick: false`), so that different cycle counts cannot move a preemption point, and both runs stop at the same instruction count before
 * the guest prints its timings (printing a different number runs different code). And off is
 * deterministic: two complete runs give one document.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runJson, workloadCmdline } from "../../src/cli/run.js";
import type { LedgerLine } from "../../src/cost/ledger.js";
import { bundledKernelPath } from "../../src/paths.js";
import { STACKS } from "../../src/stacks/index.js";
import type { StackRunResult } from "../../src/stacks/stack.js";

const kernel = new Uint8Array(readFileSync(bundledKernelPath()));

function run(stack: string, workload: string, iters: number, cacheModel: boolean, maxInstructions = 100_000_000) {
  const s = STACKS.get(stack);
  if (s === undefined) throw new Error(`no stack ${stack}`);
  return s.run({
    image: kernel,
    cmdline: workloadCmdline(workload, iters, "tick=0"),
    memory: 64 * 1024 * 1024,
    maxInstructions,
    cacheModel,
    l1Tick: false,
  });
}

/** Ledger reasons of walk-reference charges: the CPU's own walks and L0's software walks. */
const isWalkCharge = (l: LedgerLine) => /^walk_(l1d|l2|llc|dram|ref)$/.test(l.reason) || l.reason.endsWith("_walk");

const key = (l: LedgerLine) => `${l.level}/${l.category}/${l.reason}`;

function ledgerWithout(r: StackRunResult, drop: (l: LedgerLine) => boolean): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const l of r.ledger ?? []) if (!drop(l)) out[key(l)] = [l.cycles, l.count];
  return out;
}

/** References charged, by the level that made them, whatever each cost. */
function walkRefsCharged(r: StackRunResult): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of r.ledger ?? [])
    if (isWalkCharge(l)) out[`${l.level}/${l.category}`] = (out[`${l.level}/${l.category}`] ?? 0) + l.count;
  return out;
}

const CASES: [string, string, number][] = [
  ["native", "tlb", 3000],
  ["vm", "tlb", 3000],
  ["vm", "pagefault", 100],
  ["npv", "fork", 5],
  ["nvmx", "pagefault", 50],
];

describe("--cache-model on vs off: only the walk charges differ", () => {
  for (const [stack, workload, iters] of CASES) {
    it(`${stack}: ${workload}`, () => {
      const whole = run(stack, workload, iters, true);
      expect(whole.exitStatus).toBe(1);
      const stop = Math.floor(whole.instructions * 0.9);
      const on = run(stack, workload, iters, true, stop);
      const off = run(stack, workload, iters, false, stop);
      expect(on.outcome.kind).toBe("instruction-limit");
      expect(off.instructions).toBe(on.instructions);
      expect(off.exits).toEqual(on.exits);
      // Every counter but the simulated clock and the cache model's own (absent when off).
      const counters = (r: StackRunResult) =>
        Object.fromEntries(
          Object.entries(r.counters).filter(([k]) => !k.endsWith("cycles") && !k.startsWith("dcache.")),
        );
      expect(counters(off)).toEqual(counters(on));
      expect(Object.keys(off.counters).some((k) => k.startsWith("dcache."))).toBe(false);
      expect(on.counters["dcache.walk_l1d"]).toBeGreaterThan(0);
      // The same charges apart from walks; the same number of walk references charged per level.
      expect(ledgerWithout(off, isWalkCharge)).toEqual(ledgerWithout(on, isWalkCharge));
      expect(walkRefsCharged(off)).toEqual(walkRefsCharged(on));
      // Off charges no cache level; on charges no flat CPU walk reference.
      expect((off.ledger ?? []).some((l) => /^walk_(l1d|l2|llc|dram)$/.test(l.reason))).toBe(false);
      expect((on.ledger ?? []).some((l) => l.reason === "walk_ref")).toBe(false);
      expect(off.cycles).not.toBe(on.cycles);
    }, 60_000);
  }

  it("off is deterministic: two runs give the same document", () => {
    const json = (r: StackRunResult) => ({ ...runJson(r, ""), wallSeconds: 0 });
    expect(json(run("vm", "tlb", 2000, false))).toEqual(json(run("vm", "tlb", 2000, false)));
  }, 60_000);
});
