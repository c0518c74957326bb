/**
 * EPT in the running CPU: violations and misconfigurations produced by real guest accesses (exit
 * reasons 48/49, the qualification of SDM table 28-7, guest-physical and guest-linear address
 * fields), and the 2-D walk's memory references counted end to end.
 */
import { describe, expect, it } from "vitest";
import { CostLedger } from "../../src/cost/ledger.js";
import { loadProfile } from "../../src/cost/profile.js";
import { RUN_BUDGET } from "../../src/cpu/vmx/host.js";
import { PagingStructureCache } from "../../src/mmu/paging-structure-cache.js";
import * as V from "../../src/x86/vmx.js";
import * as C from "../../src/x86/vmx-controls.js";
import { asm, HAVE_AS } from "../helpers/asm.js";
import { ALIAS_GPA, ALIAS_LINEAR, CODE, DATA, PT_ALIAS, VmxBed } from "../helpers/vmx.js";

const R = C.EPT_QUAL_READ;
const W = C.EPT_QUAL_WRITE;
const X = C.EPT_QUAL_FETCH;
const GLA = C.EPT_QUAL_GLA_VALID;
const TR = C.EPT_QUAL_TRANSLATION;
/** Permission bits 3-5 of the qualification from EPT R/W/X bits. */
const perm = (p: number): number => p << 3;

function fields(b: VmxBed): { reason: number; qual: number; gpa: number; gla: number } {
  return {
    reason: b.host.vmread(V.VMCS_EXIT_REASON),
    qual: b.host.vmread(V.VMCS_EXIT_QUALIFICATION),
    gpa: b.host.vmreadNumber(V.VMCS_GUEST_PHYSICAL_ADDRESS),
    gla: b.host.vmreadNumber(V.VMCS_GUEST_LINEAR_ADDRESS),
  };
}

