/**
 * VM-execution, VM-exit and VM-entry control bits and related formats (SDM vol. 3, 24.6–24.9,
 * 27.2, and appendix A's capability MSRs).
 */
// Pin-based VM-execution controls (24.6.1).
export const PIN_EXT_INTR_EXITING = 1 << 0;
export const PIN_NMI_EXITING = 1 << 3;
export const PIN_VIRTUAL_NMIS = 1 << 5;
export const PIN_PREEMPTION_TIMER = 1 << 6;
/**
 * The VMX-preemption timer counts down once every 2^N TSC cycles, N = IA32_VMX_MISC[4:0]
 * (SDM vol. 3, 25.5.1); nestlab's CPU reports N = 5.
 */
export const PREEMPTION_TIMER_RATE_SHIFT = 5;
export const PIN_POSTED_INTERRUPTS = 1 << 7;
// Primary processor-based controls (24.6.2, table 24-6).
export const CPU_INTR_WINDOW_EXITING = 1 << 2;
export const CPU_TSC_OFFSETTING = 1 << 3;
export const CPU_HLT_EXITING = 1 << 7;
export const CPU_INVLPG_EXITING = 1 << 9;
export const CPU_MWAIT_EXITING = 1 << 10;
export const CPU_RDPMC_EXITING = 1 << 11;
export const CPU_RDTSC_EXITING = 1 << 12;
export const CPU_CR3_LOAD_EXITING = 1 << 15;
export const CPU_CR3_STORE_EXITING = 1 << 16;
export const CPU_CR8_LOAD_EXITING = 1 << 19;
export const CPU_CR8_STORE_EXITING = 1 << 20;
export const CPU_TPR_SHADOW = 1 << 21;
export const CPU_NMI_WINDOW_EXITING = 1 << 22;
export const CPU_MOV_DR_EXITING = 1 << 23;
export const CPU_UNCOND_IO_EXITING = 1 << 24;
export const CPU_USE_IO_BITMAPS = 1 << 25;
export const CPU_MONITOR_TRAP_FLAG = 1 << 27;
export const CPU_USE_MSR_BITMAPS = 1 << 28;
export const CPU_MONITOR_EXITING = 1 << 29;
export const CPU_PAUSE_EXITING = 1 << 30;
export const CPU_SECONDARY_CONTROLS = 1 << 31;
// Secondary processor-based controls (24.6.2, table 24-7).
export const CPU2_VIRTUALIZE_APIC_ACCESSES = 1 << 0;
export const CPU2_ENABLE_EPT = 1 << 1;
export const CPU2_DESCRIPTOR_TABLE_EXITING = 1 << 2;
export const CPU2_ENABLE_RDTSCP = 1 << 3;
export const CPU2_VIRTUALIZE_X2APIC = 1 << 4;
export const CPU2_ENABLE_VPID = 1 << 5;
export const CPU2_WBINVD_EXITING = 1 << 6;
export const CPU2_UNRESTRICTED_GUEST = 1 << 7;
export const CPU2_APIC_REGISTER_VIRT = 1 << 8;
export const CPU2_VIRTUAL_INTR_DELIVERY = 1 << 9;
export const CPU2_PAUSE_LOOP_EXITING = 1 << 10;
export const CPU2_ENABLE_INVPCID = 1 << 12;
export const CPU2_ENABLE_VMFUNC = 1 << 13;
export const CPU2_VMCS_SHADOWING = 1 << 14;
// VM-exit controls (24.7.1).
export const EXIT_SAVE_DEBUG_CONTROLS = 1 << 2;
export const EXIT_HOST_ADDR_SPACE_SIZE = 1 << 9;
export const EXIT_ACK_INTR_ON_EXIT = 1 << 15;
export const EXIT_SAVE_IA32_PAT = 1 << 18;
export const EXIT_LOAD_IA32_PAT = 1 << 19;
export const EXIT_SAVE_IA32_EFER = 1 << 20;
export const EXIT_LOAD_IA32_EFER = 1 << 21;
export const EXIT_SAVE_PREEMPTION_TIMER = 1 << 22;
// VM-entry controls (24.8.1).
export const ENTRY_LOAD_DEBUG_CONTROLS = 1 << 2;
export const ENTRY_IA32E_MODE_GUEST = 1 << 9;
export const ENTRY_LOAD_IA32_PAT = 1 << 14;
export const ENTRY_LOAD_IA32_EFER = 1 << 15;

