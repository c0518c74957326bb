/**
 * A minimal test hypervisor set-up over nestlab's VMX hardware, driven only through VmxHost
 * (the interface L0 uses): one VMCS with a 64-bit long-mode guest, guest RAM backed at an
 * offset in host memory and mapped by an EPT01 built with L0's PageTableBuilder, identity guest page
 * tables with 4 KiB pages, a GDT, and an IDT whose every vector points to a stub that executes
 * VMCALL (so "delivered through the guest IDT" shows up as exit 18 at the stub).
 *
 * Guest-physical layout (all below GUEST_RAM):
 *   0x1000 PML4, 0x2000 PDPT, 0x3000 PD (linear 0–1 GiB), 0x4000/0x5000 PTs (linear 0–4 MiB,
 *   identity, 4 KiB pages), 0x6000 PD / 0x7000 PT for linear 0x4000_0000.. → GPA 0x30_0000..
 *   (an alias, so linear and guest-physical addresses differ), 0x8000 GDT, 0x9000 IDT,
 *   0xa000 stubs (16 bytes each), 0x10000 code, 0x70000 stack top, 0x200000 data.
 */
import { Cpu } from "../../src/cpu/cpu.js";
import { RUN_EXIT, VmxHost } from "../../src/cpu/vmx/host.js";
import type { Vmcs } from "../../src/cpu/vmx/vmcs.js";
import type { ExitRecord } from "../../src/cpu/vmx/vmx.js";
import { HostPageAllocator } from "../../src/hypervisors/l0/host-pages.js";
import { PageTableBuilder } from "../../src/hypervisors/mmu/page-table.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import * as V from "../../src/x86/vmx.js";
import * as C from "../../src/x86/vmx-controls.js";
import { asm } from "./asm.js";

export const PML4 = 0x1000;
export const PDPT = 0x2000;
export const PD0 = 0x3000;
export const PT0 = 0x4000; // linear 0..2 MiB
export const PT1 = 0x5000; // linear 2..4 MiB
export const PD_ALIAS = 0x6000;
export const PT_ALIAS = 0x7000;
export const GDT = 0x8000;
export const IDT = 0x9000;
export const STUBS = 0xa000;
export const CODE = 0x10000;
export const STACK_TOP = 0x70000;
export const DATA = 0x200000;
/** Linear base of the alias window and the guest-physical page it maps to. */
export const ALIAS_LINEAR = 0x4000_0000;
export const ALIAS_GPA = 0x30_0000;
/** Guest RAM size (guest-physical 0 .. GUEST_RAM). */
export const GUEST_RAM = 4 * 1024 * 1024;
/** Host-physical address backing guest-physical 0 (an offset, so GPA ≠ HPA is visible). */
export const GUEST_HPA = 16 * 1024 * 1024;
/** L0's own pages (EPT tables, bitmaps) come from here. */
const L0_BASE = 0x100000;
const L0_LIMIT = GUEST_HPA;

/** Guest CR0: PE | ET | NE | WP | PG. CR4: PAE. EFER: LME | LMA | NXE. */
export const GUEST_CR0 = 0x80010031;
export const GUEST_CR4 = 0x20;
export const GUEST_EFER = 0xd00;

/** Address of the IDT stub of vector v (it executes VMCALL). */
export function stub(v: number): number {
  return STUBS + v * 16;
}

export interface BedOptions {
  /** EPT accessed/dirty flags (EPTP bit 6): guest paging-structure accesses are EPT writes. Default true (as L0). */
  eptAd?: boolean;
  /** Leave guest RAM unmapped in EPT01 (tests map what they need). */
  noEptMap?: boolean;
}

/** A CPU with VMX, host memory, an EPT01 and a VMCS holding a ready-to-run 64-bit guest. */
export class VmxBed {
  readonly cpu: Cpu;
  readonly host: VmxHost;
  readonly vmcs: Vmcs;
  readonly alloc: HostPageAllocator;
  readonly ept: PageTableBuilder;

  constructor(opts: BedOptions = {}) {
    const mem = new PhysicalMemory(GUEST_HPA + GUEST_RAM);
    this.cpu = new Cpu(mem);
    this.host = new VmxHost(this.cpu);
    this.alloc = new HostPageAllocator(mem, L0_BASE, L0_LIMIT);
    this.ept = new PageTableBuilder(mem, this.alloc);
    if (!opts.noEptMap) for (let g = 0; g < GUEST_RAM; g += 4096) this.ept.map(g, GUEST_HPA + g, 7);
    this.buildGuestMemory();
    this.vmcs = this.host.newVmcs();
    this.host.load(this.vmcs);
    this.writeGuestState();
    const eptp = opts.eptAd === false ? this.ept.root | C.EPTP_WB | C.EPTP_WALK_4 : this.ept.eptp();
    this.host.vmwrite(V.VMCS_EPT_POINTER, eptp);
    this.setControls({});
  }

  // ---- Guest memory (guest-physical addresses) ----

  hpa(gpa: number): number {
    return GUEST_HPA + gpa;
  }

