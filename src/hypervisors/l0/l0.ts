/**
 * L0: a KVM-like hypervisor over nestlab's VMX hardware. It owns host memory, builds VMs
 * (memslots, lazily populated EPT01, device models), runs vCPUs, and handles exits through a
 * table keyed by exit reason, charging every step through the cost profile.
 */

import { CostLedger } from "../../cost/ledger.js";
import { P, type PrimitiveName } from "../../cost/primitives.js";
import type { LoadedProfile } from "../../cost/profile.js";
import type { Cpu } from "../../cpu/cpu.js";
import {
  type GuestContext,
  newGuestContext,
  RUN_BUDGET,
  RUN_ENTRY_FAILED,
  RUN_EXIT,
  RUN_SHUTDOWN,
  VmxHost,
} from "../../cpu/vmx/host.js";
import type { Vmcs } from "../../cpu/vmx/vmcs.js";
import { IF } from "../../x86/flags.js";
import { MSR_IA32_APIC_BASE, MSR_IA32_TSC_DEADLINE, MSR_X2APIC_FIRST, MSR_X2APIC_LAST } from "../../x86/msr.js";
import * as V from "../../x86/vmx.js";
import * as C from "../../x86/vmx-controls.js";
import { HypervisorMmu } from "../mmu/hv-mmu.js";
import { EXIT_HANDLERS, exitReasonName } from "./exits.js";
import { HostPageAllocator } from "./host-pages.js";
import { Vm, type VmConfig } from "./vm.js";

/** Host-physical base of the device windows L0 uses for MMIO emulation (above any host RAM). */
const DEVICE_WINDOWS = 0x40_0000_0000;
/** Instructions per run slice between L0's checks (not an architectural exit). */
const SLICE = 200_000;

/** Level numbers used in cost attribution. */
export const LEVEL_L0 = 0;
/** The VPID L0 gives its VMs' vCPUs (TLB entries of EPT01 translations carry it). */
export const L0_VM_VPID = 1;

export type VcpuStop =
  | { kind: "debug-exit"; status: number; message: string }
  | { kind: "triple-fault" | "halted" | "instruction-limit" | "error"; message: string };

/** A vCPU: its VMCS, the state KVM keeps beside it, and counters. */
export class Vcpu {
  readonly vmcs: Vmcs;
  readonly ctx: GuestContext = newGuestContext();
  /** Interrupt vector L0 decided to inject at the next entry (-1 none). */
  pendingVector = -1;
  /** An event to re-inject exactly as the IDT-vectoring information gave it (0 none). */
  reinjectInfo = 0;
  reinjectError = 0;
  /** Exception to inject at the next entry (-1 none) and its error code. */
  pendingException = -1;
  pendingExceptionError = -1;
  stop: VcpuStop | null = null;

  constructor(
    readonly vm: Vm,
    vmcs: Vmcs,
  ) {
    this.vmcs = vmcs;
  }
}

export class L0Hypervisor {
  readonly host: VmxHost;
  readonly alloc: HostPageAllocator;
  readonly ledger = new CostLedger();
  readonly costs: Float64Array;
  /** Reverse map and page tracking over every table L0 builds (EPT01s, EPT02s). */
  readonly mmu: HypervisorMmu;
  private readonly msrBitmap: number;
  private windows = DEVICE_WINDOWS;
  /** Ledger ids: exit transitions by reason, handlers by primitive. */
  private readonly transitionIds = new Map<number, number>();
  private readonly handlerIds = new Map<string, number>();
  /** Exits by (reason name) handled. */
  readonly exitsByReason = new Map<string, number>();

  constructor(
    readonly cpu: Cpu,
    readonly profile: LoadedProfile,
    /** Host RAM L0 keeps for its own structures and guest backing starts here. */
    hostBase: number,
  ) {
    this.host = new VmxHost(cpu);
    this.alloc = new HostPageAllocator(cpu.mem, hostBase, cpu.mem.size);
    this.costs = profile.cycles;
    this.mmu = new HypervisorMmu(this.host, () => this.reserveWindow());
    this.msrBitmap = this.buildMsrBitmap();
  }

  /**
   * The MSR bitmap (24.6.9): only the LAPIC's MSRs exit (APIC base, TSC deadline, x2APIC range);
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
    return page;
  }

  /** Reserve a 1 MiB host-physical window (outside RAM) for a device model's MMIO emulation. */
  reserveWindow(): number {
    const w = this.windows;
    this.windows += 0x100000;
    return w;
  }

