/**
 * The checks VMLAUNCH/VMRESUME make before VM entry (SDM vol. 3, 26.2 controls and host state:
 * failures are VMfailValid 7 and 8; 26.3.1 guest state: failures are VM-entry-failure exits,
 * reason 33 with bit 31 set). Control values are checked against caps.ts, the same list the
 * capability MSRs report. The checks are a subset of the SDM's: the ones whose subject nestlab
 * models (no SMM, no MSR lists, no APIC virtualization); each says which rule it is.
 *
 * `checkEntry` runs them in the SDM's order for VMLAUNCH/VMRESUME of guest software;
 * `checkModelledGuest` is what every VM entry checks (VmxUnit.enter, also for VmxHost, whose
 * callers are nestlab's own hypervisors and have no host-state area): the guest states the
 * model cannot run.
 */

import { isCanonical } from "../../x86/canonical.js";
import { CR0_PE, CR0_PG, CR4_PAE, CR4_PCIDE, CR4_VMXE, EFER_LMA, EFER_LME } from "../../x86/control.js";
import * as V from "../../x86/vmx.js";
import * as C from "../../x86/vmx-controls.js";
import { entryEventFieldsValid } from "../../x86/vmx-controls.js";
import { cr4Allowed, eferAllowed, maxPhysAddr } from "../control-regs.js";
import type { Cpu } from "../cpu.js";
import { CONTROL_CAPS, CR0_FIXED0, CR4_FIXED0, controlsAllowed, EPT_VPID_CAP_LO } from "./caps.js";
import type { Vmcs } from "./vmcs.js";

/** A physical address field: `align`-aligned and within MAXPHYADDR. */
function addrOk(c: Cpu, v: Vmcs, enc: number, align: number): boolean {
  const hi = v.readHi(enc) >>> 0;
  return (v.read(enc) & (align - 1)) === 0 && hi < 2 ** (maxPhysAddr(c) - 32);
}

/** An EPTP software may use (24.6.11, 26.2.1.1): WB, 4-level walk, A/D only if supported. */
export function eptpValid(c: Cpu, lo: number, hi: number): boolean {
  if ((lo & 7) !== C.EPTP_WB) return false;
  if ((lo & 0x38) !== C.EPTP_WALK_4) return false;
  if ((lo & C.EPTP_AD_ENABLE) !== 0 && (EPT_VPID_CAP_LO & C.EPT_CAP_AD) === 0) return false;
  if ((lo & 0xf80) !== 0) return false; // bits 11:7 reserved
  return hi >>> 0 < 2 ** (maxPhysAddr(c) - 32);
}

/** VM-execution, exit and entry control fields (26.2.1). */
export function checkControls(c: Cpu, v: Vmcs): boolean {
  const pin = v.read(V.VMCS_PIN_BASED_CONTROLS);
  const proc = v.read(V.VMCS_PROC_BASED_CONTROLS);
  const proc2 = (proc & C.CPU_SECONDARY_CONTROLS) !== 0 ? v.read(V.VMCS_PROC_BASED_CONTROLS2) : 0;
  if (!controlsAllowed(pin, CONTROL_CAPS.pin) || !controlsAllowed(proc, CONTROL_CAPS.proc)) return false;
  if (!controlsAllowed(proc2, CONTROL_CAPS.proc2)) return false;
  if (!controlsAllowed(v.read(V.VMCS_EXIT_CONTROLS), CONTROL_CAPS.exit)) return false;
  const entry = v.read(V.VMCS_ENTRY_CONTROLS);
  if (!controlsAllowed(entry, CONTROL_CAPS.entry)) return false;
  // CR3-target count ≤ the supported number (IA32_VMX_MISC[24:16] = 0).
  if (v.read(V.VMCS_CR3_TARGET_COUNT) !== 0) return false;
  if ((proc & C.CPU_USE_IO_BITMAPS) !== 0) {
    if (!addrOk(c, v, V.VMCS_IO_BITMAP_A, 4096) || !addrOk(c, v, V.VMCS_IO_BITMAP_B, 4096)) return false;
  }
  if ((proc & C.CPU_USE_MSR_BITMAPS) !== 0 && !addrOk(c, v, V.VMCS_MSR_BITMAP, 4096)) return false;
  // Virtual NMIs need NMI exiting; NMI-window exiting needs virtual NMIs.
  if ((pin & C.PIN_VIRTUAL_NMIS) !== 0 && (pin & C.PIN_NMI_EXITING) === 0) return false;
  if ((proc & C.CPU_NMI_WINDOW_EXITING) !== 0 && (pin & C.PIN_VIRTUAL_NMIS) === 0) return false;
  if ((proc2 & C.CPU2_ENABLE_VPID) !== 0 && v.read(V.VMCS_VPID) === 0) return false;
  if ((proc2 & C.CPU2_ENABLE_EPT) !== 0 && !eptpValid(c, v.read(V.VMCS_EPT_POINTER), v.readHi(V.VMCS_EPT_POINTER)))
    return false;
  if ((proc2 & C.CPU2_VMCS_SHADOWING) !== 0) {
    if (!addrOk(c, v, V.VMCS_VMREAD_BITMAP, 4096) || !addrOk(c, v, V.VMCS_VMWRITE_BITMAP, 4096)) return false;
  }
  // MSR-store/load lists are not implemented: a non-zero count is rejected as an invalid control.
  if (
    v.read(V.VMCS_EXIT_MSR_STORE_COUNT) !== 0 ||
    v.read(V.VMCS_EXIT_MSR_LOAD_COUNT) !== 0 ||
    v.read(V.VMCS_ENTRY_MSR_LOAD_COUNT) !== 0
  )
    return false;
  return entryEventValid(v);
}

