import {
  CR4_DE,
  CR4_FSGSBASE,
  CR4_MCE,
  CR4_OSFXSR,
  CR4_OSXMMEXCPT,
  CR4_OSXSAVE,
  CR4_PAE,
  CR4_PCE,
  CR4_PCIDE,
  CR4_PGE,
  CR4_PKE,
  CR4_PSE,
  CR4_PVI,
  CR4_SMAP,
  CR4_SMEP,
  CR4_SMXE,
  CR4_TSD,
  CR4_UMIP,
  CR4_VME,
  CR4_VMXE,
} from "../x86/control.js";
import * as F from "../x86/cpuid.js";

/** One CPUID answer: EAX, EBX, ECX, EDX. */
export type CpuidRegs = [number, number, number, number];

/**
 * The CPU model CPUID answers from: a table keyed by leaf and subleaf. The default is an
 * Intel-like core with the features nestlab implements (no x87, SSE or AVX: guests are built
 * with -mgeneral-regs-only), each linked to its implementation in features.ts. Hypervisors
 * edit a copy of this table to build their CPUID policy.
 */
/** Options of the CPU model. */
export interface CpuModelOptions {
  /**
   * Advertise VMX to the software the CPU runs (CPUID.1:ECX.VMX): the bare machine's guest can
   * then be a hypervisor (vmx/instructions.ts). Off by default; hypervisors' policies clear it.
   */
  vmx?: boolean;
}

export class CpuModel {
  readonly leaves = new Map<string, CpuidRegs>();

  constructor(opts: CpuModelOptions = {}) {
    const str = (s: string): number =>
      s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24);
    // "GenuineIntel" in EBX, EDX, ECX.
    this.set(0, 0, [0xd, str("Genu"), str("ntel"), str("ineI")]);
    // Family 6, model 0x55 (Cascade Lake), stepping 7: matches the default cost profile's machine.
    // Every bit set here has its implementation named in features.ts (checked by a test). Not
    // advertised: FPU (no x87; guests build with -mgeneral-regs-only), PSE (32-bit paging with
    // 4 MiB pages is not modelled; IA-32e paging has 2 MiB pages without it), SSE*/AVX.
    const edx1 =
      F.F1D_DE |
      F.F1D_TSC |
      F.F1D_MSR |
      F.F1D_PAE |
      F.F1D_CX8 |
      F.F1D_APIC |
      F.F1D_SEP |
      F.F1D_PGE |
      F.F1D_CMOV |
      F.F1D_PAT |
      F.F1D_CLFSH;
    const ecx1 =
      F.F1C_CX16 |
      F.F1C_PCID |
      F.F1C_X2APIC |
      F.F1C_MOVBE |
      F.F1C_POPCNT |
      F.F1C_TSC_DEADLINE |
      (opts.vmx === true ? F.F1C_VMX : 0);
    this.set(1, 0, [0x00050657, 0x00000800, ecx1, edx1]); // EBX: CLFLUSH line 8*8 bytes, APIC ID 0
    this.set(7, 0, [
      0,
      F.F7B_TSC_ADJUST | F.F7B_BMI1 | F.F7B_SMEP | F.F7B_BMI2 | F.F7B_INVPCID | F.F7B_ADX | F.F7B_SMAP,
      0,
      0,
    ]);
    this.set(0x80000000, 0, [0x80000008, 0, 0, 0]);
    this.set(0x80000001, 0, [
      0,
      0,
      F.FE1C_LAHF_LM | F.FE1C_ABM,
      F.FE1D_SYSCALL | F.FE1D_NX | F.FE1D_PDPE1GB | F.FE1D_RDTSCP | F.FE1D_LM,
    ]);
    // 48 bits virtual, 52 bits physical would be real; we report 46-bit physical like the 8269CY.
    this.set(0x80000008, 0, [0x0000302e, 0, 0, 0]);
  }

  set(leaf: number, subleaf: number, regs: CpuidRegs): void {
    this.leaves.set(`${leaf >>> 0}:${subleaf >>> 0}`, [regs[0] | 0, regs[1] | 0, regs[2] | 0, regs[3] | 0]);
    const k = CpuModel.key(leaf, subleaf);
    if (k >= 0) this.fast.set(k, Int32Array.of(regs[0], regs[1], regs[2], regs[3]));
    this.limitsValid = false;
  }

  /**
   * Numeric index of (leaf, subleaf) for the allocation-free lookup: the leaf's range (bits
   * 31:28: basic 0, hypervisor 4, extended 8) and low 16 bits, and a subleaf below 256.
   * -1 for leaves outside those ranges (they read as out of range).
   */
  private static key(leaf: number, subleaf: number): number {
    leaf >>>= 0;
    subleaf >>>= 0;
    if ((leaf & 0x0fff0000) !== 0 || subleaf > 0xff) return -1;
    return ((leaf >>> 28) * 65536 + (leaf & 0xffff)) * 256 + subleaf;
  }

  private readonly fast = new Map<number, Int32Array>();
  private limitsValid = false;
  private maxBasic = 0;
  private maxExt = 0;

  /** Leaves whose answer depends on ECX (others ignore the subleaf). */
  private static readonly INDEXED = new Set([4, 7, 0xb, 0xd, 0xf, 0x10, 0x12, 0x14, 0x17, 0x18, 0x1f]);

  /**
   * Answer CPUID(leaf, subleaf) into out (SDM vol. 2, CPUID). Leaves above the maximum basic
   * (or extended) leaf answer like the highest basic leaf (Intel behaviour); absent leaves in
   * range answer zeros. No allocation.
   */
  query(leaf: number, subleaf: number, out: Int32Array): void {
    leaf >>>= 0;
    if (!this.limitsValid) {
      this.maxBasic = (this.fast.get(0)?.[0] ?? 0) >>> 0;
      this.maxExt = (this.fast.get(CpuModel.key(F.CPUID_EXT_BASE, 0))?.[0] ?? 0) >>> 0;
      this.limitsValid = true;
    }
    const sub = CpuModel.INDEXED.has(leaf) ? subleaf >>> 0 : 0;
    const k = CpuModel.key(leaf, sub);
    let r = k >= 0 ? this.fast.get(k) : undefined;
    if (r === undefined) {
      const inRange =
        leaf <= this.maxBasic ||
        (leaf >= F.CPUID_EXT_BASE && leaf <= this.maxExt) ||
        (leaf >= F.CPUID_HYPERVISOR_BASE && leaf < 0x40010000);
      if (!inRange) r = this.fast.get(CpuModel.key(this.maxBasic, 0));
    }
    if (r === undefined) {
      out[0] = 0;
      out[1] = 0;
      out[2] = 0;
      out[3] = 0;
      return;
    }
    out[0] = r[0];
    out[1] = r[1];
    out[2] = r[2];
    out[3] = r[3];
  }

  clone(): CpuModel {
    const m = new CpuModel();
    m.leaves.clear();
    m.fast.clear();
    for (const [k, v] of this.leaves) {
      const [leaf, sub] = k.split(":").map(Number);
      m.set(leaf, sub, [v[0], v[1], v[2], v[3]]);
    }
    return m;
  }
}

