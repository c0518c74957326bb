import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { npvSummary, runJson } from "../../src/cli/run.js";
import { packageRoot } from "../../src/paths.js";
import { EVERY_WORKLOAD } from "../../src/report/workloads.js";
import { STACKS } from "../../src/stacks/index.js";
import { npvStack } from "../../src/stacks/npv.js";
import type { StackRunResult } from "../../src/stacks/stack.js";
import { eventCount, exitTotal } from "../../src/stats/run-stats.js";

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

/** Exits L0 handled that code at `level` took (of one reason, or all). */
function taken(r: StackRunResult, level: number, reason?: string): number {
  return exitTotal(
    r.exits,
    (e) => e.handledBy === 0 && e.takenAt === level && (reason === undefined || e.reason === reason),
  );
}

/** One event's count (a family of the npv engine's, or the hypervisor's). */
const ev = (r: StackRunResult, family: string, name: string) => eventCount(r.events, family, name);

/** Every workload that reports one RESULT: compare's suite and wrmsr. */
const WORKLOADS = EVERY_WORKLOAD;

/** L2 exits L0 forwarded to L1 (handled by L1: npv exit codes), of one reason or all. */
function forwarded(r: StackRunResult, name?: string): number {
  return exitTotal(r.exits, (e) => e.handledBy === 1 && e.space === "npv" && (name === undefined || e.reason === name));
}