describe.skipIf(!HAVE_AS)("EPT violations from guest accesses", () => {
  it("a read of a page EPT does not map: reason 48, read, no permissions, GLA valid, translation", () => {
    const b = new VmxBed();
    b.ept.unmap(ALIAS_GPA);
    b.load(`mov rax, ${ALIAS_LINEAR + 8}\nmov rbx, [rax]\n`);
    b.runToExit();
    expect(fields(b)).toEqual({
      reason: V.EXIT_EPT_VIOLATION,
      qual: R | GLA | TR,
      gpa: ALIAS_GPA + 8,
      gla: ALIAS_LINEAR + 8,
    });
    expect(b.rip()).toBe(CODE + 7); // the faulting MOV, to be restarted
    expect(b.host.vmread(V.VMCS_EXIT_INSTRUCTION_LENGTH)).toBe(0);
    // Map it (as L0 does on first touch) and resume: the access now completes.
    b.write64(ALIAS_GPA + 8, 0x1234);
    b.ept.map(ALIAS_GPA, b.hpa(ALIAS_GPA), 7);
    b.load(`mov rax, ${ALIAS_LINEAR + 8}\nmov rbx, [rax]\nvmcall\n`);
    expect(b.runToExit().reason).toBe(V.EXIT_VMCALL);
    expect(b.gpr(3)).toBe(0x1234);
  });

  it("a write to a read-only EPT page: write access, permissions R", () => {
    const b = new VmxBed();
    b.ept.map(ALIAS_GPA, b.hpa(ALIAS_GPA), C.EPT_R);
    b.write64(ALIAS_GPA + 0x10, 77);
    b.load(`mov rax, ${ALIAS_LINEAR + 0x10}\nmov rcx, [rax]\nmov [rax], rbx\n`);
    b.runToExit();
    expect(fields(b)).toEqual({
      reason: V.EXIT_EPT_VIOLATION,
      qual: W | perm(C.EPT_R) | GLA | TR,
      gpa: ALIAS_GPA + 0x10,
      gla: ALIAS_LINEAR + 0x10,
    });
    expect(b.gpr(1)).toBe(77); // the read went through
    expect(b.rip()).toBe(CODE + 10);
  });

  it("a fetch from a no-execute EPT page: fetch access, permissions RW; execute-only pages run but cannot be read", () => {
    const b = new VmxBed();
    const page = ALIAS_GPA + 0x1000;
    b.ept.map(page, b.hpa(page), C.EPT_R | C.EPT_W);
    b.cpu.mem.writeBytes(b.hpa(page), new Uint8Array([0x0f, 0x01, 0xc1])); // vmcall
    b.load(`mov rax, ${ALIAS_LINEAR + 0x1000}\njmp rax\n`);
    b.runToExit();
    expect(fields(b)).toEqual({
      reason: V.EXIT_EPT_VIOLATION,
      qual: X | perm(C.EPT_R | C.EPT_W) | GLA | TR,
      gpa: page,
      gla: ALIAS_LINEAR + 0x1000,
    });
    expect(b.rip()).toBe(ALIAS_LINEAR + 0x1000);
    // Execute-only: the code runs (its VMCALL exits), a data read of it violates with perms X.
    b.ept.map(page, b.hpa(page), C.EPT_X);
    expect(b.runToExit().reason).toBe(V.EXIT_VMCALL);
    expect(b.rip()).toBe(ALIAS_LINEAR + 0x1000);
    b.load(`mov rax, ${ALIAS_LINEAR + 0x1000}\nmov rbx, [rax]\n`);
    b.runToExit();
    expect(fields(b).qual).toBe(R | perm(C.EPT_X) | GLA | TR);
  });

  it("an EPT violation on a guest paging-structure access has bit 8 clear (and is a write with EPT A/D on)", () => {
    for (const ad of [true, false]) {
      const b = new VmxBed({ eptAd: ad });
      b.ept.unmap(PT_ALIAS); // the guest page table of the alias window
      b.load(`mov rax, ${ALIAS_LINEAR}\nmov rbx, [rax]\n`);
      b.runToExit();
      const f = fields(b);
      expect(f.reason).toBe(V.EXIT_EPT_VIOLATION);
      expect(f.qual).toBe((ad ? W : R) | GLA);
      expect(f.gpa).toBe(PT_ALIAS); // entry 0 of the page table
      expect(f.gla).toBe(ALIAS_LINEAR);
    }
  });

  it("an EPT misconfiguration (W without R, as L0 marks MMIO) is exit reason 49 with the GPA", () => {
    const b = new VmxBed();
    const page = ALIAS_GPA + 0x2000;
    b.ept.mapMmio(page);
    b.load(`mov rax, ${ALIAS_LINEAR + 0x2004}\nmov ebx, [rax]\n`);
    b.runToExit();
    const f = fields(b);
    expect(f.reason).toBe(V.EXIT_EPT_MISCONFIG);
    expect(f.gpa).toBe(page + 4);
    expect(f.qual).toBe(0);
    expect(b.rip()).toBe(CODE + 7);
  });

  it("MMIO emulation through the misconfigured entry: the instruction completes against the hypervisor's window", () => {
    const b = new VmxBed();
    const page = ALIAS_GPA + 0x2000;
    b.ept.mapMmio(page);
    const window = b.hostPage(); // stands in for L0's device window (here plain host RAM)
    b.cpu.mem.write(window + 4, 4, 0xcafe);
    b.load(`mov rax, ${ALIAS_LINEAR + 0x2004}\nmov ebx, [rax]\nvmcall\n`);
    expect(b.runToExit().reason).toBe(V.EXIT_EPT_MISCONFIG);
    const r = b.host.emulateMmioInstruction(page, 4096, window);
    expect(r.exited).toBe(false);
    expect(b.gpr(3)).toBe(0xcafe);
    expect(b.rip()).toBe(CODE + 9); // retired (MOV EBX, [RAX] is 2 bytes)
    expect(b.runToExit().reason).toBe(V.EXIT_VMCALL);
  });
});

/** Turn the paging-structure caches off (guest and EPT), so every walk reads every level. */
function noPsc(b: VmxBed): void {
  b.cpu.mmu.walker.psc = null;
  (b.cpu.mmu as unknown as { eptPsc: PagingStructureCache }).eptPsc = new PagingStructureCache({
    pde: 0,
    pdpte: 0,
    pml4e: 0,
    pml5e: 0,
  });
}

