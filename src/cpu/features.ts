/**
 * The feature model: for every CPUID feature bit the CPU model (cpuid.ts) may advertise, what
 * implements it — opcode-table rows (by mnemonic), MSRs, control-register bits the model makes
 * legal, and mechanisms elsewhere (paging formats, the local APIC). tests/cpu/cpuid-features.test.ts
 * follows each link from every advertised bit and fails for a bit with no link, a row that is
 * not in the table, an MSR that faults, a CR4/EFER bit that is reserved, or a mechanism that does
 * not behave. Bit meanings: SDM vol. 2, CPUID, tables 3-10/3-11 (leaf 1), 3-8 (leaf 7, 0x80000001).
 */

import {
  CR4_DE,
  CR4_PAE,
  CR4_PCIDE,
  CR4_PGE,
  CR4_SMAP,
  CR4_SMEP,
  CR4_TSD,
  CR4_VMXE,
  EFER_LME,
  EFER_NXE,
  EFER_SCE,
} from "../x86/control.js";
import * as F from "../x86/cpuid.js";
import * as M from "../x86/msr.js";

/** Register of a CPUID answer: 0 EAX, 1 EBX, 2 ECX, 3 EDX. */
export const EAX = 0;
export const EBX = 1;
export const ECX = 2;
export const EDX = 3;

/**
 * Mechanisms with no instruction or MSR of their own; the CPUID test checks each by behaviour:
 * - `ia32e-paging`: 4-level paging with 64-bit entries under EFER.LMA (the only paging modelled;
 *   legacy 32-bit and 3-level PAE paging shut the machine down, control-regs.ts)
 * - `global-pages`: the G bit of a leaf is reported to the TLB
 * - `pat-index`: the PAT/PCD/PWT bits of a leaf select a PAT entry
 * - `nx`, `smep`, `smap`: the walker's execute-disable and supervisor-mode protections
 * - `1g-pages`: 1 GiB leaves in PDPTEs
 * - `pcid`: CR4.PCIDE can be set (in IA-32e mode) and tags the TLB
 * - `cmpxchg16b`: CMPXCHG8B with REX.W is CMPXCHG16B
 * - `local-apic`: the machine's local APIC answers its MSRs (in x2APIC mode for the x2APIC range)
 * - `hypervisor-leaves`: a hypervisor's policy (L0's VM, L1) answers the leaves from 0x40000000
 */
export type Mechanism =
  | "ia32e-paging"
  | "global-pages"
  | "pat-index"
  | "nx"
  | "smep"
  | "smap"
  | "1g-pages"
  | "pcid"
  | "cmpxchg16b"
  | "local-apic"
  | "hypervisor-leaves";

export interface FeatureImpl {
  name: string;
  leaf: number;
  subleaf: number;
  /** EAX..EDX (0..3). */
  reg: number;
  /** The feature bit as a mask. */
  bit: number;
  /** Mnemonics of the opcode-table rows that implement it. */
  insns?: readonly string[];
  /** MSRs it brings (RDMSR must not fault). */
  msrs?: readonly number[];
  /** CR4 / EFER bits it makes legal. */
  cr4?: number;
  efer?: number;
  mechanisms?: readonly Mechanism[];
}

const CMOV = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"].map(
  (cc) => `cmov${cc}`,
);

/** A feature bit (subleaf 0) and what implements it. */
function feat(name: string, leaf: number, reg: number, bit: number, impl: Impl): FeatureImpl {
  return { name, leaf, subleaf: 0, reg, bit, ...impl };
}
type Impl = Pick<FeatureImpl, "insns" | "msrs" | "cr4" | "efer" | "mechanisms">;

