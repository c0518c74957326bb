/**
 * The browser page's live recorder, in Node: what it has counted when a run ends is what the
 * stack reports for the run (exits by reason, the ledger by level and category), and its ring
 * holds the latest slices in the order they closed. These check the page's wiring, not the model's fidelity.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { bundledKernelPath } from "../../src/paths.js";
import { workloadCmdline } from "../../src/report/workloads.js";
import { getStack } from "../../src/stacks/index.js";
import { LIVE_SLICES, LiveRecorder, type LiveSnapshot } from "../../src/web/live-recorder.js";

const image = new Uint8Array(readFileSync(bundledKernelPath()));

function runLive(stack: string) {
  const snaps: LiveSnapshot[] = [];
  const rec = new LiveRecorder((s) => snaps.push(s), 0);
  const r = getStack(stack).run({
    image,
    cmdline: workloadCmdline("cpuid", 50),
    memory: 64 * 1024 * 1024,
    maxInstructions: 200_000_000,
    trace: rec,
  });
  return { r, snaps, last: snaps[snaps.length - 1] };
}

describe("the live recorder (wiring)", () => {
  for (const stack of ["vm", "npv"]) {
    it(`ends a cpuid run on ${stack} with the stack's own exit counts and ledger`, () => {
      const { r, snaps, last } = runLive(stack);
      expect(r.exitStatus).toBe(1);
      expect(snaps.length).toBeGreaterThan(1);
      expect(last.cycles).toBe(r.cycles);
      // Every exit L0's core took, whichever guest level took it, is one L0-handled exit.
      const byReason: Record<string, number> = {};
      for (const e of last.exits) byReason[e.reason] = (byReason[e.reason] ?? 0) + e.count;
      const l0: Record<string, number> = {};
      for (const e of r.exits) if (e.handledBy === 0) l0[e.reason] = (l0[e.reason] ?? 0) + e.count;
      expect(byReason).toEqual(l0);
      // By the level that took them, as the stack reports them.
      const taken = (xs: { takenAt: number; reason: string; count: number }[]) =>
        Object.fromEntries(xs.map((e) => [`${e.takenAt}.${e.reason}`, e.count]));
      expect(taken(last.exits)).toEqual(taken(r.exits.filter((e) => e.handledBy === 0)));
      const ledger: Record<string, number> = {};
      for (const l of r.ledger ?? [])
        ledger[`${l.level}/${l.category}`] = (ledger[`${l.level}/${l.category}`] ?? 0) + l.cycles;
      expect(last.ledger).toEqual(ledger);
      expect(last.slices.length).toBe(LIVE_SLICES);
      // Slices are emitted as they close, so the ring is in order of end time and ends at the clock.
      const ends = last.slices.map((s) => s.start + s.dur);
      expect(ends).toEqual([...ends].sort((a, b) => a - b));
      expect(ends[ends.length - 1]).toBeLessThanOrEqual(r.cycles);
      // The kernel's 50 measured CPUIDs and 2 of its own, from the guest the stack runs the kernel in.
      const cpuid = last.exits.find((e) => e.reason === "cpuid" && e.takenAt === (stack === "vm" ? 1 : 2));
      expect(cpuid?.count).toBe(52);
    }, 60_000);
  }
});
