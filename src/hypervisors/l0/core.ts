/**
 * L0's one vCPU run/exit core (KVM: vcpu_enter_guest + vmx_handle_exit): the loop that enters a
 * guest, the event injection before each entry, and the path every exit takes — charge the
 * transition, keep an event whose delivery the exit cut short, let the nested engine running
 * the vCPU reflect it, else dispatch it through the one handler table keyed by exit reason.
 * The same code runs an L1 vCPU L0 owns and an L2 vCPU a nested engine runs for an L1.
 */
import { RUN_BUDGET, RUN_ENTRY_FAILED, RUN_EXIT } from "../../cpu/vmx/host.js";
import type { TraceRecorder } from "../../trace/recorder.js";
import { EFER_LMA } from "../../x86/control.js";
import { DF_, isFaultClass } from "../../x86/exceptions.js";
import { IF, RF } from "../../x86/flags.js";
import * as V from "../../x86/vmx.js";
import * as C from "../../x86/vmx-controls.js";
import { NOT_REFLECTED } from "./engine.js";
import { EXIT_HANDLERS, exitReasonName } from "./exits.js";
import type { L0Hypervisor } from "./l0.js";
import { type GuestVcpu, HANDLED } from "./vcpu.js";

/** How many exits an instruction L0 emulates may raise in a row before the vCPU is stopped. */
const MAX_EMULATION_DEPTH = 4;

/**
 * Run the vCPU loaded on the CPU until a handler ends the run (a stop, an exit for the engine's
 * owner) or `budget` instructions retire. Exits count against the budget too, so an exit storm
 * that retires nothing still ends. Returns the code that ended the run.
 */
export function runGuest(l0: L0Hypervisor, v: GuestVcpu, budget: number): number {
  const tr = l0.trace;
  if (tr === null) return runLoop(l0, v, budget, null);
  tr.runBegin(v, v.vmcs.level);
  try {
    return runLoop(l0, v, budget, tr);
  } finally {
    tr.runEnd();
  }
}

function runLoop(l0: L0Hypervisor, v: GuestVcpu, budget: number, tr: TraceRecorder | null): number {
  const host = l0.host;
  const limit = host.instructionsRetired() + Math.max(1, budget);
  let exits = 0;
  for (;;) {
    const stop = v.stopCode();
    if (stop !== 0) return stop;
    const left = limit - host.instructionsRetired() - exits;
    if (left <= 0) return v.budgetExhausted();
    if (!host.entered) prepareEntry(l0, v);
    if (tr !== null) tr.entered();
    const r = host.run(Math.min(l0.tunables.runSlice, left));
    if (r === RUN_BUDGET) continue;
    if (r !== RUN_EXIT) {
      return r === RUN_ENTRY_FAILED
        ? v.fail("error", 0x80000021, `VM entry failed: ${host.entryError}`)
        : v.fail("error", 0x80000000, "the CPU shut down while running the guest");
    }
    exits++;
    const out = handleExit(l0, v);
    if (out !== HANDLED) return out;
  }
}

/** An exit is in the current VMCS: account for it and handle it. */
export function handleExit(l0: L0Hypervisor, v: GuestVcpu): number {
  const host = l0.host;
  const reason = host.exit.reason & 0xffff;
  if (l0.trace !== null) l0.trace.exited(exitReasonName(reason));
  l0.chargeTransition(reason);
  // An event whose delivery the exit interrupted is re-injected (KVM's vmx_complete_interrupts).
  const vect = host.vmread(V.VMCS_IDT_VECTORING_INFO);
  if ((vect & C.INTR_INFO_VALID) !== 0) {
    v.reinjectInfo = vect;
    v.reinjectError = host.vmread(V.VMCS_IDT_VECTORING_ERROR_CODE);
  }
  const iretUnblocked = (vect & C.INTR_INFO_VALID) === 0 && nmiUnblockedByIret(l0, reason);
  l0.countExit(reason, v.vmcs.level);
  const out = dispatchExit(l0, v, reason, 0);
  // The guest resumes at that IRET (or in its fault's handler): set blocking by NMI again, as it
  // was before the IRET, so no NMI (or NMI window) comes before the IRET completes (SDM vol. 3C
  // 31.7.1.2 "Resuming guest software after handling an exception"; KVM vmx_recover_nmi_blocking
  // and handle_ept_violation). An exit reflected to L1 leaves that to L1, as the hardware would.
  if (iretUnblocked && out === HANDLED)
    host.vmwrite(V.VMCS_GUEST_INTERRUPTIBILITY, host.vmread(V.VMCS_GUEST_INTERRUPTIBILITY) | C.INTERRUPTIBILITY_NMI);
  return out;
}

