/**
 * The `vm` stack end to end: the bundled kernel as a single-level VM under L0. Every workload
 * passes its self-checks on both boot paths, runs are deterministic, the ledger accounts for
 * every simulated cycle, and the guest's own exit microbenchmarks read what the cost profile
 * composes for each round trip (a wiring check: the expected value comes from the same profile the
 * simulator charges, so it cannot test fidelity; docs/cost-model.md, docs/stacks/vm.md).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runJson } from "../../src/cli/run.js";
import { bundledProfiles, type LoadedProfile, loadProfile } from "../../src/cost/profile.js";
import { packageRoot } from "../../src/paths.js";
import { EVERY_WORKLOAD } from "../../src/report/workloads.js";
import { getStack, STACKS } from "../../src/stacks/index.js";
import type { StackRunResult } from "../../src/stacks/stack.js";
import { UnknownStackError } from "../../src/stacks/stack.js";
import { vmStack } from "../../src/stacks/vm.js";
import { exitCount } from "../../src/stats/run-stats.js";
import { asm, HAVE_AS } from "../helpers/asm.js";
import { elf64 } from "../helpers/elf.js";

const root = packageRoot();
const kernel = new Uint8Array(readFileSync(join(root, "guests/images/kernel.elf")));
const kernel32 = new Uint8Array(readFileSync(join(root, "guests/images/kernel32.elf")));

function run(cmdline: string, image = kernel, profile?: string): StackRunResult {
  return vmStack.run({ image, cmdline, memory: 256 * 1024 * 1024, maxInstructions: 100_000_000, profile });
}

function ledgerSum(r: StackRunResult): number {
  return (r.ledger ?? []).reduce((a, l) => a + l.cycles, 0);
}

/** Every workload that reports one RESULT: compare's suite and wrmsr. */
const WORKLOADS = EVERY_WORKLOAD;

function expectPassed(r: StackRunResult, w: string): void {
  expect(r.stack).toBe("vm");
  expect(r.outcome.kind, r.outcome.message).toBe("debug-exit");
  expect(r.exitStatus).toBe(1); // (0 << 1) | 1: every self-check passed
  expect(r.guest.failures).toEqual([]);
  expect(r.serial).not.toMatch(/^FAIL/m);
  expect(r.serial).toContain("DONE status=0");
  const res = r.guest.results.find((x) => x.name === w);
  expect(res, r.serial).toBeDefined();
  if (w === "io") {
    // Under vm the virtio-blk device is L0's model: the workload really runs (not skipped).
    expect(res!.fields.skipped).toBeUndefined();
  }
  expect(res!.fields.iterations as number).toBeGreaterThan(0);
  expect(res!.fields.cycles_per_iter as number).toBeGreaterThan(0);
}

describe("vm stack: every workload completes with its self-checks passing (direct64, kernel.elf)", () => {
  for (const w of WORKLOADS) {
    it(w, () => {
      const r = run(`workload=${w}`);
      expectPassed(r, w);
      expect(r.protocol).toBe("direct64");
      // Every cycle is attributed somewhere in the ledger.
      expect(ledgerSum(r)).toBe(r.cycles);
      // The guest ran in non-root operation and L0 saw exits.
      expect(exitCount(r.exits, 0, "ept_violation")).toBeGreaterThan(0);
    });
  }
});

describe("vm stack: multiboot boot path (kernel32.elf)", () => {
  for (const w of ["cpuid", "exception", "fork", "io"]) {
    it(w, () => {
      const r = run(`workload=${w}`, kernel32);
      expect(r.protocol).toBe("multiboot");
      expect(r.serial).toContain("boot=multiboot");
      expectPassed(r, w);
      expect(ledgerSum(r)).toBe(r.cycles);
    });
  }
});

describe("vm stack: determinism and the ledger", () => {
  it("two runs give identical JSON (minus wall time) and an identical ledger", () => {
    const strip = (r: StackRunResult): string => {
      const j = runJson(r, "x") as Record<string, unknown>;
      delete j.wallSeconds;
      return JSON.stringify(j);
    };
    const a = run("workload=fork,io,tlb");
    const b = run("workload=fork,io,tlb");
    expect(a.exitStatus).toBe(1);
    expect(strip(a)).toBe(strip(b));
    expect(JSON.stringify(a.ledger)).toBe(JSON.stringify(b.ledger));
    expect(a.ledger!.length).toBeGreaterThan(5);
  });

  it("the ledger sums to the simulated cycles for the whole suite, and with interrupt-driven I/O", () => {
    const all = run("workload=all");
    expect(all.exitStatus).toBe(1);
    expect(ledgerSum(all)).toBe(all.cycles);
    const irq = run("workload=io blkirq=11");
    expectPassed(irq, "io");
    expect(exitCount(irq.exits, 0, "interrupt_window")).toBeGreaterThan(0);
    expect(ledgerSum(irq)).toBe(irq.cycles);
    // Guest instructions are attributed to level 1, L0's handlers and transitions to level 0.
    const ins = all.ledger!.find((l) => l.level === 1 && l.category === "guest" && l.reason === "instructions");
    expect(ins?.count).toBe(all.instructions);
    expect(all.ledger!.some((l) => l.level === 0 && l.category === "transition" && l.reason === "cpuid")).toBe(true);
  });
});

