/**
 * What nestlab's VMX offers guest software, declared once: the controls `VmxUnit` and the VMX
 * instructions implement. The capability MSRs 0x480–0x491 (SDM vol. 3, appendix A) are computed
 * from this list, and VM entry (entry-checks.ts) checks controls against the same values, so what
 * the MSRs report and what entry accepts cannot drift apart.
 *
 * External-interrupt exiting with "acknowledge interrupt on exit" (`Cpu.checkInterrupts`) and the
 * VMX-preemption timer (its deadline is honoured by `Cpu.run` for guests that guest software
 * launched and by `VmxHost.run` for nestlab's own hypervisors, with one rule in `VmxUnit`).
 *
 * Left out on purpose (their allowed-1 bit is 0, so entry rejects them):
 * - saving the preemption-timer value at exit (the value is always stored, as nestlab's hosts need);
 * - MSR-load/store lists, CR3-target values, PAT loading, TPR shadow, APIC virtualization,
 *   unrestricted guest, VM functions (so IA32_VMX_VMFUNC does not exist: #GP).
 */

import * as C from "../../x86/vmx-controls.js";

/** The controls implemented (the allowed-1 settings beyond the default1 bits). */
export const SUPPORTED_CONTROLS = {
  pin: C.PIN_EXT_INTR_EXITING | C.PIN_NMI_EXITING | C.PIN_VIRTUAL_NMIS | C.PIN_PREEMPTION_TIMER,
  proc:
    C.CPU_INTR_WINDOW_EXITING |
    C.CPU_TSC_OFFSETTING |
    C.CPU_HLT_EXITING |
    C.CPU_INVLPG_EXITING |
    C.CPU_RDTSC_EXITING |
    C.CPU_CR3_LOAD_EXITING |
    C.CPU_CR3_STORE_EXITING |
    C.CPU_CR8_LOAD_EXITING |
    C.CPU_CR8_STORE_EXITING |
    C.CPU_NMI_WINDOW_EXITING |
    C.CPU_UNCOND_IO_EXITING |
    C.CPU_USE_IO_BITMAPS |
    C.CPU_USE_MSR_BITMAPS |
    C.CPU_SECONDARY_CONTROLS,
  proc2: C.CPU2_ENABLE_EPT | C.CPU2_ENABLE_VPID | C.CPU2_WBINVD_EXITING | C.CPU2_VMCS_SHADOWING,
  // Guest EFER and PAT are always saved at exit (exit-commit.ts saveGuestState), as with the save controls 1.
  exit:
    C.EXIT_HOST_ADDR_SPACE_SIZE |
    C.EXIT_ACK_INTR_ON_EXIT |
    C.EXIT_SAVE_IA32_PAT |
    C.EXIT_SAVE_IA32_EFER |
    C.EXIT_LOAD_IA32_EFER,
  entry: C.ENTRY_IA32E_MODE_GUEST | C.ENTRY_LOAD_IA32_EFER,
} as const;

/**
 * Default1 bits the implementation lets software clear (reported in the TRUE_ MSRs): CR3-load
 * and CR3-store exiting are real controls here. Every other default1 bit has no function and
 * stays 1 (DR7 is always loaded at entry and saved at exit, as with the debug-controls bits 1).
 */
const PROC_DEFAULT1_CLEARABLE = C.CPU_CR3_LOAD_EXITING | C.CPU_CR3_STORE_EXITING;

/** A control field's allowed settings: bits that must be 1, bits that may be 1. */
export interface ControlCaps {
  must1: number;
  may1: number;
}

