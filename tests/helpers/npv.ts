/**
 * A test bed for L0's npv engine: host machine, L0, one L1 VM (with a vCPU) the engine is
 * attached to, and helpers to issue hypercalls as an L1 would (the exit record of its VMCALL,
 * `l0.guestHypercall`), to write L1 memory, and to build a tiny 64-bit L2.
 *
 * L2 layout (L2 guest-physical = L2 linear below 4 GiB: 2 MiB pages, then 1 GiB pages):
 *   0x1000 PML4, 0x2000 PDPT, 0x3000 PD, 0x4000 GDT (null, code 0x08, data 0x10),
 *   0x10000 code, 0x20000 stack top. `L2_BOOT_PAGES` pages from L2 0 are backed by L1 pages
 *   from `L2_BACKING` up.
 */

import { loadProfile } from "../../src/cost/profile.js";
import { Cpu } from "../../src/cpu/cpu.js";
import { VmxHost } from "../../src/cpu/vmx/host.js";
import { MemoryBlockBackend } from "../../src/devices/block-backend.js";
import { L0Hypervisor, type Vcpu } from "../../src/hypervisors/l0/l0.js";
import { NpvEngine } from "../../src/hypervisors/l0/npv/engine.js";
import type { Vm } from "../../src/hypervisors/l0/vm.js";
import * as ABI from "../../src/hypervisors/npv-abi.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { asm } from "./asm.js";

export const L1_MEMORY = 16 * 1024 * 1024;
export const L0_RESERVED = 32 * 1024 * 1024;
/** L1 pages used by the tests for structures (state page, run page, tables). */
export const STATE_PAGE = 0x50000;
export const RUN_PAGE = 0x51000;
export const TABLE_PAGE = 0x52000;
export const BLK_DESC_PAGE = 0x53000;
/** L1 RAM backing the L2's boot pages. */
export const L2_BACKING = 0x100000;
export const L2_BOOT_PAGES = 0x40; // L2 0 .. 0x40000
export const L2_PML4 = 0x1000;
export const L2_GDT = 0x4000;
export const L2_CODE = 0x10000;
export const L2_STACK_TOP = 0x20000;

export interface Hc {
  status: number;
  rbx: number;
}

export class NpvBed {
  readonly cpu: Cpu;
  readonly l0: L0Hypervisor;
  readonly engine: NpvEngine;
  readonly vm: Vm;
  readonly vcpu: Vcpu;

  constructor(opts: { l1Memory?: number; secondL1?: boolean } = {}) {
    const profile = loadProfile();
    const l1mem = opts.l1Memory ?? L1_MEMORY;
    const mem = new PhysicalMemory(L0_RESERVED + l1mem * (opts.secondL1 ? 2 : 1));
    this.cpu = new Cpu(mem);
    this.l0 = new L0Hypervisor(new VmxHost(this.cpu), profile);
    this.cpu.setCostModel(profile.cycles, this.l0.ledger, 0, 2);
    this.engine = new NpvEngine(this.l0);
    this.vm = this.l0.createVm({ memory: l1mem });
    this.engine.attach(this.vm);
    this.vcpu = this.l0.createVcpu(this.vm);
  }

  /** A hypercall from this L1 (status as a signed number). */
  hc(nr: number, a1 = 0, a2 = 0, a3 = 0, a4 = 0, vcpu: Vcpu = this.vcpu): Hc {
    const r = this.l0.guestHypercall(vcpu, nr, a1, a2, a3, a4);
    return { status: r.status | 0, rbx: r.rbx };
  }

