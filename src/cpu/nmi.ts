/**
 * Non-maskable interrupts (SDM vol. 3, 6.7.1 and 11.6.1) and their VMX controls (SDM vol. 3C,
 * 25.3 "Changes to instruction behavior", 26.2 "Other causes of VM exits", 24.6.1 pin-based
 * controls, 24.4.2 interruptibility state).
 *
 * An NMI is taken at an instruction boundary, through vector 2, regardless of RFLAGS.IF. While
 * its handler runs, further NMIs are held ("blocking by NMI") until the next IRET. In VMX
 * non-root operation:
 * - NMI exiting (pin-based bit 3): an NMI causes a VM exit (basic reason 0, interruption type
 *   NMI, vector 2) instead of being delivered (the host handles it; see VmxUnit.nmiExit).
 * - Virtual NMIs (pin-based bit 5, requires NMI exiting): "blocking by NMI" in the guest's
 *   interruptibility state is *virtual-NMI* blocking, set by injecting an NMI and cleared by the
 *   guest's IRET; physical NMI blocking is left alone.
 * - NMI-window exiting (primary bit 22, requires virtual NMIs): a VM exit (reason 8) before any
 *   instruction when there is no virtual-NMI blocking (and no MOV SS/STI blocking).
 */
import { EXIT_NMI_WINDOW } from "../x86/vmx.js";
import { CPU_NMI_WINDOW_EXITING, PIN_NMI_EXITING, PIN_VIRTUAL_NMIS } from "../x86/vmx-controls.js";
import type { Cpu } from "./cpu.js";
import { deliverEvent } from "./interrupts.js";

export const NMI_VECTOR = 2;

/** True while the VMCS in use makes "blocking by NMI" virtual. */
function virtualNmis(c: Cpu): boolean {
  return c.nonRoot && (c.vmxUnit.pin & PIN_VIRTUAL_NMIS) !== 0;
}

/**
 * At an instruction boundary with no STI/MOV SS blocking (Cpu.checkInterrupts): take an
 * NMI-window exit, an NMI exit, or deliver a pending NMI. Returns true when an NMI was delivered.
 */
export function checkNmi(c: Cpu): boolean {
  const u = c.vmxUnit;
  if (
    c.nonRoot &&
    (u.proc & CPU_NMI_WINDOW_EXITING) !== 0 &&
    (u.pin & PIN_VIRTUAL_NMIS) !== 0 &&
    !u.virtualNmiBlocked
  ) {
    u.exitNow(EXIT_NMI_WINDOW);
  }
  const intc = c.intc;
  if (intc === null || intc.hasPendingNmi === undefined || !intc.hasPendingNmi()) return false;
  if (c.nonRoot && (u.pin & PIN_NMI_EXITING) !== 0) {
    if (c.nmiBlocked && !virtualNmis(c)) return false;
    intc.acknowledgeNmi?.();
    u.nmiExit(); // throws VMEXIT
  }
  if (c.nmiBlocked) return false;
  intc.acknowledgeNmi?.();
  c.halted = false;
  c.counters.interrupts++;
  deliverEvent(c, NMI_VECTOR, -1, true, 0);
  c.nmiBlocked = true;
  c.irqCheck = true;
  return true;
}

/** An NMI was delivered by VM-entry injection: it blocks (virtual) NMIs as a real one does. */
export function nmiInjected(c: Cpu): void {
  if (virtualNmis(c)) c.vmxUnit.virtualNmiBlocked = true;
  else c.nmiBlocked = true;
}

/**
 * IRET ends blocking by NMI (virtual-NMI blocking under virtual NMIs) before it reads its frame,
 * so even if it then faults; look again at once. In non-root operation (SDM vol. 3C 25.3, IRET):
 * NMI exiting 0, IRET unblocks NMIs as usual; NMI exiting 1, IRET leaves blocking by NMI alone
 * and, with virtual NMIs also 1, ends virtual-NMI blocking instead. A fault or EPT violation of an
 * IRET that did unblock and that exits says so in bit 12 of the exit's interruption information
 * or qualification ("NMI unblocking due to IRET", 27.2.2, table 27-7; blocking is cleared before
 * the exit commences, 27.1), and the hypervisor sets blocking again before it resumes the guest
 * at the IRET (31.7.1.2). With NMI exiting 1 and virtual NMIs 0 bit 12 is undefined; this IRET
 * unblocked nothing, so it is left 0.
 */
export function iretUnblocksNmi(c: Cpu): void {
  const pin = c.vmxUnit.pin;
  if (c.nonRoot && (pin & PIN_NMI_EXITING) !== 0 && (pin & PIN_VIRTUAL_NMIS) === 0) return;
  if (virtualNmis(c)) {
    if (!c.vmxUnit.virtualNmiBlocked) return;
    c.vmxUnit.virtualNmiBlocked = false;
  } else {
    if (!c.nmiBlocked) return;
    c.nmiBlocked = false;
  }
  if (c.nonRoot) c.vmxUnit.iretUnblockedNmi = true;
  c.irqCheck = true;
}

/** The IRET completed: no exit can report its NMI unblocking any more. */
export function iretCompleted(c: Cpu): void {
  c.vmxUnit.iretUnblockedNmi = false;
}
