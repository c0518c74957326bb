/**
 * The consistency checks L0 makes on VMCS12 at L1's VMLAUNCH/VMRESUME, in KVM's order (nested.c:
 * nested_vmx_check_controls → VMfail 7, nested_vmx_check_host_state → VMfail 8, then
 * nested_vmx_check_guest_state → a VM-entry-failure exit to L1), against the SDM (vol. 3C,
 * 26.2.1–26.2.4 and 26.3.1). Values are judged against what L0 offers L1 (caps.ts) and L1's own
 * CPUID (MAXPHYADDR, CR4 and EFER bits), never against the host CPU. A VMCS02 entry the
 * processor still refuses is reflected to L1 as the same failure (l2-vcpu.ts).
 */
import { cr4AllowedBy } from "../../../cpu/cpuid.js";
import { isCanonical } from "../../../x86/canonical.js";
import {
  CR0_PE,
  CR0_PG,
  CR4_PAE,
  CR4_PCIDE,
  CR4_VMXE,
  EFER_LMA,
  EFER_LME,
  EFER_NXE,
  EFER_SCE,
} from "../../../x86/control.js";
import * as MSR from "../../../x86/msr.js";
import { AR_DPL, AR_P, AR_UNUSABLE } from "../../../x86/segment-ar.js";
import * as V from "../../../x86/vmx.js";
import * as C from "../../../x86/vmx-controls.js";
import { entryEventFieldsValid } from "../../../x86/vmx-controls.js";
import { CR0_FIXED0, VMCS12_REVISION, vmxMsr } from "./caps.js";
import { filterCapsForEvmcs } from "./hyperv.js";
import type { VmxInsnContext } from "./instructions.js";
import type { Vmcs12Cache } from "./vmcs12.js";

/** SDM vol. 3C 26.8 / KVM enum vm_entry_failure_code: the exit qualification of a failed entry. */
export const ENTRY_FAIL_DEFAULT = 0;
export const ENTRY_FAIL_VMCS_LINK_PTR = 4;
/** check result: the guest state passed L0's checks. */
export const GUEST_STATE_OK = -1;

const cpuidOut = new Int32Array(4);

/** L1's MAXPHYADDR (CPUID 0x80000008 of its VM; KVM cpuid_maxphyaddr). */
export function physBits(x: VmxInsnContext): number {
  x.vm.cpuid.query(0x80000008, 0, cpuidOut);
  return cpuidOut[0] & 0xff || 36;
}

/** The EFER bits L1 may set (KVM kvm_valid_efer: SCE, LME/LMA, NXE when its CPUID has NX). */
function eferAllowed(x: VmxInsnContext): number {
  x.vm.cpuid.query(0x80000001, 0, cpuidOut);
  return EFER_SCE | EFER_LME | EFER_LMA | ((cpuidOut[3] & (1 << 20)) !== 0 ? EFER_NXE : 0);
}

/** offeredControls' answer, overwritten by the next call (nothing allocated per VM-entry check). */
const offered = new Int32Array(2);

/**
 * A capability-control MSR as L0 offers it to this L1 ([allowed-0, allowed-1]): on `nvmx-evmcs`
 * (`s.hv` set) the eVMCS-filtered values L1 reads, whether or not L1 has an eVMCS current — as
 * KVM, whose nested_vmx_check_controls calls nested_evmcs_check_controls whenever
 * guest_cpu_cap_has_evmcs(vcpu) (the VMM enabled the eVMCS for the vCPU), not only when
 * evmptr_is_valid.
 */
export function offeredControls(x: VmxInsnContext, msr: number): Int32Array {
  vmxMsr(msr, 0, offered);
  if (x.s.hv !== null) filterCapsForEvmcs(msr, offered);
  return offered;
}

/** A control word against its capability MSR as offered (allowed-0 bits set, nothing beyond allowed-1). */
function ctlOk(x: VmxInsnContext, value: number, msr: number): boolean {
  const caps = offeredControls(x, msr);
  const must = caps[0];
  return (value & must) === must && (value & ~caps[1]) === 0;
}

