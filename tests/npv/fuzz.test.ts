/**
 * The npv fuzzer (tools/fuzz-npv) as a test: 100,000 (4 seeds × 25,000) random and hostile hypercalls from two L1s,
 * L0's consistency and the EPT02 rules checked after every call. Any violation fails the test.
 */
import { describe, expect, it } from "vitest";
import { fuzz } from "../../tools/fuzz-npv/fuzz.js";

describe("npv fuzzer", () => {
  // 100,000 calls as four seeds of 25,000, each its own test (no single test blocks the worker
  // for long); the paths they exercise are checked over the four together.
  const statuses: Record<string, number> = {};
  let runs = 0;
  for (const seed of [1, 2, 3, 4]) {
    it(`25,000 calls of seed ${seed}, no violations`, () => {
      const r = fuzz({ calls: 25_000, seed });
      expect(r.messages).toEqual([]);
      expect(r.violations).toBe(0);
      for (const [k, n] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + n;
      runs += r.runs;
    }, 300_000);
  }

  it("the 100,000 calls exercised the interesting paths", () => {
    expect(statuses.ok).toBeGreaterThan(10_000);
    for (const s of ["E_INVAL", "E_NOENT", "E_NOMEM", "E_FAULT", "E_EXIST", "E_RANGE", "E_NOSYS", "E_STATE"])
      expect(statuses[s]).toBeGreaterThan(0);
    expect(runs).toBeGreaterThan(1000);
  });

  it("is deterministic from the seed", () => {
    const a = fuzz({ calls: 3000, seed: 7 });
    const b = fuzz({ calls: 3000, seed: 7 });
    expect(a.statuses).toEqual(b.statuses);
    expect(a.exits).toEqual(b.exits);
  });
});
