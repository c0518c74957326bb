/** Control-register bits (SDM vol. 3, 2.5). */
export const CR0_PE = 1 << 0,
  CR0_MP = 1 << 1,
  CR0_EM = 1 << 2,
  CR0_TS = 1 << 3,
  CR0_ET = 1 << 4;
export const CR0_NE = 1 << 5,
  CR0_WP = 1 << 16,
  CR0_AM = 1 << 18,
  CR0_NW = 1 << 29,
  CR0_CD = 1 << 30;
export const CR0_PG = 1 << 31;
export const CR4_VME = 1 << 0,
  CR4_PVI = 1 << 1,
  CR4_TSD = 1 << 2,
  CR4_DE = 1 << 3,
  CR4_PSE = 1 << 4;
export const CR4_PAE = 1 << 5,
  CR4_MCE = 1 << 6,
  CR4_PGE = 1 << 7,
  CR4_PCE = 1 << 8;
export const CR4_OSFXSR = 1 << 9,
  CR4_OSXMMEXCPT = 1 << 10,
  CR4_UMIP = 1 << 11,
  CR4_LA57 = 1 << 12;
export const CR4_VMXE = 1 << 13,
  CR4_SMXE = 1 << 14,
  CR4_FSGSBASE = 1 << 16,
  CR4_PCIDE = 1 << 17;
export const CR4_OSXSAVE = 1 << 18,
  CR4_SMEP = 1 << 20,
  CR4_SMAP = 1 << 21,
  CR4_PKE = 1 << 22;
/** EFER bits (MSR 0xC0000080). */
export const EFER_SCE = 1 << 0,
  EFER_LME = 1 << 8,
  EFER_LMA = 1 << 10,
  EFER_NXE = 1 << 11;
/** Page-table entry bits (SDM vol. 3, 4.5). */
export const PTE_P = 1 << 0,
  PTE_RW = 1 << 1,
  PTE_US = 1 << 2,
  PTE_PWT = 1 << 3,
  PTE_PCD = 1 << 4;
export const PTE_A = 1 << 5,
  PTE_D = 1 << 6,
  PTE_PS = 1 << 7,
  PTE_G = 1 << 8;
/** NX is bit 63: bit 31 of the high half. */
export const PTE_HI_NX = 1 << 31;
/** Entries are 8 bytes, 512 per 4 KiB table; each level translates 9 bits (SDM vol. 3, 4.5). */
export const PT_ENTRIES = 512;
export const PT_LEVEL_BITS = 9;