/** A page-aligned address field within L1's MAXPHYADDR (26.2.1.1; KVM page_address_valid). */
function pageAddressOk(x: VmxInsnContext, addr: number): boolean {
  return addr % 4096 === 0 && addr < 2 ** physBits(x);
}

/** IA32_VMX_EPT_VPID_CAP as eptpValid reads it (refilled per call). */
const eptCaps = new Int32Array(2);

/**
 * An EPTP L0 can walk (24.6.11; KVM nested_vmx_check_eptp): WB, 4 levels, bits 11:7 reserved, and
 * bit 6 (accessed/dirty flags) only when IA32_VMX_EPT_VPID_CAP[21] offers them (caps.ts does).
 */
export function eptpValid(x: VmxInsnContext, eptp: number): boolean {
  const lo = eptp % 4096;
  vmxMsr(MSR.MSR_IA32_VMX_EPT_VPID_CAP, 0, eptCaps);
  const adOffered = (eptCaps[0] & C.EPT_CAP_AD) !== 0;
  const reserved = adOffered ? 0xf80 : 0xfc0;
  return (lo & 7) === C.EPTP_WB && (lo & 0x38) === C.EPTP_WALK_4 && (lo & reserved) === 0 && eptp < 2 ** physBits(x);
}

/**
 * VM-execution, exit and entry control fields (26.2.1.1–26.2.1.3; KVM nested_check_vm_execution_
 * controls, nested_check_vm_exit_controls, nested_check_vm_entry_controls): the control words
 * against the TRUE capability MSRs, no CR3 targets or MSR lists (none offered), bitmap addresses
 * (I/O, MSR, and VMREAD/VMWRITE with VMCS shadowing),
 * the NMI controls, a non-zero VPID, "save preemption timer" only with the timer, an EPTP L0 can
 * walk, and a valid entry event. False: VMfail(7).
 */
export function controlsValid(x: VmxInsnContext): boolean {
  const c = x.s.current;
  const pin = c.get32(V.VMCS_PIN_BASED_CONTROLS);
  const proc = c.get32(V.VMCS_PROC_BASED_CONTROLS);
  const proc2 = (proc & C.CPU_SECONDARY_CONTROLS) !== 0 ? c.get32(V.VMCS_PROC_BASED_CONTROLS2) : 0;
  const exit = c.get32(V.VMCS_EXIT_CONTROLS);
  if (
    !ctlOk(x, pin, MSR.MSR_IA32_VMX_TRUE_PINBASED_CTLS) ||
    !ctlOk(x, proc, MSR.MSR_IA32_VMX_TRUE_PROCBASED_CTLS) ||
    !ctlOk(x, proc2, MSR.MSR_IA32_VMX_PROCBASED_CTLS2) ||
    !ctlOk(x, exit, MSR.MSR_IA32_VMX_TRUE_EXIT_CTLS) ||
    !ctlOk(x, c.get32(V.VMCS_ENTRY_CONTROLS), MSR.MSR_IA32_VMX_TRUE_ENTRY_CTLS)
  )
    return false;
  if (c.get32(V.VMCS_CR3_TARGET_COUNT) !== 0) return false;
  if ((proc & C.CPU_USE_IO_BITMAPS) !== 0) {
    if (!pageAddressOk(x, c.getNumber(V.VMCS_IO_BITMAP_A)) || !pageAddressOk(x, c.getNumber(V.VMCS_IO_BITMAP_B)))
      return false;
  }
  if ((proc & C.CPU_USE_MSR_BITMAPS) !== 0 && !pageAddressOk(x, c.getNumber(V.VMCS_MSR_BITMAP))) return false;
  // 26.2.1.1; KVM nested_vmx_check_shadow_vmcs_controls.
  if ((proc2 & C.CPU2_VMCS_SHADOWING) !== 0) {
    if (!pageAddressOk(x, c.getNumber(V.VMCS_VMREAD_BITMAP)) || !pageAddressOk(x, c.getNumber(V.VMCS_VMWRITE_BITMAP)))
      return false;
  }
  if ((pin & C.PIN_VIRTUAL_NMIS) !== 0 && (pin & C.PIN_NMI_EXITING) === 0) return false;
  if ((proc & C.CPU_NMI_WINDOW_EXITING) !== 0 && (pin & C.PIN_VIRTUAL_NMIS) === 0) return false;
  if ((proc2 & C.CPU2_ENABLE_VPID) !== 0 && c.get32(V.VMCS_VPID) === 0) return false;
  if ((exit & C.EXIT_SAVE_PREEMPTION_TIMER) !== 0 && (pin & C.PIN_PREEMPTION_TIMER) === 0) return false;
  if ((proc2 & C.CPU2_ENABLE_EPT) !== 0 && !eptpValid(x, c.getNumber(V.VMCS_EPT_POINTER))) return false;
  return (
    c.get32(V.VMCS_EXIT_MSR_STORE_COUNT) === 0 &&
    c.get32(V.VMCS_EXIT_MSR_LOAD_COUNT) === 0 &&
    c.get32(V.VMCS_ENTRY_MSR_LOAD_COUNT) === 0 &&
    entryEventFieldsValid(c.get32(V.VMCS_ENTRY_INTR_INFO), c.get32(V.VMCS_ENTRY_INSTRUCTION_LENGTH))
  );
}