// VM-entry / VM-exit interruption-information format (24.8.3, 24.9.2).
export const INTR_INFO_VALID = 1 << 31;
export const INTR_INFO_VECTOR_MASK = 0xff;
/** Interruption type, bits 10:8 (one of the INTR_TYPE_ values). */
export const INTR_INFO_TYPE_MASK = 7 << 8;
export const INTR_INFO_DELIVER_CODE = 1 << 11;
export const INTR_TYPE_EXT_INTR = 0 << 8;
export const INTR_TYPE_NMI = 2 << 8;
export const INTR_TYPE_HW_EXCEPTION = 3 << 8;
export const INTR_TYPE_SW_INTR = 4 << 8;
export const INTR_TYPE_PRIV_SW_EXCEPTION = 5 << 8;
export const INTR_TYPE_SW_EXCEPTION = 6 << 8;
/**
 * VM-exit interruption information bit 12, "NMI unblocking due to IRET" (27.2.2): the exit is a
 * fault of an IRET that had already ended (virtual-)NMI blocking. Reserved in the entry field.
 */
export const INTR_INFO_NMI_UNBLOCKED_BY_IRET = 1 << 12;

// Guest interruptibility state (24.4.2).
export const INTERRUPTIBILITY_STI = 1 << 0;
export const INTERRUPTIBILITY_MOV_SS = 1 << 1;
export const INTERRUPTIBILITY_NMI = 1 << 3;

/**
 * 26.3.1.5: with virtual NMIs, a VM entry that injects an NMI needs blocking by NMI (bit 3) clear
 * in the guest interruptibility state (without virtual NMIs there is no such rule).
 */
export function nmiInjectionBlocked(pin: number, entryIntrInfo: number, interruptibility: number): boolean {
  return (
    (pin & PIN_VIRTUAL_NMIS) !== 0 &&
    (entryIntrInfo & INTR_INFO_VALID) !== 0 &&
    (entryIntrInfo & INTR_INFO_TYPE_MASK) === INTR_TYPE_NMI &&
    (interruptibility & INTERRUPTIBILITY_NMI) !== 0
  );
}

// Guest pending debug exceptions (24.4.2, table 24-4): B0-B3, enabled breakpoint, BS.
export const PENDING_DBG_B0_B3 = 0xf;
export const PENDING_DBG_BS = 1 << 14;

// Activity state.
export const ACTIVITY_ACTIVE = 0;
export const ACTIVITY_HLT = 1;

// Exit qualification for control-register accesses (27.2.1, table 27-3).
export const CR_ACCESS_TYPE_MOV_TO_CR = 0;
export const CR_ACCESS_TYPE_MOV_FROM_CR = 1;
export const CR_ACCESS_TYPE_CLTS = 2;
export const CR_ACCESS_TYPE_LMSW = 3;

// Exit qualification for I/O instructions (table 27-5): size-1 in bits 2:0, direction bit 3
// (1 = IN), string bit 4, REP bit 5, operand encoding bit 6 (1 = immediate), port in 31:16.
export const IO_QUAL_IN = 1 << 3;
export const IO_QUAL_STRING = 1 << 4;
export const IO_QUAL_REP = 1 << 5;
export const IO_QUAL_IMM = 1 << 6;

// EPT-violation exit qualification (table 27-7).
export const EPT_QUAL_READ = 1 << 0;
export const EPT_QUAL_WRITE = 1 << 1;
export const EPT_QUAL_FETCH = 1 << 2;
export const EPT_QUAL_READABLE = 1 << 3;
export const EPT_QUAL_WRITABLE = 1 << 4;
export const EPT_QUAL_EXECUTABLE = 1 << 5;
export const EPT_QUAL_GLA_VALID = 1 << 7;
export const EPT_QUAL_TRANSLATION = 1 << 8;
/** Bit 12, "NMI unblocking due to IRET": the violation is an IRET's that had ended (virtual-)NMI blocking. */
export const EPT_QUAL_NMI_UNBLOCKED_BY_IRET = 1 << 12;

// EPT entry bits (28.3.2) and EPTP (24.6.11).
export const EPT_R = 1 << 0;
export const EPT_W = 1 << 1;
export const EPT_X = 1 << 2;
export const EPT_MEMTYPE_WB = 6 << 3;
export const EPT_IGNORE_PAT = 1 << 6;
export const EPT_LARGE = 1 << 7;
export const EPT_ACCESSED = 1 << 8;
export const EPT_DIRTY = 1 << 9;
export const EPTP_WB = 6;
export const EPTP_WALK_4 = 3 << 3;
export const EPTP_WALK_5 = 4 << 3;
export const EPTP_AD_ENABLE = 1 << 6;