/** The VM-entry interruption-information field (26.2.1.3). */
function entryEventValid(v: Vmcs): boolean {
  return entryEventFieldsValid(v.read(V.VMCS_ENTRY_INTR_INFO), v.read(V.VMCS_ENTRY_INSTRUCTION_LENGTH));
}

/** Host-state area (26.2.2–26.2.4). */
export function checkHostState(c: Cpu, v: Vmcs): boolean {
  const cr0 = v.read(V.VMCS_HOST_CR0);
  const cr4 = v.read(V.VMCS_HOST_CR4);
  if ((cr0 & CR0_FIXED0) !== CR0_FIXED0 || (cr4 & CR4_FIXED0) !== CR4_FIXED0) return false;
  if ((cr4 & ~cr4Allowed(c)) !== 0 || v.readHi(V.VMCS_HOST_CR0) !== 0 || v.readHi(V.VMCS_HOST_CR4) !== 0) return false;
  if (v.readHi(V.VMCS_HOST_CR3) >>> 0 >= 2 ** (maxPhysAddr(c) - 32)) return false;
  const exit = v.read(V.VMCS_EXIT_CONTROLS);
  const host64 = (exit & C.EXIT_HOST_ADDR_SPACE_SIZE) !== 0;
  // A processor in IA-32e mode must return to it, and one outside it cannot (26.2.4).
  if (host64 !== ((c.efer & EFER_LMA) !== 0)) return false;
  if (host64 && ((cr4 & CR4_PAE) === 0 || !isCanonical(v.readHi(V.VMCS_HOST_RIP)))) return false;
  if (!host64 && (cr4 & CR4_PCIDE) !== 0) return false;
  if ((exit & C.EXIT_LOAD_IA32_EFER) !== 0) {
    const efer = v.read(V.VMCS_HOST_IA32_EFER);
    if (v.readHi(V.VMCS_HOST_IA32_EFER) !== 0 || (efer & ~eferAllowed(c)) !== 0) return false;
    if (((efer & EFER_LMA) !== 0) !== host64 || ((efer & EFER_LME) !== 0) !== host64) return false;
  }
  // Selectors: RPL and TI 0; CS and TR not null; SS not null outside 64-bit hosts.
  const sels = [
    V.VMCS_HOST_ES_SELECTOR,
    V.VMCS_HOST_CS_SELECTOR,
    V.VMCS_HOST_SS_SELECTOR,
    V.VMCS_HOST_DS_SELECTOR,
    V.VMCS_HOST_FS_SELECTOR,
    V.VMCS_HOST_GS_SELECTOR,
    V.VMCS_HOST_TR_SELECTOR,
  ];
  for (const f of sels) if ((v.read(f) & 7) !== 0) return false;
  if (v.read(V.VMCS_HOST_CS_SELECTOR) === 0 || v.read(V.VMCS_HOST_TR_SELECTOR) === 0) return false;
  if (!host64 && v.read(V.VMCS_HOST_SS_SELECTOR) === 0) return false;
  for (const f of [
    V.VMCS_HOST_FS_BASE,
    V.VMCS_HOST_GS_BASE,
    V.VMCS_HOST_TR_BASE,
    V.VMCS_HOST_GDTR_BASE,
    V.VMCS_HOST_IDTR_BASE,
  ])
    if (!isCanonical(v.readHi(f))) return false;
  return true;
}

