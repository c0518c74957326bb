/**
 * VMX architectural numbers (SDM vol. 3, appendix C "VMX basic exit reasons" and appendix B
 * "VMCS field encodings"), plus nestlab's own sub-operation numbers for the decoded VMX
 * instructions (Insn.op), so a VMX implementation can dispatch without re-decoding.
 */

/** Insn.op of each VMX-related instruction row (nestlab numbering; 0 is never used). */
export const VMXI_VMCALL = 1;
export const VMXI_VMLAUNCH = 2;
export const VMXI_VMRESUME = 3;
export const VMXI_VMXOFF = 4;
export const VMXI_VMFUNC = 5;
export const VMXI_VMPTRLD = 6;
export const VMXI_VMCLEAR = 7;
export const VMXI_VMXON = 8;
export const VMXI_VMPTRST = 9;
export const VMXI_VMREAD = 10;
export const VMXI_VMWRITE = 11;
export const VMXI_INVEPT = 12;
export const VMXI_INVVPID = 13;

/** Basic exit reasons (SDM vol. 3, table C-1). */
export const EXIT_EXCEPTION_NMI = 0;
export const EXIT_EXTERNAL_INTERRUPT = 1;
export const EXIT_TRIPLE_FAULT = 2;
export const EXIT_INIT = 3;
export const EXIT_SIPI = 4;
export const EXIT_IO_SMI = 5;
export const EXIT_OTHER_SMI = 6;
export const EXIT_INTERRUPT_WINDOW = 7;
export const EXIT_NMI_WINDOW = 8;
export const EXIT_TASK_SWITCH = 9;
export const EXIT_CPUID = 10;
export const EXIT_GETSEC = 11;
export const EXIT_HLT = 12;
export const EXIT_INVD = 13;
export const EXIT_INVLPG = 14;
export const EXIT_RDPMC = 15;
export const EXIT_RDTSC = 16;
export const EXIT_RSM = 17;
export const EXIT_VMCALL = 18;
export const EXIT_VMCLEAR = 19;
export const EXIT_VMLAUNCH = 20;
export const EXIT_VMPTRLD = 21;
export const EXIT_VMPTRST = 22;
export const EXIT_VMREAD = 23;
export const EXIT_VMRESUME = 24;
export const EXIT_VMWRITE = 25;
export const EXIT_VMXOFF = 26;
export const EXIT_VMXON = 27;
export const EXIT_CR_ACCESS = 28;
export const EXIT_DR_ACCESS = 29;
export const EXIT_IO_INSTRUCTION = 30;
export const EXIT_RDMSR = 31;
export const EXIT_WRMSR = 32;
export const EXIT_INVALID_GUEST_STATE = 33;
export const EXIT_MSR_LOADING = 34;
export const EXIT_MWAIT = 36;
export const EXIT_MTF = 37;
export const EXIT_MONITOR = 39;
export const EXIT_PAUSE = 40;
export const EXIT_MACHINE_CHECK = 41;
export const EXIT_TPR_BELOW_THRESHOLD = 43;
export const EXIT_APIC_ACCESS = 44;
export const EXIT_VIRTUALIZED_EOI = 45;
export const EXIT_GDTR_IDTR = 46;
export const EXIT_LDTR_TR = 47;
export const EXIT_EPT_VIOLATION = 48;
export const EXIT_EPT_MISCONFIG = 49;
export const EXIT_INVEPT = 50;
export const EXIT_RDTSCP = 51;
export const EXIT_PREEMPTION_TIMER = 52;
export const EXIT_INVVPID = 53;
export const EXIT_WBINVD = 54;
export const EXIT_XSETBV = 55;
export const EXIT_APIC_WRITE = 56;
export const EXIT_RDRAND = 57;
export const EXIT_INVPCID = 58;
export const EXIT_VMFUNC = 59;
export const EXIT_ENCLS = 60;
export const EXIT_RDSEED = 61;
export const EXIT_PML_FULL = 62;
export const EXIT_XSAVES = 63;
export const EXIT_XRSTORS = 64;

/** Bit 31 of the exit reason: VM-entry failure. */
export const EXIT_REASON_ENTRY_FAILURE = 1 << 31;