  createVm(config: VmConfig): Vm {
    const vm = new Vm(this.host.mem, this.alloc, config, { now: () => this.host.cycles() }, this.windows, this.mmu);
    this.windows += 0x100000;
    vm.ept01.flush = () => this.host.invalidateVpid(L0_VM_VPID);
    return vm;
  }

  /** Create a vCPU whose VMCS gets KVM-like controls; the guest state is filled by the loader. */
  createVcpu(vm: Vm): Vcpu {
    const v = this.host.newVmcs();
    const vcpu = new Vcpu(vm, v);
    v.write(V.VMCS_PIN_BASED_CONTROLS, C.PIN_EXT_INTR_EXITING);
    v.write(
      V.VMCS_PROC_BASED_CONTROLS,
      C.CPU_HLT_EXITING | C.CPU_UNCOND_IO_EXITING | C.CPU_USE_MSR_BITMAPS | C.CPU_SECONDARY_CONTROLS,
    );
    v.write(
      V.VMCS_PROC_BASED_CONTROLS2,
      C.CPU2_ENABLE_EPT | C.CPU2_ENABLE_VPID | C.CPU2_ENABLE_RDTSCP | C.CPU2_ENABLE_INVPCID,
    );
    v.write(V.VMCS_EXCEPTION_BITMAP, (1 << 6) | (1 << 18)); // #UD (KVM emulates some), #MC
    v.writeNumber(V.VMCS_MSR_BITMAP, this.msrBitmap);
    v.writeNumber(V.VMCS_EPT_POINTER, vm.ept01.eptp());
    v.write(V.VMCS_VPID, L0_VM_VPID);
    v.write(
      V.VMCS_EXIT_CONTROLS,
      C.EXIT_HOST_ADDR_SPACE_SIZE | C.EXIT_ACK_INTR_ON_EXIT | C.EXIT_SAVE_IA32_EFER | C.EXIT_LOAD_IA32_EFER,
    );
    v.write(V.VMCS_ENTRY_CONTROLS, C.ENTRY_LOAD_IA32_EFER);
    return vcpu;
  }

  // ---- Charging ----

  /** Charge primitive `name` to L0's handler attribution for `reason`. */
  chargeHandler(name: PrimitiveName, reason: string): void {
    const cycles = this.costs[P[name]];
    const key = `${name}|${reason}`;
    let id = this.handlerIds.get(key);
    if (id === undefined) {
      id = this.ledger.id(LEVEL_L0, "handler", reason);
      this.handlerIds.set(key, id);
    }
    this.ledger.add(id, cycles);
    this.host.charge(cycles);
  }

  /** Charge idle (halted) time. */
  chargeIdle(cycles: number): void {
    this.ledger.add(this.ledger.id(1, "idle", "hlt"), cycles);
    this.host.charge(cycles);
  }

  chargeTransition(reason: number): void {
    let id = this.transitionIds.get(reason);
    if (id === undefined) {
      id = this.ledger.id(LEVEL_L0, "transition", exitReasonName(reason));
      this.transitionIds.set(reason, id);
    }
    const c = this.costs[P["vmx.exit"]] + this.costs[P["vmx.entry"]] + this.costs[P["vmx.mitigation"]];
    this.ledger.add(id, c);
    this.host.charge(c);
  }

  // ---- Running ----

  /** Load the vCPU on the CPU (its non-VMCS context) and make its VMCS current. */
  load(vcpu: Vcpu): void {
    this.host.load(vcpu.vmcs);
    this.host.restoreContext(vcpu.ctx);
  }

  /**
   * Run a vCPU until the guest stops (debug exit, triple fault, a halt nothing can wake, an
   * exit L0 cannot handle) or `maxInstructions` retire. L0 never throws for guest behaviour.
   */
  runVcpu(vcpu: Vcpu, maxInstructions: number): VcpuStop {
    const cpu = this.cpu;
    const host = this.host;
    const limit = cpu.icount + maxInstructions;
    this.load(vcpu);
    for (;;) {
      if (vcpu.vm.exitStatus !== null) {
        const s = vcpu.vm.exitStatus;
        return { kind: "debug-exit", status: s, message: `guest wrote ${(s - 1) / 2} to the debug-exit port` };
      }
      if (vcpu.stop !== null) return vcpu.stop;
      const left = limit - cpu.icount;
      if (left <= 0) {
        return {
          kind: "instruction-limit",
          message: `instruction limit (${maxInstructions}) reached; the guest may be hung`,
        };
      }
      this.prepareEntry(vcpu);
      const r = host.run(Math.min(SLICE, left));
      if (r === RUN_BUDGET) continue;
      if (r === RUN_ENTRY_FAILED) return { kind: "error", message: `VM entry failed: ${host.entryError}` };
      if (r === RUN_SHUTDOWN) return { kind: "error", message: "the CPU shut down while running the guest" };
      if (r !== RUN_EXIT) continue;
      const reason = host.exit.reason & 0xffff;
      this.chargeTransition(reason);
      // An event whose delivery the exit interrupted is re-injected (KVM's vmx_complete_interrupts).
      const vect = host.vmread(V.VMCS_IDT_VECTORING_INFO);
      if ((vect & C.INTR_INFO_VALID) !== 0) {
        vcpu.reinjectInfo = vect;
        vcpu.reinjectError = host.vmread(V.VMCS_IDT_VECTORING_ERROR_CODE);
      }
      const name = exitReasonName(reason);
      this.exitsByReason.set(name, (this.exitsByReason.get(name) ?? 0) + 1);
      const handler = EXIT_HANDLERS[reason];
      if (handler === undefined) {
        return {
          kind: "error",
          message: `L0 has no handler for exit reason ${reason} (${name}) at guest RIP 0x${host.vmreadNumber(V.VMCS_GUEST_RIP).toString(16)}`,
        };
      }
      handler(this, vcpu);
    }
  }

