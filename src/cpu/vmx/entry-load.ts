/**
 * VM entry, the load step (SDM vol. 3, 26.3.2, 26.4): cache the VM-execution controls the exit
 * checks read, load the guest-state area into the CPU, and set up the guest's address
 * translation (EPT, VPID) and the VMX-preemption timer. Runs after the checks (entry-checks.ts)
 * have passed; nothing here can fail. MSR-load lists are not modelled (the checks reject a
 * non-zero count); IA32_EFER is loaded by the "load IA32_EFER" control.
 */

import * as V from "../../x86/vmx.js";
import * as C from "../../x86/vmx-controls.js";
import type { Cpu } from "../cpu.js";
import { loadPendingDebugTraps, updateDebugState } from "../debug.js";
import { setSegment } from "../segments.js";
import type { Vmcs } from "./vmcs.js";
import type { VmxUnit } from "./vmx.js";

/** Guest segment field encodings in ES, CS, SS, DS, FS, GS order, one array per kind (x86/vmx.ts). */
export const SEG_SEL = V.VMCS_GUEST_SEGMENT_FIELDS.map((f) => f[0]);
export const SEG_BASE = V.VMCS_GUEST_SEGMENT_FIELDS.map((f) => f[1]);
export const SEG_LIMIT = V.VMCS_GUEST_SEGMENT_FIELDS.map((f) => f[2]);
export const SEG_AR = V.VMCS_GUEST_SEGMENT_FIELDS.map((f) => f[3]);