/** VM-instruction error numbers (SDM vol. 3, 31.4, table 31-1), stored in VMCS_VM_INSTRUCTION_ERROR. */
export const VMXERR_VMCALL_IN_ROOT = 1;
export const VMXERR_VMCLEAR_INVALID_ADDR = 2;
export const VMXERR_VMCLEAR_VMXON_PTR = 3;
export const VMXERR_VMLAUNCH_NONCLEAR = 4;
export const VMXERR_VMRESUME_NONLAUNCHED = 5;
export const VMXERR_VMRESUME_AFTER_VMXOFF = 6;
export const VMXERR_ENTRY_INVALID_CONTROLS = 7;
export const VMXERR_ENTRY_INVALID_HOST_STATE = 8;
export const VMXERR_VMPTRLD_INVALID_ADDR = 9;
export const VMXERR_VMPTRLD_VMXON_PTR = 10;
export const VMXERR_VMPTRLD_BAD_REVISION = 11;
export const VMXERR_UNSUPPORTED_FIELD = 12;
export const VMXERR_VMWRITE_READONLY = 13;
export const VMXERR_VMXON_IN_ROOT = 15;
export const VMXERR_ENTRY_INVALID_EXECUTIVE_VMCS = 16;
export const VMXERR_ENTRY_NONLAUNCHED_EXECUTIVE_VMCS = 17;
export const VMXERR_ENTRY_EXECUTIVE_NOT_VMXON = 18;
export const VMXERR_VMCALL_NONCLEAR = 19;
export const VMXERR_VMCALL_INVALID_EXIT_CONTROLS = 20;
export const VMXERR_VMCALL_BAD_MSEG_REVISION = 22;
export const VMXERR_VMXOFF_DUAL_MONITOR = 23;
export const VMXERR_VMCALL_INVALID_SMM_FEATURES = 24;
export const VMXERR_ENTRY_INVALID_EXECUTIVE_CONTROLS = 25;
export const VMXERR_ENTRY_MOV_SS_BLOCKING = 26;
export const VMXERR_INVALID_OPERAND = 28;

/** The invalid VMCS pointer (VMPTRST stores it when no VMCS is current; the VMCS link pointer's "none"). */
export const VMCS_PTR_INVALID_LO = -1;
export const VMCS_PTR_INVALID_HI = -1;

/**
 * VMCS field encodings (SDM vol. 3, appendix B). Bits 14:13 width (0 16-bit, 1 64-bit,
 * 2 32-bit, 3 natural), 11:10 type (0 control, 1 read-only data, 2 guest, 3 host), bit 0 "high".
 */
export const VMCS_WIDTH_16 = 0;
export const VMCS_WIDTH_64 = 1;
export const VMCS_WIDTH_32 = 2;
export const VMCS_WIDTH_NATURAL = 3;
/** Width of a field from its encoding. */
export function vmcsFieldWidth(enc: number): number {
  return (enc >>> 13) & 3;
}
/** Type of a field (0 control, 1 read-only data, 2 guest state, 3 host state). */
export function vmcsFieldType(enc: number): number {
  return (enc >>> 10) & 3;
}
/**
 * The full-access encoding of the field `enc` names, or -1 when no field can have it: bits 31:15
 * set (24.11.2: encodings are 15 bits; VMREAD/VMWRITE of such an operand is "unsupported"), or
 * the high access type (bit 0) of a field that is not 64-bit. Which fields exist is each VMCS
 * implementation's own list (the processor's, L0's VMCS12).
 */
export function vmcsFieldBase(enc: number): number {
  if ((enc & ~0x7fff) !== 0) return -1;
  if ((enc & 1) === 0) return enc;
  return vmcsFieldWidth(enc) === VMCS_WIDTH_64 ? enc & ~1 : -1;
}
/**
 * Whether VMWRITE refuses field `enc` with VMfailValid(13): the VM-exit information fields (type
 * 1), on a processor without "VMWRITE to any supported field" (IA32_VMX_MISC bit 29; vol. 2
 * "VMWRITE"), which neither nestlab's VMX nor L0's nested VMX offers.
 */
export function vmcsFieldReadOnly(enc: number): boolean {
  return vmcsFieldType(enc) === 1;
}