  /** Before VM entry: program the preemption timer for the LAPIC, inject what is pending. */
  private prepareEntry(vcpu: Vcpu): void {
    const host = this.host;
    const vm = vcpu.vm;
    vm.lapic.advance(host.cycles());
    // IA-32e mode guest follows the guest's EFER.LMA (as KVM's vmx_set_efer keeps it).
    const efer = host.vmread(V.VMCS_GUEST_IA32_EFER);
    let entry = host.vmread(V.VMCS_ENTRY_CONTROLS);
    entry = (efer & 0x400) !== 0 ? entry | C.ENTRY_IA32E_MODE_GUEST : entry & ~C.ENTRY_IA32E_MODE_GUEST;
    host.vmwrite(V.VMCS_ENTRY_CONTROLS, entry);
    let pin = host.vmread(V.VMCS_PIN_BASED_CONTROLS);
    const next = vm.lapic.nextEventCycle();
    if (next !== Number.POSITIVE_INFINITY) {
      pin |= C.PIN_PREEMPTION_TIMER;
      host.vmwrite(V.VMCS_PREEMPTION_TIMER_VALUE, Math.max(0, Math.ceil((next - host.cycles()) / 32)));
    } else pin &= ~C.PIN_PREEMPTION_TIMER;
    host.vmwrite(V.VMCS_PIN_BASED_CONTROLS, pin);
    // Event injection: an exception L0 decided to reflect, else a pending interrupt.
    let proc = host.vmread(V.VMCS_PROC_BASED_CONTROLS) & ~C.CPU_INTR_WINDOW_EXITING;
    if (vcpu.reinjectInfo !== 0) {
      host.vmwrite(V.VMCS_ENTRY_INTR_INFO, vcpu.reinjectInfo);
      if ((vcpu.reinjectInfo & C.INTR_INFO_DELIVER_CODE) !== 0)
        host.vmwrite(V.VMCS_ENTRY_EXCEPTION_ERROR_CODE, vcpu.reinjectError);
      vcpu.reinjectInfo = 0;
      this.chargeHandler("vmx.inject", "reinject");
    } else if (vcpu.pendingException >= 0) {
      const hasErr = vcpu.pendingExceptionError >= 0;
      host.vmwrite(
        V.VMCS_ENTRY_INTR_INFO,
        C.INTR_INFO_VALID | C.INTR_TYPE_HW_EXCEPTION | vcpu.pendingException | (hasErr ? C.INTR_INFO_DELIVER_CODE : 0),
      );
      if (hasErr) host.vmwrite(V.VMCS_ENTRY_EXCEPTION_ERROR_CODE, vcpu.pendingExceptionError);
      vcpu.pendingException = -1;
      this.chargeHandler("vmx.inject", "inject-exception");
    } else if (vm.router.hasPendingInterrupt()) {
      const rflags = host.vmread(V.VMCS_GUEST_RFLAGS);
      const shadow = host.vmread(V.VMCS_GUEST_INTERRUPTIBILITY) & 3;
      if ((rflags & IF) !== 0 && shadow === 0) {
        const vector = vm.router.acknowledgeInterrupt();
        host.vmwrite(V.VMCS_ENTRY_INTR_INFO, C.INTR_INFO_VALID | C.INTR_TYPE_EXT_INTR | vector);
        host.vmwrite(V.VMCS_GUEST_ACTIVITY_STATE, C.ACTIVITY_ACTIVE);
        this.chargeHandler("vmx.inject", "inject-interrupt");
      } else proc |= C.CPU_INTR_WINDOW_EXITING;
    }
    host.vmwrite(V.VMCS_PROC_BASED_CONTROLS, proc);
  }

