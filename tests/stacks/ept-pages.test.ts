/**
 * Large pages in EPT01 (issue 13 §4, `--ept-pages 4k|2m|1g`): L0 maps guest RAM with the largest
 * leaf the policy allows where the backing allows it (the memslot covers the aligned range and
 * its host address is aligned, as THP needs). One large leaf is one host allocation whose every
 * 4 KiB page is zeroed. The 2-D walk's 19 references over 2 MiB EPT pages (against 24) is the
 * walker's, tested in tests/mmu/ept.test.ts; here: that L0 builds such leaves, exactly.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadProfile } from "../../src/cost/profile.js";
import { Cpu } from "../../src/cpu/cpu.js";
import { VmxHost } from "../../src/cpu/vmx/host.js";
import { mapGuestRam } from "../../src/hypervisors/l0/exits.js";
import { L0Hypervisor } from "../../src/hypervisors/l0/l0.js";
import { type L0Policy, l0Policy } from "../../src/machine/tunables.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { ACC_READ, FMT_EPT, PageWalker } from "../../src/mmu/walker.js";
import { bundledKernelPath } from "../../src/paths.js";
import { getStack } from "../../src/stacks/index.js";
import type { StackRunResult } from "../../src/stacks/stack.js";
import { eventCount, exitCount } from "../../src/stats/run-stats.js";
import { ctl, halves, P, RW, Tables, US } from "../mmu/tables.js";

const kernel = new Uint8Array(readFileSync(bundledKernelPath()));
const GiB = 1024 * 1024 * 1024;

function run(eptPages: L0Policy["eptPages"], memory: number): StackRunResult {
  return getStack("vm").run({
    image: kernel,
    cmdline: "workload=pagefault iters=100",
    memory,
    maxInstructions: 100_000_000,
    l0: { eptPages },
  });
}

function count(r: StackRunResult, reason: string): number {
  return (r.ledger ?? []).find((l) => l.level === 0 && l.reason === reason)?.count ?? 0;
}

describe("EPT01 large pages", () => {
  it("the backing of guest RAM is aligned to the largest leaf the policy allows", () => {
    for (const [pages, align] of [
      ["4k", 4096],
      ["2m", 2 * 1024 * 1024],
      ["1g", GiB],
    ] as const) {
      const mem = new PhysicalMemory(64 * 1024 * 1024 + align + 8 * 1024 * 1024);
      const l0 = new L0Hypervisor(new VmxHost(new Cpu(mem)), loadProfile(), undefined, l0Policy({ eptPages: pages }));
      const vm = l0.createVm({ memory: 8 * 1024 * 1024 });
      expect(vm.memslots.translate(0) % align).toBe(0);
    }
  });

  it("4k: one leaf per touched page; 2m: 2 MiB leaves; 1g: one 1 GiB leaf over the first GiB", () => {
    const k4 = run("4k", 2 * GiB);
    const m2 = run("2m", 2 * GiB);
    const g1 = run("1g", 2 * GiB);
    for (const r of [k4, m2, g1]) expect(r.exitStatus).toBe(1);
    // The kernel's touched footprint plus the workload's pages (the KPTI build added one page).
    expect(eventCount(k4.events, "l0.ept01", "leaves")).toBe(411);
    // Everything the guest touches lies in 2 regions of 2 MiB.
    expect(eventCount(m2.events, "l0.ept01", "leaves")).toBe(2);
    // Below 1 GiB everything the guest touches is one leaf; the first GiB and nothing else.
    expect(eventCount(g1.events, "l0.ept01", "leaves")).toBe(1);
    // One host allocation per leaf (tables aside), 512 or 262,144 pages zeroed per large leaf.
    const tablesPlus = (r: StackRunResult, leaves: number): number =>
      eventCount(r.events, "l0.ept01", "tables") + leaves;
    expect(count(m2, "host_page_alloc")).toBe(tablesPlus(m2, 2));
    expect(count(m2, "host_page_zero")).toBe(eventCount(m2.events, "l0.ept01", "tables") + 2 * 512);
    expect(count(g1, "host_page_alloc")).toBe(tablesPlus(g1, 1));
    expect(count(g1, "host_page_zero")).toBe(eventCount(g1.events, "l0.ept01", "tables") + 262_144);
    expect([eventCount(m2.events, "l0.ept01", "tables"), eventCount(g1.events, "l0.ept01", "tables")]).toEqual([6, 5]);
    // EPT violations: one per leaf (and two device pages turned MMIO).
    expect([k4, m2, g1].map((r) => exitCount(r.exits, 0, "ept_violation"))).toEqual([413, 4, 3]);
  });

  it("a cold 2-D walk over L0's EPT01: 24 references with 4 KiB leaves, 19 with 2 MiB, 14 with 1 GiB", () => {
    const refs: number[] = [];
    for (const pages of ["4k", "2m", "1g"] as const) {
      const mem = new PhysicalMemory(64 * 1024 * 1024 + 2 * GiB);
      const l0 = new L0Hypervisor(new VmxHost(new Cpu(mem)), loadProfile(), undefined, l0Policy({ eptPages: pages }));
      const vm = l0.createVm({ memory: GiB });
      const backing = vm.memslots.translate(0);
      // The guest's 4-level tables at GPA 1 MiB+ and a data page at GPA 4 MiB (as its kernel would).
      const gt = new Tables(mem, 0x100000, false, backing);
      const groot = gt.alloc();
      const va = 0x7f00_1234_5000n;
      gt.map(groot, va, 0x400000n, P | RW | US, 1, 4);
      // L0 maps every page the walk touches as its EPT-violation handler does on first touch.
      for (let gpa = 0; gpa < 0x500000; gpa += 4096) {
        if (vm.ept01.lookup(gpa) === null) mapGuestRam(l0, vm, gpa, backing + gpa, true);
      }
      const ept = new PageWalker(mem, FMT_EPT);
      const eptp = vm.ept01.eptp();
      ept.setEptp(eptp % 4294967296, Math.floor(eptp / 4294967296));
      const guest = new PageWalker(mem);
      guest.root = groot;
      guest.levels = 4;
      guest.translator = ept;
      const [lo, hi] = halves(va + 0x10n);
      expect(guest.walk(lo, hi, ACC_READ, ctl())).toBe(backing + 0x400010);
      refs.push(guest.refs);
    }
    // (4+1)(m+1) - 1 for an m-level EPT walk: Bhargava et al. ASPLOS 2008 (calibration.md).
    expect(refs).toEqual([24, 19, 14]);
  });
});
