/**
 * RDMSR/WRMSR (SDM vol. 2 RDMSR/WRMSR; MSR definitions in SDM vol. 4, table 2-2).
 *
 * Lookup order: (1) MSRs the core owns (EFER, SYSCALL/SYSENTER MSRs, FS/GS bases, TSC, TSC_AUX,
 * PAT), (2) the machine's MsrHandler (LAPIC/x2APIC, TSC deadline, VMX capability MSRs…),
 * (3) a short list of harmless MSRs kept in Cpu.msrStore so a read returns what was written
 * (HARMLESS_MSRS below), (4) anything else raises #GP(0), as hardware does for an MSR it lacks.
 * MSRs whose existence CPUID enumerates (IA32_TSC_ADJUST, IA32_SPEC_CTRL, IA32_PRED_CMD) are
 * #GP(0) unless the CPU model's CPUID reports them (SDM vol. 4, table 2-2, "enumeration").
 */

import { isCanonical as canonical } from "../x86/canonical.js";
import { F7B_TSC_ADJUST, F7D_IBRS_IBPB, F7D_SSBD, F7D_STIBP } from "../x86/cpuid.js";
import { GP } from "../x86/exceptions.js";
import {
  MSR_CSTAR,
  MSR_EFER,
  MSR_FS_BASE,
  MSR_GS_BASE,
  MSR_IA32_BIOS_SIGN_ID,
  MSR_IA32_DEBUGCTL,
  MSR_IA32_FEATURE_CONTROL,
  MSR_IA32_MCG_CAP,
  MSR_IA32_MCG_STATUS,
  MSR_IA32_MISC_ENABLE,
  MSR_IA32_MTRR_DEF_TYPE,
  MSR_IA32_MTRR_FIX4K_C0000,
  MSR_IA32_MTRR_FIX4K_F8000,
  MSR_IA32_MTRR_FIX16K_80000,
  MSR_IA32_MTRR_FIX16K_A0000,
  MSR_IA32_MTRR_FIX64K,
  MSR_IA32_MTRR_PHYSBASE0,
  MSR_IA32_MTRR_PHYSMASK9,
  MSR_IA32_MTRRCAP,
  MSR_IA32_PAT,
  MSR_IA32_PLATFORM_ID,
  MSR_IA32_PRED_CMD,
  MSR_IA32_SPEC_CTRL,
  MSR_IA32_SYSENTER_CS,
  MSR_IA32_SYSENTER_EIP,
  MSR_IA32_SYSENTER_ESP,
  MSR_IA32_TSC,
  MSR_IA32_TSC_ADJUST,
  MSR_KERNEL_GS_BASE,
  MSR_LSTAR,
  MSR_SFMASK,
  MSR_STAR,
  MSR_TSC_AUX,
} from "../x86/msr.js";
import { writeEfer } from "./control-regs.js";
import type { Cpu } from "./cpu.js";
import { readVmxMsr, writeVmxMsr } from "./vmx/msrs.js";

const TWO32 = 4294967296;

/**
 * Harmless MSRs: reads return the last value written, or the default here; writes are kept.
 * Read-only ones (`ro`) raise #GP on write. They exist so common kernels' probing succeeds.
 * MISC_ENABLE default: fast strings (bit 0), BTS and PEBS unavailable (bits 11, 12).
 */
const HARMLESS: ReadonlyMap<number, { lo: number; hi: number; ro: boolean }> = (() => {
  const m = new Map<number, { lo: number; hi: number; ro: boolean }>();
  const rw = (i: number, lo = 0): void => void m.set(i, { lo, hi: 0, ro: false });
  const ro = (i: number, lo = 0): void => void m.set(i, { lo, hi: 0, ro: true });
  ro(MSR_IA32_PLATFORM_ID);
  rw(MSR_IA32_BIOS_SIGN_ID);
  rw(MSR_IA32_FEATURE_CONTROL);
  ro(MSR_IA32_MTRRCAP); // no variable or fixed MTRRs, no write-combining
  rw(MSR_IA32_MTRR_DEF_TYPE);
  for (let i = MSR_IA32_MTRR_PHYSBASE0; i <= MSR_IA32_MTRR_PHYSMASK9; i++) rw(i);
  rw(MSR_IA32_MTRR_FIX64K);
  rw(MSR_IA32_MTRR_FIX16K_80000);
  rw(MSR_IA32_MTRR_FIX16K_A0000);
  for (let i = MSR_IA32_MTRR_FIX4K_C0000; i <= MSR_IA32_MTRR_FIX4K_F8000; i++) rw(i);
  ro(MSR_IA32_MCG_CAP);
  rw(MSR_IA32_MCG_STATUS);
  rw(MSR_IA32_MISC_ENABLE, 0x1801);
  rw(MSR_IA32_DEBUGCTL);
  return m;
})();

