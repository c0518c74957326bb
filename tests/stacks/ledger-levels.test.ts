/**
 * Per-level accounting: the CPU attributes retired instructions to the level whose code ran
 * them (the VMCS's level in non-root operation) at every VM entry and exit, so on every stack
 * the ledger's per-level instruction counts sum to the CPU's count, each at the right level.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { bundledKernelPath } from "../../src/paths.js";
import { getStack } from "../../src/stacks/index.js";

const kernel = new Uint8Array(readFileSync(bundledKernelPath()));
/** The level whose code the guest kernel is on each stack. */
const GUEST_LEVEL: Record<string, number> = { native: 0, vm: 1, npv: 2 };
/** The level of an executed L1 hypervisor below the guest, where there is one. */
const L1_LEVEL: Record<string, number> = { npv: 1 };

describe("ledger: instructions by level", () => {
  for (const stack of Object.keys(GUEST_LEVEL)) {
    for (const workload of ["cpuid", "io", "pagefault"]) {
      it(`${workload} on ${stack}`, () => {
        const r = getStack(stack).run({
          image: kernel,
          cmdline: `workload=${workload} iters=50`,
          memory: 64 * 1024 * 1024,
          maxInstructions: 50_000_000,
        });
        expect(r.exitStatus).toBe(1);
        const byLevel: Record<number, number> = {};
        for (const l of r.ledger ?? []) {
          if (l.category === "guest" && l.reason === "instructions")
            byLevel[l.level] = (byLevel[l.level] ?? 0) + l.count;
        }
        const l1 = L1_LEVEL[stack];
        if (l1 === undefined) expect(byLevel).toEqual({ [GUEST_LEVEL[stack]]: r.instructions });
        else {
          // The executed L1's instructions at its level, the guest's at its own; together, all.
          expect(Object.keys(byLevel).map(Number)).toEqual([l1, GUEST_LEVEL[stack]]);
          expect(byLevel[l1]).toBeGreaterThan(0);
          expect(byLevel[l1] + byLevel[GUEST_LEVEL[stack]]).toBe(r.instructions);
        }
        // Every cycle on the clock is attributed somewhere.
        const total = (r.ledger ?? []).reduce((s, l) => s + l.cycles, 0);
        expect(total).toBeCloseTo(r.cycles, 3);
      });
    }
  }
});
