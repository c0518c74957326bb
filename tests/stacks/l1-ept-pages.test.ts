/**
 * 2 MiB EPT12 leaves (`--l1-ept-pages 2m`, StackRunOptions.l1EptPages; docs/l1hv.md): l1hv's vmx
 * back ends map L2 RAM with 2 MiB leaves, and L0's nested VMX builds a 2 MiB EPT02 leaf only
 * where EPT12 and EPT01 (`--ept-pages 2m`) are both large (ept02.ts, KVM's
 * kvm_mmu_hugepage_adjust). Counts are exact: the guest kernel's pagefault workload with 500
 * iterations (64 MiB, L1's tick off) touches 563 pages of L2 RAM in 2 regions of 2 MiB,
 * plus the two device pages (LAPIC, virtio-mmio) L1 turns into misconfigured 4 KiB entries.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit-codes.js";
import { bundledKernelPath } from "../../src/paths.js";
import { compareDocument, compareFooter } from "../../src/report/compare-doc.js";
import { sweepTasks } from "../../src/report/sweep.js";
import { workloadCmdline } from "../../src/report/workloads.js";
import { bareL1Stack, l1Cmdline } from "../../src/stacks/bare-l1.js";
import { nvmxEvmcsStack, nvmxStack } from "../../src/stacks/nvmx.js";
import type { L1EptPages, Stack, StackRunResult } from "../../src/stacks/stack.js";
import { eventCount, exitCount } from "../../src/stats/run-stats.js";
import { nestlab } from "../cli/cli-helpers.js";

const kernel = new Uint8Array(readFileSync(bundledKernelPath()));

function run(
  stack: Stack,
  eptPages: "4k" | "2m",
  l1EptPages: L1EptPages,
  map: "demand" | "eager" = "demand",
): StackRunResult {
  const r = stack.run({
    image: kernel,
    cmdline: workloadCmdline("pagefault", 500),
    memory: 64 * 1024 * 1024,
    maxInstructions: 200_000_000,
    l0: { eptPages },
    l1EptPages,
    npvMap: map,
    // L1's own tick off: the exits below are the mechanism's, not where a tick happened to land
    l1Tick: false,
  });
  expect(r.outcome.kind, `${r.outcome.message}\n${r.serial.slice(-800)}`).toBe("debug-exit");
  expect(r.exitStatus).toBe(1);
  expect(r.guest.results.find((x) => x.name === "pagefault")?.fields.iterations).toBe(500);
  return r;
}

/** nvmx runs, each made once for the tests that look at it. */
const nvmxRuns = new Map<string, StackRunResult>();
function nvmxRun(eptPages: "4k" | "2m", l1EptPages: L1EptPages): StackRunResult {
  const key = `${eptPages}/${l1EptPages}`;
  let r = nvmxRuns.get(key);
  if (r === undefined) {
    r = run(nvmxStack, eptPages, l1EptPages);
    nvmxRuns.set(key, r);
  }
  return r;
}

const nv = (r: StackRunResult, name: string) => eventCount(r.events, "nvmx", name);
/** EPT violations L1 handled (reflected to it on nvmx, the hardware's on bare-l1). */
const l1Violations = (r: StackRunResult) => exitCount(r.exits, 1, "ept_violation");

describe("l1hv's command line", () => {
  it("2m rides on the back-end word; 4k leaves it as it was", () => {
    expect(l1Cmdline("vmx", 10, 64, "demand", "x", true, "2m")).toMatch(/^backend=vmx,ept=2m l2image=/);
    expect(l1Cmdline("vmx-evmcs", 10, 64, "demand", "x", true, "2m")).toMatch(/^backend=vmx-evmcs,ept=2m /);
    expect(l1Cmdline("vmx", 10, 64, "demand", "x")).toBe(l1Cmdline("vmx", 10, 64, "demand", "x", true, "4k"));
    expect(l1Cmdline("vmx", 10, 64, "demand", "x")).toMatch(/^backend=vmx l2image=/);
  });
});

describe("bare-l1: the real EPT with 2 MiB leaves", () => {
  it("4k: one EPT violation per touched page", () => {
    const k4 = run(bareL1Stack, "4k", "4k");
    expect(k4.serial).toContain("l1hv: backend=vmx l2mem=");
    // every touched L2 page (563) and the two device pages
    expect(l1Violations(k4)).toBe(565);
  });

  it("2m on demand: one EPT violation per touched 2 MiB region", () => {
    const m2 = run(bareL1Stack, "4k", "2m");
    expect(m2.serial).toContain("l1hv: backend=vmx,ept=2m");
    // the two RAM regions and the two device pages
    expect(l1Violations(m2)).toBe(4);
  });

  it("2m eager: the slot is mapped before L2 runs; only the device pages fault", () => {
    expect(l1Violations(run(bareL1Stack, "4k", "2m", "eager"))).toBe(2);
  });
});