/**
 * Whether the exit is a fault or an EPT violation of a guest IRET that had already ended
 * (virtual-)NMI blocking: bit 12, "NMI unblocking due to IRET", of the EPT-violation
 * qualification or of the exit interruption information (SDM vol. 3C 27.2.2, table 27-7). It
 * means that only when no event was being delivered (the caller checks) and, for an exception
 * exit, not for #DF (31.7.1.2).
 */
function nmiUnblockedByIret(l0: L0Hypervisor, reason: number): boolean {
  const host = l0.host;
  if (reason === V.EXIT_EPT_VIOLATION)
    return (host.vmread(V.VMCS_EXIT_QUALIFICATION) & C.EPT_QUAL_NMI_UNBLOCKED_BY_IRET) !== 0;
  if (reason !== V.EXIT_EXCEPTION_NMI) return false;
  const info = host.vmread(V.VMCS_EXIT_INTR_INFO);
  return (info & C.INTR_INFO_NMI_UNBLOCKED_BY_IRET) !== 0 && (info & C.INTR_INFO_VECTOR_MASK) !== DF_;
}

/**
 * The engine's reflect step, then the handler table. `depth` > 0 when the exit was raised by an
 * instruction L0 emulated for the guest (bounded: an emulation that keeps exiting stops the vCPU).
 */
export function dispatchExit(l0: L0Hypervisor, v: GuestVcpu, reason: number, depth: number): number {
  if (depth >= MAX_EMULATION_DEPTH)
    return v.fail("error", 0xffff, "an instruction L0 emulated for the guest kept exiting");
  const engine = v.engine;
  const tr = l0.trace;
  if (engine !== null) {
    if (tr !== null) tr.begin("engine", `${engine.name} reflect`);
    const r = engine.reflect(l0, v, reason, depth);
    if (tr !== null) tr.end();
    if (r !== NOT_REFLECTED) return r;
  }
  const handler = EXIT_HANDLERS[reason];
  if (handler === undefined) {
    return v.fail(
      "error",
      reason,
      `L0 has no handler for exit reason ${reason} (${exitReasonName(reason)}) at guest RIP 0x${l0.host.vmreadNumber(V.VMCS_GUEST_RIP).toString(16)}`,
    );
  }
  if (tr !== null) tr.begin("handler", `handle ${exitReasonName(reason)}`);
  const out = handler(l0, v, depth);
  if (tr !== null) tr.end();
  if (out === HANDLED && engine !== null) engine.handledInL0(v, reason);
  return out;
}

/**
 * Before VM entry: keep IA-32e mode in step with the guest's EFER.LMA, program the VMX-preemption
 * timer for the vCPU's LAPIC, then inject one event — an event to re-inject, else a pending
 * exception, else an interrupt when the guest can take one (interrupt-window exiting otherwise).
 */