/** IA32_VMX_BASIC revision identifier nestlab reports. */
export const VMCS_REVISION_ID = 0x4e4c;

/**
 * "Default1" control bits (SDM vol. 3, appendix A.2–A.5): reserved bits that must be 1 unless the
 * TRUE_ capability MSR says otherwise. Values as in KVM's vmx.h (*_ALWAYSON_WITHOUT_TRUE_MSR).
 */
export const PIN_DEFAULT1 = 0x00000016;
export const PROC_DEFAULT1 = 0x0401e172;
export const EXIT_DEFAULT1 = 0x00036dff;
export const ENTRY_DEFAULT1 = 0x000011ff;

// IA32_FEATURE_CONTROL (MSR 0x3A; SDM vol. 3, 23.7).
export const FEATURE_CONTROL_LOCK = 1 << 0;
export const FEATURE_CONTROL_VMXON_IN_SMX = 1 << 1;
export const FEATURE_CONTROL_VMXON_OUTSIDE_SMX = 1 << 2;

// IA32_VMX_BASIC (appendix A.1), bits of its high half (bit n = bit n-32 of EDX).
export const BASIC_HI_REGION_SIZE_SHIFT = 0; // bits 44:32: VMCS region size in bytes
export const BASIC_HI_MEMTYPE_WB = 6 << 18; // bits 53:50: memory type WB
export const BASIC_HI_INOUT_INFO = 1 << 22; // bit 54: instruction information for INS/OUTS
export const BASIC_HI_TRUE_CTLS = 1 << 23; // bit 55: the TRUE_ capability MSRs exist

// IA32_VMX_MISC (appendix A.6).
export const MISC_STORE_LMA = 1 << 5;
export const MISC_ACTIVITY_HLT = 1 << 6;

// IA32_VMX_EPT_VPID_CAP (appendix A.10): low half (EPT) and high half (VPID, bit n-32).
/** Execute-only EPT translations (bit 0 of IA32_VMX_EPT_VPID_CAP). */
export const EPT_CAP_EXEC_ONLY = 1 << 0;
export const EPT_CAP_WALK_4 = 1 << 6;
export const EPT_CAP_WB = 1 << 14;
export const EPT_CAP_2M = 1 << 16;
export const EPT_CAP_1G = 1 << 17;
export const EPT_CAP_INVEPT = 1 << 20;
export const EPT_CAP_AD = 1 << 21;
export const EPT_CAP_INVEPT_SINGLE = 1 << 25;
export const EPT_CAP_INVEPT_ALL = 1 << 26;
export const VPID_CAP_HI_INVVPID = 1 << 0;
export const VPID_CAP_HI_ADDR = 1 << 8;
export const VPID_CAP_HI_SINGLE = 1 << 9;
export const VPID_CAP_HI_ALL = 1 << 10;
export const VPID_CAP_HI_SINGLE_GLOBALS = 1 << 11;

// INVEPT / INVVPID types (SDM vol. 3, chapter 31).
export const INVEPT_SINGLE = 1;
export const INVEPT_ALL = 2;
export const INVVPID_ADDR = 0;
export const INVVPID_SINGLE = 1;
export const INVVPID_ALL = 2;
export const INVVPID_SINGLE_GLOBALS = 3;

/** Bit 31 of a VMCS region's first dword: the shadow-VMCS indicator (24.2). */
export const VMCS_SHADOW_INDICATOR = 1 << 31;

/**
 * The VM-entry event fields' checks (26.2.1.3) on their values — interruption information `info`
 * and instruction length `len` — for any VMCS holder (the CPU's, or L0's VMCS12).
 */
export function entryEventFieldsValid(info: number, len: number): boolean {
  if ((info & INTR_INFO_VALID) === 0) return true;
  const type = (info >> 8) & 7;
  const vector = info & 0xff;
  if ((info & 0x7ffff000) !== 0 || type === 1 || type === 7) return false; // reserved bits, types
  if (type === 2 && vector !== 2) return false; // NMI is vector 2
  if (type === 3 && vector > 31) return false; // hardware exceptions are 0..31
  const withCode = (info & INTR_INFO_DELIVER_CODE) !== 0;
  const hasCode = type === 3 && (vector === 8 || (vector >= 10 && vector <= 14) || vector === 17);
  if (withCode !== hasCode) return false;
  if (type >= 4 && type <= 6 && (len < 1 || len > 15)) return false;
  return true;
}