  // ---- L1 memory ----
  w8(gpa: number, v: number): void {
    this.vm.memory.writeBytes(gpa, new Uint8Array([v]));
  }
  w16(gpa: number, v: number): void {
    this.vm.memory.writeBytes(gpa, new Uint8Array([v & 0xff, (v >>> 8) & 0xff]));
  }
  w32(gpa: number, v: number): void {
    this.vm.memory.write32(gpa, v);
  }
  w64(gpa: number, v: number | bigint): void {
    const b = BigInt.asUintN(64, BigInt(v));
    this.vm.memory.write32(gpa, Number(b & 0xffffffffn));
    this.vm.memory.write32(gpa + 4, Number(b >> 32n));
  }
  r32(gpa: number): number {
    return this.vm.memory.read32(gpa) >>> 0;
  }
  r64(gpa: number): number {
    return this.vm.memory.read64(gpa);
  }
  r8(gpa: number): number {
    return this.vm.memory.readBytes(gpa, 1)[0];
  }
  r16(gpa: number): number {
    return this.vm.memory.read16(gpa);
  }
  bytes(gpa: number, b: Uint8Array): void {
    this.vm.memory.writeBytes(gpa, b);
  }

  // ---- ABI shorthands ----
  vmCreate(flags = 0): number {
    const r = this.hc(ABI.NPV_HC_VM_CREATE, flags);
    if (r.status !== 0) throw new Error(`VM_CREATE: ${r.status}`);
    return r.rbx;
  }
  map(vm: number, l2: number, l1: number, npages: number, perms = 7): number {
    return this.hc(ABI.NPV_HC_MAP, vm, l2, l1, npages + perms * 2 ** 32).status;
  }
  unmap(vm: number, l2: number, npages: number): number {
    return this.hc(ABI.NPV_HC_UNMAP, vm, l2, npages).status;
  }
  protect(vm: number, l2: number, npages: number, perms: number): number {
    return this.hc(ABI.NPV_HC_PROTECT, vm, l2, npages, perms).status;
  }
  /** Write a CPUID table at TABLE_PAGE and SET_CPUID. */
  setCpuid(vm: number, entries: { leaf: number; subleaf?: number; flags?: number; regs: number[] }[]): number {
    entries.forEach((e, k) => {
      const o = TABLE_PAGE + k * 32;
      this.w32(o, e.leaf);
      this.w32(o + 4, e.subleaf ?? 0);
      this.w32(o + 8, e.flags ?? 0);
      this.w32(o + 12, 0);
      for (let i = 0; i < 4; i++) this.w32(o + 16 + 4 * i, e.regs[i] ?? 0);
    });
    return this.hc(ABI.NPV_HC_SET_CPUID, vm, TABLE_PAGE, entries.length).status;
  }
  setMsrs(vm: number, entries: { index: number; mode: number; value?: number }[]): number {
    entries.forEach((e, k) => {
      const o = TABLE_PAGE + k * 16;
      this.w32(o, e.index);
      this.w32(o + 4, e.mode);
      this.w64(o + 8, e.value ?? 0);
    });
    return this.hc(ABI.NPV_HC_SET_MSRS, vm, TABLE_PAGE, entries.length).status;
  }

  /** Write a valid 64-bit initial-state page at `gpa` (overrides patch fields by offset → u64). */
  writeState(gpa = STATE_PAGE, patch: Record<number, number> = {}): void {
    this.vm.memory.writeBytes(gpa, new Uint8Array(ABI.NPV_STATE_SIZE));
    const f: Record<number, number> = {
      [ABI.NPV_STATE_RIP]: L2_CODE,
      [ABI.NPV_STATE_RSP]: L2_STACK_TOP,
      [ABI.NPV_STATE_RFLAGS]: 2,
      [ABI.NPV_STATE_CR0]: 0x80010031,
      [ABI.NPV_STATE_CR3]: L2_PML4,
      [ABI.NPV_STATE_CR4]: 0x20,
      [ABI.NPV_STATE_EFER]: 0x500,
      [ABI.NPV_STATE_GDTR_BASE]: L2_GDT,
      ...patch,
    };
    for (const [off, v] of Object.entries(f)) this.w64(gpa + Number(off), v);
    this.w16(gpa + ABI.NPV_STATE_GDTR_LIMIT, patch[ABI.NPV_STATE_GDTR_LIMIT] ?? 23);
    this.w16(gpa + ABI.NPV_STATE_CS_SEL, patch[ABI.NPV_STATE_CS_SEL] ?? 0x08);
    this.w16(gpa + ABI.NPV_STATE_SS_SEL, patch[ABI.NPV_STATE_SS_SEL] ?? 0x10);
    this.w16(gpa + ABI.NPV_STATE_DS_SEL, patch[ABI.NPV_STATE_DS_SEL] ?? 0x10);
  }