/**
 * The wiring check: what one iteration of each exit microbenchmark costs when composed from the
 * profile's primitives (docs/cost-model.md "Composed round trips"). It proves that the charges
 * reach the guest's clock, not that the profile matches hardware (that needs out-of-sample figures).
 */
function composed(p: LoadedProfile, w: string): number {
  const t = p.cost("vmx.exit") + p.cost("vmx.entry") + p.cost("vmx.mitigation");
  switch (w) {
    case "cpuid":
      return t + p.cost("l0.cpuid");
    case "msr": // RDMSR IA32_APIC_BASE: intercepted through L0's MSR bitmap
      return t + p.cost("l0.msr");
    case "exception":
      // #UD intercepted (exception bitmap), reflected: L0's handler, the re-injecting entry,
      // delivery through the guest IDT and the handler's IRETQ.
      return t + p.cost("l0.exception") + p.cost("vmx.inject") + p.cost("event.delivery") + p.cost("event.iret");
    case "pio": // OUTB to port 0x80: a userspace (QEMU-like) device
      return t + p.cost("l0.io_kernel") + p.cost("l0.userspace_hop");
    default:
      throw new Error(w);
  }
}

describe("vm stack: wiring — the guest's microbenchmarks read the profile's composed round trips (±5%)", () => {
  const profiles = bundledProfiles();
  it("both bundled profiles are present", () => {
    expect(profiles).toEqual(expect.arrayContaining(["cascadelake-kvm", "epyc-kvm"]));
  });
  for (const name of ["cascadelake-kvm", "epyc-kvm"]) {
    for (const w of ["cpuid", "msr", "exception", "pio"]) {
      it(`${name}: ${w}`, () => {
        const p = loadProfile(name);
        const r = run(`workload=${w}`, kernel, name);
        expectPassed(r, w);
        const got = r.guest.results.find((x) => x.name === w)!.fields.cycles_per_iter as number;
        const want = composed(p, w);
        // The loop's own instructions can only add to the round trip.
        expect(got).toBeGreaterThanOrEqual(Math.floor(want));
        expect(Math.abs(got - want) / want).toBeLessThanOrEqual(0.05);
        // One exit per iteration of the measured kind.
        const reason = { cpuid: "cpuid", msr: "rdmsr", exception: "exception_nmi", pio: "io_instruction" }[w] as string;
        expect(exitCount(r.exits, 0, reason)).toBeGreaterThanOrEqual(2000);
        expect(ledgerSum(r)).toBe(r.cycles);
      });
    }
  }
  it("the profiles differ where they should: epyc's costlier transition moves the CPUID round trip by exactly the difference", () => {
    const a = loadProfile("cascadelake-kvm");
    const b = loadProfile("epyc-kvm");
    const ra = run("workload=cpuid", kernel, "cascadelake-kvm").guest.results.find((x) => x.name === "cpuid")!.fields
      .cycles_per_iter as number;
    const rb = run("workload=cpuid", kernel, "epyc-kvm").guest.results.find((x) => x.name === "cpuid")!.fields
      .cycles_per_iter as number;
    expect(rb - ra).toBe(composed(b, "cpuid") - composed(a, "cpuid"));
  });
});

describe("stacks: errors are reported, not thrown", () => {
  it("an unknown stack name gets a clear error listing the known ones", () => {
    expect(() => getStack("vmm")).toThrow(UnknownStackError);
    expect(() => getStack("vmm")).toThrow(/unknown stack "vmm"; known stacks: .*native.*vm/);
    for (const k of STACKS.keys()) expect(getStack(k).name).toBe(k);
    expect(getStack("vm")).toBe(vmStack);
  });

  it.skipIf(!HAVE_AS)("a guest that triple-faults under vm ends with outcome triple-fault and a message", () => {
    // Load an empty IDT, then UD2: #UD → #GP (IDT limit) → #DF → triple fault.
    const code = asm("lidt [rip + idtr]\nud2\nidtr: .word 0\n.quad 0\n", 64);
    const image = elf64(code);
    let r: StackRunResult | undefined;
    expect(() => {
      r = vmStack.run({ image, cmdline: "", memory: 64 * 1024 * 1024, maxInstructions: 1_000_000 });
    }).not.toThrow();
    expect(r!.outcome.kind).toBe("triple-fault");
    expect(r!.outcome.message).toMatch(/triple-fault/);
    expect(r!.outcome.message).toContain("0x100007"); // RIP of the UD2
    expect(r!.exitStatus).toBeNull();
    expect(exitCount(r!.exits, 0, "triple_fault")).toBe(1);
    expect(ledgerSum(r!)).toBe(r!.cycles);
  });
});
