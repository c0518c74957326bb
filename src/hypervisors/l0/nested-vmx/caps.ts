/**
 * What L0's nested-VMX engine offers an L1, declared once (KVM: nested_vmx_setup_ctls_msrs):
 * the VMX controls it can merge into a VMCS02, the VMCS12 revision and size, and the answers to
 * the capability MSRs 0x480–0x491 built from that declaration (IA32_FEATURE_CONTROL is a per-vCPU
 * value: feature-control.ts). A control bit is offered only when the engine has code behind it.
 */
import { CR0_NE, CR0_PE, CR0_PG, CR4_VMXE } from "../../../x86/control.js";
import * as MSR from "../../../x86/msr.js";
import { MSR_IA32_VMX_BASIC } from "../../../x86/msr.js";
import * as C from "../../../x86/vmx-controls.js";
import * as M from "../../../x86/vmx-msr.js";

/**
 * The revision identifier of nestlab's VMCS12 layout (bit 31 clear: not a shadow VMCS). Changing
 * the layout (vmcs12.ts, docs/nested-vmx.md) changes it, as KVM's VMCS12_REVISION.
 */
export const VMCS12_REVISION = 0x4e4c0002;
/** Size of a VMCS12 region and of the VMXON region (one page). */
export const VMCS12_SIZE = 4096;
/** Highest field index the engine supports (IA32_VMX_VMCS_ENUM bits 9:1; 0x17 is the preemption-timer value's). */
const VMCS_ENUM_MAX_INDEX = 0x17;

/** Allowed-1 settings: the controls L1 may set. */
export const SUPPORTED = {
  pin: C.PIN_EXT_INTR_EXITING | C.PIN_NMI_EXITING | C.PIN_VIRTUAL_NMIS | C.PIN_PREEMPTION_TIMER,
  proc:
    C.CPU_INTR_WINDOW_EXITING |
    // Requires virtual NMIs (checks.ts); VMCS02 takes it from VMCS12, its exit goes to L1 (nested.ts, reflect.ts).
    C.CPU_NMI_WINDOW_EXITING |
    C.CPU_HLT_EXITING |
    C.CPU_INVLPG_EXITING |
    C.CPU_RDTSC_EXITING |
    C.CPU_CR3_LOAD_EXITING |
    C.CPU_CR3_STORE_EXITING |
    C.CPU_CR8_LOAD_EXITING |
    C.CPU_CR8_STORE_EXITING |
    C.CPU_UNCOND_IO_EXITING |
    C.CPU_USE_IO_BITMAPS |
    C.CPU_USE_MSR_BITMAPS |
    C.CPU_SECONDARY_CONTROLS,
  // VMCS shadowing is emulated whatever the hardware has (KVM nested_vmx_setup_secondary_ctls:
  // "We can emulate VMCS shadowing"): L2's VMREAD/VMWRITE exit to L0 (l2-vmcs-access.ts).
  proc2:
    C.CPU2_ENABLE_EPT |
    C.CPU2_ENABLE_VPID |
    C.CPU2_ENABLE_RDTSCP |
    C.CPU2_ENABLE_INVPCID |
    C.CPU2_WBINVD_EXITING |
    C.CPU2_VMCS_SHADOWING,
  exit:
    C.EXIT_HOST_ADDR_SPACE_SIZE |
    C.EXIT_ACK_INTR_ON_EXIT |
    C.EXIT_SAVE_IA32_EFER |
    C.EXIT_LOAD_IA32_EFER |
    C.EXIT_SAVE_PREEMPTION_TIMER,
  entry: C.ENTRY_IA32E_MODE_GUEST | C.ENTRY_LOAD_IA32_EFER,
} as const;

/** CR0 bits fixed to 1 in VMX operation (no unrestricted guest: PE, NE, PG), CR4's (VMXE). */
export const CR0_FIXED0 = CR0_PE | CR0_NE | CR0_PG;
export const CR4_FIXED0 = CR4_VMXE;

/** `out` = [lo, hi]; true. */
function pair(out: Int32Array, lo: number, hi: number): true {
  out[0] = lo;
  out[1] = hi;
  return true;
}

/** A capability-control MSR: allowed-0 (bits that must be 1) low, allowed-1 high. */
function ctls(out: Int32Array, must1: number, may1: number): true {
  return pair(out, must1, must1 | may1);
}

/**
 * The value of MSR `index` for an L1 whose CPUID allows CR4 bits `cr4Allowed` into `out` as
 * [low, high] 32-bit halves; false (and `out` untouched) when the engine does not answer it (the
 * caller raises #GP). Nothing is allocated: VM-entry checks ask for several per VMLAUNCH/VMRESUME.
 */
