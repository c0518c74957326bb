/** VMX capability MSRs: the indices are in msr.ts; their bit layouts here (SDM vol. 3D, appendix A). */
/** First and last of the range. */
export const MSR_IA32_VMX_FIRST = 0x480;
export const MSR_IA32_VMX_LAST = 0x491;

/** Default1 control bits (appendix A.2–A.5): reserved bits that read as 1 without TRUE MSRs. */
export const PIN_DEFAULT1 = 0x00000016;
export const PROC_DEFAULT1 = 0x0401e172;
export const EXIT_DEFAULT1 = 0x00036dff;
export const ENTRY_DEFAULT1 = 0x000011ff;

/** IA32_VMX_BASIC (A.1): bits 44:32 region size, 53:50 memory type, 54 INS/OUTS info, 55 TRUE MSRs. */
export const VMX_BASIC_MEMTYPE_WB = 6;
export const VMX_BASIC_INOUT = 1 << (54 - 32);
export const VMX_BASIC_TRUE_CTLS = 1 << (55 - 32);

/** IA32_VMX_MISC (A.6): bit 5 EFER.LMA stored on exit, bit 6 HLT activity state. */
export const VMX_MISC_SAVE_EFER_LMA = 1 << 5;
export const VMX_MISC_ACTIVITY_HLT = 1 << 6;

/** IA32_VMX_EPT_VPID_CAP (A.10). Low half: EPT; high half (bit − 32): VPID. */
export const EPT_CAP_PAGE_WALK_4 = 1 << 6;
export const EPT_CAP_WB = 1 << 14;
export const EPT_CAP_2MB = 1 << 16;
export const EPT_CAP_INVEPT = 1 << 20;
export const EPT_CAP_INVEPT_SINGLE = 1 << 25;
export const EPT_CAP_INVEPT_ALL = 1 << 26;
export const VPID_CAP_INVVPID = 1 << (32 - 32);
export const VPID_CAP_INVVPID_ADDRESS = 1 << (40 - 32);
export const VPID_CAP_INVVPID_SINGLE = 1 << (41 - 32);
export const VPID_CAP_INVVPID_ALL = 1 << (42 - 32);
export const VPID_CAP_INVVPID_SINGLE_KEEP_GLOBALS = 1 << (43 - 32);