// 16-bit fields.
export const VMCS_VPID = 0x0000;
export const VMCS_GUEST_ES_SELECTOR = 0x0800;
export const VMCS_GUEST_CS_SELECTOR = 0x0802;
export const VMCS_GUEST_SS_SELECTOR = 0x0804;
export const VMCS_GUEST_DS_SELECTOR = 0x0806;
export const VMCS_GUEST_FS_SELECTOR = 0x0808;
export const VMCS_GUEST_GS_SELECTOR = 0x080a;
export const VMCS_GUEST_LDTR_SELECTOR = 0x080c;
export const VMCS_GUEST_TR_SELECTOR = 0x080e;
export const VMCS_HOST_ES_SELECTOR = 0x0c00;
export const VMCS_HOST_CS_SELECTOR = 0x0c02;
export const VMCS_HOST_SS_SELECTOR = 0x0c04;
export const VMCS_HOST_DS_SELECTOR = 0x0c06;
export const VMCS_HOST_FS_SELECTOR = 0x0c08;
export const VMCS_HOST_GS_SELECTOR = 0x0c0a;
export const VMCS_HOST_TR_SELECTOR = 0x0c0c;
// 64-bit fields.
export const VMCS_IO_BITMAP_A = 0x2000;
export const VMCS_IO_BITMAP_B = 0x2002;
export const VMCS_MSR_BITMAP = 0x2004;
export const VMCS_TSC_OFFSET = 0x2010;
export const VMCS_VMREAD_BITMAP = 0x2026;
export const VMCS_VMWRITE_BITMAP = 0x2028;
export const VMCS_EPT_POINTER = 0x201a;
export const VMCS_GUEST_PHYSICAL_ADDRESS = 0x2400;
export const VMCS_LINK_POINTER = 0x2800;
export const VMCS_GUEST_IA32_PAT = 0x2804;
export const VMCS_GUEST_IA32_EFER = 0x2806;
export const VMCS_HOST_IA32_PAT = 0x2c00;
export const VMCS_HOST_IA32_EFER = 0x2c02;
// 32-bit fields.
export const VMCS_PIN_BASED_CONTROLS = 0x4000;
export const VMCS_PROC_BASED_CONTROLS = 0x4002;
export const VMCS_EXCEPTION_BITMAP = 0x4004;
export const VMCS_PF_ERROR_CODE_MASK = 0x4006;
export const VMCS_PF_ERROR_CODE_MATCH = 0x4008;
export const VMCS_CR3_TARGET_COUNT = 0x400a;
export const VMCS_EXIT_CONTROLS = 0x400c;
export const VMCS_EXIT_MSR_STORE_COUNT = 0x400e;
export const VMCS_EXIT_MSR_LOAD_COUNT = 0x4010;
export const VMCS_ENTRY_CONTROLS = 0x4012;
export const VMCS_ENTRY_MSR_LOAD_COUNT = 0x4014;
export const VMCS_ENTRY_INTR_INFO = 0x4016;
export const VMCS_ENTRY_EXCEPTION_ERROR_CODE = 0x4018;
export const VMCS_ENTRY_INSTRUCTION_LENGTH = 0x401a;
export const VMCS_TPR_THRESHOLD = 0x401c;
export const VMCS_PROC_BASED_CONTROLS2 = 0x401e;
export const VMCS_VM_INSTRUCTION_ERROR = 0x4400;
export const VMCS_EXIT_REASON = 0x4402;
export const VMCS_EXIT_INTR_INFO = 0x4404;
export const VMCS_EXIT_INTR_ERROR_CODE = 0x4406;
export const VMCS_IDT_VECTORING_INFO = 0x4408;
export const VMCS_IDT_VECTORING_ERROR_CODE = 0x440a;
export const VMCS_EXIT_INSTRUCTION_LENGTH = 0x440c;
export const VMCS_EXIT_INSTRUCTION_INFO = 0x440e;
export const VMCS_GUEST_ES_LIMIT = 0x4800;
export const VMCS_GUEST_CS_LIMIT = 0x4802;
export const VMCS_GUEST_SS_LIMIT = 0x4804;
export const VMCS_GUEST_DS_LIMIT = 0x4806;
export const VMCS_GUEST_FS_LIMIT = 0x4808;
export const VMCS_GUEST_GS_LIMIT = 0x480a;
export const VMCS_GUEST_LDTR_LIMIT = 0x480c;
export const VMCS_GUEST_TR_LIMIT = 0x480e;
export const VMCS_GUEST_GDTR_LIMIT = 0x4810;
export const VMCS_GUEST_IDTR_LIMIT = 0x4812;
export const VMCS_GUEST_ES_AR = 0x4814;
export const VMCS_GUEST_CS_AR = 0x4816;
export const VMCS_GUEST_SS_AR = 0x4818;
export const VMCS_GUEST_DS_AR = 0x481a;
export const VMCS_GUEST_FS_AR = 0x481c;
export const VMCS_GUEST_GS_AR = 0x481e;
export const VMCS_GUEST_LDTR_AR = 0x4820;
export const VMCS_GUEST_TR_AR = 0x4822;
export const VMCS_GUEST_INTERRUPTIBILITY = 0x4824;
export const VMCS_GUEST_ACTIVITY_STATE = 0x4826;
export const VMCS_GUEST_SYSENTER_CS = 0x482a;
export const VMCS_PREEMPTION_TIMER_VALUE = 0x482e;
export const VMCS_HOST_SYSENTER_CS = 0x4c00;
// Natural-width fields.
export const VMCS_CR0_GUEST_HOST_MASK = 0x6000;
export const VMCS_CR4_GUEST_HOST_MASK = 0x6002;
export const VMCS_CR0_READ_SHADOW = 0x6004;
export const VMCS_CR4_READ_SHADOW = 0x6006;
export const VMCS_EXIT_QUALIFICATION = 0x6400;
export const VMCS_GUEST_LINEAR_ADDRESS = 0x640a;
export const VMCS_GUEST_CR0 = 0x6800;
export const VMCS_GUEST_CR3 = 0x6802;
export const VMCS_GUEST_CR4 = 0x6804;
export const VMCS_GUEST_ES_BASE = 0x6806;
export const VMCS_GUEST_CS_BASE = 0x6808;
export const VMCS_GUEST_SS_BASE = 0x680a;
export const VMCS_GUEST_DS_BASE = 0x680c;
export const VMCS_GUEST_FS_BASE = 0x680e;
export const VMCS_GUEST_GS_BASE = 0x6810;
export const VMCS_GUEST_LDTR_BASE = 0x6812;
export const VMCS_GUEST_TR_BASE = 0x6814;
export const VMCS_GUEST_GDTR_BASE = 0x6816;
export const VMCS_GUEST_IDTR_BASE = 0x6818;
export const VMCS_GUEST_DR7 = 0x681a;
export const VMCS_GUEST_RSP = 0x681c;
export const VMCS_GUEST_RIP = 0x681e;
export const VMCS_GUEST_RFLAGS = 0x6820;
export const VMCS_GUEST_PENDING_DBG_EXCEPTIONS = 0x6822;
export const VMCS_GUEST_SYSENTER_ESP = 0x6824;
export const VMCS_GUEST_SYSENTER_EIP = 0x6826;
export const VMCS_HOST_CR0 = 0x6c00;
export const VMCS_HOST_CR3 = 0x6c02;
export const VMCS_HOST_CR4 = 0x6c04;
export const VMCS_HOST_FS_BASE = 0x6c06;
export const VMCS_HOST_GS_BASE = 0x6c08;
export const VMCS_HOST_TR_BASE = 0x6c0a;
export const VMCS_HOST_GDTR_BASE = 0x6c0c;
export const VMCS_HOST_IDTR_BASE = 0x6c0e;
export const VMCS_HOST_SYSENTER_ESP = 0x6c10;
export const VMCS_HOST_SYSENTER_EIP = 0x6c12;
export const VMCS_HOST_RSP = 0x6c14;
export const VMCS_HOST_RIP = 0x6c16;

