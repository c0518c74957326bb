/**
 * The narrow interface a hypervisor uses to drive VMX, the way KVM's vmx.c uses the hardware:
 * make a VMCS current, read and write its fields, enter the guest and get back the exit. The
 * hypervisor never touches CPU internals directly; guest general-purpose registers are exposed as
 * KVM exposes vcpu->arch.regs.
 */

import { type CostLedger, LevelIds } from "../../cost/ledger.js";
import type { DataCacheModel } from "../../mmu/data-cache.js";
import type { PhysicalMemory } from "../../mmu/phys.js";
import * as V from "../../x86/vmx.js";
import { PREEMPTION_TIMER_RATE_SHIFT } from "../../x86/vmx-controls.js";
import type { Cpu } from "../cpu.js";
import { STOP_BUDGET, STOP_HALT, STOP_SHUTDOWN, STOP_VMEXIT } from "../cpu.js";
import { updateDebugState } from "../debug.js";
import { Vmcs } from "./vmcs.js";
import { ENTERED_AND_EXITED, type ExitRecord, type VmxUnit } from "./vmx.js";

/** What `VmxHost.run` came back with. */
export const RUN_EXIT = 0; // a VM exit: read `exit`
export const RUN_BUDGET = 1; // the instruction budget ran out; the guest is still entered
export const RUN_ENTRY_FAILED = 2; // VM entry failed: `entryError` says why
export const RUN_SHUTDOWN = 3; // the CPU shut down outside the guest (should not happen)

/** The general-purpose register state a hypervisor saves when it switches vCPUs. */
export interface GuestContext {
  lo: Int32Array;
  hi: Int32Array;
  cr2Lo: number;
  cr2Hi: number;
  cr8: number;
  msr: Int32Array; // STAR, LSTAR, CSTAR, SFMASK, KERNEL_GS_BASE (lo/hi pairs), TSC_AUX
  drLo: Int32Array;
  drHi: Int32Array;
}

export function newGuestContext(): GuestContext {
  return {
    lo: new Int32Array(16),
    hi: new Int32Array(16),
    cr2Lo: 0,
    cr2Hi: 0,
    cr8: 0,
    msr: new Int32Array(12),
    drLo: new Int32Array(8),
    drHi: new Int32Array(8),
  };
}

export class VmxHost {
  private readonly unit: VmxUnit;
  /** Set between a successful VM entry and the next exit. */
  private inGuest = false;
  entryError = "";
  /** The ledger id of (running level, "idle", "hlt"): idle time in the HLT state. */
  private readonly idleIds = new LevelIds("idle", "hlt");

  constructor(private readonly cpu: Cpu) {
    this.unit = cpu.vmxUnit;
  }

  /** Host-physical memory (the hypervisor's own RAM, where it builds EPT tables and backs guests). */
  get mem(): PhysicalMemory {
    return this.cpu.mem;
  }

  /**
   * The data caches of this core (null: not modelled, `--cache-model off`). The hypervisor's own
   * loads of guest-resident tables (its software walks) go through them, as they would on hardware.
   */
  get dataCache(): DataCacheModel | null {
    return this.cpu.mmu.dataCache;
  }

  /** Guest GPRs (valid while the vCPU is loaded on the CPU). */
  get gprLo(): Int32Array {
    return this.cpu.lo;
  }

  get gprHi(): Int32Array {
    return this.cpu.hi;
  }

  get exit(): ExitRecord {
    return this.unit.exit;
  }

  get exitCounts(): Float64Array {
    return this.unit.exitCounts;
  }

  /** A new VMCS for code at `level` (by default one level above the host's). */
  newVmcs(level = this.rootLevel + 1): Vmcs {
    const v = new Vmcs();
    v.level = level;
    return v;
  }

  /**
   * Make `v` an active VMCS of the processor at host-physical `hpa` without making it current
   * (as VMPTRLD of it and back would): the VMCS a link pointer names for VMCS shadowing, which
   * VMREAD/VMWRITE in non-root operation then reach (shadow.ts).
   */
  activateShadowVmcs(v: Vmcs, hpa: number): void {
    v.address = hpa;
    this.unit.software.cache.set(hpa, v);
  }

  /** The level of the code in root operation: the hypervisor driving this host. */
  get rootLevel(): number {
    return this.cpu.levelRoot;
  }

  /** The ledger every charge is attributed in (the one the CPU charges to). */
  get ledger(): CostLedger {
    return this.cpu.ledger;
  }

  /** VMPTRLD. */
  load(v: Vmcs): void {
    if (this.inGuest) throw new Error("VMPTRLD while a guest is entered");
    this.unit.vmcs = v;
  }

  get current(): Vmcs | null {
    return this.unit.vmcs;
  }