/** The settings VM entry checks (the TRUE_ MSRs, since IA32_VMX_BASIC[55] = 1: SDM 26.2.1.1). */
export const CONTROL_CAPS: {
  pin: ControlCaps;
  proc: ControlCaps;
  proc2: ControlCaps;
  exit: ControlCaps;
  entry: ControlCaps;
} = {
  pin: { must1: C.PIN_DEFAULT1, may1: C.PIN_DEFAULT1 | SUPPORTED_CONTROLS.pin },
  proc: { must1: C.PROC_DEFAULT1 & ~PROC_DEFAULT1_CLEARABLE, may1: C.PROC_DEFAULT1 | SUPPORTED_CONTROLS.proc },
  proc2: { must1: 0, may1: SUPPORTED_CONTROLS.proc2 },
  exit: { must1: C.EXIT_DEFAULT1, may1: C.EXIT_DEFAULT1 | SUPPORTED_CONTROLS.exit },
  entry: { must1: C.ENTRY_DEFAULT1, may1: C.ENTRY_DEFAULT1 | SUPPORTED_CONTROLS.entry },
};

/** Whether a control value respects its allowed-0 and allowed-1 settings. */
export function controlsAllowed(value: number, caps: ControlCaps): boolean {
  return (value & caps.must1) === caps.must1 && (value & ~caps.may1) === 0;
}

/** The VMCS region size nestlab reports (and the layout in vmcs-region.ts fits in). */
export const VMCS_REGION_SIZE = 4096;

/** CR0 bits fixed to 1 in VMX operation (PE, NE, PG: no unrestricted guest; appendix A.7). */
export const CR0_FIXED0 = 0x80000021 | 0;
/** CR4 bits fixed to 1 in VMX operation (VMXE; appendix A.8). */
export const CR4_FIXED0 = 1 << 13;

/** EPT and VPID capabilities (appendix A.10): what the walker and INVEPT/INVVPID implement. */
// Execute-only: the walker (mmu/walker.ts) lets an entry with X and without R translate fetches.
export const EPT_VPID_CAP_LO =
  C.EPT_CAP_EXEC_ONLY |
  C.EPT_CAP_WALK_4 |
  C.EPT_CAP_WB |
  C.EPT_CAP_2M |
  C.EPT_CAP_1G |
  C.EPT_CAP_INVEPT |
  C.EPT_CAP_AD |
  C.EPT_CAP_INVEPT_SINGLE |
  C.EPT_CAP_INVEPT_ALL;
export const EPT_VPID_CAP_HI =
  C.VPID_CAP_HI_INVVPID | C.VPID_CAP_HI_ADDR | C.VPID_CAP_HI_SINGLE | C.VPID_CAP_HI_ALL | C.VPID_CAP_HI_SINGLE_GLOBALS;

/** Whether an INVEPT type is supported (bits 25/26 of the capability). */
export function inveptTypeSupported(type: number): boolean {
  return (
    (type === C.INVEPT_SINGLE && (EPT_VPID_CAP_LO & C.EPT_CAP_INVEPT_SINGLE) !== 0) ||
    (type === C.INVEPT_ALL && (EPT_VPID_CAP_LO & C.EPT_CAP_INVEPT_ALL) !== 0)
  );
}

/** Whether an INVVPID type is supported (bits 40–43 of the capability). */
export function invvpidTypeSupported(type: number): boolean {
  return type >= 0 && type <= 3 && (EPT_VPID_CAP_HI & (C.VPID_CAP_HI_ADDR << type)) !== 0;
}

/** IA32_VMX_MISC: preemption-timer rate (reported though the timer is not offered), HLT, LMA store. */
export const MISC_LO = C.PREEMPTION_TIMER_RATE_SHIFT | C.MISC_STORE_LMA | C.MISC_ACTIVITY_HLT;

/** IA32_VMX_VMCS_ENUM: the highest index (bits 9:1 of an encoding) among supported fields. */
export function vmcsEnum(fields: readonly number[]): number {
  let max = 0;
  for (const f of fields) max = Math.max(max, (f >>> 1) & 0x1ff);
  return max << 1;
}

/** IA32_VMX_BASIC as [lo, hi]. */
export function basicMsr(): [number, number] {
  return [C.VMCS_REVISION_ID, VMCS_REGION_SIZE | C.BASIC_HI_MEMTYPE_WB | C.BASIC_HI_TRUE_CTLS];
}
