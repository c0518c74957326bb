/**
 * Control registers, debug registers and EFER: the checks and side effects of MOV to CRn/DRn,
 * CLTS/LMSW and WRMSR(EFER) (SDM vol. 2 "MOV—Move to/from Control Registers"; vol. 3, 2.5 and
 * 9.8.5 for IA-32e mode activation). Values are 32-bit halves; nothing here allocates.
 *
 * Modelled modes: 32-bit protected mode without paging, and IA-32e paging (LME=1, PAE=1).
 * Legacy 32-bit paging (PG=1 with LME=0) and real mode (PE=0) are outside nestlab's scope:
 * attempting them stops the machine with a report instead of running with wrong translations.
 */
import {
  CR0_AM,
  CR0_CD,
  CR0_EM,
  CR0_ET,
  CR0_MP,
  CR0_NE,
  CR0_NW,
  CR0_PE,
  CR0_PG,
  CR0_TS,
  CR0_WP,
  CR4_DE,
  CR4_LA57,
  CR4_PAE,
  CR4_PCIDE,
  CR4_PGE,
  CR4_PSE,
  CR4_SMAP,
  CR4_SMEP,
  CR4_VMXE,
  EFER_LMA,
  EFER_LME,
  EFER_NXE,
  EFER_SCE,
} from "../x86/control.js";
import { GP, UD } from "../x86/exceptions.js";
import type { Cpu } from "./cpu.js";
import { cr4AllowedBy } from "./cpuid.js";
import { updateDebugState } from "./debug.js";
import { AR_L } from "./segments.js";
import { CR0_FIXED0 } from "./vmx/caps.js";

/** CR0 bits that exist; writes of other bits in 31:0 are ignored (as KVM does), 63:32 must be 0. */
const CR0_VALID = CR0_PE | CR0_MP | CR0_EM | CR0_TS | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_NW | CR0_CD | CR0_PG;
/** CR4 bits whose change invalidates cached translations (SDM vol. 3, 4.10.4.1). */
const CR4_TLB_BITS = CR4_PGE | CR4_PAE | CR4_PSE | CR4_PCIDE | CR4_SMEP | CR4_SMAP | CR4_LA57;

const q = new Int32Array(4);

/** CR4 bits the CPU model's CPUID makes legal (a set bit CPUID does not report is reserved: #GP). */
export function cr4Allowed(c: Cpu): number {
  return cr4AllowedBy(c.model);
}

/** MAXPHYADDR from CPUID 0x80000008 (36 when the leaf is absent). */
export function maxPhysAddr(c: Cpu): number {
  c.model.query(0x80000000, 0, q);
  if (q[0] >>> 0 < 0x80000008) return 36;
  c.model.query(0x80000008, 0, q);
  return q[0] & 0xff || 36;
}

/** EFER bits the CPU model makes legal. */
export function eferAllowed(c: Cpu): number {
  c.model.query(0x80000001, 0, q);
  const edx = q[3];
  let m = 0;
  if (edx & (1 << 11)) m |= EFER_SCE;
  if (edx & (1 << 29)) m |= EFER_LME | EFER_LMA;
  if (edx & (1 << 20)) m |= EFER_NXE;
  return m;
}

/** Read CRn into out[0..1] (lo, hi). #UD for CRs that do not exist (CR8 only in 64-bit mode). */
export function readCr(c: Cpu, n: number, out: Int32Array): void {
  switch (n) {
    case 0:
      out[0] = c.cr0;
      out[1] = 0;
      return;
    case 2:
      out[0] = c.cr2Lo;
      out[1] = c.cr2Hi;
      return;
    case 3:
      out[0] = c.cr3Lo;
      out[1] = c.cr3Hi;
      return;
    case 4:
      out[0] = c.cr4;
      out[1] = 0;
      return;
    case 8:
      if (!c.mode64) c.raise(UD);
      out[0] = (c.tpr !== null ? c.tpr.getCr8() : c.cr8) & 0xf;
      out[1] = 0;
      return;
    default:
      c.raise(UD);
  }
}

/** True when CRn exists (for the #UD check that precedes the privilege check). */
export function crExists(c: Cpu, n: number): boolean {
  return n === 0 || n === 2 || n === 3 || n === 4 || (n === 8 && c.mode64);
}