describe("npv stack: every workload completes in L2 under the executed L1, its self-checks passing", () => {
  it("is registered", () => {
    expect(STACKS.get("npv")).toBe(npvStack);
  });
  for (const w of WORKLOADS) {
    it(w, () => {
      const r = run(`workload=${w}`);
      expectPassed(r, w);
      expect(r.stack).toBe("npv");
      expect(r.serial).toContain("l1hv: backend=npv");
      // L1 is code that runs: its RUN hypercalls are its own VMCALL exits (level 1), and L2's
      // console reached L1's device model (IO forwarded) and L1's own UART (L1's I/O exits).
      expect(taken(r, 1, "vmcall")).toBeGreaterThanOrEqual(ev(r, "npv.hypercalls", "run"));
      expect(forwarded(r, "io")).toBeGreaterThan(0);
      expect(taken(r, 1, "io_instruction")).toBeGreaterThan(0);
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
      expect(d.serial).toContain("map=demand");
      expect(e.serial).toContain("map=eager");
      expect(forwarded(d, "memory_fault")).toBeGreaterThan(0);
      // Demand: one MAP per fault (an aligned group of 8 pages, less what is mapped already).
      expect(ev(d, "npv.hypercalls", "map")).toBe(forwarded(d, "memory_fault"));
      expect(forwarded(e, "memory_fault")).toBe(0);
      // Eager: all 256 MiB of L2 RAM in one MAP, composed into EPT02 at once.
      expect(ev(e, "npv.hypercalls", "map")).toBe(1);
      expect(ev(e, "npv.map.pages", "l1_1.vm1")).toBe(65536);
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
    expect(ev(b, "npv.l2_exits.l0", "cpuid") - ev(a, "npv.l2_exits.l0", "cpuid")).toBe(1000);
    expect(taken(b, 2, "cpuid") - taken(a, 2, "cpuid")).toBe(1000);
    // Only the console may differ (a result line a few characters longer): well under 0.01 per iteration.
    const io = forwarded(b, "io") - forwarded(a, "io");
    expect(forwarded(b) - forwarded(a) - io).toBe(0);
    expect(io / 1000).toBeLessThan(0.01);
  });

  it("pio: every OUT to port 0x80 reaches L1's device model", () => {
    const a = run("workload=pio iters=1000");
    const b = run("workload=pio iters=2000");
    expectPassed(a, "pio");
    expectPassed(b, "pio");
    expect((forwarded(b, "io") - forwarded(a, "io")) / 1000).toBeGreaterThanOrEqual(1);
    // Each forwarded OUT costs L1 one RUN hypercall more.
    expect(ev(b, "npv.hypercalls", "run") - ev(a, "npv.hypercalls", "run")).toBeGreaterThanOrEqual(1000);
  });

  it("io: the mediated block data path involves L1 in no request", () => {
    const a = run("workload=io iters=50");
    const b = run("workload=io iters=100");
    expectPassed(a, "io");
    expectPassed(b, "io");
    expect(ev(b, "npv.hypercalls", "blk_setup")).toBe(1);
    // Every request went through L0's mediated device: notified, walked and completed by L0.
    const requests = ev(b, "npv", "blk.requests") - ev(a, "npv", "blk.requests");
    expect(requests).toBeGreaterThanOrEqual(100);
    expect(ev(b, "npv.l2_exits.l0", "blk_notify") - ev(a, "npv.l2_exits.l0", "blk_notify")).toBe(requests);
    expect(ev(b, "npv.l2_exits.l0", "blk_isr") - ev(a, "npv.l2_exits.l0", "blk_isr")).toBeGreaterThanOrEqual(requests);
    // No register access of the device reaches L1 once it is mediated; besides the console only
    // on-demand memory faults and TIMESLICE returns differ, neither per request.
    expect(forwarded(b, "mmio") - forwarded(a, "mmio")).toBe(0);
    const io = forwarded(b, "io") - forwarded(a, "io");
    const other = forwarded(b) - forwarded(a) - io - (forwarded(b, "timeslice") - forwarded(a, "timeslice"));
    expect(other).toBe(forwarded(b, "memory_fault") - forwarded(a, "memory_fault"));
    expect(other).toBeLessThanOrEqual(2);
    expect(io).toBeLessThanOrEqual(2 * (b.serial.length - a.serial.length));
  });
});

describe("npv stack: reporting", () => {
  it("the run summary splits L2 exits (L0 alone / forwarded to L1) and lists L1's hypercalls by number", () => {
    const r = run("workload=pio iters=100");
    expectPassed(r, "pio");
    const s = npvSummary(r);
    expect(s).toMatch(/L2 exits handled by L0 alone: [\d,]+ \(.*ept02_compose/);
    expect(s).toMatch(/L2 exits forwarded to L1: +[\d,]+ \(io [\d,]+/);
    expect(s).toMatch(/0x109 run [\d,]+/);
    expect(s).toContain("0x100 vm_create 1");
    expect(npvSummary({ exits: [], events: [] })).toBe("");
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

describe("npv stack: determinism and levels", () => {
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

  it("the ledger sums to the clock; L1's executed instructions at level 1, L2's at level 2; exits by level", () => {
    const r = run("workload=syscall");
    const total = r.ledger!.reduce((s, l) => s + l.cycles, 0);
    expect(Math.abs(total - r.cycles) / r.cycles).toBeLessThan(1e-9);
    const insn: Record<number, number> = {};
    for (const l of r.ledger!) if (l.category === "guest" && l.reason === "instructions") insn[l.level] = l.count;
    expect(Object.keys(insn)).toEqual(["1", "2"]);
    expect(insn[1] + insn[2]).toBe(r.instructions);
    expect(insn[1]).toBeGreaterThan(0);
    // No constant stands for L1's work any more.
    expect(r.ledger!.some((l) => l.category === "l1")).toBe(false);
    // `exits` by the level that handled them (0: L0, 1: L2 exits returned to L1); who took each
    // exit (L1's code or L2's) in takenAt; the forwarded ones were taken by L2 and are npv exits.
    expect(new Set(r.exits.map((e) => e.handledBy))).toEqual(new Set([0, 1]));
    const l0 = exitTotal(r.exits, (e) => e.handledBy === 0);
    expect(l0).toBe(taken(r, 1) + taken(r, 2));
    expect(taken(r, 1)).toBeGreaterThan(0);
    expect(taken(r, 2)).toBeGreaterThan(0);
    const l1 = r.exits.filter((e) => e.handledBy === 1);
    expect(l1.every((e) => e.takenAt === 2 && e.space === "npv")).toBe(true);
    // The flat map, made once from these, agrees (one row per reason: all taken at level 2).
    for (const e of l1) expect([e.reason, r.counters[`exits.L1.${e.reason}`]]).toEqual([e.reason, e.count]);
  });
});
