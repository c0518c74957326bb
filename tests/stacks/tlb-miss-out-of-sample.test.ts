/**
 * Out-of-sample check of the page-walk cost model (docs/cost-model.md, "TLB-miss cost"): the
 * cycles one TLB miss costs on native and under EPT come out of the data-cache model (cache
 * latencies and geometry from vendor figures) and are compared with Dune (OSDI 2012) Table 2,
 * "average cycles per TLB miss, native vs EPT: 35.8 vs 86.4" (../shared/calibration.md). No
 * primitive was set from these figures.
 *
 * The measure: the `tlb` workload (random reads over 8 MiB of 4 KiB pages) run with N and 2N
 * iterations; the difference cancels set-up and leaves N iterations of the timed loop. Cycles
 * per miss = walk charges (mmu.walk_l1d..dram) / walks, both differences.
 *
 * Tolerance reached and why: the model charges only the walker's loads, each at the latency
 * of the level it hits (this workload's page-table lines mostly hit L2), giving about 10 native
 * and 21 under EPT, 3.6x and 4.1x below Dune. Dune's Ivy Bridge figure also contains what the
 * model does not charge: the STLB lookup that precedes the walk, the page-miss handler's own
 * latency, and the pipeline stall around the miss. So the absolute figures are checked only to
 * within a factor of 4.5 of Dune's; the EPT/native ratio, in which those fixed costs partly
 * cancel, is checked to within 15% of Dune's 2.41.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { workloadCmdline } from "../../src/cli/run.js";
import { bundledKernelPath } from "../../src/paths.js";
import { STACKS } from "../../src/stacks/index.js";

const kernel = new Uint8Array(readFileSync(bundledKernelPath()));
const DUNE_NATIVE = 35.8;
const DUNE_EPT = 86.4;
const N = 16000;

function walkTotals(stack: string, iters: number): { walks: number; cycles: number } {
  const s = STACKS.get(stack);
  if (s === undefined) throw new Error(`no stack ${stack}`);
  const r = s.run({
    image: kernel,
    cmdline: workloadCmdline("tlb", iters),
    memory: 256 * 1024 * 1024,
    maxInstructions: 200_000_000,
  });
  expect(r.exitStatus).toBe(1);
  let cycles = 0;
  for (const l of r.ledger) if (l.category === "mmu" && l.reason.startsWith("walk_")) cycles += l.cycles;
  return { walks: r.counters["mmu.walks"], cycles };
}

/** Cycles per TLB miss (page walk) in N iterations of the timed loop. */
function cyclesPerMiss(stack: string): number {
  const a = walkTotals(stack, N);
  const b = walkTotals(stack, 2 * N);
  const walks = b.walks - a.walks;
  expect(walks).toBeGreaterThan(N / 10); // the loop really misses the TLB
  return (b.cycles - a.cycles) / walks;
}

describe("out of sample: TLB-miss cost from the data-cache model vs Dune (OSDI 2012) Table 2", () => {
  it("native and 2-D walks: within 4.5x of Dune's absolute figures, EPT/native ratio within 15%", () => {
    const native = cyclesPerMiss("native");
    const ept = cyclesPerMiss("vm");
    const ratio = ept / native;
    console.log(
      `TLB miss: native ${native.toFixed(2)} cycles (Dune ${DUNE_NATIVE}), EPT ${ept.toFixed(2)} (Dune ${DUNE_EPT}), ` +
        `ratio ${ratio.toFixed(2)} (Dune ${(DUNE_EPT / DUNE_NATIVE).toFixed(2)})`,
    );
    expect(native).toBeGreaterThan(DUNE_NATIVE / 4.5);
    expect(native).toBeLessThan(DUNE_NATIVE * 4.5);
    expect(ept).toBeGreaterThan(DUNE_EPT / 4.5);
    expect(ept).toBeLessThan(DUNE_EPT * 4.5);
    expect(Math.abs(ratio / (DUNE_EPT / DUNE_NATIVE) - 1)).toBeLessThan(0.15);
  }, 60_000);
});