/** Load `v` (the current VMCS of `u`) into the CPU `c` and enter non-root operation. */
export function loadGuestState(u: VmxUnit, c: Cpu, v: Vmcs): void {
  const entryCtl = v.read(V.VMCS_ENTRY_CONTROLS);
  const ia32e = (entryCtl & C.ENTRY_IA32E_MODE_GUEST) !== 0;
  u.pin = v.read(V.VMCS_PIN_BASED_CONTROLS);
  u.proc = v.read(V.VMCS_PROC_BASED_CONTROLS);
  u.proc2 = (u.proc & C.CPU_SECONDARY_CONTROLS) !== 0 ? v.read(V.VMCS_PROC_BASED_CONTROLS2) : 0;
  u.exceptionBitmap = v.read(V.VMCS_EXCEPTION_BITMAP);
  u.pfecMask = v.read(V.VMCS_PF_ERROR_CODE_MASK);
  u.pfecMatch = v.read(V.VMCS_PF_ERROR_CODE_MATCH);
  u.cr0Mask = v.read(V.VMCS_CR0_GUEST_HOST_MASK);
  u.cr0Shadow = v.read(V.VMCS_CR0_READ_SHADOW);
  u.cr4Mask = v.read(V.VMCS_CR4_GUEST_HOST_MASK);
  u.cr4Shadow = v.read(V.VMCS_CR4_READ_SHADOW);
  u.ioBitmapA = (u.proc & C.CPU_USE_IO_BITMAPS) !== 0 ? v.readNumber(V.VMCS_IO_BITMAP_A) : -1;
  u.ioBitmapB = (u.proc & C.CPU_USE_IO_BITMAPS) !== 0 ? v.readNumber(V.VMCS_IO_BITMAP_B) : -1;
  u.msrBitmap = (u.proc & C.CPU_USE_MSR_BITMAPS) !== 0 ? v.readNumber(V.VMCS_MSR_BITMAP) : -1;
  u.eptp = (u.proc2 & C.CPU2_ENABLE_EPT) !== 0 ? v.readNumber(V.VMCS_EPT_POINTER) : -1;
  u.vpid = (u.proc2 & C.CPU2_ENABLE_VPID) !== 0 ? v.read(V.VMCS_VPID) : 0;
  // Guest state (26.3.2).
  c.cr0 = v.read(V.VMCS_GUEST_CR0);
  c.cr4 = v.read(V.VMCS_GUEST_CR4);
  c.cr3Lo = v.read(V.VMCS_GUEST_CR3);
  c.cr3Hi = v.readHi(V.VMCS_GUEST_CR3);
  if ((entryCtl & C.ENTRY_LOAD_IA32_EFER) !== 0) c.efer = v.read(V.VMCS_GUEST_IA32_EFER);
  c.efer = ia32e ? c.efer | 0x500 : c.efer & ~0x400; // LMA follows the IA-32e-mode-guest control
  for (let s = 0; s < 6; s++) {
    const sel = v.read(SEG_SEL[s]);
    const bl = v.read(SEG_BASE[s]);
    const bh = v.readHi(SEG_BASE[s]);
    setSegment(c, s, sel, bl, bh, v.read(SEG_LIMIT[s]), v.read(SEG_AR[s]));
  }
  c.gdtrBaseLo = v.read(V.VMCS_GUEST_GDTR_BASE);
  c.gdtrBaseHi = v.readHi(V.VMCS_GUEST_GDTR_BASE);
  c.gdtrLimit = v.read(V.VMCS_GUEST_GDTR_LIMIT);
  c.idtrBaseLo = v.read(V.VMCS_GUEST_IDTR_BASE);
  c.idtrBaseHi = v.readHi(V.VMCS_GUEST_IDTR_BASE);
  c.idtrLimit = v.read(V.VMCS_GUEST_IDTR_LIMIT);
  c.trSel = v.read(V.VMCS_GUEST_TR_SELECTOR);
  c.trBaseLo = v.read(V.VMCS_GUEST_TR_BASE);
  c.trBaseHi = v.readHi(V.VMCS_GUEST_TR_BASE);
  c.trLimit = v.read(V.VMCS_GUEST_TR_LIMIT);
  c.trAr = v.read(V.VMCS_GUEST_TR_AR);
  c.ldtrSel = v.read(V.VMCS_GUEST_LDTR_SELECTOR);
  c.ldtrBaseLo = v.read(V.VMCS_GUEST_LDTR_BASE);
  c.ldtrBaseHi = v.readHi(V.VMCS_GUEST_LDTR_BASE);
  c.ldtrLimit = v.read(V.VMCS_GUEST_LDTR_LIMIT);
  c.drLo[7] = v.read(V.VMCS_GUEST_DR7);
  c.drHi[7] = v.readHi(V.VMCS_GUEST_DR7);
  c.debug.reset();
  updateDebugState(c);
  c.lo[4] = v.read(V.VMCS_GUEST_RSP);
  c.hi[4] = v.readHi(V.VMCS_GUEST_RSP);
  c.ripLo = v.read(V.VMCS_GUEST_RIP);
  c.ripHi = v.readHi(V.VMCS_GUEST_RIP);
  c.setCpl((c.segAr[2] >> 5) & 3); // CPL = SS.DPL (26.3.2.2)
  c.setFlags(v.read(V.VMCS_GUEST_RFLAGS));
  loadPendingDebugTraps(c, v.read(V.VMCS_GUEST_PENDING_DBG_EXCEPTIONS));
  const intr = v.read(V.VMCS_GUEST_INTERRUPTIBILITY);
  c.intShadow = (intr & (C.INTERRUPTIBILITY_STI | C.INTERRUPTIBILITY_MOV_SS)) !== 0;
  // Blocking by NMI (24.4.2): virtual-NMI blocking with virtual NMIs, else physical blocking.
  const nmiBlock = (intr & C.INTERRUPTIBILITY_NMI) !== 0;
  if ((u.pin & C.PIN_VIRTUAL_NMIS) !== 0) u.virtualNmiBlocked = nmiBlock;
  else c.nmiBlocked = nmiBlock;
  c.halted = v.read(V.VMCS_GUEST_ACTIVITY_STATE) === C.ACTIVITY_HLT;
  c.tscOffset =
    (u.proc & C.CPU_TSC_OFFSETTING) !== 0
      ? v.readNumber(V.VMCS_TSC_OFFSET) - (v.readHi(V.VMCS_TSC_OFFSET) < 0 ? 2 ** 64 : 0)
      : 0;
  u.preemptionDeadline =
    (u.pin & C.PIN_PREEMPTION_TIMER) !== 0
      ? c.cycles() + (v.read(V.VMCS_PREEMPTION_TIMER_VALUE) >>> 0) * (1 << C.PREEMPTION_TIMER_RATE_SHIFT)
      : Number.POSITIVE_INFINITY;
  c.setNonRootLevel(v.level);
  c.nonRoot = true;
  // The MMU's 2-D walk and context tag (VPID, EPTP) for this guest.
  c.mmu.setContext(u.vpid, u.eptp >= 0 ? 1 : 0);
  // The model tags EPT paging-structure caches with one EPTP index, not with the EP4TA as the
  // hardware does (28.4.1): entering with a different EPTP than the last must not reuse them.
  if (u.eptp >= 0 && u.eptp !== u.lastEptp) {
    c.mmu.eptPsc.invalidateAll();
    u.lastEptp = u.eptp;
  }
  if (u.eptp >= 0) c.mmu.useEpt((u.eptp % 4294967296) | 0, Math.floor(u.eptp / 4294967296) | 0);
  else c.mmu.useEpt(null);
  // Without VPIDs, VM entry invalidates the linear and combined mappings (SDM vol. 3, 28.3.3.3):
  // a hypervisor that changed EPT01 or the guest tables between exits sees no stale entry.
  if (u.vpid === 0) c.mmu.flushAll("other");
  c.updateMode();
  c.flushTlb();
  u.entries++;
  v.launched = true;
}