  /**
   * Make `v` current for `fn` (VMPTRLD), then the VMCS that was current before: how a hypervisor
   * fills or reads a VMCS other than the running vCPU's (say, a new vCPU's, during an exit).
   * `arg` is handed to `fn`, so a per-event caller passes a module function, not a new closure.
   */
  withVmcs<T, A = undefined>(v: Vmcs, fn: (arg: A) => T, arg?: A): T {
    const prev = this.unit.vmcs;
    if (prev === v) return fn(arg as A);
    this.load(v);
    try {
      return fn(arg as A);
    } finally {
      this.unit.vmcs = prev;
    }
  }

  /** VMREAD: the field's low 32 bits. */
  vmread(field: number): number {
    return (this.unit.vmcs as Vmcs).read(field);
  }

  /** VMREAD of bits 63:32 of a 64-bit or natural-width field (with `vmread`, the 64-bit form). */
  vmreadHigh(field: number): number {
    return (this.unit.vmcs as Vmcs).readHi(field);
  }

  vmreadNumber(field: number): number {
    return (this.unit.vmcs as Vmcs).readNumber(field);
  }

  /** VMWRITE of a 64-bit value as halves (`hi` ignored for 16- and 32-bit fields). */
  vmwrite(field: number, lo: number, hi = 0): void {
    (this.unit.vmcs as Vmcs).write(field, lo, hi);
  }

  /** VMWRITE of an address or count given as a number (exact below 2^53). */
  vmwriteNumber(field: number, value: number): void {
    (this.unit.vmcs as Vmcs).writeNumber(field, value);
  }

  /**
   * Instructions retired so far, all levels (the fixed-function counter INST_RETIRED.ANY,
   * IA32_FIXED_CTR0, that a hypervisor reads to bound a guest's run).
   */
  instructionsRetired(): number {
    return this.cpu.icount;
  }

  /** TSC cycles per tick of the VMX-preemption timer (2^IA32_VMX_MISC[4:0]). */
  get preemptionTimerCyclesPerTick(): number {
    return 1 << PREEMPTION_TIMER_RATE_SHIFT;
  }

  /** Simulated cycles now. */
  cycles(): number {
    return this.cpu.cycles();
  }

  /** Charge hypervisor work to the clock (the ledger attribution is the caller's). */
  charge(cycles: number): void {
    this.cpu.charge(cycles);
  }

  /**
   * VMLAUNCH/VMRESUME and run the guest for at most `budget` instructions. Returns RUN_EXIT with
   * the exit in `exit`, or RUN_BUDGET (still in the guest: call again to continue), or
   * RUN_ENTRY_FAILED.
   */
  run(budget: number): number {
    const cpu = this.cpu;
    if (!this.inGuest) {
      const err = this.unit.enter();
      if (err === ENTERED_AND_EXITED) return RUN_EXIT;
      if (err !== null) {
        this.entryError = err;
        (this.unit.vmcs as Vmcs).write(V.VMCS_EXIT_REASON, V.EXIT_REASON_ENTRY_FAILURE | V.EXIT_INVALID_GUEST_STATE);
        return RUN_ENTRY_FAILED;
      }
      this.inGuest = true;
    }
    const deadline = this.unit.preemptionDeadline;
    if (deadline !== Number.POSITIVE_INFINITY) {
      const left = this.unit.preemptionInsnsLeft();
      if (left <= 0) return this.forcedExit(V.EXIT_PREEMPTION_TIMER);
      budget = Math.min(budget, left);
    }
    const stop = cpu.run(budget);
    if (stop === STOP_VMEXIT) {
      this.inGuest = false;
      return RUN_EXIT;
    }
    if (stop === STOP_BUDGET || stop === STOP_HALT) {
      if (stop === STOP_HALT && deadline !== Number.POSITIVE_INFINITY && cpu.cycles() < deadline) {
        // The preemption timer counts down in the HLT state too (SDM vol. 3, 25.5.1): the guest
        // idles until it expires. Attributed as the guest's idle time.
        const idle = deadline - cpu.cycles();
        cpu.charge(idle);
        cpu.ledger.add(this.idleIds.of(cpu.ledger, cpu.runningLevel), idle);
      }
      if (cpu.cycles() >= deadline) return this.forcedExit(V.EXIT_PREEMPTION_TIMER);
      return RUN_BUDGET;
    }
    if (stop === STOP_SHUTDOWN) {
      this.inGuest = false;
      return RUN_SHUTDOWN;
    }
    return RUN_BUDGET;
  }

