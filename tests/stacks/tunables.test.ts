/** Tunables reach the stacks through their options (and bad values are refused). */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Tunables } from "../../src/machine/tunables.js";
import { DEFAULT_TUNABLES, tunables } from "../../src/machine/tunables.js";
import { bundledKernelPath } from "../../src/paths.js";
import { getStack } from "../../src/stacks/index.js";

const kernel = new Uint8Array(readFileSync(bundledKernelPath()));

function npv(t: Partial<Tunables>) {
  return getStack("npv").run({
    image: kernel,
    cmdline: "workload=pagefault iters=50",
    memory: 64 * 1024 * 1024,
    maxInstructions: 50_000_000,
    tunables: t,
  });
}

describe("tunables", () => {
  it("defaults, overrides and checks", () => {
    expect(tunables()).toEqual(DEFAULT_TUNABLES);
    expect(tunables({ npvSlice: 5 }).npvSlice).toBe(5);
    expect(() => tunables({ runSlice: 0 })).toThrow(/runSlice/);
    expect(() => tunables({ l1Scratch: { base: 0x100000, size: -1 } })).toThrow(/l1Scratch/);
  });

  it("the npv fault batch and slice come from the stack options", () => {
    const a = npv({});
    const b = npv({ faultBatchPages: 1, npvSlice: 2_000 });
    expect(a.exitStatus).toBe(1);
    expect(b.exitStatus).toBe(1);
    // One page per MEMORY_FAULT instead of eight: many more faults; a shorter slice: more TIMESLICEs.
    expect(b.counters["exits.L1.memory_fault"]).toBeGreaterThan(4 * a.counters["exits.L1.memory_fault"]);
    expect(b.counters["exits.L1.timeslice"] ?? 0).toBeGreaterThan(a.counters["exits.L1.timeslice"] ?? 0);
  });
});
