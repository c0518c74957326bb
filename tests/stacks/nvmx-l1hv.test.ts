/**
 * The executed L1 hypervisor (guests/images/l1hv.elf, vmx back end) on the nested-VMX stacks, the
 * guest kernel as its L2: workloads pass on nvmx and nvmx-shadow (few iterations, to stay quick;
 * `compare --stacks nvmx,nvmx-shadow` runs them all at full length), runs are deterministic, and
 * shadowing leaves L2's exits as they are while removing the trapped VMREADs.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { workloadCmdline } from "../../src/cli/run.js";
import { bundledKernelPath } from "../../src/paths.js";
import { nvmxShadowStack, nvmxStack } from "../../src/stacks/nvmx.js";
import type { Stack, StackRunResult } from "../../src/stacks/stack.js";
import { eventCount, exitTotal } from "../../src/stats/run-stats.js";

/** One event's count (0 when it never happened). */
const ev = (r: StackRunResult, family: string, name: string) => eventCount(r.events, family, name);

const kernel = new Uint8Array(readFileSync(bundledKernelPath()));
const ITERS: Record<string, number> = { cpuid: 20, pio: 20, pagefault: 20, syscall: 50, io: 2, exec: 2 };

function run(stack: Stack, workload: string): StackRunResult {
  return stack.run({
    image: kernel,
    cmdline: workloadCmdline(workload, ITERS[workload]),
    memory: 64 * 1024 * 1024,
    maxInstructions: 200_000_000,
  });
}

function expectPassed(r: StackRunResult, w: string): void {
  expect(r.outcome.kind, `${r.outcome.message}\n${r.serial.slice(-1500)}`).toBe("debug-exit");
  expect(r.exitStatus).toBe(1);
  expect(r.guest.failures).toEqual([]);
  expect(r.guest.results.find((x) => x.name === w)?.fields.iterations).toBe(ITERS[w]);
  expect(r.serial).toContain("l1hv: backend=vmx");
}

describe("l1hv on the nested-VMX stacks", () => {
  for (const stack of [nvmxStack, nvmxShadowStack]) {
    for (const w of Object.keys(ITERS)) {
      it(`${stack.name}: ${w} passes`, () => expectPassed(run(stack, w), w));
    }
  }

  it("nvmx-shadow: the same CPUIDs reflected as nvmx, no trapped VMREAD, fewer L1 exits", () => {
    const plain = run(nvmxStack, "cpuid");
    const shadow = run(nvmxShadowStack, "cpuid");
    // (Timer-driven exits differ with the timing; the CPUID exits are the workload's own.)
    const l1Cpuid = (r: StackRunResult) => exitTotal(r.exits, (e) => e.handledBy === 1 && e.reason === "cpuid");
    expect(l1Cpuid(shadow)).toBe(l1Cpuid(plain));
    expect(l1Cpuid(plain)).toBeGreaterThan(0);
    expect(ev(plain, "nvmx.emulated", "vmread")).toBeGreaterThan(0);
    expect(ev(shadow, "nvmx.emulated", "vmread")).toBe(0);
    expect(ev(shadow, "nvmx", "exits.l1_to_l0")).toBeLessThan(ev(plain, "nvmx", "exits.l1_to_l0"));
  });

  it("is deterministic (same counters and cycles twice)", () => {
    const a = run(nvmxShadowStack, "pio");
    const b = run(nvmxShadowStack, "pio");
    expect(a.cycles).toBe(b.cycles);
    expect(a.counters).toEqual(b.counters);
  });
});
