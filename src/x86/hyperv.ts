/**
 * Hyper-V's interface for nested virtualization, as the Hyper-V TLFS v6.0b specifies it
 * (chapters "Feature and Interface Discovery", "Virtual Processor Assist Page", "Nested
 * Virtualization": enlightened VMCS, enlightened MSR bitmap, nested flushes); numbers as in
 * Linux's arch/x86/include/asm/hyperv-tlfs.h, which transcribes the TLFS. Architectural facts
 * only: CPUID leaves and bits, MSR indices, the VP assist page and the enlightened VMCS layout.
 */
// ---- CPUID leaves (TLFS 2.4) ----
export const HV_CPUID_VENDOR_AND_MAX = 0x40000000;
export const HV_CPUID_INTERFACE = 0x40000001;
export const HV_CPUID_VERSION = 0x40000002;
export const HV_CPUID_FEATURES = 0x40000003;
export const HV_CPUID_ENLIGHTENMENT_INFO = 0x40000004;
export const HV_CPUID_IMPLEMENT_LIMITS = 0x40000005;
export const HV_CPUID_NESTED_FEATURES = 0x4000000a;
/** "Hv#1": the interface signature of 0x40000001 EAX. */
export const HV_INTERFACE_SIGNATURE = 0x31237648;

/** 0x40000003 EAX, partition privileges: AccessIntrCtrlRegs (EOI/ICR/TPR and the VP assist page MSR, as KVM's hv_check_msr_access reads it). */
export const HV_MSR_APIC_ACCESS_AVAILABLE = 1 << 4;
/** 0x40000003 EAX: AccessHypercallMsrs (guest OS ID and hypercall MSRs). */
export const HV_MSR_HYPERCALL_AVAILABLE = 1 << 5;
/** 0x40000003 EAX: AccessVpIndex. */
export const HV_MSR_VP_INDEX_AVAILABLE = 1 << 6;

/** 0x40000004 EAX, recommendations: remote TLB flush by hypercall (KVM checks it before serving the flush calls). */
export const HV_REMOTE_TLB_FLUSH_RECOMMENDED = 1 << 2;
/** 0x40000004 EAX: use the _EX hypercalls with sparse processor sets (needed for the flush _EX calls). */
export const HV_EX_PROCESSOR_MASKS_RECOMMENDED = 1 << 11;
/** 0x40000004 EAX, recommendations: use the enlightened VMCS. */
export const HV_ENLIGHTENED_VMCS_RECOMMENDED = 1 << 14;

/** 0x4000000A EAX: enlightened VMCS versions (bits 7:0 low, 15:8 high), direct flush, nested flushes, MSR bitmap. */
export const HV_NESTED_DIRECT_FLUSH = 1 << 17;
export const HV_NESTED_GUEST_MAPPING_FLUSH = 1 << 18;
export const HV_NESTED_MSR_BITMAP = 1 << 19;

// ---- MSRs (TLFS appendix "Hypervisor MSRs") ----
export const HV_MSR_GUEST_OS_ID = 0x40000000;
export const HV_MSR_HYPERCALL = 0x40000001;
export const HV_MSR_VP_INDEX = 0x40000002;
export const HV_MSR_VP_ASSIST_PAGE = 0x40000073;
/** VP assist page MSR: bit 0 enable, bits 63:12 the page's GPA. */
export const HV_VP_ASSIST_PAGE_ENABLE = 1;

// ---- VP assist page (TLFS "Virtual Processor Assist Page", HV_VP_ASSIST_PAGE) ----
/** u32 nested_control.features: bit 0 directhypercall (L2's flush hypercalls go to L0, not to L1). */
export const HV_VP_ASSIST_NESTED_FEATURES = 32;
export const HV_NESTED_DIRECTHYPERCALL = 1 << 0;
/** u32 enlighten_vmentry: non-zero = VMLAUNCH/VMRESUME use the enlightened VMCS below. */
export const HV_VP_ASSIST_ENLIGHTEN_VMENTRY = 40;
/** u64 current_nested_vmcs: GPA of the enlightened VMCS in use. */
export const HV_VP_ASSIST_CURRENT_NESTED_VMCS = 48;

