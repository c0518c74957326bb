/**
 * The vCPU abstraction L0's run/exit core works on (core.ts): a VMCS, the register context KVM
 * keeps beside it, the events waiting for the next VM entry, and the few things that differ
 * between an L1 vCPU L0 runs for itself and an L2 vCPU a nested engine runs on an L1's behalf
 * (where its interrupts come from, its LAPIC and CPUID, and what "stop" means to its owner).
 */
import { type GuestContext, newGuestContext, type VmxHost } from "../../cpu/vmx/host.js";
import type { Vmcs } from "../../cpu/vmx/vmcs.js";
import type { LocalApic } from "../../devices/lapic.js";
import type { StopReason } from "../../machine/stop.js";
import * as V from "../../x86/vmx.js";
import * as C from "../../x86/vmx-controls.js";
import type { NestedEngine } from "./engine.js";
import type { Vm } from "./vm.js";

/** A CPUID answer source (L0's model of the VM, or an L1's policy for its L2). */
export interface CpuidSource {
  query(leaf: number, subleaf: number, out: Int32Array): void;
}

/** Handler result: the exit was handled and the vCPU resumes. Anything else ends the run loop. */
export const HANDLED = 0;

/** What differs between the VMCS controls of L0's vCPUs (its VMs' and the L2s engines run). */
export interface VcpuControls {
  exceptionBitmap: number;
  msrBitmap: number;
  eptp: number;
  vpid: number;
  entry: number;
}

/**
 * The KVM-like execution controls every vCPU L0 runs gets, into the current VMCS: external
 * interrupts, HLT and all I/O exit; MSRs through the bitmap; EPT and VPID; RDTSCP and INVPCID
 * for the guest; 64-bit host, interrupts acknowledged on exit, EFER saved and loaded.
 */
export function writeVcpuControls(h: VmxHost, c: VcpuControls): void {
  h.vmwrite(V.VMCS_PIN_BASED_CONTROLS, C.PIN_EXT_INTR_EXITING);
  h.vmwrite(
    V.VMCS_PROC_BASED_CONTROLS,
    C.CPU_HLT_EXITING | C.CPU_UNCOND_IO_EXITING | C.CPU_USE_MSR_BITMAPS | C.CPU_SECONDARY_CONTROLS,
  );
  h.vmwrite(
    V.VMCS_PROC_BASED_CONTROLS2,
    C.CPU2_ENABLE_EPT | C.CPU2_ENABLE_VPID | C.CPU2_ENABLE_RDTSCP | C.CPU2_ENABLE_INVPCID,
  );
  h.vmwrite(V.VMCS_EXCEPTION_BITMAP, c.exceptionBitmap);
  h.vmwriteNumber(V.VMCS_MSR_BITMAP, c.msrBitmap);
  h.vmwriteNumber(V.VMCS_EPT_POINTER, c.eptp);
  h.vmwrite(V.VMCS_VPID, c.vpid);
  h.vmwrite(
    V.VMCS_EXIT_CONTROLS,
    C.EXIT_HOST_ADDR_SPACE_SIZE | C.EXIT_ACK_INTR_ON_EXIT | C.EXIT_SAVE_IA32_EFER | C.EXIT_LOAD_IA32_EFER,
  );
  h.vmwrite(V.VMCS_ENTRY_CONTROLS, c.entry);
}

export abstract class GuestVcpu {
  readonly ctx: GuestContext;
  /** An event to re-inject exactly as the IDT-vectoring information gave it (0 none). */
  reinjectInfo = 0;
  reinjectError = 0;
  /** Exception to inject at the next entry (-1 none) and its error code (-1 none). */
  pendingException = -1;
  pendingExceptionError = -1;

  constructor(
    readonly vmcs: Vmcs,
    ctx: GuestContext = newGuestContext(),
  ) {
    this.ctx = ctx;
  }