/** CR0 and CR4 against IA32_VMX_CR{0,4}_FIXED{0,1} as L0 reports them (bits 63:32 reserved). */
function crFixedOk(x: VmxInsnContext, cr0Field: number, cr4Field: number): boolean {
  const c = x.s.current;
  const cr0 = c.get32(cr0Field);
  const cr4 = c.get32(cr4Field);
  const cr4Fixed1 = cr4AllowedBy(x.vm.cpuid) | CR4_VMXE;
  return (
    (cr0 & CR0_FIXED0) === CR0_FIXED0 &&
    c.hi32(cr0Field) === 0 &&
    (cr4 & CR4_VMXE) !== 0 &&
    (cr4 & ~cr4Fixed1) === 0 &&
    c.hi32(cr4Field) === 0
  );
}

/**
 * The host-state area (26.2.2–26.2.4; KVM nested_vmx_check_host_state): CR0/CR4 fixed bits, CR3
 * within MAXPHYADDR, canonical SYSENTER ESP/EIP, the address-space size matching L1's IA-32e mode
 * (then CR4.PAE; outside it no IA-32e guest, no PCIDE, RIP below 4 GiB), selectors with RPL and TI
 * 0, CS and TR not null, SS not null outside IA-32e mode, canonical FS/GS/GDTR/IDTR/TR bases and
 * RIP, and with "load IA32_EFER" an EFER without reserved bits whose LMA and LME equal that size.
 * False: VMfail(8).
 */
export function hostStateValid(x: VmxInsnContext): boolean {
  const c = x.s.current;
  if (!crFixedOk(x, V.VMCS_HOST_CR0, V.VMCS_HOST_CR4)) return false;
  if (c.getNumber(V.VMCS_HOST_CR3) >= 2 ** physBits(x)) return false;
  if (!isCanonical(c.hi32(V.VMCS_HOST_SYSENTER_ESP)) || !isCanonical(c.hi32(V.VMCS_HOST_SYSENTER_EIP))) return false;
  const exit = c.get32(V.VMCS_EXIT_CONTROLS);
  const ia32e = (x.l0.host.vmread(V.VMCS_GUEST_IA32_EFER) & EFER_LMA) !== 0;
  const cr4 = c.get32(V.VMCS_HOST_CR4);
  if (ia32e) {
    if ((exit & C.EXIT_HOST_ADDR_SPACE_SIZE) === 0 || (cr4 & CR4_PAE) === 0) return false;
  } else if (
    (exit & C.EXIT_HOST_ADDR_SPACE_SIZE) !== 0 ||
    (c.get32(V.VMCS_ENTRY_CONTROLS) & C.ENTRY_IA32E_MODE_GUEST) !== 0 ||
    (cr4 & CR4_PCIDE) !== 0 ||
    c.getNumber(V.VMCS_HOST_RIP) >= 4294967296
  )
    return false;
  for (const f of HOST_SELECTORS) if ((c.get32(f) & 7) !== 0) return false;
  if (c.get32(V.VMCS_HOST_CS_SELECTOR) === 0 || c.get32(V.VMCS_HOST_TR_SELECTOR) === 0) return false;
  if (!ia32e && c.get32(V.VMCS_HOST_SS_SELECTOR) === 0) return false;
  for (const f of HOST_LINEAR) if (!isCanonical(c.hi32(f))) return false;
  if ((exit & C.EXIT_LOAD_IA32_EFER) !== 0) {
    const efer = c.get32(V.VMCS_HOST_IA32_EFER);
    if ((efer & ~eferAllowed(x)) !== 0 || c.hi32(V.VMCS_HOST_IA32_EFER) !== 0) return false;
    if (((efer & EFER_LMA) !== 0) !== ia32e || ((efer & EFER_LME) !== 0) !== ia32e) return false;
  }
  return true;
}