describe("nvmx: 2 MiB EPT02 leaves need 2 MiB leaves in EPT12 and in EPT01", () => {
  it("both 2m: every EPT02 leaf is a 2 MiB one", () => {
    const both = nvmxRun("2m", "2m");
    expect(both.serial).toContain("l1hv: backend=vmx,ept=2m");
    expect(nv(both, "ept02.built")).toBe(2);
    expect(nv(both, "ept02.large_leaves")).toBe(2);
    // L1's EPT12 faults: the two RAM regions and the two device pages, as on bare-l1
    expect(l1Violations(both)).toBe(4);
  });

  it("2 MiB EPT12 leaves over a 4 KiB EPT01: none, one 4 KiB EPT02 leaf per touched L2 page", () => {
    const l1Only = nvmxRun("4k", "2m");
    expect(nv(l1Only, "ept02.large_leaves")).toBe(0);
    expect(l1Violations(l1Only)).toBe(4);
    expect(nv(l1Only, "ept02.built")).toBe(563);
  });

  it("a 2 MiB EPT01 under 4 KiB EPT12 leaves: none", () => {
    const l0Only = nvmxRun("2m", "4k");
    expect(nv(l0Only, "ept02.large_leaves")).toBe(0);
    expect(nv(l0Only, "ept02.built")).toBe(563);
    expect(l1Violations(l0Only)).toBe(565);
  });

  it("nvmx-evmcs takes the same option (backend=vmx-evmcs,ept=2m)", () => {
    const r = run(nvmxEvmcsStack, "2m", "2m");
    expect(r.serial).toContain("l1hv: backend=vmx-evmcs,ept=2m");
    expect(nv(r, "ept02.large_leaves")).toBe(2);
  });

  it("L0's EPT12 walks by level: with 2 MiB EPT12 leaves RAM walks end at the PDE", () => {
    const reads = (r: StackRunResult) => ["pml4", "pdpt", "pd", "pt"].map((l) => nv(r, `ept12.walk_reads.${l}`));
    // The walk has no paging-structure cache: every walk reads from the PML4E down to where it
    // ends (a leaf, or a not-present entry while EPT12 is still empty there).
    const k4 = nvmxRun("2m", "4k");
    const m2 = nvmxRun("2m", "2m");
    // 4k: nearly every walk reaches a PTE (563 RAM pages, each walked for the miss L1 fixes and
    // again after; the device pages' misconfigured PTEs at every MMIO access)
    expect(reads(k4)).toEqual([1171, 1169, 1168, 1166]);
    // 2m: PTEs are read only for the device pages, whose misconfigured 4 KiB entries end every
    // MMIO walk: one per EPT misconfiguration L1 handles
    expect(reads(m2)).toEqual([43, 41, 40, 36]);
    expect(exitCount(m2.exits, 1, "ept_misconfig")).toBe(36);
    // The ledger charges every entry read (by cache level, under nvmx_ept12_walk): wiring
    const charged = (r: StackRunResult) =>
      (r.ledger ?? []).filter((l) => l.level === 0 && l.reason === "nvmx_ept12_walk").reduce((n, l) => n + l.count, 0);
    expect(charged(k4)).toBe(1171 + 1169 + 1168 + 1166);
    expect(charged(m2)).toBe(43 + 41 + 40 + 36);
  });
});

describe("what keys results", () => {
  it("sweep: l1-ept-pages is a grid dimension; 4k keys and cell options stay as they were", () => {
    const tasks = sweepTasks(
      {
        stacks: ["nvmx"],
        workloads: ["tlb"],
        profiles: ["cascadelake-kvm"],
        npvMap: ["demand"],
        eptPages: ["2m"],
        l1EptPages: ["4k", "2m"],
        scalings: [],
        sensitivity: false,
      },
      { memory: 64 * 1024 * 1024, maxInstructions: 1e8 },
    );
    expect(tasks.map((t) => t.key)).toEqual([
      "cascadelake-kvm npv-map=demand ept-pages=2m unscaled tlb nvmx",
      "cascadelake-kvm npv-map=demand ept-pages=2m l1-ept-pages=2m unscaled tlb nvmx",
    ]);
    expect(tasks.map((t) => t.opts.l1EptPages)).toEqual([undefined, "2m"]);
  });

  it("compare: the document and the footer name non-default EPT leaf sizes", () => {
    const req = { stacks: ["nvmx"], workloads: ["tlb"], profile: { name: "p", ghz: 2.5 } };
    const plain = compareDocument(req, [], 1);
    expect(plain).not.toHaveProperty("eptPages");
    expect(plain).not.toHaveProperty("l1EptPages");
    expect(compareFooter(plain, "cpu", 1)).not.toContain("EPT");
    const large = compareDocument({ ...req, l0: { eptPages: "2m" }, l1EptPages: "2m" }, [], 1);
    expect([large.eptPages, large.l1EptPages]).toEqual(["2m", "2m"]);
    expect(compareFooter(large, "cpu", 1)).toContain(
      "Largest EPT leaves: EPT01 (L0) 2m, EPT12 (l1hv on bare-l1 and nvmx*) 2m.",
    );
  });
});

describe("--l1-ept-pages on the command line", () => {
  it("a stack without l1hv's vmx back end, or a size l1hv does not build, is a usage error", () => {
    for (const args of [
      ["run", "--stack", "vm", "--workload", "cpuid", "--l1-ept-pages", "2m"],
      ["run", "--stack", "npv", "--workload", "cpuid", "--l1-ept-pages", "4k"],
      ["compare", "--stacks", "vm,npv", "--workloads", "cpuid", "--l1-ept-pages", "2m"],
      ["sweep", "--stacks", "native", "--workloads", "cpuid", "--l1-ept-pages", "4k,2m"],
    ]) {
      const r = nestlab(args);
      expect(r.status, args.join(" ")).toBe(EXIT.usage);
      expect(r.stderr).toMatch(/--l1-ept-pages sets the EPT12 leaves of l1hv's vmx back end: stacks bare-l1, nvmx/);
    }
    const bad = nestlab(["run", "--stack", "nvmx", "--workload", "cpuid", "--l1-ept-pages", "1g"]);
    expect(bad.status).toBe(EXIT.usage);
    expect(bad.stderr).toMatch(/Allowed choices are 4k, 2m/);
  });
});