  /**
   * Record an exit for a guest whose "instructions" are TypeScript (an L1 hypervisor modelled in
   * code): the same exit record a VMCALL/CPUID executed by x86 code would leave in the VMCS.
   */
  synthesizeExit(reason: number, instrLen: number): void {
    const v = this.unit.vmcs as Vmcs;
    v.write(V.VMCS_EXIT_REASON, reason);
    v.write(V.VMCS_EXIT_QUALIFICATION, 0, 0);
    v.write(V.VMCS_EXIT_INSTRUCTION_LENGTH, instrLen);
    v.write(V.VMCS_EXIT_INTR_INFO, 0);
    v.write(V.VMCS_IDT_VECTORING_INFO, 0);
    const e = this.unit.exit;
    e.reason = reason;
    e.instrLen = instrLen;
    this.unit.exitCounts[reason]++;
  }

  /** An exit that happens between instructions (VMX-preemption timer expiry). */
  private forcedExit(reason: number): number {
    this.unit.exitBetweenInstructions(reason);
    this.inGuest = false;
    return RUN_EXIT;
  }

  /**
   * Emulate the guest instruction at RIP with guest-physical [gpaBase, gpaBase+size) routed to
   * host-physical [hostBase, …) — a window where the hypervisor registered its device model — as
   * KVM's instruction emulator does for MMIO. The instruction retires and the guest stays exited.
   */
  emulateMmioInstruction(gpaBase: number, size: number, hostBase: number): RunOutcomeOfEmulation {
    const cpu = this.cpu;
    cpu.mmioWindow.gpaBase = gpaBase;
    cpu.mmioWindow.size = size;
    cpu.mmioWindow.hostBase = hostBase;
    try {
      const r = this.run(1);
      if (r === RUN_EXIT) return { exited: true };
      // Leave the guest cleanly at the next instruction boundary (no architectural exit is charged).
      this.unit.exitBetweenInstructions(V.EXIT_PREEMPTION_TIMER, true);
      this.inGuest = false;
      return { exited: false };
    } finally {
      cpu.mmioWindow.size = 0;
    }
  }

  /**
   * Leave a guest still entered after RUN_BUDGET at the current instruction boundary, without an
   * architectural exit (the hypervisor ending its own slice, e.g. to switch VMCS). No-op otherwise.
   */
  leaveGuest(): void {
    if (!this.inGuest) return;
    this.unit.exitBetweenInstructions(V.EXIT_PREEMPTION_TIMER, true);
    this.inGuest = false;
  }

  /** True between a successful VM entry and the next exit (or leaveGuest). */
  get entered(): boolean {
    return this.inGuest;
  }

  /**
   * INVVPID (single context) + INVEPT: drop every TLB and paging-structure-cache entry tagged
   * with `vpid`, the EPT paging-structure caches, and the CPU's software TLB.
   */
  invalidateVpid(vpid: number): void {
    this.unit.invalidateVpid(vpid);
  }

  /** Save the vCPU's non-VMCS state (GPRs, syscall MSRs, CR2, DRs) when switching vCPUs. */
  saveContext(ctx: GuestContext): void {
    const c = this.cpu;
    ctx.lo.set(c.lo);
    ctx.hi.set(c.hi);
    ctx.cr2Lo = c.cr2Lo;
    ctx.cr2Hi = c.cr2Hi;
    ctx.cr8 = c.cr8;
    const m = ctx.msr;
    m[0] = c.starLo;
    m[1] = c.starHi;
    m[2] = c.lstarLo;
    m[3] = c.lstarHi;
    m[4] = c.cstarLo;
    m[5] = c.cstarHi;
    m[6] = c.sfmask;
    m[8] = c.kernelGsBaseLo;
    m[9] = c.kernelGsBaseHi;
    m[10] = c.tscAux;
    ctx.drLo.set(c.drLo);
    ctx.drHi.set(c.drHi);
  }

  restoreContext(ctx: GuestContext): void {
    const c = this.cpu;
    c.lo.set(ctx.lo);
    c.hi.set(ctx.hi);
    c.cr2Lo = ctx.cr2Lo;
    c.cr2Hi = ctx.cr2Hi;
    c.cr8 = ctx.cr8;
    const m = ctx.msr;
    c.starLo = m[0];
    c.starHi = m[1];
    c.lstarLo = m[2];
    c.lstarHi = m[3];
    c.cstarLo = m[4];
    c.cstarHi = m[5];
    c.sfmask = m[6];
    c.kernelGsBaseLo = m[8];
    c.kernelGsBaseHi = m[9];
    c.tscAux = m[10];
    c.drLo.set(ctx.drLo);
    c.drHi.set(ctx.drHi);
    updateDebugState(c);
  }
}

export interface RunOutcomeOfEmulation {
  /** The instruction caused a VM exit of its own (e.g. it faulted into an intercepted vector). */
  exited: boolean;
}
