/** CPUID leaves and feature bits used by nestlab (SDM vol. 2, CPUID; KVM's cpuid.h names). */
export const CPUID_BASIC = 0x0;
export const CPUID_FEATURES = 0x1;
export const CPUID_EXT_FEATURES = 0x7;
export const CPUID_HYPERVISOR_BASE = 0x40000000;
export const CPUID_EXT_BASE = 0x80000000;
export const CPUID_EXT_INFO = 0x80000001;
export const CPUID_ADDR_SIZES = 0x80000008;

// Leaf 1 EDX
export const F1D_FPU = 1 << 0,
  F1D_TSC = 1 << 4,
  F1D_MSR = 1 << 5,
  F1D_PAE = 1 << 6,
  F1D_CX8 = 1 << 8;
export const F1D_APIC = 1 << 9,
  F1D_SEP = 1 << 11,
  F1D_PGE = 1 << 13,
  F1D_CMOV = 1 << 15,
  F1D_PAT = 1 << 16;
export const F1D_DE = 1 << 2;
export const F1D_PSE = 1 << 3,
  F1D_CLFSH = 1 << 19;
// Leaf 1 ECX
export const F1C_VMX = 1 << 5,
  F1C_CX16 = 1 << 13,
  F1C_PCID = 1 << 17,
  F1C_X2APIC = 1 << 21;
export const F1C_MOVBE = 1 << 22,
  F1C_POPCNT = 1 << 23,
  F1C_TSC_DEADLINE = 1 << 24,
  F1C_HYPERVISOR = 1 << 31;
// Leaf 7.0 EBX
export const F7B_TSC_ADJUST = 1 << 1;
export const F7B_BMI1 = 1 << 3,
  F7B_SMEP = 1 << 7,
  F7B_BMI2 = 1 << 8,
  F7B_INVPCID = 1 << 10,
  F7B_ADX = 1 << 19,
  F7B_SMAP = 1 << 20;
// Leaf 7.0 ECX
export const F7C_LA57 = 1 << 16;
// Leaf 7.0 EDX (SDM vol. 4, table 2-2: which of them make IA32_SPEC_CTRL / IA32_PRED_CMD exist)
export const F7D_IBRS_IBPB = 1 << 26,
  F7D_STIBP = 1 << 27,
  F7D_SSBD = 1 << 31;
// Leaf 0x80000001
export const FE1D_SYSCALL = 1 << 11,
  FE1D_NX = 1 << 20,
  FE1D_PDPE1GB = 1 << 26,
  FE1D_RDTSCP = 1 << 27,
  FE1D_LM = 1 << 29;
export const FE1C_LAHF_LM = 1 << 0,
  FE1C_ABM = 1 << 5;