  /** L1 address backing L2 boot page `l2` (inside the boot range). */
  backing(l2: number): number {
    return L2_BACKING + l2;
  }

  /**
   * A VM with the boot pages mapped (RWX), page tables, GDT and `code` at L2_CODE, and one vCPU.
   * Returns the handles.
   */
  tinyL2(
    code: string,
    opts: { flags?: number; cpuid?: { leaf: number; regs: number[] }[] } = {},
  ): { vm: number; vcpu: number } {
    const vm = this.vmCreate(opts.flags ?? 0);
    const b = (l2: number): number => this.backing(l2);
    this.w64(b(L2_PML4), 0x2000 | 3);
    this.w64(b(0x2000), 0x3000 | 3);
    for (let i = 0; i < 512; i++) this.w64(b(0x3000) + i * 8, i * 0x200000 + 0x83);
    for (let i = 1; i < 4; i++) this.w64(b(0x2000) + i * 8, i * 0x40000000 + 0x83); // 1 GiB pages up to 4 GiB
    this.w64(b(L2_GDT + 8), 0x00af9b000000ffffn);
    this.w64(b(L2_GDT + 16), 0x00cf93000000ffffn);
    this.bytes(b(L2_CODE), asm(code, 64));
    const s = this.map(vm, 0, L2_BACKING, L2_BOOT_PAGES, 7);
    if (s !== 0) throw new Error(`MAP boot pages: ${s}`);
    if (opts.cpuid) this.setCpuid(vm, opts.cpuid);
    this.writeState();
    const r = this.hc(ABI.NPV_HC_VCPU_CREATE, vm, STATE_PAGE);
    if (r.status !== 0) throw new Error(`VCPU_CREATE: ${r.status}`);
    return { vm, vcpu: r.rbx };
  }

  /** RUN and return the run page's exit reason. */
  run(vcpu: number, page = RUN_PAGE): number {
    const r = this.hc(ABI.NPV_HC_RUN, vcpu, page);
    if (r.status !== 0) throw new Error(`RUN: ${r.status}`);
    return this.r32(page + ABI.NPV_RUN_EXIT_REASON);
  }

  /** What L1 does after completing an IO/MSR/HYPERCALL exit: RIP += length, flag bit 0. */
  advance(page = RUN_PAGE): void {
    const rip = this.r64(page + ABI.NPV_RUN_RIP);
    const len = this.r32(page + ABI.NPV_RUN_INSN_LEN);
    this.w64(page + ABI.NPV_RUN_RIP, rip + len);
    this.w32(page + ABI.NPV_RUN_FLAGS, ABI.NPV_RUN_F_REGS_DIRTY);
  }

  /** A GPR from the run page. */
  gpr(r: number, page = RUN_PAGE): number {
    return this.r64(page + ABI.NPV_RUN_GPRS + 8 * r);
  }

  data32(off: number, page = RUN_PAGE): number {
    return this.r32(page + ABI.NPV_RUN_DATA + off);
  }

  data64(off: number, page = RUN_PAGE): number {
    return this.r64(page + ABI.NPV_RUN_DATA + off);
  }

  assignDisk(bytes = 1024 * 1024): { id: number; disk: MemoryBlockBackend } {
    const disk = new MemoryBlockBackend(bytes);
    return { id: this.engine.assignBackend(this.vm, disk), disk };
  }
}
