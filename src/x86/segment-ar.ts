/**
 * Segment access rights in the VMCS "AR" layout (SDM vol. 3, 24.4.1, table 24-2), which is also
 * how the CPU model keeps each segment register's rights: descriptor bits 47:40 and 55:52 packed
 * into bits 7:0 and 15:12, and bit 16 "unusable". One place for the CPU and the hypervisors.
 */
/** Type 3:0, S 4, DPL 6:5, P 7, AVL 12, L 13, D/B 14, G 15. */
export const AR_P = 0x80;
export const AR_S = 0x10;
export const AR_DPL = 0x60;
export const AR_CODE = 0x8;
/** Type bit 2 of a code segment: conforming. */
export const AR_CONFORMING = 0x4;
/** Type bit 1: readable (code) / writable (data). */
export const AR_RW = 0x2;
export const AR_L = 0x2000;
export const AR_DB = 0x4000;
export const AR_G = 0x8000;
/** An unusable (null-loaded) segment, as VMX marks it. */
export const AR_UNUSABLE = 0x10000;