/** The documented list of harmless MSR indices (for reports and tests). */
export const HARMLESS_MSRS: readonly number[] = [...HARMLESS.keys()];

/** A signed 64-bit value as a number (exact below 2^53). */
function signed64(lo: number, hi: number): number {
  return hi * TWO32 + (lo >>> 0);
}

/** A number as 64-bit two's-complement halves in out. */
function toHalves(v: number, out: Int32Array): void {
  const h = Math.floor(v / TWO32);
  out[0] = (v - h * TWO32) | 0;
  out[1] = h | 0;
}

/**
 * The TSC as software sees it: simulated cycles, plus IA32_TSC_ADJUST (which absorbs every
 * WRMSR to the TSC, SDM vol. 3, 17.17.3), plus VMX's TSC offset in non-root operation.
 */
export function readTsc(c: Cpu, out: Int32Array): void {
  toHalves(c.cycles() + c.tscAdjust + c.tscOffset, out);
}

const leaf7 = new Int32Array(4);

/** CPUID.(EAX=7,ECX=0) of the CPU model into `leaf7`. */
function queryLeaf7(c: Cpu): Int32Array {
  c.model.query(7, 0, leaf7);
  return leaf7;
}

/**
 * Writable bits of IA32_SPEC_CTRL (SDM vol. 4, table 2-2): IBRS (bit 0) with CPUID.7.0:EDX[26],
 * STIBP (bit 1) with EDX[27], SSBD (bit 2) with EDX[31]. 0 when the MSR does not exist.
 */
function specCtrlBits(c: Cpu): number {
  const edx = queryLeaf7(c)[3];
  return ((edx & F7D_IBRS_IBPB) !== 0 ? 1 : 0) | ((edx & F7D_STIBP) !== 0 ? 2 : 0) | ((edx & F7D_SSBD) !== 0 ? 4 : 0);
}

/** RDMSR: fill out[0] (EAX) and out[1] (EDX), or raise #GP(0). */
export function readMsr(c: Cpu, index: number, out: Int32Array): void {
  const idx = index >>> 0;
  let lo = 0;
  let hi = 0;
  switch (idx) {
    case MSR_EFER:
      lo = c.efer;
      break;
    case MSR_STAR:
      lo = c.starLo;
      hi = c.starHi;
      break;
    case MSR_LSTAR:
      lo = c.lstarLo;
      hi = c.lstarHi;
      break;
    case MSR_CSTAR:
      lo = c.cstarLo;
      hi = c.cstarHi;
      break;
    case MSR_SFMASK:
      lo = c.sfmask;
      break;
    case MSR_FS_BASE:
      lo = c.segBaseLo[4];
      hi = c.segBaseHi[4];
      break;
    case MSR_GS_BASE:
      lo = c.segBaseLo[5];
      hi = c.segBaseHi[5];
      break;
    case MSR_KERNEL_GS_BASE:
      lo = c.kernelGsBaseLo;
      hi = c.kernelGsBaseHi;
      break;
    case MSR_TSC_AUX:
      lo = c.tscAux;
      break;
    case MSR_IA32_PAT:
      lo = c.patLo;
      hi = c.patHi;
      break;
    case MSR_IA32_SYSENTER_CS:
      lo = c.sysenterCs;
      break;
    case MSR_IA32_SYSENTER_ESP:
      lo = c.sysenterEspLo;
      hi = c.sysenterEspHi;
      break;
    case MSR_IA32_SYSENTER_EIP:
      lo = c.sysenterEipLo;
      hi = c.sysenterEipHi;
      break;
    case MSR_IA32_TSC:
      readTsc(c, out);
      return;
    case MSR_IA32_TSC_ADJUST:
      if ((queryLeaf7(c)[1] & F7B_TSC_ADJUST) === 0) c.raise(GP, 0);
      toHalves(c.tscAdjust, out);
      return;
    case MSR_IA32_SPEC_CTRL:
      if (specCtrlBits(c) === 0) c.raise(GP, 0);
      lo = c.specCtrl;
      break;
    case MSR_IA32_PRED_CMD:
      c.raise(GP, 0); // write-only (SDM vol. 4, table 2-2: "WO")
      break;
    default: {
      if (readVmxMsr(c, idx, out)) return;
      if (c.msrHandler?.readMsr(idx, out)) return;
      const h = HARMLESS.get(idx);
      if (h === undefined) c.raise(GP, 0);
      const stored = c.msrStore.get(idx);
      if (stored !== undefined) {
        lo = stored[0];
        hi = stored[1];
      } else {
        lo = h.lo;
        hi = h.hi;
      }
    }
  }
  out[0] = lo;
  out[1] = hi;
}