const HOST_SELECTORS = [
  V.VMCS_HOST_CS_SELECTOR,
  V.VMCS_HOST_SS_SELECTOR,
  V.VMCS_HOST_DS_SELECTOR,
  V.VMCS_HOST_ES_SELECTOR,
  V.VMCS_HOST_FS_SELECTOR,
  V.VMCS_HOST_GS_SELECTOR,
  V.VMCS_HOST_TR_SELECTOR,
];
const HOST_LINEAR = [
  V.VMCS_HOST_FS_BASE,
  V.VMCS_HOST_GS_BASE,
  V.VMCS_HOST_GDTR_BASE,
  V.VMCS_HOST_IDTR_BASE,
  V.VMCS_HOST_TR_BASE,
  V.VMCS_HOST_RIP,
];

/**
 * The VMCS link pointer (26.3.1.5; KVM nested_vmx_check_vmcs_link_ptr): all ones, or a page of
 * L1 RAM holding a VMCS12 revision whose shadow indicator says whether L1 enabled VMCS shadowing.
 */
function linkPointerValid(x: VmxInsnContext): boolean {
  const c = x.s.current;
  if (c.get32(V.VMCS_LINK_POINTER) === -1 && c.hi32(V.VMCS_LINK_POINTER) === -1) return true;
  const link = c.getNumber(V.VMCS_LINK_POINTER);
  if (!pageAddressOk(x, link) || !x.ops.isRam(link, 4096)) return false;
  const rev = x.vm.memory.read32(link) >>> 0;
  const shadowing = (c.secondaryControls() & C.CPU2_VMCS_SHADOWING) !== 0;
  return (
    (rev & ~C.VMCS_SHADOW_INDICATOR) >>> 0 === VMCS12_REVISION && ((rev & C.VMCS_SHADOW_INDICATOR) !== 0) === shadowing
  );
}

/**
 * The guest-state checks KVM makes in software (26.3.1; KVM nested_vmx_check_guest_state): CR0/CR4
 * fixed bits (no unrestricted guest), DR7 bits 63:32 clear (the "load debug controls" entry control
 * is always 1), the VMCS link pointer, with "load IA32_EFER" an EFER without reserved bits whose
 * LMA equals "IA-32e mode guest" (and LME too when CR0.PG), an active or HLT activity state.
 * Returns GUEST_STATE_OK or the exit qualification of the entry failure (26.8).
 */
export function guestStateFailure(x: VmxInsnContext): number {
  const c = x.s.current;
  if (!crFixedOk(x, V.VMCS_GUEST_CR0, V.VMCS_GUEST_CR4)) return ENTRY_FAIL_DEFAULT;
  if (c.hi32(V.VMCS_GUEST_DR7) !== 0) return ENTRY_FAIL_DEFAULT;
  if (!linkPointerValid(x)) return ENTRY_FAIL_VMCS_LINK_PTR;
  const entry = c.get32(V.VMCS_ENTRY_CONTROLS);
  if ((entry & C.ENTRY_LOAD_IA32_EFER) !== 0) {
    const ia32e = (entry & C.ENTRY_IA32E_MODE_GUEST) !== 0;
    const efer = c.get32(V.VMCS_GUEST_IA32_EFER);
    if ((efer & ~eferAllowed(x)) !== 0 || c.hi32(V.VMCS_GUEST_IA32_EFER) !== 0) return ENTRY_FAIL_DEFAULT;
    if (((efer & EFER_LMA) !== 0) !== ia32e) return ENTRY_FAIL_DEFAULT;
    if ((c.get32(V.VMCS_GUEST_CR0) & CR0_PG) !== 0 && ((efer & EFER_LME) !== 0) !== ia32e) return ENTRY_FAIL_DEFAULT;
  }
  const activity = c.get32(V.VMCS_GUEST_ACTIVITY_STATE);
  if (activity !== C.ACTIVITY_ACTIVE && activity !== C.ACTIVITY_HLT) return ENTRY_FAIL_DEFAULT;
  return processorGuestRulesOk(c) ? GUEST_STATE_OK : ENTRY_FAIL_DEFAULT;
}

