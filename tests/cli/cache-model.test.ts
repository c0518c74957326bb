/**
 * `--cache-model on|off` as a user gives it: on (the default) prices walk references by cache
 * level and reports the model's counters; off charges the flat `mmu.walk_ref` and has none; a
 * mode that does not exist is refused before any work. tests/stacks/cache-model-switch.test.ts
 * checks that on and off differ in nothing but what walk references cost.
 */
import { describe, expect, it } from "vitest";
import { nestlabAsync } from "./cli-helpers.js";

interface RunDoc {
  counters: Record<string, number>;
  ledger: { reason: string; count: number }[];
}

const runTlb = async (extra: string[]): Promise<RunDoc> => {
  const r = await nestlabAsync(["run", "--workload", "tlb", "--iters", "500", "--json", ...extra]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as RunDoc;
};

const charged = (d: RunDoc, reason: string) =>
  d.ledger.filter((l) => l.reason === reason).reduce((a, l) => a + l.count, 0);

describe("--cache-model", () => {
  it("on by default: references by cache level; off: the flat mmu.walk_ref, no dcache counters", async () => {
    const byDefault = await runTlb([]);
    const on = await runTlb(["--cache-model", "on"]);
    const off = await runTlb(["--cache-model", "off"]);
    expect(byDefault.counters).toEqual(on.counters);
    expect(on.counters["dcache.walk_l2"]).toBeGreaterThan(0);
    expect(charged(on, "walk_ref")).toBe(0);
    expect(Object.keys(off.counters).filter((k) => k.startsWith("dcache."))).toEqual([]);
    expect(charged(off, "walk_l1d") + charged(off, "walk_l2")).toBe(0);
    // The native CPU's walks only: each reference read is one walk_ref charge.
    expect(charged(off, "walk_ref")).toBe(off.counters["mmu.walk_refs"]);
    expect(charged(off, "pmh_walk")).toBe(off.counters["mmu.walks"]);
  }, 60_000);

  it("refuses a mode that does not exist", async () => {
    const r = await nestlabAsync(["run", "--workload", "tlb", "--cache-model", "maybe"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--cache-model.*maybe.*Allowed choices are on, off/s);
  });
});
