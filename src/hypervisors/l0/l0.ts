/**
 * L0: a KVM-like hypervisor over nestlab's VMX hardware. It owns host memory, builds VMs
 * (memslots, lazily populated EPT01, device models), runs vCPUs, and handles exits through a
 * table keyed by exit reason, charging every step through the cost profile.
 */

import { CostLedger } from "../../cost/ledger.js";
import { P, type PrimitiveName } from "../../cost/primitives.js";
import type { LoadedProfile } from "../../cost/profile.js";
import type { VmxHost } from "../../cpu/vmx/host.js";
import type { StopReason } from "../../machine/stop.js";
import { DEFAULT_TUNABLES, eptLeafBytes, type L0Policy, l0Policy, type Tunables } from "../../machine/tunables.js";
import { VMX_EXIT_REASONS } from "../../stats/exit-reasons.js";
import { ExitTable } from "../../stats/exit-table.js";
import type { TraceRecorder } from "../../trace/recorder.js";
import { CR4_VMXE } from "../../x86/control.js";
import { MC, UD } from "../../x86/exceptions.js";
import { TF } from "../../x86/flags.js";
import {
  MSR_IA32_APIC_BASE,
  MSR_IA32_FEATURE_CONTROL,
  MSR_IA32_TSC_DEADLINE,
  MSR_X2APIC_FIRST,
  MSR_X2APIC_LAST,
} from "../../x86/msr.js";
import { RAX, RBX, RCX, RDX, RSI } from "../../x86/registers.js";
import * as V from "../../x86/vmx.js";
import * as C from "../../x86/vmx-controls.js";
import { MSR_IA32_VMX_FIRST, MSR_IA32_VMX_LAST } from "../../x86/vmx-msr.js";
import type { GuestTableWalker } from "../mmu/guest-walk.js";
import { HypervisorMmu } from "../mmu/hv-mmu.js";
import { dispatchExit, handleExit, runGuest } from "./core.js";
import { EngineRegistry } from "./engine.js";
import { exitReasonName } from "./exits.js";
import { HostPageAllocator } from "./host-pages.js";
import { type GuestVcpu, Vcpu, writeVcpuControls } from "./vcpu.js";
import { Vm, type VmConfig } from "./vm.js";

export { Vcpu } from "./vcpu.js";

/** Host-physical base of the device windows L0 uses for MMIO emulation (above any host RAM). */
const DEVICE_WINDOWS = 0x40_0000_0000;
/** The VPID L0 gives its own VMs' vCPUs (nested engines allocate theirs above it). */
export const L0_VM_VPID = 1;

/** A walk reference's primitive by where the data caches found it (data-cache.ts FOUND_* order). */
const WALK_BY_CACHE_LEVEL: readonly PrimitiveName[] = ["mmu.walk_l1d", "mmu.walk_l2", "mmu.walk_llc", "mmu.walk_dram"];

export class L0Hypervisor {
  readonly alloc: HostPageAllocator;
  readonly ledger = new CostLedger();
  readonly costs: Float64Array;
  /** Reverse map and page tracking over every table L0 builds (EPT01s, EPT02s). */
  readonly mmu: HypervisorMmu;
  /** Nested engines plugged into this L0 (npv, …) and what each claims. */
  readonly engines = new EngineRegistry();
  private readonly msrBitmap: number;
  private windows = DEVICE_WINDOWS;
  /**
   * Ledger ids: exit transitions by reason; handler work by reason (the line does not depend on
   * the primitive); a tagged vCPU's handler work by tag, then reason; idle time by level. Looked
   * up by the strings the callers pass, so a charge builds no string.
   */
  private readonly transitionIds = new Map<number, number>();
  private readonly handlerIds = new Map<string, number>();
  private readonly taggedHandlerIds = new Map<string, Map<string, number>>();
  private readonly idleIds: number[] = [];
  /**
   * Every exit L0 took, by the level of the code that took it (the VMCS's level) and basic exit
   * reason: on npv the L1's own exits (its VMCALLs, timer, I/O) at level 1 and its L2's at level 2.
   */
  readonly exits = new ExitTable(VMX_EXIT_REASONS);
  /** The timeline recorder (`run --trace`), or null: tracing off costs one null check per event. */
  trace: TraceRecorder | null = null;

  /** The level L0's own code is attributed to (the host's root operation). */
  get level(): number {
    return this.host.rootLevel;
  }

  constructor(
    readonly host: VmxHost,
    readonly profile: LoadedProfile,
    readonly tunables: Tunables = { ...DEFAULT_TUNABLES },
    /** What L0 intercepts and where it handles device registers (the same defaults for every stack). */
    readonly policy: L0Policy = l0Policy(),
  ) {
    this.alloc = new HostPageAllocator(host.mem, tunables.l0HostBase, host.mem.size);
    this.costs = profile.cycles;
    this.mmu = new HypervisorMmu(this.host, () => this.reserveWindow());
    this.msrBitmap = this.buildMsrBitmap();
    // From here on every host page L0 hands out (tables, engine structures) is charged.
    this.alloc.onPage = (zeroOnly) => this.chargeHostPage(zeroOnly);
  }

