/**
 * VM entry, the last step (SDM vol. 3, 26.6, 26.7.5): have the CPU evaluate pending events
 * before the guest's first instruction, and deliver the event the VM-entry interruption-
 * information field injects.
 */

import * as V from "../../x86/vmx.js";
import * as C from "../../x86/vmx-controls.js";
import type { Cpu } from "../cpu.js";
import { nmiInjected } from "../nmi.js";
import { ENTERED_AND_EXITED, VMEXIT } from "./exit-signal.js";
import type { Vmcs } from "./vmcs.js";
import type { VmxUnit } from "./vmx.js";

/**
 * Inject the event of `v` (if its valid bit is set) into the guest just loaded. Returns null, or
 * ENTERED_AND_EXITED when the delivery itself caused a VM exit, which is then complete.
 */
export function injectOnEntry(u: VmxUnit, c: Cpu, v: Vmcs): null | typeof ENTERED_AND_EXITED {
  c.irqCheck = true; // interrupt-window and pending events are checked before the first instruction
  // Event injection (26.6).
  const info = v.read(V.VMCS_ENTRY_INTR_INFO);
  if ((info & C.INTR_INFO_VALID) !== 0) {
    v.write(V.VMCS_ENTRY_INTR_INFO, info & ~C.INTR_INFO_VALID);
    c.halted = false;
    const type = info & C.INTR_INFO_TYPE_MASK;
    const vector = info & 0xff;
    const err = (info & C.INTR_INFO_DELIVER_CODE) !== 0 ? v.read(V.VMCS_ENTRY_EXCEPTION_ERROR_CODE) : -1;
    if (type === C.INTR_TYPE_SW_INTR || type === C.INTR_TYPE_SW_EXCEPTION || type === C.INTR_TYPE_PRIV_SW_EXCEPTION) {
      const len = v.read(V.VMCS_ENTRY_INSTRUCTION_LENGTH);
      const n = (c.ripLo + len) | 0;
      if (n >>> 0 < c.ripLo >>> 0) c.ripHi = (c.ripHi + 1) | 0;
      c.ripLo = n;
    }
    // Injected events are delivered straight through the guest IDT: the exception bitmap does
    // not apply (26.6.1). If delivery itself exits (say, an EPT violation on the guest's stack),
    // the event is reported in the IDT-vectoring information for the hypervisor to re-inject.
    c.injecting = true;
    try {
      c.injectEvent(vector, err, type === C.INTR_TYPE_EXT_INTR);
      if (type === C.INTR_TYPE_NMI) nmiInjected(c); // an injected NMI blocks NMIs (26.6.1.2)
    } catch (x) {
      if (x !== VMEXIT) throw x;
      // With virtual NMIs, an injected NMI whose delivery exits leaves virtual-NMI blocking in
      // effect before the exit commences (27.1), so the exit saves bit 3 set: a hypervisor that
      // re-injects the NMI must clear it (26.3.1.5; KVM __vmx_complete_interrupts).
      if (type === C.INTR_TYPE_NMI && (u.pin & C.PIN_VIRTUAL_NMIS) !== 0) u.virtualNmiBlocked = true;
      u.vectoringInfo = info | C.INTR_INFO_VALID;
      u.vectoringError = Math.max(err, 0);
      c.ripLo = c.startLo;
      c.ripHi = c.startHi;
      u.completeExit();
      return ENTERED_AND_EXITED;
    } finally {
      c.injecting = false;
    }
  }
  return null;
}