  write32(gpa: number, v: number): void {
    this.cpu.mem.write(this.hpa(gpa), 4, v);
  }

  read32(gpa: number): number {
    return this.cpu.mem.read(this.hpa(gpa), 4) | 0;
  }

  write64(gpa: number, lo: number, hi = 0): void {
    this.cpu.mem.write64(this.hpa(gpa), lo | 0, hi | 0);
  }

  read64(gpa: number): number {
    return (this.cpu.mem.read(this.hpa(gpa) + 4, 4) >>> 0) * 2 ** 32 + (this.cpu.mem.read(this.hpa(gpa), 4) >>> 0);
  }

  /** Guest PTE address (guest-physical) of an identity-mapped linear page below 4 MiB. */
  pte(linear: number): number {
    return (linear < 0x200000 ? PT0 : PT1) + ((linear >>> 12) & 511) * 8;
  }

  /** Set the guest PTE of an identity-mapped linear page below 4 MiB (flags: P=1 RW=2 …; 0 = not present). */
  setPte(linear: number, flags: number): void {
    this.write64(this.pte(linear), flags === 0 ? 0 : (linear & ~0xfff) | flags | 0, 0);
  }

  private buildGuestMemory(): void {
    this.write64(PML4, PDPT | 3);
    this.write64(PDPT, PD0 | 3);
    this.write64(PDPT + 8, PD_ALIAS | 3); // linear 1 GiB..
    this.write64(PD0, PT0 | 3);
    this.write64(PD0 + 8, PT1 | 3);
    for (let i = 0; i < 1024; i++) this.write64(PT0 + i * 8, (i * 4096) | 3);
    this.write64(PD_ALIAS, PT_ALIAS | 3);
    for (let i = 0; i < 512; i++) this.write64(PT_ALIAS + i * 8, (ALIAS_GPA + i * 4096) | 3);
    // GDT: null, 64-bit code 0x08, data 0x10.
    this.write64(GDT, 0, 0);
    this.write64(GDT + 8, 0x0000ffff, 0x00af9b00);
    this.write64(GDT + 16, 0x0000ffff, 0x00cf9300);
    // IDT: 256 64-bit interrupt gates (DPL 0) to stubs that execute VMCALL.
    const vmcall = [0x0f, 0x01, 0xc1];
    for (let v = 0; v < 256; v++) {
      const h = stub(v);
      this.cpu.mem.writeBytes(this.hpa(h), new Uint8Array(vmcall));
      this.write64(IDT + v * 16, (h & 0xffff) | (0x08 << 16), (h & 0xffff0000) | 0x8e00);
      this.write64(IDT + v * 16 + 8, 0, 0);
    }
  }

  private writeGuestState(): void {
    const w = (f: number, lo: number, hi = 0): void => this.host.vmwrite(f, lo, hi);
    const segs: [number, number, number, number][] = [
      [V.VMCS_GUEST_ES_SELECTOR, V.VMCS_GUEST_ES_BASE, V.VMCS_GUEST_ES_LIMIT, V.VMCS_GUEST_ES_AR],
      [V.VMCS_GUEST_SS_SELECTOR, V.VMCS_GUEST_SS_BASE, V.VMCS_GUEST_SS_LIMIT, V.VMCS_GUEST_SS_AR],
      [V.VMCS_GUEST_DS_SELECTOR, V.VMCS_GUEST_DS_BASE, V.VMCS_GUEST_DS_LIMIT, V.VMCS_GUEST_DS_AR],
      [V.VMCS_GUEST_FS_SELECTOR, V.VMCS_GUEST_FS_BASE, V.VMCS_GUEST_FS_LIMIT, V.VMCS_GUEST_FS_AR],
      [V.VMCS_GUEST_GS_SELECTOR, V.VMCS_GUEST_GS_BASE, V.VMCS_GUEST_GS_LIMIT, V.VMCS_GUEST_GS_AR],
    ];
    for (const [sel, base, limit, ar] of segs) {
      w(sel, 0x10);
      w(base, 0);
      w(limit, 0xffffffff);
      w(ar, 0xc093); // G, D/B, P, DPL 0, S, data read/write accessed
    }
    w(V.VMCS_GUEST_CS_SELECTOR, 0x08);
    w(V.VMCS_GUEST_CS_BASE, 0);
    w(V.VMCS_GUEST_CS_LIMIT, 0xffffffff);
    w(V.VMCS_GUEST_CS_AR, 0xa09b); // G, L, P, DPL 0, S, code execute/read accessed
    w(V.VMCS_GUEST_LDTR_SELECTOR, 0);
    w(V.VMCS_GUEST_LDTR_AR, 0x10000); // unusable
    w(V.VMCS_GUEST_TR_SELECTOR, 0);
    w(V.VMCS_GUEST_TR_LIMIT, 0x67);
    w(V.VMCS_GUEST_TR_AR, 0x8b); // busy 64-bit TSS
    w(V.VMCS_GUEST_GDTR_BASE, GDT);
    w(V.VMCS_GUEST_GDTR_LIMIT, 23);
    w(V.VMCS_GUEST_IDTR_BASE, IDT);
    w(V.VMCS_GUEST_IDTR_LIMIT, 256 * 16 - 1);
    w(V.VMCS_GUEST_CR0, GUEST_CR0);
    w(V.VMCS_GUEST_CR3, PML4);
    w(V.VMCS_GUEST_CR4, GUEST_CR4);
    w(V.VMCS_GUEST_IA32_EFER, GUEST_EFER);
    w(V.VMCS_GUEST_DR7, 0x400);
    w(V.VMCS_GUEST_RSP, STACK_TOP);
    w(V.VMCS_GUEST_RIP, CODE);
    w(V.VMCS_GUEST_RFLAGS, 0x2);
    w(V.VMCS_GUEST_INTERRUPTIBILITY, 0);
    w(V.VMCS_GUEST_ACTIVITY_STATE, C.ACTIVITY_ACTIVE);
    w(V.VMCS_ENTRY_CONTROLS, C.ENTRY_IA32E_MODE_GUEST | C.ENTRY_LOAD_IA32_EFER);
    w(V.VMCS_EXIT_CONTROLS, C.EXIT_HOST_ADDR_SPACE_SIZE | C.EXIT_SAVE_IA32_EFER);
  }