  /** One host page taken (allocated and zeroed) or recycled (zeroed only). */
  chargeHostPage(zeroOnly: boolean): void {
    if (!zeroOnly) this.chargeHandler("host.page_alloc", "host_page_alloc");
    this.chargeHandler("host.page_zero", "host_page_zero");
  }
  /**
   * The MSR bitmap (24.6.9): only the LAPIC's MSRs exit (APIC base, TSC deadline, x2APIC range);
   * IA32_FEATURE_CONTROL and the VMX capability MSRs exit too (L0 answers them for nested VMX);
   * every other MSR is the guest's own (the CPU keeps its value), as with KVM's pass-through MSRs.
   */
  private buildMsrBitmap(): number {
    const page = this.alloc.page();
    const mem = this.host.mem;
    const set = (index: number): void => {
      for (const base of [0, 2048]) {
        const a = page + base + (index >> 3);
        mem.write(a, 1, mem.read(a, 1) | (1 << (index & 7)));
      }
    };
    set(MSR_IA32_APIC_BASE);
    set(MSR_IA32_TSC_DEADLINE);
    for (let m = MSR_X2APIC_FIRST; m <= MSR_X2APIC_LAST; m++) set(m);
    // IA32_FEATURE_CONTROL and the VMX capability MSRs: answered by a nested-VMX engine, else #GP.
    set(MSR_IA32_FEATURE_CONTROL);
    for (let m = MSR_IA32_VMX_FIRST; m <= MSR_IA32_VMX_LAST; m++) set(m);
    return page;
  }

  /** The MSR bitmap L0's own vCPUs use (a nested engine merges an L1's into a copy of it). */
  get msrBitmapPage(): number {
    return this.msrBitmap;
  }

  /** Reserve a 1 MiB host-physical window (outside RAM) for a device model's MMIO emulation. */
  reserveWindow(): number {
    const w = this.windows;
    this.windows += 0x100000;
    return w;
  }

  createVm(config: VmConfig): Vm {
    const vm = new Vm(
      this.host.mem,
      this.alloc,
      { virtioRegsInKernel: this.policy.vmVirtio === "kernel", eptLeafBytes: eptLeafBytes(this.policy), ...config },
      { now: () => this.host.cycles() },
      this.windows,
      this.level + 1,
      this.mmu,
    );
    this.windows += 0x100000;
    vm.onBacking = (pages) => {
      this.chargeHandler("host.page_alloc", "host_page_alloc");
      this.chargeHandlerN("host.page_zero", "host_page_zero", pages);
    };
    vm.ept01.flush = () => this.host.invalidateVpid(L0_VM_VPID);
    return vm;
  }

  /** Create a vCPU whose VMCS gets KVM-like controls; the guest state is filled by the loader. */
  createVcpu(vm: Vm): Vcpu {
    const v = this.host.newVmcs(vm.level);
    const vcpu = new Vcpu(vm, v);
    this.host.withVmcs(v, () =>
      writeVcpuControls(this.host, {
        exceptionBitmap: this.exceptionBitmap(),
        msrBitmap: this.msrBitmap,
        eptp: vm.ept01.eptp(),
        vpid: L0_VM_VPID,
        entry: C.ENTRY_LOAD_IA32_EFER,
      }),
    );
    // L0 owns CR4.VMXE (KVM: never a guest-owned CR4 bit): a guest setting it exits (crAccess).
    // CR8 is the TPR of the vCPU's virtual APIC: with no TPR shadow, MOV to/from CR8 exit and
    // L0 reads or writes that APIC (KVM vmx.c: CR8 load/store exiting unless the CPU has a TPR shadow).
    this.host.withVmcs(v, () => {
      const proc = this.host.vmread(V.VMCS_PROC_BASED_CONTROLS);
      this.host.vmwrite(V.VMCS_PROC_BASED_CONTROLS, proc | C.CPU_CR8_LOAD_EXITING | C.CPU_CR8_STORE_EXITING);
      this.host.vmwrite(V.VMCS_CR4_GUEST_HOST_MASK, CR4_VMXE);
      this.host.vmwrite(V.VMCS_CR4_READ_SHADOW, 0);
    });
    return vcpu;
  }

  /** The exception bitmap of every vCPU L0 runs: #MC, and #UD when the policy intercepts it (KVM's emulator). */
  exceptionBitmap(): number {
    return (1 << MC) | (this.policy.interceptUd ? 1 << UD : 0);
  }