export const FEATURE_IMPLS: readonly FeatureImpl[] = [
  // ---- Leaf 1 EDX ----
  feat("TSC", 1, EDX, F.F1D_TSC, { insns: ["rdtsc"], msrs: [M.MSR_IA32_TSC], cr4: CR4_TSD }),
  // Debugging extensions: CR4.DE (DR4/DR5 #UD, I/O breakpoints; src/cpu/debug.ts).
  feat("DE", 1, EDX, F.F1D_DE, { insns: ["mov", "int1"], cr4: CR4_DE }),
  feat("MSR", 1, EDX, F.F1D_MSR, { insns: ["rdmsr", "wrmsr"] }),
  feat("PAE", 1, EDX, F.F1D_PAE, { cr4: CR4_PAE, mechanisms: ["ia32e-paging"] }),
  feat("CX8", 1, EDX, F.F1D_CX8, { insns: ["cmpxchg8b"] }),
  feat("APIC", 1, EDX, F.F1D_APIC, { msrs: [M.MSR_IA32_APIC_BASE], mechanisms: ["local-apic"] }),
  feat("SEP", 1, EDX, F.F1D_SEP, {
    insns: ["sysenter", "sysexit"],
    msrs: [M.MSR_IA32_SYSENTER_CS, M.MSR_IA32_SYSENTER_ESP, M.MSR_IA32_SYSENTER_EIP],
  }),
  feat("PGE", 1, EDX, F.F1D_PGE, { cr4: CR4_PGE, mechanisms: ["global-pages"] }),
  feat("CMOV", 1, EDX, F.F1D_CMOV, { insns: CMOV }),
  feat("PAT", 1, EDX, F.F1D_PAT, { msrs: [M.MSR_IA32_PAT], mechanisms: ["pat-index"] }),
  feat("CLFSH", 1, EDX, F.F1D_CLFSH, { insns: ["clflush"] }),
  // ---- Leaf 1 ECX ----
  // VMX for guest software (an option of the CPU model): the VMX instructions, IA32_FEATURE_CONTROL
  // and the capability MSRs, CR4.VMXE (src/cpu/vmx/instructions.ts, msrs.ts).
  feat("VMX", 1, ECX, F.F1C_VMX, {
    insns: [
      "vmxon",
      "vmxoff",
      "vmclear",
      "vmptrld",
      "vmptrst",
      "vmread",
      "vmwrite",
      "vmlaunch",
      "vmresume",
      "invept",
      "invvpid",
      "vmcall",
    ],
    msrs: [
      M.MSR_IA32_FEATURE_CONTROL,
      M.MSR_IA32_VMX_BASIC,
      M.MSR_IA32_VMX_PINBASED_CTLS,
      M.MSR_IA32_VMX_PROCBASED_CTLS,
      M.MSR_IA32_VMX_EXIT_CTLS,
      M.MSR_IA32_VMX_ENTRY_CTLS,
      M.MSR_IA32_VMX_MISC,
      M.MSR_IA32_VMX_CR0_FIXED0,
      M.MSR_IA32_VMX_CR0_FIXED1,
      M.MSR_IA32_VMX_CR4_FIXED0,
      M.MSR_IA32_VMX_CR4_FIXED1,
      M.MSR_IA32_VMX_VMCS_ENUM,
      M.MSR_IA32_VMX_PROCBASED_CTLS2,
      M.MSR_IA32_VMX_EPT_VPID_CAP,
      M.MSR_IA32_VMX_TRUE_PINBASED_CTLS,
      M.MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
      M.MSR_IA32_VMX_TRUE_EXIT_CTLS,
      M.MSR_IA32_VMX_TRUE_ENTRY_CTLS,
    ],
    cr4: CR4_VMXE,
  }),
  feat("CX16", 1, ECX, F.F1C_CX16, { insns: ["cmpxchg8b"], mechanisms: ["cmpxchg16b"] }),
  feat("PCID", 1, ECX, F.F1C_PCID, { cr4: CR4_PCIDE, mechanisms: ["pcid"] }),
  // x2APIC ID, version and TPR: MSRs that exist in x2APIC mode (SDM vol. 3, table 11-6).
  feat("x2APIC", 1, ECX, F.F1C_X2APIC, {
    msrs: [M.MSR_X2APIC_FIRST + 2, M.MSR_X2APIC_FIRST + 3, M.MSR_X2APIC_FIRST + 8],
    mechanisms: ["local-apic"],
  }),
  feat("MOVBE", 1, ECX, F.F1C_MOVBE, { insns: ["movbe"] }),
  feat("POPCNT", 1, ECX, F.F1C_POPCNT, { insns: ["popcnt"] }),
  // Set only in hypervisors' policies (L0's VM, L1 for L2), not by the bare CPU.
  feat("HYPERVISOR", 1, ECX, F.F1C_HYPERVISOR, { mechanisms: ["hypervisor-leaves"] }),
  feat("TSC-Deadline", 1, ECX, F.F1C_TSC_DEADLINE, { msrs: [M.MSR_IA32_TSC_DEADLINE], mechanisms: ["local-apic"] }),
  // ---- Leaf 7.0 EBX ----
  feat("TSC_ADJUST", 7, EBX, F.F7B_TSC_ADJUST, { msrs: [M.MSR_IA32_TSC_ADJUST] }),
  feat("BMI1", 7, EBX, F.F7B_BMI1, { insns: ["andn", "bextr", "blsi", "blsmsk", "blsr", "tzcnt"] }),
  feat("SMEP", 7, EBX, F.F7B_SMEP, { cr4: CR4_SMEP, mechanisms: ["smep"] }),
  feat("BMI2", 7, EBX, F.F7B_BMI2, { insns: ["bzhi", "mulx", "pdep", "pext", "rorx", "sarx", "shlx", "shrx"] }),
  feat("INVPCID", 7, EBX, F.F7B_INVPCID, { insns: ["invpcid"] }),
  feat("ADX", 7, EBX, F.F7B_ADX, { insns: ["adcx", "adox"] }),
  feat("SMAP", 7, EBX, F.F7B_SMAP, { insns: ["stac", "clac"], cr4: CR4_SMAP, mechanisms: ["smap"] }),
  // ---- Leaf 0x80000001 ----
  feat("LAHF-SAHF", 0x80000001, ECX, F.FE1C_LAHF_LM, { insns: ["lahf", "sahf"] }),
  feat("ABM/LZCNT", 0x80000001, ECX, F.FE1C_ABM, { insns: ["lzcnt", "popcnt"] }),
  feat("SYSCALL", 0x80000001, EDX, F.FE1D_SYSCALL, {
    insns: ["syscall", "sysret"],
    msrs: [M.MSR_STAR, M.MSR_LSTAR, M.MSR_CSTAR, M.MSR_SFMASK],
    efer: EFER_SCE,
  }),
  feat("NX", 0x80000001, EDX, F.FE1D_NX, { efer: EFER_NXE, mechanisms: ["nx"] }),
  feat("Page1GB", 0x80000001, EDX, F.FE1D_PDPE1GB, { mechanisms: ["1g-pages"] }),
  feat("RDTSCP", 0x80000001, EDX, F.FE1D_RDTSCP, { insns: ["rdtscp"], msrs: [M.MSR_TSC_AUX] }),
  feat("LM", 0x80000001, EDX, F.FE1D_LM, { efer: EFER_LME, mechanisms: ["ia32e-paging"] }),
];

/** The (leaf, subleaf, register) triples that hold feature flags (every set bit needs a link). */
export const FEATURE_REGISTERS: readonly [number, number, number][] = [
  [1, 0, ECX],
  [1, 0, EDX],
  [7, 0, EBX],
  [7, 0, ECX],
  [7, 0, EDX],
  [0x80000001, 0, ECX],
  [0x80000001, 0, EDX],
];
