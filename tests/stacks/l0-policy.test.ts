/**
 * L0's policy is the same on every stack (issue 13 §4 "same policy unless the design differs"):
 * #UD is intercepted by default on vm and npv alike, `interceptUd: false` turns it off on both,
 * and the vm stack's virtio interrupt-status registers move from userspace to L0's kernel with
 * `vmVirtio: "kernel"` (the path npv's mediated device has). Exact counts from 100 iterations.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadProfile } from "../../src/cost/profile.js";
import { DEFAULT_L0_POLICY, type L0Policy, l0Policy } from "../../src/machine/tunables.js";
import { bundledKernelPath } from "../../src/paths.js";
import { getStack } from "../../src/stacks/index.js";
import type { StackRunResult } from "../../src/stacks/stack.js";
import { exitCount } from "../../src/stats/run-stats.js";

const kernel = new Uint8Array(readFileSync(bundledKernelPath()));

function run(stack: string, cmdline: string, l0: Partial<L0Policy>): StackRunResult {
  return getStack(stack).run({ image: kernel, cmdline, memory: 256 * 1024 * 1024, maxInstructions: 100_000_000, l0 });
}

function ledgerLine(r: StackRunResult, reason: string): { cycles: number; count: number } {
  const l = (r.ledger ?? []).find((x) => x.level === 0 && x.category === "handler" && x.reason === reason);
  return { cycles: l?.cycles ?? 0, count: l?.count ?? 0 };
}

describe("L0 policy: the same defaults on every stack, each difference an option", () => {
  it("defaults: #UD intercepted, virtio status registers in userspace; undefined keeps a default", () => {
    expect(DEFAULT_L0_POLICY).toEqual({ interceptUd: true, vmVirtio: "user", eptPages: "4k" });
    expect(l0Policy({ interceptUd: undefined, vmVirtio: "kernel" })).toEqual({
      interceptUd: true,
      vmVirtio: "kernel",
      eptPages: "4k",
    });
  });

  // The exit is the guest kernel's: at level 1 on vm (counted as L0's), level 2 on npv.
  for (const [stack, tag, takenAt] of [
    ["vm", "", 1],
    ["npv", "npv_", 2],
  ] as const) {
    it(`${stack}: each UD2 of the exception workload exits to L0 by default, none with the intercept off`, () => {
      const on = run(stack, "workload=exception iters=100", {});
      const off = run(stack, "workload=exception iters=100", { interceptUd: false });
      expect(on.exitStatus).toBe(1);
      expect(off.exitStatus).toBe(1);
      expect(exitCount(on.exits, 0, "exception_nmi", takenAt)).toBe(100);
      expect(ledgerLine(on, `${tag}exception_6`).count).toBe(100);
      expect(exitCount(off.exits, 0, "exception_nmi")).toBe(0);
      expect(ledgerLine(off, `${tag}exception_6`).count).toBe(0);
      // The guest's handler ran 100 times either way.
      expect(on.counters["cpu.exceptions"]).toBe(off.counters["cpu.exceptions"]);
    });
  }

  it("vm: --vm-virtio kernel drops the userspace hop of every InterruptStatus read and InterruptACK write", () => {
    const user = run("vm", "workload=io iters=10 tick=0", {});
    const kern = run("vm", "workload=io iters=10 tick=0", { vmVirtio: "kernel" });
    expect(user.exitStatus).toBe(1);
    expect(kern.exitStatus).toBe(1);
    // Same exits either way (the registers still exit; tick=0: no timer EOIs, whose number follows
    // simulated time); only where L0 completes them differs.
    expect(exitCount(kern.exits, 0, "ept_misconfig")).toBe(exitCount(user.exits, 0, "ept_misconfig"));
    const u = ledgerLine(user, "mmio_virtio-blk");
    const k = ledgerLine(kern, "mmio_virtio-blk");
    // Each virtio-blk MMIO exit charges l0.io_kernel; those that go to QEMU add l0.userspace_hop.
    expect([u.count, k.count]).toEqual([156, 116]);
    expect(u.cycles - k.cycles).toBe((u.count - k.count) * loadProfile().cost("l0.userspace_hop"));
  });
});