  /** Drop the TLB entries of `vm`'s guests after L0 changed EPT01 under them (INVVPID + INVEPT). */
  flushGuestTlb(_vm: Vm): void {
    this.host.invalidateVpid(L0_VM_VPID);
  }

  /** Record a timeline of this L0's runs and exits, and of every charge its ledger takes. */
  attachTrace(recorder: TraceRecorder): void {
    this.trace = recorder;
    this.ledger.observer = recorder;
  }

  // ---- Charging ----

  /** Charge primitive `name` to L0's handler attribution for `reason`. */
  chargeHandler(name: PrimitiveName, reason: string): void {
    this.chargeHandlerId(name, this.handlerId(reason));
  }

  private handlerId(reason: string): number {
    let id = this.handlerIds.get(reason);
    if (id === undefined) {
      id = this.ledger.id(this.level, "handler", reason);
      this.handlerIds.set(reason, id);
    }
    return id;
  }

  private chargeHandlerId(name: PrimitiveName, id: number): void {
    const cycles = this.costs[P[name]];
    this.ledger.add(id, cycles);
    this.host.charge(cycles);
  }

  /** Charge L0 work on an exit of `v` (under the vCPU's ledger tag: "npv_cpuid" for an npv L2). */
  chargeFor(v: GuestVcpu, name: PrimitiveName, reason: string): void {
    const tag = v.chargeTag;
    if (tag === "") {
      this.chargeHandler(name, reason);
      return;
    }
    let ids = this.taggedHandlerIds.get(tag);
    if (ids === undefined) {
      ids = new Map();
      this.taggedHandlerIds.set(tag, ids);
    }
    let id = ids.get(reason);
    if (id === undefined) {
      id = this.ledger.id(this.level, "handler", tag + reason);
      ids.set(reason, id);
    }
    this.chargeHandlerId(name, id);
  }

  /** Charge idle (halted) time of vCPU `v`, at the level of the code it runs. */
  chargeIdle(v: GuestVcpu, cycles: number): void {
    const level = v.vmcs.level;
    let id = this.idleIds[level];
    if (id === undefined) {
      id = this.ledger.id(level, "idle", "hlt");
      this.idleIds[level] = id;
    }
    this.ledger.add(id, cycles);
    this.host.charge(cycles);
  }

  chargeTransition(reason: number): void {
    let id = this.transitionIds.get(reason);
    if (id === undefined) {
      id = this.ledger.id(this.level, "transition", exitReasonName(reason));
      this.transitionIds.set(reason, id);
    }
    const c = this.costs[P["vmx.exit"]] + this.costs[P["vmx.entry"]] + this.costs[P["vmx.mitigation"]];
    this.ledger.add(id, c);
    this.host.charge(c);
  }

  /** Count an exit by the level of the code (the VMCS's) that took it and basic exit reason. */
  countExit(reason: number, level: number): void {
    this.exits.bump(level, reason);
  }