/** Guest-state area (26.3.1), the rules for state nestlab models. */
export function checkGuestState(c: Cpu, v: Vmcs): boolean {
  const cr0 = v.read(V.VMCS_GUEST_CR0);
  const cr4 = v.read(V.VMCS_GUEST_CR4);
  const entry = v.read(V.VMCS_ENTRY_CONTROLS);
  const ia32e = (entry & C.ENTRY_IA32E_MODE_GUEST) !== 0;
  // CR0/CR4 fixed bits (no unrestricted guest: PE and PG fixed to 1), CR4 reserved bits.
  if ((cr0 & CR0_FIXED0) !== CR0_FIXED0 || (cr4 & CR4_VMXE) === 0 || (cr4 & ~cr4Allowed(c)) !== 0) return false;
  if ((cr0 & CR0_PG) !== 0 && (cr0 & CR0_PE) === 0) return false;
  if (ia32e && (cr4 & CR4_PAE) === 0) return false;
  if (!ia32e && (cr4 & CR4_PCIDE) !== 0) return false;
  if ((entry & C.ENTRY_LOAD_IA32_EFER) !== 0) {
    const efer = v.read(V.VMCS_GUEST_IA32_EFER);
    if ((efer & ~eferAllowed(c)) !== 0 || ((efer & EFER_LMA) !== 0) !== ia32e) return false;
    if ((cr0 & CR0_PG) !== 0 && ((efer & EFER_LME) !== 0) !== ia32e) return false;
  }
  // RFLAGS: bit 1 set, reserved bits 63:22, 15, 5, 3 clear.
  const rflags = v.read(V.VMCS_GUEST_RFLAGS);
  if ((rflags & 2) === 0 || (rflags & 0xffc08028) !== 0 || v.readHi(V.VMCS_GUEST_RFLAGS) !== 0) return false;
  // RFLAGS.IF = 1 when an external interrupt is injected (26.3.1.4).
  const event = v.read(V.VMCS_ENTRY_INTR_INFO);
  if (
    (event & C.INTR_INFO_VALID) !== 0 &&
    (event & C.INTR_INFO_TYPE_MASK) === C.INTR_TYPE_EXT_INTR &&
    (rflags & 0x200) === 0
  )
    return false;
  // Activity state: active or HLT (IA32_VMX_MISC[6]); interruptibility reserved bits 31:5;
  // blocking by STI or MOV SS only in the active state; HLT only with SS.DPL 0 (26.3.1.5).
  const activity = v.read(V.VMCS_GUEST_ACTIVITY_STATE) >>> 0;
  const intr = v.read(V.VMCS_GUEST_INTERRUPTIBILITY);
  if (activity > C.ACTIVITY_HLT || (intr & ~0x1f) !== 0) return false;
  if (activity !== C.ACTIVITY_ACTIVE && (intr & (C.INTERRUPTIBILITY_STI | C.INTERRUPTIBILITY_MOV_SS)) !== 0)
    return false;
  if (activity === C.ACTIVITY_HLT && (v.read(V.VMCS_GUEST_SS_AR) & 0x60) !== 0) return false;
  // An NMI injected with virtual NMIs needs blocking by NMI clear (26.3.1.5).
  if (C.nmiInjectionBlocked(v.read(V.VMCS_PIN_BASED_CONTROLS), event, intr)) return false;
  // TR usable and a busy TSS; CS usable (26.3.1.2).
  const trAr = v.read(V.VMCS_GUEST_TR_AR);
  const trType = trAr & 0xf;
  if ((trAr & 0x10000) !== 0 || (trAr & 0x80) === 0 || (trType !== 11 && (ia32e || trType !== 3))) return false;
  if ((v.read(V.VMCS_GUEST_CS_AR) & 0x10000) !== 0) return false;
  // The VMCS link pointer: all ones, or a VMCS whose shadow indicator is the shadowing control (26.3.1.5).
  return linkPointerValid(c, v);
}