export function prepareEntry(l0: L0Hypervisor, v: GuestVcpu): void {
  const host = l0.host;
  const lapic = v.lapic;
  lapic.advance(host.cycles());
  v.beforeInjection();
  // IA-32e mode guest follows the guest's EFER.LMA (as KVM's vmx_set_efer keeps it).
  const efer = host.vmread(V.VMCS_GUEST_IA32_EFER);
  const entry = host.vmread(V.VMCS_ENTRY_CONTROLS);
  host.vmwrite(
    V.VMCS_ENTRY_CONTROLS,
    (efer & EFER_LMA) !== 0 ? entry | C.ENTRY_IA32E_MODE_GUEST : entry & ~C.ENTRY_IA32E_MODE_GUEST,
  );
  let pin = host.vmread(V.VMCS_PIN_BASED_CONTROLS);
  const next = Math.min(v.nextEventCycle(), v.ownerTimerCycle());
  if (next !== Number.POSITIVE_INFINITY) {
    pin |= C.PIN_PREEMPTION_TIMER;
    const ticks = Math.ceil((next - host.cycles()) / host.preemptionTimerCyclesPerTick);
    host.vmwrite(V.VMCS_PREEMPTION_TIMER_VALUE, Math.min(0xffffffff, Math.max(0, ticks)) | 0);
  } else pin &= ~C.PIN_PREEMPTION_TIMER;
  host.vmwrite(V.VMCS_PIN_BASED_CONTROLS, pin);
  let proc = host.vmread(V.VMCS_PROC_BASED_CONTROLS) & ~C.CPU_INTR_WINDOW_EXITING;
  if (v.reinjectInfo !== 0) {
    // An NMI whose delivery exited left blocking by NMI set; injecting it needs the bit clear
    // (SDM vol. 3C 26.3.1.5; the NMI sets it again as it is delivered: KVM __vmx_complete_interrupts).
    if ((v.reinjectInfo & C.INTR_INFO_TYPE_MASK) === C.INTR_TYPE_NMI)
      host.vmwrite(V.VMCS_GUEST_INTERRUPTIBILITY, host.vmread(V.VMCS_GUEST_INTERRUPTIBILITY) & ~C.INTERRUPTIBILITY_NMI);
    host.vmwrite(V.VMCS_ENTRY_INTR_INFO, v.reinjectInfo);
    if ((v.reinjectInfo & C.INTR_INFO_DELIVER_CODE) !== 0)
      host.vmwrite(V.VMCS_ENTRY_EXCEPTION_ERROR_CODE, v.reinjectError);
    if (l0.trace !== null) l0.trace.injected("reinject", v.reinjectInfo & 0xff);
    v.reinjectInfo = 0;
    l0.chargeFor(v, "vmx.inject", "reinject");
  } else if (v.pendingException >= 0) {
    const hasErr = v.pendingExceptionError >= 0;
    host.vmwrite(
      V.VMCS_ENTRY_INTR_INFO,
      C.INTR_INFO_VALID | C.INTR_TYPE_HW_EXCEPTION | v.pendingException | (hasErr ? C.INTR_INFO_DELIVER_CODE : 0),
    );
    if (hasErr) host.vmwrite(V.VMCS_ENTRY_EXCEPTION_ERROR_CODE, v.pendingExceptionError);
    // Injection pushes the RFLAGS of the guest-state area: for a fault, set RF there first, as
    // the CPU's own delivery would (SDM vol. 3, 18.3.1.1) and as KVM does (inject_pending_event).
    if (isFaultClass(v.pendingException)) host.vmwrite(V.VMCS_GUEST_RFLAGS, host.vmread(V.VMCS_GUEST_RFLAGS) | RF);
    if (l0.trace !== null) l0.trace.injected("exception", v.pendingException);
    v.pendingException = -1;
    l0.chargeFor(v, "vmx.inject", "inject-exception");
  } else if (v.hasPendingInterrupt()) {
    const rflags = host.vmread(V.VMCS_GUEST_RFLAGS);
    const shadow = host.vmread(V.VMCS_GUEST_INTERRUPTIBILITY) & (C.INTERRUPTIBILITY_STI | C.INTERRUPTIBILITY_MOV_SS);
    if ((rflags & IF) !== 0 && shadow === 0) {
      const vector = v.acknowledgeInterrupt();
      if (l0.trace !== null) l0.trace.injected("interrupt", vector);
      host.vmwrite(V.VMCS_ENTRY_INTR_INFO, C.INTR_INFO_VALID | C.INTR_TYPE_EXT_INTR | vector);
      host.vmwrite(V.VMCS_GUEST_ACTIVITY_STATE, C.ACTIVITY_ACTIVE);
      l0.chargeFor(v, "vmx.inject", "inject-interrupt");
    } else proc |= C.CPU_INTR_WINDOW_EXITING;
  }
  if (v.ownerWantsInterruptWindow()) proc |= C.CPU_INTR_WINDOW_EXITING;
  host.vmwrite(V.VMCS_PROC_BASED_CONTROLS, proc);
}
