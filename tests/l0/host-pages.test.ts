/**
 * Host page allocation and zeroing (issue 13 §4): counted from mechanism, costed from the
 * `host.page_alloc` / `host.page_zero` primitives. L0 charges one allocation and one zeroing per
 * guest page it backs (first EPT01 fill, or an EPT02 compose through an unbacked L1 frame) and per
 * table page it or a nested engine takes; a page the engine recycles is zeroed, not allocated.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadProfile } from "../../src/cost/profile.js";
import { Cpu } from "../../src/cpu/cpu.js";
import { VmxHost } from "../../src/cpu/vmx/host.js";
import { RecyclingPages } from "../../src/hypervisors/l0/host-pages.js";
import { L0Hypervisor } from "../../src/hypervisors/l0/l0.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { bundledKernelPath } from "../../src/paths.js";
import { getStack } from "../../src/stacks/index.js";
import type { StackRunResult } from "../../src/stacks/stack.js";
import { eventCount, exitCount } from "../../src/stats/run-stats.js";

const kernel = new Uint8Array(readFileSync(bundledKernelPath()));

function count(r: { ledger?: { level: number; reason: string; count: number }[] }, reason: string): number {
  return (r.ledger ?? []).find((l) => l.level === 0 && l.reason === reason)?.count ?? 0;
}

function pagefault(stack: string, iters: number): StackRunResult {
  return getStack(stack).run({
    image: kernel,
    cmdline: `workload=pagefault iters=${iters}`,
    memory: 256 * 1024 * 1024,
    maxInstructions: 100_000_000,
  });
}

describe("host page allocation and zeroing", () => {
  it("vm: every page L0 takes after set-up is one allocation and one zeroing: EPT01 leaves + EPT01 tables", () => {
    const a = pagefault("vm", 100);
    const b = pagefault("vm", 200);
    for (const r of [a, b]) {
      expect(r.exitStatus).toBe(1);
      expect(count(r, "host_page_alloc")).toBe(
        eventCount(r.events, "l0.ept01", "leaves") + eventCount(r.events, "l0.ept01", "tables"),
      );
      expect(count(r, "host_page_zero")).toBe(count(r, "host_page_alloc"));
    }
    // Absolute counts follow the kernel image's footprint (the KPTI build added an entry-text page).
    expect([count(a, "host_page_alloc"), count(b, "host_page_alloc")]).toEqual([195, 295]);
    // 100 more first touches: 100 more backed pages, nothing else.
    expect(count(b, "host_page_alloc") - count(a, "host_page_alloc")).toBe(100);
    // The charge is the primitive's, times the count.
    const p = loadProfile();
    const line = (b.ledger ?? []).find((l) => l.reason === "host_page_zero");
    expect(line?.cycles).toBe(295 * p.cost("host.page_zero"));
  });

  it("npv: L1 backs L2's pages by zeroing them (its own EPT01 faults); 100 more first touches, 100 more EPT02 composes", () => {
    const a = pagefault("npv", 100);
    const b = pagefault("npv", 200);
    expect([a.exitStatus, b.exitStatus]).toEqual([1, 1]);
    const d = (family: string, name: string) => eventCount(b.events, family, name) - eventCount(a.events, family, name);
    expect(d("npv", "ept02.composed")).toBe(100);
    // The executed L1 zeroes the unmapped pages of each faulting 8-page group before it MAPs them:
    // those are first touches of L1 RAM, which L0 backs through EPT01 (one host page each). The
    // EPT02 composes then find their L1 frames backed already.
    const pages = count(b, "host_page_alloc") - count(a, "host_page_alloc");
    expect(pages).toBe(d("l0.ept01", "leaves") + d("l0.ept01", "tables"));
    const faults = exitCount(b.exits, 1, "memory_fault") - exitCount(a.exits, 1, "memory_fault");
    expect(faults).toBeGreaterThan(0);
    expect(pages).toBe(8 * faults);
  });

  it("a page the engine recycles is zeroed but not allocated again", () => {
    const mem = new PhysicalMemory(80 * 1024 * 1024);
    const l0 = new L0Hypervisor(new VmxHost(new Cpu(mem)), loadProfile());
    const pages = new RecyclingPages(mem, l0.alloc);
    const p = pages.page();
    expect([
      count({ ledger: l0.ledger.lines() }, "host_page_alloc"),
      count({ ledger: l0.ledger.lines() }, "host_page_zero"),
    ]).toEqual([1, 1]);
    mem.write(p, 4, 0x1234);
    pages.free(p);
    expect(pages.page()).toBe(p);
    expect(mem.read(p, 4)).toBe(0);
    expect([
      count({ ledger: l0.ledger.lines() }, "host_page_alloc"),
      count({ ledger: l0.ledger.lines() }, "host_page_zero"),
    ]).toEqual([1, 2]);
  });
});
