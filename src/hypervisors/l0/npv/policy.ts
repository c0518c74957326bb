/**
 * The per-L2-VM policies L1 registers (SET_CPUID, SET_MSRS) and how L0 answers L2 from them:
 * CPUID from the table (hypervisor bit forced on, VMX hidden), MSRs by mode (VALUE answered by
 * L0, PASSTHROUGH owned by L2 through the MSR bitmap, FORWARD to L1), and the MSR bitmap page.
 */
import type { PhysicalMemory } from "../../../mmu/phys.js";
import { F1C_HYPERVISOR, F1C_VMX } from "../../../x86/cpuid.js";
import {
  MSR_CSTAR,
  MSR_EFER,
  MSR_FS_BASE,
  MSR_GS_BASE,
  MSR_IA32_PAT,
  MSR_KERNEL_GS_BASE,
  MSR_LSTAR,
  MSR_SFMASK,
  MSR_STAR,
  MSR_TSC_AUX,
} from "../../../x86/msr.js";
import { NPV_CPUID_F_SUBLEAF, NPV_MSR_FORWARD, NPV_MSR_PASSTHROUGH, NPV_MSR_VALUE } from "../../npv-abi.js";

/** The only MSRs L1 may give L2 outright (docs/npv-abi.md, SET_MSRS). */
export const PASSTHROUGH_OK: ReadonlySet<number> = new Set([
  MSR_EFER,
  MSR_STAR,
  MSR_LSTAR,
  MSR_CSTAR,
  MSR_SFMASK,
  MSR_FS_BASE,
  MSR_GS_BASE,
  MSR_KERNEL_GS_BASE,
  MSR_TSC_AUX,
  MSR_IA32_PAT,
]);

export interface CpuidEntry {
  leaf: number;
  subleaf: number;
  flags: number;
  regs: [number, number, number, number];
}

export class CpuidPolicy {
  /** Entries matching one subleaf, keyed "leaf:subleaf". */
  private readonly exact = new Map<string, [number, number, number, number]>();
  /** Entries matching every subleaf of a leaf. */
  private readonly any = new Map<number, [number, number, number, number]>();

  constructor(entries: CpuidEntry[] = []) {
    for (const e of entries) {
      if ((e.flags & NPV_CPUID_F_SUBLEAF) !== 0) this.exact.set(`${e.leaf >>> 0}:${e.subleaf >>> 0}`, e.regs);
      else this.any.set(e.leaf >>> 0, e.regs);
    }
  }

  /** Answer L2's CPUID(leaf, subleaf) into out (EAX, EBX, ECX, EDX, as int32). */
  query(leaf: number, subleaf: number, out: Int32Array): void {
    leaf >>>= 0;
    const r = this.exact.get(`${leaf}:${subleaf >>> 0}`) ?? this.any.get(leaf);
    out[0] = r?.[0] ?? 0;
    out[1] = r?.[1] ?? 0;
    out[2] = r?.[2] ?? 0;
    out[3] = r?.[3] ?? 0;
    if (leaf === 1) out[2] = (out[2] | F1C_HYPERVISOR) & ~F1C_VMX;
  }
}

export interface MsrEntry {
  mode: number;
  lo: number;
  hi: number;
}

export class MsrPolicy {
  readonly entries = new Map<number, MsrEntry>();
}

/** Validate one MSR policy entry: null when fine, else why it is E_INVAL. */
export function msrEntryError(index: number, mode: number): string | null {
  if (mode !== NPV_MSR_VALUE && mode !== NPV_MSR_PASSTHROUGH && mode !== NPV_MSR_FORWARD) return `mode ${mode}`;
  if (mode === NPV_MSR_PASSTHROUGH && !PASSTHROUGH_OK.has(index >>> 0))
    return `MSR 0x${index.toString(16)} cannot be passed through`;
  return null;
}

/**
 * Fill an MSR bitmap page (SDM 24.6.9): every MSR exits except the PASSTHROUGH ones. MSRs
 * outside the two bitmap ranges always exit.
 */
export function writeMsrBitmap(mem: PhysicalMemory, page: number, policy: MsrPolicy): void {
  const bytes = new Uint8Array(4096).fill(0xff);
  for (const [index, e] of policy.entries) {
    if (e.mode !== NPV_MSR_PASSTHROUGH) continue;
    let off = -1;
    if (index <= 0x1fff) off = 0;
    else if (index >= 0xc0000000 && index <= 0xc0001fff) off = 1024;
    if (off < 0) continue;
    const bit = index & 0x1fff;
    for (const base of [0, 2048]) bytes[base + off + (bit >> 3)] &= ~(1 << (bit & 7));
  }
  mem.writeBytes(page, bytes);
}