/** MOV CRn, r: checks, then commit and side effects. Faults leave everything unchanged. */
export function writeCr(c: Cpu, n: number, lo: number, hi: number): void {
  switch (n) {
    case 0:
      writeCr0(c, lo, hi);
      return;
    case 2:
      c.cr2Lo = lo;
      c.cr2Hi = hi;
      return;
    case 3:
      writeCr3(c, lo, hi);
      return;
    case 4:
      writeCr4(c, lo, hi);
      return;
    case 8:
      if (!c.mode64) c.raise(UD);
      if (hi !== 0 || (lo & ~0xf) !== 0) c.raise(GP, 0);
      c.cr8 = lo;
      c.tpr?.setCr8(lo); // CR8 is TPR[7:4] of the local APIC (SDM vol. 3, 11.8.6)
      c.irqCheck = true; // a lower TPR may unmask a pending interrupt
      return;
    default:
      c.raise(UD);
  }
}

/**
 * CR0 (SDM vol. 3, 2.5; vol. 2 MOV CR; 9.8.5): #GP for PG without PE, NW without CD, bits 63:32
 * set; setting PG with EFER.LME=1 activates IA-32e mode (LMA=1) and requires CR4.PAE=1 and a
 * CS without L; clearing PG in 64-bit mode (or with CR4.PCIDE=1) is #GP, in compatibility mode
 * it leaves IA-32e mode.
 */
export function writeCr0(c: Cpu, lo: number, hi: number): void {
  if (hi !== 0) c.raise(GP, 0);
  const v = (lo & CR0_VALID) | CR0_ET;
  if ((v & CR0_PG) !== 0 && (v & CR0_PE) === 0) c.raise(GP, 0);
  if ((v & CR0_NW) !== 0 && (v & CR0_CD) === 0) c.raise(GP, 0);
  // In VMX root operation CR0's VMX-fixed bits (PE, NE, PG) cannot be cleared (SDM vol. 3, 23.8).
  if (c.vmxUnit.software.inVmx && !c.nonRoot && (v & CR0_FIXED0) !== CR0_FIXED0) c.raise(GP, 0);
  const old = c.cr0;
  let efer = c.efer;
  const pgOn = (v & CR0_PG) !== 0 && (old & CR0_PG) === 0;
  const pgOff = (v & CR0_PG) === 0 && (old & CR0_PG) !== 0;
  if (pgOn && (efer & EFER_LME) !== 0) {
    if ((c.cr4 & CR4_PAE) === 0) c.raise(GP, 0);
    if ((c.segAr[1] & AR_L) !== 0) c.raise(GP, 0);
    efer |= EFER_LMA;
  }
  if (pgOff) {
    if (c.mode64 || (c.cr4 & CR4_PCIDE) !== 0) c.raise(GP, 0);
    efer &= ~EFER_LMA;
  }
  if ((v & CR0_PE) === 0) {
    c.shutdown("CR0.PE cleared: real mode is not modelled");
    return;
  }
  if ((v & CR0_PG) !== 0 && (efer & EFER_LMA) === 0) {
    c.shutdown("CR0.PG set without EFER.LME: legacy 32-bit/PAE paging is not modelled");
    return;
  }
  c.cr0 = v;
  c.efer = efer;
  c.updateMode(); // flushes the TLB when PG or WP changed, the code cache when the mode did
}

/**
 * CR3 (SDM vol. 3, 4.5 and 4.10.4.1): bits above MAXPHYADDR are reserved (#GP). With CR4.PCIDE,
 * bit 63 asks not to flush the PCID's translations; it is not stored. The software TLB is not
 * PCID-tagged, so every CR3 write flushes it (conservative, always correct).
 */
export function writeCr3(c: Cpu, lo: number, hi: number): void {
  if (!c.mode64) hi = 0;
  const src = hi; // bit 63 (with CR4.PCIDE): do not invalidate the PCID's entries
  if ((c.cr4 & CR4_PCIDE) !== 0) hi &= 0x7fffffff;
  const maxPhy = maxPhysAddr(c);
  if (maxPhy < 64 && hi >>> (maxPhy - 32) !== 0) c.raise(GP, 0);
  c.mmu.writeCr3(lo, src); // stores CR3 (without bit 63) and invalidates per SDM 4.10.4.1
}

