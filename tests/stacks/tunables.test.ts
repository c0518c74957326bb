/** Tunables reach the stacks through their options (and bad values are refused). */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Tunables } from "../../src/machine/tunables.js";
import { DEFAULT_TUNABLES, tunables } from "../../src/machine/tunables.js";
import { bundledKernelPath } from "../../src/paths.js";
import { getStack } from "../../src/stacks/index.js";
import { eventCount, exitCount } from "../../src/stats/run-stats.js";

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
    expect(() => tunables({ npvSlice: 1.5 })).toThrow(/npvSlice/);
  });

  it("the npv slice comes from the stack options", () => {
    const a = npv({});
    const b = npv({ npvSlice: 2_000 });
    expect(a.exitStatus).toBe(1);
    expect(b.exitStatus).toBe(1);
    // A shorter slice: more TIMESLICE returns to L1 (each one more RUN hypercall).
    const slices = (r: typeof a) => exitCount(r.exits, 1, "timeslice");
    expect(slices(b)).toBeGreaterThan(slices(a));
    expect(eventCount(b.events, "npv.hypercalls", "run") - eventCount(a.events, "npv.hypercalls", "run")).toBe(
      slices(b) - slices(a),
    );
  });
});