  /**
   * Execution controls. `proc` bits are added to CPU_SECONDARY_CONTROLS; EPT is always on.
   * Unset fields are written as 0 (no exiting beyond what is unconditional).
   */
  setControls(c: {
    pin?: number;
    proc?: number;
    proc2?: number;
    exceptionBitmap?: number;
    pfecMask?: number;
    pfecMatch?: number;
    cr0Mask?: number;
    cr0Shadow?: number;
    cr4Mask?: number;
    cr4Shadow?: number;
  }): void {
    const w = (f: number, v: number): void => this.host.vmwrite(f, v);
    w(V.VMCS_PIN_BASED_CONTROLS, c.pin ?? 0);
    w(V.VMCS_PROC_BASED_CONTROLS, (c.proc ?? 0) | C.CPU_SECONDARY_CONTROLS);
    w(V.VMCS_PROC_BASED_CONTROLS2, (c.proc2 ?? 0) | C.CPU2_ENABLE_EPT);
    w(V.VMCS_EXCEPTION_BITMAP, c.exceptionBitmap ?? 0);
    w(V.VMCS_PF_ERROR_CODE_MASK, c.pfecMask ?? 0);
    w(V.VMCS_PF_ERROR_CODE_MATCH, c.pfecMatch ?? 0);
    w(V.VMCS_CR0_GUEST_HOST_MASK, c.cr0Mask ?? 0);
    w(V.VMCS_CR0_READ_SHADOW, c.cr0Shadow ?? 0);
    w(V.VMCS_CR4_GUEST_HOST_MASK, c.cr4Mask ?? 0);
    w(V.VMCS_CR4_READ_SHADOW, c.cr4Shadow ?? 0);
  }

  /** Assemble `source` (Intel syntax, 64-bit) at guest-physical/linear `at` and point RIP there. */
  load(source: string, at = CODE): Uint8Array {
    const code = asm(source, 64);
    this.cpu.mem.writeBytes(this.hpa(at), code);
    this.host.vmwrite(V.VMCS_GUEST_RIP, at);
    return code;
  }

  /** VM entry (or resume) and run at most `budget` instructions; returns RUN_*. */
  run(budget = 100_000): number {
    return this.host.run(budget);
  }

  /** Run until a VM exit; throws if the budget ends first. Returns the exit record. */
  runToExit(budget = 100_000): ExitRecord {
    const r = this.host.run(budget);
    if (r !== RUN_EXIT) throw new Error(`expected a VM exit, got run result ${r} (${this.host.entryError})`);
    return this.host.exit;
  }

  get exit(): ExitRecord {
    return this.host.exit;
  }

  /** Guest RIP saved in the VMCS. */
  rip(): number {
    return this.host.vmreadNumber(V.VMCS_GUEST_RIP);
  }

  rsp(): number {
    return this.host.vmreadNumber(V.VMCS_GUEST_RSP);
  }

  /** What a hypervisor does after emulating an instruction: RIP += exit instruction length. */
  skip(): void {
    this.host.vmwrite(V.VMCS_GUEST_RIP, this.rip() + this.host.vmread(V.VMCS_EXIT_INSTRUCTION_LENGTH));
  }

  /** A 64-bit guest GPR (valid between exits: GPRs stay in the CPU). */
  gpr(r: number): number {
    return (this.cpu.hi[r] >>> 0) * 2 ** 32 + (this.cpu.lo[r] >>> 0);
  }

  /** Allocate and clear a 4 KiB host page (bitmaps); returns its host-physical address. */
  hostPage(): number {
    return this.alloc.page();
  }

  /** Set bit `bit` of the byte array at host-physical `base`. */
  setBit(base: number, bit: number): void {
    const a = base + (bit >> 3);
    this.cpu.mem.write(a, 1, this.cpu.mem.read(a, 1) | (1 << (bit & 7)));
  }
}