/**
 * Guest segment-register fields in ES, CS, SS, DS, FS, GS order (the SDM's segment-register
 * numbering): [selector, base, limit, access rights] each. The one table every VMCS user reads.
 */
export const VMCS_GUEST_SEGMENT_FIELDS: readonly (readonly [number, number, number, number])[] = [
  [VMCS_GUEST_ES_SELECTOR, VMCS_GUEST_ES_BASE, VMCS_GUEST_ES_LIMIT, VMCS_GUEST_ES_AR],
  [VMCS_GUEST_CS_SELECTOR, VMCS_GUEST_CS_BASE, VMCS_GUEST_CS_LIMIT, VMCS_GUEST_CS_AR],
  [VMCS_GUEST_SS_SELECTOR, VMCS_GUEST_SS_BASE, VMCS_GUEST_SS_LIMIT, VMCS_GUEST_SS_AR],
  [VMCS_GUEST_DS_SELECTOR, VMCS_GUEST_DS_BASE, VMCS_GUEST_DS_LIMIT, VMCS_GUEST_DS_AR],
  [VMCS_GUEST_FS_SELECTOR, VMCS_GUEST_FS_BASE, VMCS_GUEST_FS_LIMIT, VMCS_GUEST_FS_AR],
  [VMCS_GUEST_GS_SELECTOR, VMCS_GUEST_GS_BASE, VMCS_GUEST_GS_LIMIT, VMCS_GUEST_GS_AR],
];