/**
 * CR4 (SDM vol. 3, 2.5; vol. 2 MOV CR): bits CPUID does not report are reserved (#GP); in
 * IA-32e mode PAE cannot be cleared and LA57 cannot change; PCIDE can be set only in IA-32e
 * mode with CR3[11:0] = 0. Paging-relevant changes flush the TLB.
 */
export function writeCr4(c: Cpu, lo: number, hi: number): void {
  if (hi !== 0 || (lo & ~cr4Allowed(c)) !== 0) c.raise(GP, 0);
  if (c.vmxUnit.software.inVmx && !c.nonRoot && (lo & CR4_VMXE) === 0) c.raise(GP, 0); // 23.8
  const lma = (c.efer & EFER_LMA) !== 0;
  const old = c.cr4;
  if (lma && (lo & CR4_PAE) === 0) c.raise(GP, 0);
  if (lma && ((lo ^ old) & CR4_LA57) !== 0) c.raise(GP, 0);
  if ((lo & CR4_PCIDE) !== 0 && (old & CR4_PCIDE) === 0 && (!lma || (c.cr3Lo & 0xfff) !== 0)) c.raise(GP, 0);
  c.cr4 = lo;
  if (((old ^ lo) & CR4_TLB_BITS) !== 0) c.flushTlb();
  c.updateMode();
  if (((old ^ lo) & CR4_DE) !== 0) updateDebugState(c); // I/O breakpoints exist only with DE
}

/**
 * WRMSR(IA32_EFER) (SDM vol. 4, table 2-2; vol. 3, 9.8.5): reserved bits #GP; LME cannot change
 * while paging is enabled; LMA is read-only (the write's LMA bit is ignored).
 */
export function writeEfer(c: Cpu, lo: number, hi: number): void {
  if (hi !== 0 || (lo & ~eferAllowed(c)) !== 0) c.raise(GP, 0);
  if (((lo ^ c.efer) & EFER_LME) !== 0 && (c.cr0 & CR0_PG) !== 0) c.raise(GP, 0);
  c.efer = (lo & ~EFER_LMA) | (c.efer & EFER_LMA);
  c.updateMode();
}

/** DR6 bits software can write (B0-B3, BD, BS, BT); the rest read as fixed values. */
const DR6_WRITABLE = 0xe00f;
const DR6_FIXED1 = 0xffff0ff0;
/** DR7: bit 10 reads as 1; bits 11, 12, 14, 15 read as 0. */
const DR7_WRITABLE = 0xffff23ff;

/** Resolve DR4/DR5 (aliases of DR6/DR7 unless CR4.DE, which makes them #UD); #UD for DR8+. */
export function drIndex(c: Cpu, n: number): number {
  if (n > 7) c.raise(UD);
  if (n === 4 || n === 5) {
    if ((c.cr4 & CR4_DE) !== 0) c.raise(UD);
    return n + 2;
  }
  return n;
}

/** MOV r, DRn (n already resolved by drIndex). */
export function readDr(c: Cpu, n: number, out: Int32Array): void {
  if (n === 6) {
    out[0] = (c.drLo[6] & DR6_WRITABLE) | DR6_FIXED1;
    out[1] = 0;
  } else if (n === 7) {
    out[0] = (c.drLo[7] & DR7_WRITABLE) | 0x400;
    out[1] = 0;
  } else {
    out[0] = c.drLo[n];
    out[1] = c.drHi[n];
  }
}

/**
 * MOV DRn, r (n resolved): in 64-bit mode bits 63:32 of DR6/DR7 must be 0 (#GP). Breakpoints
 * take effect at once (debug.ts).
 */
export function writeDr(c: Cpu, n: number, lo: number, hi: number): void {
  if ((n === 6 || n === 7) && hi !== 0) c.raise(GP, 0);
  if (!c.mode64) hi = 0;
  c.drLo[n] = lo;
  c.drHi[n] = hi;
  updateDebugState(c);
}
