/**
 * The L2 vCPU L0 runs for an L1 that executed VMLAUNCH/VMRESUME (KVM: the vCPU while
 * is_guest_mode): its VMCS02, the L1 it belongs to, and what "stop" means — a code telling the
 * nested-entry code to reflect an exit to L1, or the L1 vCPU stopped (error, budget).
 */
import type { Vmcs } from "../../../cpu/vmx/vmcs.js";
import type { LocalApic } from "../../../devices/lapic.js";
import * as V from "../../../x86/vmx.js";
import * as C from "../../../x86/vmx-controls.js";
import type { NestedEngine } from "../engine.js";
import { type CpuidSource, GuestVcpu, type Vcpu } from "../vcpu.js";
import type { Vm } from "../vm.js";

/** runGuest result: reflect the exit in `L2VmxVcpu.reflectReason` to L1. */
export const RUN_REFLECT = 2;
/** runGuest result: the L1 vCPU stopped (its `stop` says why). */
export const RUN_L1_STOPPED = 3;

export class L2VmxVcpu extends GuestVcpu {
  readonly chargeTag = "nvmx_";
  readonly l0vm = null;
  /** Exit reason to reflect (with bit 31 for an entry failure); -1 none. */
  reflectReason = -1;
  /** VMCS12's primary processor-based controls at the last nested entry. */
  proc12 = 0;
  /** When L1's VMX-preemption timer for L2 expires (cycles; +Infinity when L1 set none). */
  timer12Deadline = Number.POSITIVE_INFINITY;
  constructor(
    vmcs: Vmcs,
    readonly engine: NestedEngine,
    readonly l1: Vcpu,
    readonly vpid: number,
  ) {
    super(vmcs, l1.ctx);
  }

  get lapic(): LocalApic {
    return this.l1.vm.lapic;
  }

  get cpuid(): CpuidSource {
    return this.l1.vm.cpuid;
  }

  override ownerTimerCycle(): number {
    return this.timer12Deadline;
  }

  override ownerWantsInterruptWindow(): boolean {
    return (this.proc12 & C.CPU_INTR_WINDOW_EXITING) !== 0;
  }

  override get portIoVm(): Vm {
    return this.l1.vm;
  }

  // L0 injects nothing into L2 on its own: L2's events come from L1 through VMCS12.
  hasPendingInterrupt(): boolean {
    return false;
  }

  acknowledgeInterrupt(): number {
    throw new Error("L0 does not deliver interrupts to a nested-VMX L2");
  }

  stopCode(): number {
    if (this.reflectReason >= 0) return RUN_REFLECT;
    return this.l1.stopCode() !== 0 ? RUN_L1_STOPPED : 0;
  }

  budgetExhausted(): number {
    this.l1.budgetExhausted();
    return RUN_L1_STOPPED;
  }

  /** An entry failure or a triple fault of L2 is L1's to see; anything else stops the L1 vCPU. */
  fail(kind: "error" | "triple-fault", detail: number, message: string): number {
    const entryFailure = (V.EXIT_REASON_ENTRY_FAILURE | V.EXIT_INVALID_GUEST_STATE) >>> 0;
    if (detail >>> 0 === entryFailure) {
      this.reflectReason = entryFailure;
      return RUN_REFLECT;
    }
    if (kind === "triple-fault") {
      this.reflectReason = V.EXIT_TRIPLE_FAULT;
      return RUN_REFLECT;
    }
    this.l1.fail(kind, detail, `nested VMX L2: ${message}`);
    return RUN_L1_STOPPED;
  }

  haltedForever(interruptsEnabled: boolean, rip: number): number {
    return this.fail(
      "error",
      V.EXIT_HLT,
      `L2 halted at RIP 0x${rip.toString(16)} (IF=${interruptsEnabled ? 1 : 0}) and L1 does not intercept HLT`,
    );
  }
}
