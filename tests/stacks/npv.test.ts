import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { npvSummary, runJson } from "../../src/cli/run.js";
import { packageRoot } from "../../src/paths.js";
import { STACKS } from "../../src/stacks/index.js";
import { npvStack } from "../../src/stacks/npv.js";
import type { StackRunResult } from "../../src/stacks/stack.js";

const kernel = new Uint8Array(readFileSync(join(packageRoot(), "guests/images/kernel.elf")));

function run(cmdline: string, npvMap: "eager" | "demand" = "demand"): StackRunResult {
  return npvStack.run({ image: kernel, cmdline, memory: 256 * 1024 * 1024, maxInstructions: 200_000_000, npvMap });
}

function expectPassed(r: StackRunResult, w: string): void {
  expect(r.outcome.kind, `${r.outcome.message}\n${r.serial.slice(-2000)}`).toBe("debug-exit");
  expect(r.exitStatus).toBe(1);
  expect(r.guest.failures).toEqual([]);
  const res = r.guest.results.find((x) => x.name === w);
  expect(res, r.serial).toBeDefined();
  expect(res!.fields.skipped).toBeUndefined();
  expect(res!.fields.iterations as number).toBeGreaterThan(0);
  expect(r.serial).toContain("DONE status=0");
  expect(r.serial).toContain("boot=direct64");
}

/** Sum of counters whose key starts with `prefix`. */
function sum(r: StackRunResult, prefix: string): number {
  let n = 0;
  for (const [k, v] of Object.entries(r.counters)) if (k.startsWith(prefix)) n += v;
  return n;
}

const WORKLOADS = [
  "syscall",
  "pagefault",
  "fork",
  "ctxsw",
  "exec",
  "cpuid",
  "msr",
  "exception",
  "pio",
  "io",
  "tlb",
  "compute",
];

describe("npv stack: every workload completes in L2 with its self-checks passing", () => {
  it("is registered", () => {
    expect(STACKS.get("npv")).toBe(npvStack);
  });
  for (const w of WORKLOADS) {
    it(w, () => {
      const r = run(`workload=${w}`);
      expectPassed(r, w);
      expect(r.stack).toBe("npv");
      // L2 ran under L0 on L1's behalf: L1 was woken (at least for the console and the debug-exit port).
      expect(r.counters["exits.L1.io"]).toBeGreaterThan(0);
      expect(r.counters["npv.hypercalls.run"]).toBeGreaterThan(0);
    });
  }
});

describe("npv stack: eager and on-demand mapping", () => {
  for (const w of ["pagefault", "fork", "io"]) {
    it(`${w} passes both ways; only on-demand mapping forwards memory faults to L1`, () => {
      const d = run(`workload=${w}`, "demand");
      const e = run(`workload=${w}`, "eager");
      expectPassed(d, w);
      expectPassed(e, w);
      expect(d.counters["exits.L1.memory_fault"]).toBeGreaterThan(0);
      expect(d.counters["l1.map.demand_pages"]).toBeGreaterThan(0);
      expect(e.counters["exits.L1.memory_fault"] ?? 0).toBe(0);
      expect(e.counters["l1.map.extents"]).toBe(1);
      expect(e.counters["l1.map.mapped_pages"]).toBe(65536);
      // Same guest behaviour either way.
      const lines = (r: StackRunResult) => r.guest.results.map((x) => ({ ...x.fields, cycles_per_iter: 0, cycles: 0 }));
      expect(lines(e)).toEqual(lines(d));
    });
  }
});