  /** Exits taken by code at `level`, by reason name (most first, then by name). */
  exitCountsAt(level: number): Array<{ reason: string; count: number }> {
    return this.exits
      .list(level)
      .map((r) => ({ reason: r.reason, count: r.count }))
      .sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1));
  }

  // ---- Running ----

  /** Load the vCPU on the CPU (its non-VMCS context) and make its VMCS current. */
  load(vcpu: GuestVcpu): void {
    this.host.load(vcpu.vmcs);
    this.host.restoreContext(vcpu.ctx);
  }

  /**
   * Run a vCPU until the guest stops (debug exit, triple fault, a halt nothing can wake, an
   * exit L0 cannot handle) or `maxInstructions` retire. L0 never throws for guest behaviour.
   */
  runVcpu(vcpu: Vcpu, maxInstructions: number): StopReason {
    this.load(vcpu);
    vcpu.budget = maxInstructions;
    runGuest(this, vcpu, maxInstructions);
    return vcpu.stop ?? { kind: "error", message: "the vCPU stopped without a reason" };
  }

  /** The instruction L0 was emulating for `v` exited in turn: handle that exit (bounded depth). */
  dispatchNested(v: GuestVcpu, depth: number): number {
    return dispatchExit(this, v, this.host.exit.reason & 0xffff, depth + 1);
  }

  /** Advance the guest RIP past the exiting instruction. */
  skipInstruction(): void {
    const host = this.host;
    const len = host.vmread(V.VMCS_EXIT_INSTRUCTION_LENGTH);
    const lo = host.vmread(V.VMCS_GUEST_RIP);
    const hi = host.vmreadHigh(V.VMCS_GUEST_RIP);
    const n = (lo + len) | 0;
    host.vmwrite(V.VMCS_GUEST_RIP, n, n >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi);
    // Retiring the instruction ends an STI/MOV-SS shadow.
    host.vmwrite(
      V.VMCS_GUEST_INTERRUPTIBILITY,
      host.vmread(V.VMCS_GUEST_INTERRUPTIBILITY) & ~(C.INTERRUPTIBILITY_STI | C.INTERRUPTIBILITY_MOV_SS),
    );
    // An instruction that started with TF = 1 completed: its single-step trap is due after it
    // (KVM: kvm_skip_emulated_instruction -> kvm_vcpu_do_singlestep), delivered at the next entry.
    if ((host.vmread(V.VMCS_GUEST_RFLAGS) & TF) !== 0) {
      const p = host.vmread(V.VMCS_GUEST_PENDING_DBG_EXCEPTIONS);
      host.vmwrite(V.VMCS_GUEST_PENDING_DBG_EXCEPTIONS, p | C.PENDING_DBG_BS);
    }
  }

  // ---- A test driver acting as an L1 (the npv fuzzer, tests): its VMCALL and CPUID as exits ----

  /**
   * L1 executes VMCALL: the registers are set as KVM's convention wants (RAX number, RBX, RCX,
   * RDX, RSI arguments), the exit record is the one the instruction would produce, and it takes
   * the path of every exit through L0's core. Returns RAX (status) and RBX.
   */
  guestHypercall(vcpu: Vcpu, nr: number, a1 = 0, a2 = 0, a3 = 0, a4 = 0): { status: number; rbx: number } {
    const h = this.host;
    this.load(vcpu);
    const set = (r: number, v: number) => {
      h.gprLo[r] = (v % 4294967296) | 0;
      h.gprHi[r] = Math.floor(v / 4294967296) | 0;
    };
    set(RAX, nr);
    set(RBX, a1);
    set(RCX, a2);
    set(RDX, a3);
    set(RSI, a4);
    h.synthesizeExit(V.EXIT_VMCALL, 3);
    this.handleSynthesizedExit(vcpu);
    const status = h.gprLo[RAX];
    const rbx = (h.gprHi[RBX] >>> 0) * 4294967296 + (h.gprLo[RBX] >>> 0);
    h.saveContext(vcpu.ctx);
    return { status, rbx };
  }

  /** An exit a test driver raised for its vCPU: through the core, as the vCPU's own run. */
  private handleSynthesizedExit(vcpu: Vcpu): void {
    const tr = this.trace;
    if (tr === null) {
      handleExit(this, vcpu);
      return;
    }
    tr.runBegin(vcpu, vcpu.vmcs.level);
    try {
      handleExit(this, vcpu);
    } finally {
      tr.runEnd();
    }
  }

  /** L1 executes CPUID (discovery): a CPUID exit answered from L1's VM's CPUID policy. */
  guestCpuid(vcpu: Vcpu, leaf: number, subleaf = 0): [number, number, number, number] {
    const h = this.host;
    this.load(vcpu);
    h.gprLo[RAX] = leaf;
    h.gprHi[RAX] = 0;
    h.gprLo[RCX] = subleaf;
    h.gprHi[RCX] = 0;
    h.synthesizeExit(V.EXIT_CPUID, 2);
    this.handleSynthesizedExit(vcpu);
    const r: [number, number, number, number] = [
      h.gprLo[RAX] >>> 0,
      h.gprLo[RBX] >>> 0,
      h.gprLo[RCX] >>> 0,
      h.gprLo[RDX] >>> 0,
    ];
    h.saveContext(vcpu.ctx);
    return r;
  }

  /** Charge L0 work for `times` units of a primitive (per page, per entry…). */
  /**
   * Charge L0's software walk of a guest-resident table (`walk`'s last walk): each entry read at
   * the latency of the cache level that held it, as the CPU's own walks (mmu.walk_l1d..dram);
   * the flat mmu.walk_ref each when the walk went through no cache model (`--cache-model off`).
   */
  chargeTableWalk(reason: string, walk: GuestTableWalker): void {
    if (walk.cache === null) {
      this.chargeHandlerN("mmu.walk_ref", reason, walk.refs);
      return;
    }
    for (let k = 0; k < 4; k++) this.chargeHandlerN(WALK_BY_CACHE_LEVEL[k], reason, walk.found[k]);
  }

  chargeHandlerN(name: PrimitiveName, reason: string, times: number): void {
    if (times <= 0) return;
    const cycles = this.costs[P[name]] * times;
    this.ledger.addMany(this.handlerId(reason), cycles, times);
    this.host.charge(cycles);
  }

  /** Exits taken so far by reason name, sorted by count (ties: the reason first met first). */
  exitCounts(): Record<string, number> {
    return Object.fromEntries(
      this.exits
        .merged()
        .sort((a, b) => b.count - a.count)
        .map((r) => [r.reason, r.count]),
    );
  }
}
