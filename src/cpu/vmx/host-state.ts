/**
 * Return to a hypervisor made of guest software: after a VM exit (or a VM-entry failure), the
 * processor loads the host-state area of the VMCS (SDM vol. 3, 27.5) and continues at HOST_RIP
 * in VMX root operation. nestlab's TypeScript hypervisors have no host-state area: their exits
 * end `Cpu.run` instead (host.ts).
 */

import { CR0_PG, EFER_LMA, EFER_LME } from "../../x86/control.js";
import { AR_UNUSABLE } from "../../x86/segment-ar.js";
import * as V from "../../x86/vmx.js";
import * as C from "../../x86/vmx-controls.js";
import type { Cpu } from "../cpu.js";
import { updateDebugState } from "../debug.js";
import { setSegment } from "../segments.js";
import type { Vmcs } from "./vmcs.js";

/** Code: type 11 (execute/read, accessed), S, P, G; L or D by the host address-space size. */
const AR_HOST_CS = 0x809b;
/** Data: type 3 (read/write, accessed), S, P, D/B, G. */
const AR_HOST_DATA = 0xc093;
/** TR: busy 64-bit TSS, P. */
const AR_HOST_TR = 0x8b;

const DATA_SEGS: readonly [number, number][] = [
  [0, V.VMCS_HOST_ES_SELECTOR],
  [2, V.VMCS_HOST_SS_SELECTOR],
  [3, V.VMCS_HOST_DS_SELECTOR],
  [4, V.VMCS_HOST_FS_SELECTOR],
  [5, V.VMCS_HOST_GS_SELECTOR],
];

/** Load the host-state area of `v` into the CPU (27.5.1–27.5.3). */
export function loadHostState(c: Cpu, v: Vmcs): void {
  c.vmxUnit.software.guestRunning = false;
  const exit = v.read(V.VMCS_EXIT_CONTROLS);
  const host64 = (exit & C.EXIT_HOST_ADDR_SPACE_SIZE) !== 0;
  c.cr0 = v.read(V.VMCS_HOST_CR0);
  c.cr3Lo = v.read(V.VMCS_HOST_CR3);
  c.cr3Hi = v.readHi(V.VMCS_HOST_CR3);
  c.cr4 = v.read(V.VMCS_HOST_CR4);
  if ((exit & C.EXIT_LOAD_IA32_EFER) !== 0) c.efer = v.read(V.VMCS_HOST_IA32_EFER);
  else c.efer = host64 ? c.efer | EFER_LMA | EFER_LME : c.efer & ~(EFER_LMA | EFER_LME);
  if ((c.cr0 & CR0_PG) === 0) c.efer &= ~EFER_LMA;
  // DR7 = 400H (27.5.1); the other debug state is the hypervisor's own.
  c.drLo[7] = 0x400;
  c.drHi[7] = 0;
  c.sysenterCs = v.read(V.VMCS_HOST_SYSENTER_CS);
  c.sysenterEspLo = v.read(V.VMCS_HOST_SYSENTER_ESP);
  c.sysenterEspHi = v.readHi(V.VMCS_HOST_SYSENTER_ESP);
  c.sysenterEipLo = v.read(V.VMCS_HOST_SYSENTER_EIP);
  c.sysenterEipHi = v.readHi(V.VMCS_HOST_SYSENTER_EIP);
  // Segments (27.5.2): flat, CPL 0; null data selectors leave the segment unusable.
  setSegment(c, 1, v.read(V.VMCS_HOST_CS_SELECTOR), 0, 0, 0xffffffff, AR_HOST_CS | (host64 ? 0x2000 : 0x4000));
  for (const [s, f] of DATA_SEGS) {
    const sel = v.read(f);
    const usable = sel !== 0;
    const ar = usable ? AR_HOST_DATA : s === 2 ? AR_UNUSABLE | AR_HOST_DATA : AR_UNUSABLE;
    setSegment(c, s, sel, 0, 0, usable ? 0xffffffff : 0, ar);
  }
  c.segBaseLo[4] = v.read(V.VMCS_HOST_FS_BASE);
  c.segBaseHi[4] = v.readHi(V.VMCS_HOST_FS_BASE);
  c.segBaseLo[5] = v.read(V.VMCS_HOST_GS_BASE);
  c.segBaseHi[5] = v.readHi(V.VMCS_HOST_GS_BASE);
  c.trSel = v.read(V.VMCS_HOST_TR_SELECTOR);
  c.trBaseLo = v.read(V.VMCS_HOST_TR_BASE);
  c.trBaseHi = v.readHi(V.VMCS_HOST_TR_BASE);
  c.trLimit = 0x67;
  c.trAr = AR_HOST_TR;
  c.ldtrSel = 0;
  c.ldtrBaseLo = 0;
  c.ldtrBaseHi = 0;
  c.ldtrLimit = 0;
  c.gdtrBaseLo = v.read(V.VMCS_HOST_GDTR_BASE);
  c.gdtrBaseHi = v.readHi(V.VMCS_HOST_GDTR_BASE);
  c.gdtrLimit = 0xffff;
  c.idtrBaseLo = v.read(V.VMCS_HOST_IDTR_BASE);
  c.idtrBaseHi = v.readHi(V.VMCS_HOST_IDTR_BASE);
  c.idtrLimit = 0xffff;
  // RIP, RSP, RFLAGS (27.5.3).
  c.ripLo = v.read(V.VMCS_HOST_RIP);
  c.ripHi = v.readHi(V.VMCS_HOST_RIP);
  c.lo[4] = v.read(V.VMCS_HOST_RSP);
  c.hi[4] = v.readHi(V.VMCS_HOST_RSP);
  c.setFlags(2);
  c.setCpl(0);
  c.intShadow = false;
  c.debug.reset();
  updateDebugState(c);
  c.updateMode();
  c.mmu.flushAll("other"); // no VPID for the host: its linear mappings are not the guest's
  c.flushTlb();
}

/**
 * A VM entry that fails after the instruction's own checks (26.7): the exit reason with bit 31
 * set, exit qualification `qual` (26.8: 0, or 4 for the VMCS link pointer), host state loaded;
 * software continues at HOST_RIP.
 */
export function enterFailed(c: Cpu, v: Vmcs, reason: number, qual = 0): void {
  v.write(V.VMCS_EXIT_REASON, reason | V.EXIT_REASON_ENTRY_FAILURE);
  v.write(V.VMCS_EXIT_QUALIFICATION, qual, 0);
  loadHostState(c, v);
}