// ---- Enlightened VMCS (TLFS "Enlightened VMCS", HV_VMX_ENLIGHTENED_VMCS) ----
/** The one version the TLFS defines (KVM's KVM_EVMCS_VERSION). */
export const EVMCS_VERSION = 1;
export const EVMCS_REVISION_ID = 0;
export const EVMCS_HV_CLEAN_FIELDS = 824;
/** hv_enlightenments_control: bit 0 nested_flush_hypercall, bit 1 msr_bitmap. */
export const EVMCS_HV_ENLIGHTENMENTS_CONTROL = 836;
export const EVMCS_ENLIGHTEN_NESTED_FLUSH = 1 << 0;
export const EVMCS_ENLIGHTEN_MSR_BITMAP = 1 << 1;
/** u32 hv_vp_id, u64 hv_vm_id, u64 partition_assist_page (after padding32_2 at +844). */
export const EVMCS_HV_VP_ID = 840;
export const EVMCS_HV_VM_ID = 848;
export const EVMCS_PARTITION_ASSIST_PAGE = 856;
/** Partition assist page: u32 tlb_lock_count; non-zero asks for a synthetic exit after an L2 flush. */
export const HV_PA_TLB_LOCK_COUNT = 0;
/**
 * The synthetic VM exit to L1 after L0 handled L2's flush hypercall while tlb_lock_count is
 * non-zero (TLFS "Nested Virtualization", synthetic VM exit): bit 28 paired with a basic reason
 * (0x31) hardware never gives it with.
 */
export const HV_VMX_SYNTHETIC_EXIT_REASON_TRAP_AFTER_FLUSH = 0x10000031;
/** Bit 28 of the exit reason: a Hyper-V synthetic exit (never set by hardware on these reasons). */
export const HV_VMX_SYNTHETIC_EXIT = 1 << 28;

// ---- Hypercalls (TLFS "Hypercall Interface": x64 RCX = input value, RDX = input GPA, R8 = output GPA, RAX = result) ----
/** Input value, low dword: call code 15:0, fast 16, variable header size 26:17 (8-byte units), 31:27 reserved. */
export const HV_HYPERCALL_FAST = 1 << 16;
export const HV_HYPERCALL_VARHEAD_SHIFT = 17;
export const HV_HYPERCALL_VARHEAD_BITS = 0x3ff;
export const HV_HYPERCALL_RSVD_LO = 0xf8000000;
/** Input value, high dword (bits 63:32): rep count 43:32, 47:44 reserved, rep start index 59:48, 63:60 reserved. */
export const HV_HYPERCALL_REP_BITS = 0xfff;
export const HV_HYPERCALL_REP_START_SHIFT = 16;
export const HV_HYPERCALL_RSVD_HI = 0xf000f000;
/** Call codes of the flushes (the result value: status 15:0, reps completed 43:32). */
export const HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE = 0x0002;
export const HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST = 0x0003;
export const HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX = 0x0013;
export const HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX = 0x0014;
/** L1's flushes of its L2's guest-physical mappings: defined by the TLFS, not served by KVM as L0. */
export const HVCALL_FLUSH_GUEST_PHYSICAL_ADDRESS_SPACE = 0x00af;
export const HVCALL_FLUSH_GUEST_PHYSICAL_ADDRESS_LIST = 0x00b0;
/** HV_STATUS_* result codes. */
export const HV_STATUS_SUCCESS = 0;
export const HV_STATUS_INVALID_HYPERCALL_CODE = 2;
export const HV_STATUS_INVALID_HYPERCALL_INPUT = 3;
export const HV_STATUS_ACCESS_DENIED = 6;
/** HV_TLB_FLUSH.flags (hv_tlb_flush: u64 address_space, u64 flags, u64 processor_mask, u64 gva_list[]). */
export const HV_FLUSH_ALL_PROCESSORS = 1 << 0;
/** hv_vpset.format of the _EX calls (hv_tlb_flush_ex: address_space, flags, {format, valid_bank_mask, banks[]}). */
export const HV_GENERIC_SET_SPARSE_4K = 0;
export const HV_GENERIC_SET_ALL = 1;

/** Clean-field groups (HV_VMX_ENLIGHTENED_CLEAN_FIELD_*): a set bit tells L0 the group is unchanged. */
export const CLEAN_NONE = 0;
export const CLEAN_IO_BITMAP = 1 << 0;
export const CLEAN_MSR_BITMAP = 1 << 1;
export const CLEAN_CONTROL_GRP2 = 1 << 2;
export const CLEAN_CONTROL_GRP1 = 1 << 3;
export const CLEAN_CONTROL_PROC = 1 << 4;
export const CLEAN_CONTROL_EVENT = 1 << 5;
export const CLEAN_CONTROL_ENTRY = 1 << 6;
export const CLEAN_CONTROL_EXCPN = 1 << 7;
export const CLEAN_CRDR = 1 << 8;
export const CLEAN_CONTROL_XLAT = 1 << 9;
export const CLEAN_GUEST_BASIC = 1 << 10;
export const CLEAN_GUEST_GRP1 = 1 << 11;
export const CLEAN_GUEST_GRP2 = 1 << 12;
export const CLEAN_HOST_POINTER = 1 << 13;
export const CLEAN_HOST_GRP1 = 1 << 14;
export const CLEAN_ENLIGHTENMENTS_CONTROL = 1 << 15;
/** Fields the TLFS gives no group (KVM's table marks them ALL): clean only when every bit is. */
export const CLEAN_ALL = 0xffff;