export function vmxMsr(index: number, cr4Allowed: number, out: Int32Array): boolean {
  const S = SUPPORTED;
  switch (index) {
    case MSR_IA32_VMX_BASIC:
      return pair(out, VMCS12_REVISION, VMCS12_SIZE | (M.VMX_BASIC_MEMTYPE_WB << 18) | M.VMX_BASIC_TRUE_CTLS);
    case MSR.MSR_IA32_VMX_PINBASED_CTLS:
    case MSR.MSR_IA32_VMX_TRUE_PINBASED_CTLS:
      return ctls(out, M.PIN_DEFAULT1, S.pin);
    case MSR.MSR_IA32_VMX_PROCBASED_CTLS:
      return ctls(out, M.PROC_DEFAULT1, S.proc);
    case MSR.MSR_IA32_VMX_TRUE_PROCBASED_CTLS:
      // The TRUE form lets CR3-load/store exiting be 0 (A.3.2), as KVM's does.
      return ctls(out, M.PROC_DEFAULT1 & ~(C.CPU_CR3_LOAD_EXITING | C.CPU_CR3_STORE_EXITING), S.proc);
    case MSR.MSR_IA32_VMX_EXIT_CTLS:
    case MSR.MSR_IA32_VMX_TRUE_EXIT_CTLS:
      return ctls(out, M.EXIT_DEFAULT1, S.exit);
    case MSR.MSR_IA32_VMX_ENTRY_CTLS:
    case MSR.MSR_IA32_VMX_TRUE_ENTRY_CTLS:
      return ctls(out, M.ENTRY_DEFAULT1, S.entry);
    case MSR.MSR_IA32_VMX_PROCBASED_CTLS2:
      return ctls(out, 0, S.proc2);
    case MSR.MSR_IA32_VMX_MISC:
      return pair(out, C.PREEMPTION_TIMER_RATE_SHIFT | M.VMX_MISC_SAVE_EFER_LMA | M.VMX_MISC_ACTIVITY_HLT, 0);
    case MSR.MSR_IA32_VMX_CR0_FIXED0:
      return pair(out, CR0_FIXED0, 0);
    case MSR.MSR_IA32_VMX_CR0_FIXED1:
      return pair(out, -1, 0);
    case MSR.MSR_IA32_VMX_CR4_FIXED0:
      return pair(out, CR4_FIXED0, 0);
    case MSR.MSR_IA32_VMX_CR4_FIXED1:
      return pair(out, cr4Allowed | CR4_VMXE, 0);
    case MSR.MSR_IA32_VMX_VMCS_ENUM:
      return pair(out, VMCS_ENUM_MAX_INDEX << 1, 0);
    case MSR.MSR_IA32_VMX_EPT_VPID_CAP:
      return pair(
        out,
        // Execute-only EPT12 entries: EPT02 copies EPT12's R/W/X bits, the processor runs them (KVM
        // offers it when the hardware has it: VMX_EPT_EXECUTE_ONLY_BIT).
        C.EPT_CAP_EXEC_ONLY |
          M.EPT_CAP_PAGE_WALK_4 |
          M.EPT_CAP_WB |
          // 2 MiB and 1 GiB EPT12 leaves: the walk of EPT12 takes any leaf level and EPT02 maps
          // the smaller of EPT12's and EPT01's (ept02.ts), as KVM offers both whatever the
          // hardware has (nested_vmx_setup_ctls_msrs: VMX_EPT_2MB_PAGE_BIT | VMX_EPT_1GB_PAGE_BIT).
          C.EPT_CAP_2M |
          C.EPT_CAP_1G |
          M.EPT_CAP_INVEPT |
          // EPT accessed/dirty flags: L0's walks of EPT12 set them (ept02.ts), as KVM offers them.
          C.EPT_CAP_AD |
          M.EPT_CAP_INVEPT_SINGLE |
          M.EPT_CAP_INVEPT_ALL,
        // Every INVVPID type, as KVM (VMX_VPID_EXTENT_SUPPORTED_MASK): each drops VPID02's entries.
        M.VPID_CAP_INVVPID |
          M.VPID_CAP_INVVPID_ADDRESS |
          M.VPID_CAP_INVVPID_SINGLE |
          M.VPID_CAP_INVVPID_ALL |
          M.VPID_CAP_INVVPID_SINGLE_KEEP_GLOBALS,
      );
    case MSR.MSR_IA32_VMX_VMFUNC:
      // Exists only when "enable VM functions" may be 1 (SDM A.11): otherwise #GP, as the CPU.
      return (S.proc2 & C.CPU2_ENABLE_VMFUNC) !== 0 ? pair(out, 0, 0) : false;
    default:
      return false;
  }
}