  /** The nested engine running this vCPU for its owner, or null for a vCPU L0 runs itself. */
  abstract readonly engine: NestedEngine | null;
  /** The VM whose devices and memslots L0 models for this vCPU (null when an engine runs it). */
  abstract readonly l0vm: Vm | null;
  abstract readonly lapic: LocalApic;
  abstract readonly cpuid: CpuidSource;
  /** Prefix of the ledger reasons L0's work on this vCPU's exits is charged under ("" or "npv_"). */
  abstract readonly chargeTag: string;

  abstract hasPendingInterrupt(): boolean;
  /** Take the highest-priority pending interrupt's vector (only when `hasPendingInterrupt`). */
  abstract acknowledgeInterrupt(): number;
  /** Before event injection: move interrupts queued elsewhere into the vCPU's LAPIC. */
  beforeInjection(): void {}
  /**
   * The cycle of the next timer event that must end this vCPU's run or wake it from HLT (its
   * LAPIC's; an L2 vCPU adds its L1's, which must get the CPU back when its own timer fires).
   */
  nextEventCycle(): number {
    return this.lapic.nextEventCycle();
  }
  /**
   * Cycle at which a timer other than the vCPU's LAPIC must end the run (the VMX-preemption timer
   * an L1 set for its L2), or +Infinity: L0's preemption timer fires at the earlier of the two.
   */
  ownerTimerCycle(): number {
    return Number.POSITIVE_INFINITY;
  }
  /** Interrupt-window exiting the vCPU's owner asked for (an L1 for its L2), beyond L0's own need. */
  ownerWantsInterruptWindow(): boolean {
    return false;
  }
  /** The VM whose port-I/O devices the vCPU's unintercepted I/O reaches (an L2's: its L1's). */
  get portIoVm(): Vm | null {
    return this.l0vm;
  }

  /** Non-zero once the vCPU must stop: the run loop returns it. */
  abstract stopCode(): number;
  /** The run's instruction budget ran out: what the loop returns. */
  abstract budgetExhausted(): number;
  /** Stop the vCPU for an error (`detail` for an engine's owner, `message` for a person). */
  abstract fail(kind: "error" | "triple-fault", detail: number, message: string): number;
  /** HLT with nothing that can wake the vCPU. */
  abstract haltedForever(interruptsEnabled: boolean, rip: number): number;
}

/** The stop code an L1 vCPU's run loop returns (the StopReason is in `Vcpu.stop`). */
const STOPPED = 1;

/** A vCPU of a VM L0 runs itself (KVM's struct kvm_vcpu). */
export class Vcpu extends GuestVcpu {
  readonly engine = null;
  readonly chargeTag = "";
  readonly lapic: LocalApic;
  readonly cpuid: CpuidSource;
  stop: StopReason | null = null;
  /** The instruction budget of the current run (for the instruction-limit message). */
  budget = 0;

  constructor(
    readonly vm: Vm,
    vmcs: Vmcs,
  ) {
    super(vmcs);
    this.lapic = vm.lapic;
    this.cpuid = vm.cpuid;
  }

  get l0vm(): Vm {
    return this.vm;
  }

  hasPendingInterrupt(): boolean {
    return this.vm.router.hasPendingInterrupt();
  }

  acknowledgeInterrupt(): number {
    return this.vm.router.acknowledgeInterrupt();
  }

  stopCode(): number {
    const s = this.vm.exitStatus;
    if (s !== null) {
      this.stop = { kind: "debug-exit", status: s, message: `guest wrote ${(s - 1) / 2} to the debug-exit port` };
    }
    return this.stop === null ? 0 : STOPPED;
  }

  budgetExhausted(): number {
    this.stop = {
      kind: "instruction-limit",
      message: `instruction limit (${this.budget}) reached; the guest may be hung`,
    };
    return STOPPED;
  }

  fail(kind: "error" | "triple-fault", _detail: number, message: string): number {
    this.stop = { kind, message };
    return STOPPED;
  }

  haltedForever(interruptsEnabled: boolean, rip: number): number {
    this.stop = {
      kind: "halted",
      message: `guest halted at RIP 0x${rip.toString(16)} with ${interruptsEnabled ? "no timer armed" : "interrupts disabled"}: nothing can wake it`,
    };
    return STOPPED;
  }
}
