/**
 * The npv fuzzer (tools/fuzz-npv) as a test: 100,000 random and hostile hypercalls from two L1s,
 * L0's consistency and the EPT02 rules checked after every call. Any violation fails the test.
 */
import { describe, expect, it } from "vitest";
import { fuzz } from "../../tools/fuzz-npv/fuzz.js";

describe("npv fuzzer", () => {
  it("100,000 calls, no violations", () => {
    const r = fuzz({ calls: 100_000, seed: 1 });
    expect(r.messages).toEqual([]);
    expect(r.violations).toBe(0);
    // The run exercised the interesting paths.
    expect(r.statuses.ok).toBeGreaterThan(10_000);
    for (const s of ["E_INVAL", "E_NOENT", "E_NOMEM", "E_FAULT", "E_EXIST", "E_RANGE", "E_NOSYS", "E_STATE"])
      expect(r.statuses[s]).toBeGreaterThan(0);
    expect(r.runs).toBeGreaterThan(1000);
  }, 300_000);

  it("is deterministic from the seed", () => {
    const a = fuzz({ calls: 3000, seed: 7 });
    const b = fuzz({ calls: 3000, seed: 7 });
    expect(a.statuses).toEqual(b.statuses);
    expect(a.exits).toEqual(b.exits);
  });
});