const cr4q = new Int32Array(4);

/**
 * CR4 bits a CPUID model makes legal (a set bit CPUID does not report is reserved: #GP): the
 * CPU's own model, or a hypervisor's CPUID policy for a guest (IA32_VMX_CR4_FIXED1).
 */
export function cr4AllowedBy(model: { query(leaf: number, subleaf: number, out: Int32Array): void }): number {
  const q = cr4q;
  model.query(1, 0, q);
  const ecx1 = q[2];
  const edx1 = q[3];
  model.query(7, 0, q);
  const ebx7 = q[1];
  const ecx7 = q[2];
  let m = CR4_PCE;
  if (edx1 & (1 << 1)) m |= CR4_VME | CR4_PVI;
  if (edx1 & (1 << 2)) m |= CR4_DE;
  if (edx1 & (1 << 3)) m |= CR4_PSE;
  if (edx1 & (1 << 4)) m |= CR4_TSD;
  if (edx1 & (1 << 6)) m |= CR4_PAE;
  if (edx1 & (1 << 7)) m |= CR4_MCE;
  if (edx1 & (1 << 13)) m |= CR4_PGE;
  if (edx1 & (1 << 24)) m |= CR4_OSFXSR;
  if (edx1 & (1 << 25)) m |= CR4_OSXMMEXCPT;
  if (ecx1 & (1 << 5)) m |= CR4_VMXE;
  if (ecx1 & (1 << 6)) m |= CR4_SMXE;
  if (ecx1 & (1 << 17)) m |= CR4_PCIDE;
  if (ecx1 & (1 << 26)) m |= CR4_OSXSAVE;
  if (ebx7 & (1 << 0)) m |= CR4_FSGSBASE;
  if (ebx7 & (1 << 7)) m |= CR4_SMEP;
  if (ebx7 & (1 << 20)) m |= CR4_SMAP;
  if (ecx7 & (1 << 2)) m |= CR4_UMIP;
  if (ecx7 & (1 << 3)) m |= CR4_PKE;
  // CR4.LA57 stays reserved even if a model sets CPUID.7.0:ECX.LA57: canonical checks are
  // 48-bit only (canonical.ts).
  return m;
}