  /** Advance the guest RIP past the exiting instruction. */
  skipInstruction(): void {
    const host = this.host;
    const len = host.vmread(V.VMCS_EXIT_INSTRUCTION_LENGTH);
    const lo = host.vmread(V.VMCS_GUEST_RIP);
    const hi = host.current!.lastHi;
    const n = (lo + len) | 0;
    host.vmwrite(V.VMCS_GUEST_RIP, n, n >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi);
    // Retiring the instruction ends an STI/MOV-SS shadow.
    host.vmwrite(V.VMCS_GUEST_INTERRUPTIBILITY, host.vmread(V.VMCS_GUEST_INTERRUPTIBILITY) & ~3);
  }

  // ---- An L1 hypervisor written in TypeScript, running as a guest of this L0 ----

  /** The nested-PV engine, when this L0 offers the npv ABI (set by the npv stack). `handleHypercall` returns false when it injected an exception instead of answering (the VMCALL does not retire). */
  npv: { handleHypercall(l0: L0Hypervisor, vcpu: Vcpu): boolean; owns(nr: number): boolean } | null = null;

  /**
   * L1 executes VMCALL: the registers are set as KVM's convention wants (RAX number, RBX, RCX,
   * RDX, RSI arguments), the exit record is the one the instruction would produce, and L0's
   * exit-handler table handles it like any other exit. Returns RAX (status) and RBX.
   */
  guestHypercall(vcpu: Vcpu, nr: number, a1 = 0, a2 = 0, a3 = 0, a4 = 0): { status: number; rbx: number } {
    const h = this.host;
    this.load(vcpu);
    const set = (r: number, v: number) => {
      h.gprLo[r] = (v % 4294967296) | 0;
      h.gprHi[r] = Math.floor(v / 4294967296) | 0;
    };
    set(0, nr);
    set(3, a1);
    set(1, a2);
    set(2, a3);
    set(6, a4);
    h.synthesizeExit(V.EXIT_VMCALL, 3);
    this.chargeTransition(V.EXIT_VMCALL);
    this.exitsByReason.set("vmcall", (this.exitsByReason.get("vmcall") ?? 0) + 1);
    EXIT_HANDLERS[V.EXIT_VMCALL](this, vcpu);
    const status = h.gprLo[0];
    const rbx = (h.gprHi[3] >>> 0) * 4294967296 + (h.gprLo[3] >>> 0);
    h.saveContext(vcpu.ctx);
    return { status, rbx };
  }

  /** L1 executes CPUID (discovery): a CPUID exit answered from L1's VM's CPUID policy. */
  guestCpuid(vcpu: Vcpu, leaf: number, subleaf = 0): [number, number, number, number] {
    const h = this.host;
    this.load(vcpu);
    h.gprLo[0] = leaf;
    h.gprHi[0] = 0;
    h.gprLo[1] = subleaf;
    h.gprHi[1] = 0;
    h.synthesizeExit(V.EXIT_CPUID, 2);
    this.chargeTransition(V.EXIT_CPUID);
    this.exitsByReason.set("cpuid", (this.exitsByReason.get("cpuid") ?? 0) + 1);
    EXIT_HANDLERS[V.EXIT_CPUID](this, vcpu);
    const r: [number, number, number, number] = [
      h.gprLo[0] >>> 0,
      h.gprLo[3] >>> 0,
      h.gprLo[1] >>> 0,
      h.gprLo[2] >>> 0,
    ];
    h.saveContext(vcpu.ctx);
    return r;
  }

  /** Charge work an L1 written in TypeScript does, at level 1. */
  chargeL1(name: PrimitiveName, reason: string, times = 1): void {
    const cycles = this.costs[P[name]] * times;
    this.ledger.addMany(this.ledger.id(1, "l1", reason), cycles, times);
    this.host.charge(cycles);
  }

  /** Charge L0 work for `times` units of a primitive (per page, per entry…). */
  chargeHandlerN(name: PrimitiveName, reason: string, times: number): void {
    if (times <= 0) return;
    const cycles = this.costs[P[name]] * times;
    this.ledger.addMany(this.ledger.id(LEVEL_L0, "handler", reason), cycles, times);
    this.host.charge(cycles);
  }

  /** Exits taken so far by reason name, sorted by count. */
  exitCounts(): Record<string, number> {
    return Object.fromEntries([...this.exitsByReason].sort((a, b) => b[1] - a[1]));
  }
}