/** PAT entries must be a valid memory type: UC 0, WC 1, WT 4, WP 5, WB 6, UC- 7. */
function validPat(v: number): boolean {
  for (let k = 0; k < 4; k++) {
    const t = (v >>> (8 * k)) & 0xff;
    if (t === 2 || t === 3 || t > 7) return false;
  }
  return true;
}

/** WRMSR with EDX:EAX = hi:lo, or #GP(0) (reserved bits, non-canonical bases, unknown MSR). */
export function writeMsr(c: Cpu, index: number, lo: number, hi: number): void {
  const idx = index >>> 0;
  switch (idx) {
    case MSR_EFER:
      writeEfer(c, lo, hi);
      return;
    case MSR_STAR:
      c.starLo = lo;
      c.starHi = hi;
      return;
    case MSR_LSTAR:
      if (!canonical(hi)) c.raise(GP, 0);
      c.lstarLo = lo;
      c.lstarHi = hi;
      return;
    case MSR_CSTAR:
      if (!canonical(hi)) c.raise(GP, 0);
      c.cstarLo = lo;
      c.cstarHi = hi;
      return;
    case MSR_SFMASK:
      if (hi !== 0) c.raise(GP, 0);
      c.sfmask = lo;
      return;
    case MSR_FS_BASE:
    case MSR_GS_BASE: {
      if (!canonical(hi)) c.raise(GP, 0);
      const s = idx === MSR_FS_BASE ? 4 : 5;
      c.segBaseLo[s] = lo;
      c.segBaseHi[s] = hi;
      return;
    }
    case MSR_KERNEL_GS_BASE:
      if (!canonical(hi)) c.raise(GP, 0);
      c.kernelGsBaseLo = lo;
      c.kernelGsBaseHi = hi;
      return;
    case MSR_TSC_AUX:
      if (hi !== 0) c.raise(GP, 0);
      c.tscAux = lo;
      return;
    case MSR_IA32_PAT:
      if (!validPat(lo) || !validPat(hi)) c.raise(GP, 0);
      c.patLo = lo;
      c.patHi = hi;
      return;
    case MSR_IA32_SYSENTER_CS:
      c.sysenterCs = lo & 0xffff;
      return;
    case MSR_IA32_SYSENTER_ESP:
      if (!canonical(hi)) c.raise(GP, 0);
      c.sysenterEspLo = lo;
      c.sysenterEspHi = hi;
      return;
    case MSR_IA32_SYSENTER_EIP:
      if (!canonical(hi)) c.raise(GP, 0);
      c.sysenterEipLo = lo;
      c.sysenterEipHi = hi;
      return;
    case MSR_IA32_TSC: {
      // The written value becomes the current TSC; IA32_TSC_ADJUST takes the same delta
      // (SDM vol. 3, 17.17.3: "the value written to IA32_TSC minus the value before the write").
      c.tscAdjust += (hi >>> 0) * TWO32 + (lo >>> 0) - (c.cycles() + c.tscAdjust + c.tscOffset);
      return;
    }
    case MSR_IA32_TSC_ADJUST:
      // Writing the adjust value moves the TSC by the same delta (17.17.3).
      if ((queryLeaf7(c)[1] & F7B_TSC_ADJUST) === 0) c.raise(GP, 0);
      c.tscAdjust = signed64(lo, hi);
      return;
    case MSR_IA32_SPEC_CTRL:
      if (hi !== 0 || (lo & ~specCtrlBits(c)) !== 0 || specCtrlBits(c) === 0) c.raise(GP, 0);
      c.specCtrl = lo; // no speculation is modelled: the bits are only kept
      return;
    case MSR_IA32_PRED_CMD:
      // IBPB (bit 0) with CPUID.7.0:EDX[26]; other bits reserved. No predictor is modelled.
      if ((queryLeaf7(c)[3] & F7D_IBRS_IBPB) === 0 || hi !== 0 || (lo & ~1) !== 0) c.raise(GP, 0);
      return;
    default: {
      if (writeVmxMsr(c, idx, lo, hi)) return;
      if (c.msrHandler?.writeMsr(idx, lo, hi)) return;
      const h = HARMLESS.get(idx);
      if (h === undefined || h.ro) c.raise(GP, 0);
      c.msrStore.set(idx, [lo, hi]);
    }
  }
}