describe.skipIf(!HAVE_AS)("the 2-D walk, end to end", () => {
  it("a cold walk of 4-level guest paging over 4-level EPT makes 24 references (the first fetch after VM entry)", () => {
    const b = new VmxBed();
    noPsc(b);
    const profile = loadProfile("cascadelake-kvm");
    const ledger = new CostLedger();
    b.cpu.setCostModel(profile.cycles, ledger, 0, 1);
    b.load("cpuid\n");
    b.cpu.mmu.resetCounters();
    expect(b.runToExit().reason).toBe(V.EXIT_CPUID);
    const m = b.cpu.mmu;
    expect(m.get("walks")).toBe(1);
    expect(m.get("walk_refs")).toBe(24);
    expect(m.get("ept_refs")).toBe(20); // 5 EPT walks (CR3, PML4E, PDPTE, PDE targets, final GPA) × 4
    for (const l of ["walk_refs_l1", "walk_refs_l2", "walk_refs_l3", "walk_refs_l4"] as const) expect(m.get(l)).toBe(1);
    for (const l of ["ept_refs_l1", "ept_refs_l2", "ept_refs_l3", "ept_refs_l4"] as const) expect(m.get(l)).toBe(5);
    // The CPU charged exactly those references, to the guest's level, each by where the data
    // caches found it (wiring: the expected cycles come from the same profile).
    const found = (reason: string) =>
      ledger.lines().find((x) => x.level === 1 && x.category === "mmu" && x.reason === reason) ?? {
        count: 0,
        cycles: 0,
      };
    const reasons = ["walk_l1d", "walk_l2", "walk_llc", "walk_dram"] as const;
    const prims = ["mmu.walk_l1d", "mmu.walk_l2", "mmu.walk_llc", "mmu.walk_dram"] as const;
    const counts = reasons.map((r) => found(r).count);
    console.log("cold 2-D walk, references found in L1D/L2/LLC/DRAM:", counts.join("/"));
    // 9 distinct lines, each cold once: the 4 guest tables, one line each of the EPT PML4, PDPT
    // and PD, two of the EPT page tables; the other 15 references re-read a line just filled.
    expect(counts).toEqual([15, 0, 0, 9]);
    expect(reasons.map((r) => found(r).cycles)).toEqual(counts.map((n, k) => n * profile.cost(prims[k])));
    // One walk: one STLB lookup that missed, one page-miss handler start, and one nested step per
    // EPT translation the 2-D walk made (the 5 above).
    expect(m.get("ept_walks")).toBe(5);
    expect(["stlb_miss", "pmh_walk", "pmh_nested_step"].map((r) => found(r).count)).toEqual([1, 1, 5]);
  });

  it("the first data access to a fresh page with every cache cold makes 24 more", () => {
    const b = new VmxBed();
    noPsc(b);
    b.load(`mov rbx, [${DATA + 0x3000}]\ncpuid\n`);
    b.cpu.mmu.resetCounters();
    expect(b.runToExit().reason).toBe(V.EXIT_CPUID);
    expect(b.cpu.mmu.get("walks")).toBe(2); // the fetch and the data access
    expect(b.cpu.mmu.get("walks_d")).toBe(1);
    expect(b.cpu.mmu.get("walk_refs")).toBe(48);
    expect(b.cpu.mmu.get("ept_refs")).toBe(40);
  });

  it("with the paging-structure caches on (cold after entry), the same walks make 12 and 5 references", () => {
    const b = new VmxBed();
    b.load(`mov rbx, [${DATA + 0x3000}]\ncpuid\n`);
    b.cpu.mmu.resetCounters();
    expect(b.run(1)).toBe(RUN_BUDGET); // the first instruction only
    // Fetch: the guest tables (0x1000-0x4fff) and the code page share one 2 MiB guest-physical
    // region, so after the first EPT walk (4 refs) the other four hit the EPT PDE cache (1 each):
    // 4 guest + 4 + 4 × 1 EPT = 12.
    // Data at 0x203000: the guest PDPTE cache hits (same 1 GiB), the walk reads PDE and PTE (2),
    // the PT's EPT walk hits the EPT PDE cache (1), the final GPA (another 2 MiB region) hits
    // the EPT PDPTE cache (2): 5.
    expect(b.cpu.mmu.get("walks")).toBe(2);
    expect(b.cpu.mmu.get("walk_refs")).toBe(17);
    expect(b.cpu.mmu.get("psc_hits_pdpte")).toBe(1);
  });
});