/** The VMCS link pointer check (26.3.1.5); its failure has exit qualification 4 (26.8). */
export function linkPointerValid(c: Cpu, v: Vmcs): boolean {
  const lo = v.read(V.VMCS_LINK_POINTER);
  const hi = v.readHi(V.VMCS_LINK_POINTER);
  if (lo === -1 && hi === -1) return true;
  const proc = v.read(V.VMCS_PROC_BASED_CONTROLS);
  const proc2 = (proc & C.CPU_SECONDARY_CONTROLS) !== 0 ? v.read(V.VMCS_PROC_BASED_CONTROLS2) : 0;
  const shadowing = (proc2 & C.CPU2_VMCS_SHADOWING) !== 0;
  if ((lo & 0xfff) !== 0 || hi >>> 0 >= 2 ** (maxPhysAddr(c) - 32)) return false;
  const addr = (hi >>> 0) * 4294967296 + (lo >>> 0);
  const rev = c.mem.read(addr, 4);
  return (rev & 0x7fffffff) === C.VMCS_REVISION_ID && ((rev & C.VMCS_SHADOW_INDICATOR) !== 0) === shadowing;
}

/** `checkEntry` outcome: every check passed. */
export const ENTRY_CHECKS_PASSED = 0;
/** `checkEntry` outcome: a guest-state check failed (VM-entry failure, exit qualification 0). */
export const ENTRY_FAILED_GUEST_STATE = -1;
/** `checkEntry` outcome: the VMCS link pointer check failed (exit qualification 4, 26.8). */
export const ENTRY_FAILED_LINK_POINTER = -2;

/**
 * The checks of VMLAUNCH/VMRESUME after the launch state, in the SDM's order: controls (26.2.1)
 * and host state (26.2.2–26.2.4) fail the instruction with VMfailValid and the returned error
 * number (VMXERR_ENTRY_INVALID_CONTROLS, VMXERR_ENTRY_INVALID_HOST_STATE); the guest state
 * (26.3.1) fails the entry itself (ENTRY_FAILED_*); ENTRY_CHECKS_PASSED otherwise.
 */
export function checkEntry(c: Cpu, v: Vmcs): number {
  if (!checkControls(c, v)) return V.VMXERR_ENTRY_INVALID_CONTROLS;
  if (!checkHostState(c, v)) return V.VMXERR_ENTRY_INVALID_HOST_STATE;
  if (!checkGuestState(c, v)) return linkPointerValid(c, v) ? ENTRY_FAILED_GUEST_STATE : ENTRY_FAILED_LINK_POINTER;
  return ENTRY_CHECKS_PASSED;
}

/**
 * What the model cannot run, checked by every VM entry before it loads anything (a failed entry
 * loads no guest state, 26.3): VPID 0 with VPIDs enabled, and an IA-32e-mode guest with paging
 * off or a 16-bit CS (compatibility-mode guests are allowed, 16-bit code is not). Also one rule of
 * 26.3.1.5 a hypervisor meets only if it handles NMIs right: an NMI injected with virtual NMIs
 * needs blocking by NMI clear (a re-injected NMI whose delivery exited has it set: entry-inject.ts).
 * Returns why, or null.
 */
export function checkModelledGuest(v: Vmcs): string | null {
  const ia32e = (v.read(V.VMCS_ENTRY_CONTROLS) & C.ENTRY_IA32E_MODE_GUEST) !== 0;
  const proc = v.read(V.VMCS_PROC_BASED_CONTROLS);
  const proc2 = (proc & C.CPU_SECONDARY_CONTROLS) !== 0 ? v.read(V.VMCS_PROC_BASED_CONTROLS2) : 0;
  if ((proc2 & C.CPU2_ENABLE_VPID) !== 0 && v.read(V.VMCS_VPID) === 0) return "VPID enabled with VPID 0";
  if (ia32e && (v.read(V.VMCS_GUEST_CR0) & CR0_PG) === 0) return "IA-32e mode guest with CR0.PG = 0";
  const csAr = v.read(V.VMCS_GUEST_CS_AR);
  if (ia32e && (csAr & 0x2000) === 0 && (csAr & 0x4000) === 0) return "IA-32e guest with a 16-bit CS";
  const pin = v.read(V.VMCS_PIN_BASED_CONTROLS);
  if (C.nmiInjectionBlocked(pin, v.read(V.VMCS_ENTRY_INTR_INFO), v.read(V.VMCS_GUEST_INTERRUPTIBILITY)))
    return "NMI injected with virtual NMIs while blocking by NMI is set";
  return null;
}