/** RFLAGS bits that must be 0 (26.3.1.4: 63:22, 15, 5, 3) and the one that must be 1 (bit 1). */
const RFLAGS_RESERVED = 0xffc08028;
const RFLAGS_FIXED1 = 2;
const RFLAGS_IF = 0x200;
const TSS_BUSY_64 = 11;
const TSS_BUSY_16 = 3;

/**
 * The guest-state rules KVM leaves to the processor's check of VMCS02 (26.3.1.1–26.3.1.5), made
 * here on VMCS12 because L0's VmxHost, like a VMM's trusted hardware interface, checks only what
 * it needs to run a guest: CR0.PG only with PE, IA-32e mode only with CR4.PAE and PCIDE only in
 * it; RFLAGS reserved bits and IF with an injected external interrupt; interruptibility reserved
 * bits, STI/MOV-SS blocking only in the active state, HLT only at SS.DPL 0, no blocking by NMI
 * for an NMI injected with virtual NMIs; CS usable; TR usable,
 * present, a busy TSS (64-bit in IA-32e mode).
 */
function processorGuestRulesOk(c: Vmcs12Cache): boolean {
  const cr0 = c.get32(V.VMCS_GUEST_CR0);
  const cr4 = c.get32(V.VMCS_GUEST_CR4);
  const ia32e = (c.get32(V.VMCS_ENTRY_CONTROLS) & C.ENTRY_IA32E_MODE_GUEST) !== 0;
  if ((cr0 & CR0_PG) !== 0 && (cr0 & CR0_PE) === 0) return false;
  if (ia32e ? (cr4 & CR4_PAE) === 0 : (cr4 & CR4_PCIDE) !== 0) return false;
  const rflags = c.get32(V.VMCS_GUEST_RFLAGS);
  if ((rflags & RFLAGS_FIXED1) === 0 || (rflags & RFLAGS_RESERVED) !== 0 || c.hi32(V.VMCS_GUEST_RFLAGS) !== 0)
    return false;
  const event = c.get32(V.VMCS_ENTRY_INTR_INFO);
  const extInt = (event & C.INTR_INFO_VALID) !== 0 && (event & C.INTR_INFO_TYPE_MASK) === C.INTR_TYPE_EXT_INTR;
  if (extInt && (rflags & RFLAGS_IF) === 0) return false;
  const intr = c.get32(V.VMCS_GUEST_INTERRUPTIBILITY);
  const activity = c.get32(V.VMCS_GUEST_ACTIVITY_STATE);
  if ((intr & ~0x1f) !== 0) return false;
  const blocking = (intr & (C.INTERRUPTIBILITY_STI | C.INTERRUPTIBILITY_MOV_SS)) !== 0;
  if (activity !== C.ACTIVITY_ACTIVE && blocking) return false;
  if (activity === C.ACTIVITY_HLT && (c.get32(V.VMCS_GUEST_SS_AR) & AR_DPL) !== 0) return false;
  if (C.nmiInjectionBlocked(c.get32(V.VMCS_PIN_BASED_CONTROLS), event, intr)) return false;
  if ((c.get32(V.VMCS_GUEST_CS_AR) & AR_UNUSABLE) !== 0) return false;
  const tr = c.get32(V.VMCS_GUEST_TR_AR);
  const trType = tr & 0xf;
  if ((tr & AR_UNUSABLE) !== 0 || (tr & AR_P) === 0) return false;
  return trType === TSS_BUSY_64 || (!ia32e && trType === TSS_BUSY_16);
}