describe("npv stack: who handles what", () => {
  it("cpuid: L0 answers from L1's policy, no event reaches L1 per iteration", () => {
    const a = run("workload=cpuid iters=1000");
    const b = run("workload=cpuid iters=2000");
    expectPassed(a, "cpuid");
    expectPassed(b, "cpuid");
    // Only the console may differ (a result line a few characters longer): well under 0.01 per iteration.
    const io = b.counters["exits.L1.io"] - a.counters["exits.L1.io"];
    expect(sum(b, "exits.L1.") - sum(a, "exits.L1.") - io).toBe(0);
    expect(io / 1000).toBeLessThan(0.01);
    expect(b.counters["exits.L0.cpuid"] - a.counters["exits.L0.cpuid"]).toBeGreaterThanOrEqual(1000);
    expect(b.counters["npv.l2_exits.l0.cpuid"] - a.counters["npv.l2_exits.l0.cpuid"]).toBe(1000);
  });

  it("pio: every OUT to port 0x80 reaches L1's device model", () => {
    const a = run("workload=pio iters=1000");
    const b = run("workload=pio iters=2000");
    expectPassed(a, "pio");
    expectPassed(b, "pio");
    const perIter = (b.counters["exits.L1.io"] - a.counters["exits.L1.io"]) / 1000;
    expect(perIter).toBeGreaterThanOrEqual(1);
  });

  it("io: the mediated block data path involves L1 in no request", () => {
    const a = run("workload=io iters=50");
    const b = run("workload=io iters=100");
    expectPassed(a, "io");
    expectPassed(b, "io");
    expect(b.counters["npv.hypercalls.blk_setup"]).toBe(1);
    expect(b.counters["l1.blk.mediated"]).toBe(1);
    // Every request went through L0's mediated device: notified, walked and completed by L0.
    const requests = b.counters["npv.blk.requests"] - a.counters["npv.blk.requests"];
    expect(requests).toBeGreaterThanOrEqual(100);
    expect(b.counters["npv.l2_exits.l0.blk_notify"] - a.counters["npv.l2_exits.l0.blk_notify"]).toBe(requests);
    // No notification, no request, no buffer ever reached L1 (its DMA throws if touched).
    expect(b.counters["l1.blk.notifies_seen"]).toBe(0);
    // The per-request registers (QueueNotify, InterruptStatus, InterruptACK) are L0's too, so
    // nothing reaching L1 grows with the request count but the serial console (port I/O: two
    // exits per character, and the longer run prints a few more).
    expect(b.counters["npv.l2_exits.l0.blk_isr"] - a.counters["npv.l2_exits.l0.blk_isr"]).toBeGreaterThanOrEqual(
      requests,
    );
    const io = b.counters["exits.L1.io"] - a.counters["exits.L1.io"];
    const mmio = (b.counters["exits.L1.mmio"] ?? 0) - (a.counters["exits.L1.mmio"] ?? 0);
    expect(mmio).toBe(0); // no register access of the device reaches L1 once it is mediated
    // Besides the console, only on-demand memory faults and TIMESLICE returns (the longer run
    // touches a page more and runs longer), neither per request.
    const slices = (b.counters["exits.L1.timeslice"] ?? 0) - (a.counters["exits.L1.timeslice"] ?? 0);
    const other = sum(b, "exits.L1.") - sum(a, "exits.L1.") - io - mmio - slices;
    expect(other).toBe((b.counters["exits.L1.memory_fault"] ?? 0) - (a.counters["exits.L1.memory_fault"] ?? 0));
    expect(other).toBeLessThanOrEqual(2);
    expect(b.counters["l1.blk.isr_reads"]).toBe(0);
    expect(io).toBeLessThanOrEqual(2 * (b.serial.length - a.serial.length));
  });
});

describe("npv stack: reporting", () => {
  it("the run summary splits L2 exits (L0 alone / forwarded to L1) and lists L1's hypercalls by number", () => {
    const r = run("workload=pio iters=100");
    expectPassed(r, "pio");
    const s = npvSummary(r.counters);
    expect(s).toMatch(/L2 exits handled by L0 alone: [\d,]+ \(.*ept02_compose/);
    expect(s).toMatch(/L2 exits forwarded to L1: +[\d,]+ \(io [\d,]+/);
    expect(s).toMatch(/0x109 run [\d,]+/);
    expect(s).toContain("0x100 vm_create 1");
    expect(npvSummary({ "cpu.instructions": 1 })).toBe("");
  });
  it("refuses an L2 whose L1 would not fit below the MMIO hole, and a multiboot L2", () => {
    expect(() => npvStack.run({ image: kernel, cmdline: "", memory: 0xfeb00000, maxInstructions: 1000 })).toThrow(
      /at most/,
    );
    expect(() =>
      npvStack.run({ image: kernel, cmdline: "", memory: 64 << 20, maxInstructions: 1000, protocol: "multiboot" }),
    ).toThrow(/64-bit/);
  });
});

describe("npv stack: determinism", () => {
  it("gives identical JSON (counters, cycles, ledger, results) on two runs", () => {
    const strip = (r: StackRunResult) => {
      const j = runJson(r, "x") as Record<string, unknown>;
      delete j.wallSeconds;
      return JSON.stringify(j);
    };
    const a = strip(run("workload=fork,io,cpuid"));
    const b = strip(run("workload=fork,io,cpuid"));
    expect(a).toBe(b);
  });

  it("the ledger sums to the clock and puts the guest's instructions at level 2", () => {
    const r = run("workload=syscall");
    const total = r.ledger!.reduce((s, l) => s + l.cycles, 0);
    expect(Math.abs(total - r.cycles) / r.cycles).toBeLessThan(1e-9);
    const insn = r.ledger!.find((l) => l.category === "guest" && l.reason === "instructions");
    expect(insn?.level).toBe(2);
    expect(r.ledger!.some((l) => l.level === 1 && l.category === "l1")).toBe(true);
  });
});