/**
 * A guest with paging off (CR0.PG = 0: its linear addresses are guest-physical) under EPT, as a
 * multiboot guest starts under L0: each access still goes through the TLBs and, on a miss, an EPT
 * walk (SDM vol. 3, 29.4.1: guest-physical mappings), which is charged as any walk.
 */
function pagingOffGuest(b: VmxBed, source: string): CostLedger {
  const w = (f: number, v: number): void => b.host.vmwrite(f, v);
  w(V.VMCS_GUEST_CR0, 0x31); // PE, ET, NE
  w(V.VMCS_GUEST_CR4, 0);
  w(V.VMCS_GUEST_IA32_EFER, 0);
  w(V.VMCS_GUEST_CS_AR, 0xc09b); // 32-bit code
  w(V.VMCS_ENTRY_CONTROLS, C.ENTRY_LOAD_IA32_EFER);
  b.cpu.mem.writeBytes(b.hpa(CODE), asm(source, 32));
  w(V.VMCS_GUEST_RIP, CODE);
  const ledger = new CostLedger();
  b.cpu.setCostModel(loadProfile("cascadelake-kvm").cycles, ledger, 0, 1);
  b.cpu.mmu.resetCounters();
  return ledger;
}

describe.skipIf(!HAVE_AS)("paging off under EPT", () => {
  it("the fetch and a data access each miss the TLBs and walk EPT: 2 walks of 4 references, all charged", () => {
    const b = new VmxBed();
    noPsc(b);
    const ledger = pagingOffGuest(b, `mov eax, [${DATA + 0x3000}]\nmov ebx, [${DATA + 0x3008}]\ncpuid`);
    expect(b.runToExit().reason).toBe(V.EXIT_CPUID);
    const m = b.cpu.mmu;
    expect([m.get("walks"), m.get("walks_i"), m.get("walks_d")]).toEqual([2, 1, 1]);
    expect([m.get("ept_walks"), m.get("ept_refs"), m.get("walk_refs")]).toEqual([2, 8, 8]);
    const count = (reason: string) =>
      ledger.lines().find((x) => x.level === 1 && x.category === "mmu" && x.reason === reason)?.count ?? 0;
    // The EPT PML4, PDPT and PD lines are cold once (the PD's two entries share a line), and the
    // two EPT page tables (code below 2 MiB, data above): 5 from memory, the data walk's first
    // three re-read lines the fetch's walk filled.
    expect(["walk_l1d", "walk_l2", "walk_llc", "walk_dram"].map(count)).toEqual([3, 0, 0, 5]);
    // One STLB lookup that missed and one page-miss-handler walk each; no nested step (no guest walk).
    expect(["stlb_miss", "pmh_walk", "pmh_nested_step"].map(count)).toEqual([2, 2, 0]);
  });

  it("after CR0.WP changes (the CPU's software TLB is dropped, the modelled TLBs kept), the same pages walk no more", () => {
    const b = new VmxBed();
    noPsc(b);
    pagingOffGuest(
      b,
      `mov eax, [${DATA + 0x3000}]\nmov ecx, cr0\nxor ecx, 0x10000\nmov cr0, ecx\nmov ebx, [${DATA + 0x3010}]\ncpuid`,
    );
    expect(b.runToExit().reason).toBe(V.EXIT_CPUID);
    const m = b.cpu.mmu;
    // The fetch and the first load walk; after the software TLB is dropped the fetch and the
    // second load find their guest-physical mappings in the modelled ITLB and DTLB.
    expect([m.get("walks"), m.get("ept_walks"), m.get("ept_refs")]).toEqual([2, 2, 8]);
    expect(m.get("dtlb_model_hits")).toBe(1);
  });

  it("an access EPT does not map: EPT violation at the linear address, counted by the MMU", () => {
    const b = new VmxBed();
    b.ept.unmap(ALIAS_GPA);
    pagingOffGuest(b, `mov eax, [${ALIAS_GPA + 8}]\ncpuid`);
    b.runToExit();
    expect(fields(b)).toMatchObject({ reason: V.EXIT_EPT_VIOLATION, gpa: ALIAS_GPA + 8 });
    expect(b.cpu.mmu.get("ept_violations")).toBe(1);
  });
});
