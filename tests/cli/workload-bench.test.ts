/**
 * `nestlab bench workloads`: each cell runs interpreted and compiled and says whether every
 * simulated figure agreed; unknown names are refused before anything runs. (MIPS themselves are
 * wall-clock figures of the host: not asserted here.)
 */
import { describe, expect, it } from "vitest";
import { benchWorkloads, checkWorkloadBench } from "../../src/report/workload-bench.js";
import { UnknownWorkloadError } from "../../src/report/workloads.js";
import { UnknownStackError } from "../../src/stacks/stack.js";

const base = { iters: 20, runs: 1, memory: 256 * 1024 * 1024 };

describe("bench workloads", () => {
  it("runs a cell both ways with identical simulated results", () => {
    const rows = benchWorkloads({ ...base, stacks: ["native", "vm"], workloads: ["cpuid"] });
    expect(rows.map((r) => [r.stack, r.workload, r.identical])).toEqual([
      ["native", "cpuid", true],
      ["vm", "cpuid", true],
    ]);
    for (const r of rows) {
      expect(r.instructions).toBeGreaterThan(40_000); // the kernel boots in about 50,000
      expect(r.jit).toBeGreaterThan(0);
      expect(r.interpreter).toBeGreaterThan(0);
    }
  });

  it("refuses an unknown stack or workload before running", () => {
    expect(() => checkWorkloadBench({ ...base, stacks: ["nope"], workloads: ["cpuid"] })).toThrow(UnknownStackError);
    expect(() => checkWorkloadBench({ ...base, stacks: ["native"], workloads: ["nope"] })).toThrow(
      UnknownWorkloadError,
    );
  });
});
