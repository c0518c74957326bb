/**
 * The `bare-l1` stack: the executed L1 hypervisor (guests/l1hv, vmx back end) on the bare VMX
 * machine runs the guest kernel as L2. Every workload passes; L2 takes the same exits, reason
 * for reason, as under the `vm` stack's L0 (the mechanism is the same: KVM-like controls, EPT
 * with 4 KiB leaves filled on violations, MMIO as misconfigured entries, #UD intercepted) once
 * the timer is off (tick=0: timer-driven exits follow simulated time, which differs) and the
 * serial bytes, whose count differs only by the digits L2 prints, are taken out; runs are
 * deterministic.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";
import { bareL1Stack } from "../../src/stacks/bare-l1.js";
import type { StackRunResult } from "../../src/stacks/stack.js";
import { vmStack } from "../../src/stacks/vm.js";
import { exitCount } from "../../src/stats/run-stats.js";

const kernel = new Uint8Array(readFileSync(join(packageRoot(), "guests/images/kernel.elf")));
const MEM = 64 * 1024 * 1024;

function run(stack: "vm" | "bare-l1", cmdline: string): StackRunResult {
  const s = stack === "vm" ? vmStack : bareL1Stack;
  return s.run({ image: kernel, cmdline, memory: MEM, maxInstructions: 200_000_000 });
}

/** Exits by reason; io_instruction less the two COM1 exits (LSR poll, THR write) per byte L2 printed;
 * without L1's own timer's external-interrupt exits. */
function l2Exits(r: StackRunResult): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of r.exits) out[e.reason] = (out[e.reason] ?? 0) + e.count;
  const l2Serial = r.serial
    .split("\n")
    .filter((l) => !l.startsWith("l1hv:"))
    .join("\n");
  out.io_instruction -= 2 * new TextEncoder().encode(l2Serial).length;
  // L1's own scheduler tick interrupts L2 (an external-interrupt exit L1 acknowledged): L1's
  // event, not L2's; nestlab's L0 has no host tick.
  delete out.external_interrupt;
  return out;
}

function expectPassed(r: StackRunResult, w: string): void {
  expect(r.outcome.kind, `${r.outcome.message}\n${r.serial}`).toBe("debug-exit");
  expect(r.exitStatus).toBe(1);
  expect(r.guest.failures).toEqual([]);
  const res = r.guest.results.find((x) => x.name === w);
  expect(res, r.serial).toBeDefined();
  expect(res!.fields.skipped).toBeUndefined();
}

const WORKLOADS: [string, number][] = [
  ["syscall", 200],
  ["pagefault", 100],
  ["fork", 10],
  ["ctxsw", 50],
  ["exec", 10],
  ["cpuid", 200],
  ["msr", 200],
  ["wrmsr", 200],
  ["exception", 200],
  ["pio", 200],
  ["io", 8],
  ["tlb", 500],
  ["compute", 1],
];

describe("bare-l1: every workload passes, with the vm stack's exits", () => {
  for (const [w, n] of WORKLOADS) {
    it(`${w}`, { timeout: 60_000 }, () => {
      const cmd = `workload=${w} iters=${n} tick=0`;
      const l1 = run("bare-l1", cmd);
      expectPassed(l1, w);
      expect(l1.exits.every((e) => e.handledBy === 1 && e.takenAt === 2)).toBe(true);
      expect(l2Exits(l1)).toEqual(l2Exits(run("vm", cmd)));
    });
  }
});

describe("bare-l1: virtio-blk interrupts (blkirq=11) take the vm stack's exits too", () => {
  it("io", { timeout: 60_000 }, () => {
    const cmd = "workload=io iters=8 tick=0 blkirq=11";
    const l1 = run("bare-l1", cmd);
    expectPassed(l1, "io");
    expect(l2Exits(l1)).toEqual(l2Exits(run("vm", cmd)));
  });
});

describe("bare-l1: timer, accounting, determinism", () => {
  it("L2's LAPIC timer reaches it through the preemption timer (the default tick)", { timeout: 60_000 }, () => {
    const r = run("bare-l1", "workload=compute iters=10");
    expectPassed(r, "compute");
    const exits = Object.fromEntries(r.exits.map((e) => [e.reason, e.count]));
    expect(exits.preemption_timer).toBeGreaterThan(0);
    const stats = r.serial.match(/STATS name=compute ticks=(\d+)/);
    expect(Number(stats?.[1])).toBeGreaterThan(0);
  });

  it("reports instructions and cycles per level, adding up, and runs deterministically", { timeout: 60_000 }, () => {
    const a = run("bare-l1", "workload=cpuid iters=100");
    const b = run("bare-l1", "workload=cpuid iters=100");
    expect(a.counters).toEqual(b.counters);
    expect(a.cycles).toBe(b.cycles);
    const c = a.counters;
    expect(c["level1.instructions"] + c["level2.instructions"]).toBe(a.instructions);
    expect(c["level1.cycles"] + c["level2.cycles"]).toBe(a.cycles);
    // each L2 CPUID is one exit that L1's executed handler answers: more exits, more L1 instructions
    const more = run("bare-l1", "workload=cpuid iters=200");
    expect(exitCount(more.exits, 1, "cpuid") - exitCount(a.exits, 1, "cpuid")).toBe(100);
    const perExit = (more.counters["level1.instructions"] - c["level1.instructions"]) / 100;
    expect(perExit).toBeGreaterThan(20);
    expect(more.counters["level2.instructions"] - c["level2.instructions"]).toBeLessThan(100 * perExit);
  });
});
