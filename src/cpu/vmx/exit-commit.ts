/**
 * VM exit, the commit step (SDM vol. 3, 27.2–27.3): write the exit-information fields and save
 * the guest state into the VMCS, then leave non-root operation. The exit itself is begun by
 * VmxUnit (exitNow and the exit conditions); loading a host-state area for guest software is
 * host-state.ts.
 */

import * as V from "../../x86/vmx.js";
import * as C from "../../x86/vmx-controls.js";
import type { Cpu } from "../cpu.js";
import { pendingDebugTraps } from "../debug.js";
import { SEG_AR, SEG_BASE, SEG_LIMIT, SEG_SEL } from "./entry-load.js";
import type { Vmcs } from "./vmcs.js";
import type { VmxUnit } from "./vmx.js";

/** Commit the exit `u.exit` of the guest `c` runs on `v`, the current VMCS. */
export function commitExit(u: VmxUnit, c: Cpu, v: Vmcs): void {
  const e = u.exit;
  v.write(V.VMCS_EXIT_REASON, e.reason);
  v.write(V.VMCS_EXIT_QUALIFICATION, e.qualLo, e.qualHi);
  v.write(V.VMCS_EXIT_INSTRUCTION_LENGTH, e.instrLen);
  v.write(V.VMCS_EXIT_INSTRUCTION_INFO, e.instrInfo);
  v.write(V.VMCS_EXIT_INTR_INFO, e.intrInfo);
  v.write(V.VMCS_EXIT_INTR_ERROR_CODE, e.intrError);
  v.writeNumber(V.VMCS_GUEST_PHYSICAL_ADDRESS, e.gpa);
  v.write(V.VMCS_GUEST_LINEAR_ADDRESS, e.glaLo, e.glaHi);
  v.write(V.VMCS_IDT_VECTORING_INFO, u.vectoringInfo);
  v.write(V.VMCS_IDT_VECTORING_ERROR_CODE, u.vectoringError);
  u.vectoringInfo = 0;
  u.vectoringError = 0;
  u.iretUnblockedNmi = false;
  saveGuestState(u, c, v);
  if ((u.pin & C.PIN_PREEMPTION_TIMER) !== 0) {
    const left = Math.max(0, Math.floor((u.preemptionDeadline - c.cycles()) / (1 << C.PREEMPTION_TIMER_RATE_SHIFT)));
    v.write(V.VMCS_PREEMPTION_TIMER_VALUE, Math.min(left, 0xffffffff) | 0);
  }
  u.exitCounts[e.reason & 0xffff]++;
  // The guest's pending debug traps stay with the guest, in its VMCS (27.3.4).
  v.write(V.VMCS_GUEST_PENDING_DBG_EXCEPTIONS, pendingDebugTraps(c));
  c.debug.reset();
  c.nonRoot = false;
  c.halted = false;
  c.intShadow = false;
  c.tscOffset = 0;
  c.mmu.useEpt(null);
  c.mmu.setContext(0, 0);
  c.flushTlb();
}

/** Store the CPU's state into the VMCS guest-state area (27.3). */
function saveGuestState(u: VmxUnit, c: Cpu, v: Vmcs): void {
  v.write(V.VMCS_GUEST_CR0, c.cr0);
  v.write(V.VMCS_GUEST_CR3, c.cr3Lo, c.cr3Hi);
  v.write(V.VMCS_GUEST_CR4, c.cr4);
  v.write(V.VMCS_GUEST_IA32_EFER, c.efer);
  for (let s = 0; s < 6; s++) {
    v.write(SEG_SEL[s], c.segSel[s]);
    v.write(SEG_BASE[s], c.segBaseLo[s], c.segBaseHi[s]);
    v.write(SEG_LIMIT[s], c.segLimit[s] | 0);
    v.write(SEG_AR[s], c.segAr[s]);
  }
  v.write(V.VMCS_GUEST_GDTR_BASE, c.gdtrBaseLo, c.gdtrBaseHi);
  v.write(V.VMCS_GUEST_GDTR_LIMIT, c.gdtrLimit);
  v.write(V.VMCS_GUEST_IDTR_BASE, c.idtrBaseLo, c.idtrBaseHi);
  v.write(V.VMCS_GUEST_IDTR_LIMIT, c.idtrLimit);
  v.write(V.VMCS_GUEST_TR_SELECTOR, c.trSel);
  v.write(V.VMCS_GUEST_TR_BASE, c.trBaseLo, c.trBaseHi);
  v.write(V.VMCS_GUEST_TR_LIMIT, c.trLimit | 0);
  v.write(V.VMCS_GUEST_TR_AR, c.trAr);
  v.write(V.VMCS_GUEST_LDTR_SELECTOR, c.ldtrSel);
  v.write(V.VMCS_GUEST_LDTR_BASE, c.ldtrBaseLo, c.ldtrBaseHi);
  v.write(V.VMCS_GUEST_LDTR_LIMIT, c.ldtrLimit | 0);
  v.write(V.VMCS_GUEST_DR7, c.drLo[7], c.drHi[7]);
  v.write(V.VMCS_GUEST_RSP, c.lo[4], c.hi[4]);
  v.write(V.VMCS_GUEST_RIP, c.ripLo, c.ripHi);
  v.write(V.VMCS_GUEST_RFLAGS, c.getFlags());
  const nmiBlock = (u.pin & C.PIN_VIRTUAL_NMIS) !== 0 ? u.virtualNmiBlocked : c.nmiBlocked;
  v.write(
    V.VMCS_GUEST_INTERRUPTIBILITY,
    (c.intShadow ? C.INTERRUPTIBILITY_STI : 0) | (nmiBlock ? C.INTERRUPTIBILITY_NMI : 0),
  );
  v.write(V.VMCS_GUEST_ACTIVITY_STATE, c.halted ? C.ACTIVITY_HLT : C.ACTIVITY_ACTIVE);
  v.write(V.VMCS_GUEST_IA32_PAT, c.patLo, c.patHi);
}
