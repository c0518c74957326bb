import { PFEC_I, PFEC_P, PFEC_RSVD, PFEC_U, PFEC_W } from "../x86/exceptions.js";
import { PTE_A, PTE_D, PTE_HI_NX, PTE_P, PTE_PS, PTE_RW, PTE_US } from "../x86/control.js";
import type { PhysicalMemory } from "./phys.js";

/** Access kinds, using the #PF error-code bit positions so a fault's code is `access | P`. */
export const ACC_READ = 0;
export const ACC_WRITE = PFEC_W;
export const ACC_USER = PFEC_U;
export const ACC_FETCH = PFEC_I;

/** Paging controls the walk needs (copied from CR0/CR4/EFER/RFLAGS by the CPU). */
export interface PagingControls {
  wp: boolean;
  nxe: boolean;
  smep: boolean;
  smap: boolean;
  /** RFLAGS.AC: with SMAP, allows supervisor data access to user pages. */
  ac: boolean;
  la57: boolean;
}

/**
 * A 4-level (optionally 5-level) x86-64 page walker (SDM vol. 3, 4.5). It sets Accessed and
 * Dirty bits, checks permissions accumulated over all levels (U/S and R/W are ANDed, NX is ORed),
 * and produces the exact #PF error code. Returns the physical address, or -1 on a fault with
 * `errorCode` set. `refs` counts the paging-structure memory references it made.
 */
export class PageWalker {
  errorCode = 0;
  refs = 0;
  /** Page size of the last successful translation (4 KiB, 2 MiB or 1 GiB). */
  pageSize = 4096;
  /** Global bit of the last successful leaf. */
  global = false;

  constructor(private readonly mem: PhysicalMemory) {}

  walk(cr3Lo: number, cr3Hi: number, lo: number, hi: number, access: number, ctl: PagingControls): number {
    const mem = this.mem;
    // Table base: CR3 bits 51:12 (PCID bits 11:0 ignored here).
    let table = (cr3Hi & 0xfffff) * 4294967296 + ((cr3Lo & ~0xfff) >>> 0);
    const levels = ctl.la57 ? 5 : 4;
    let userOk = true;
    let writeOk = true;
    let nx = false;
    for (let level = levels; level >= 1; level--) {
      // Index bits: level 1 = 20:12, 2 = 29:21, 3 = 38:30, 4 = 47:39, 5 = 56:48.
      const shift = 12 + 9 * (level - 1);
      let idx: number;
      if (shift < 32) {
        idx = shift + 9 <= 32 ? (lo >>> shift) & 0x1ff : ((lo >>> shift) | (hi << (32 - shift))) & 0x1ff;
      } else idx = (hi >>> (shift - 32)) & 0x1ff;
      const pteAddr = table + idx * 8;
      this.refs++;
      const eLo = mem.read(pteAddr, 4) | 0;
      const eHi = mem.read(pteAddr + 4, 4) | 0;
      if ((eLo & PTE_P) === 0) {
        this.errorCode = access;
        return -1;
      }
      // Reserved bits: bits 51:MAXPHYADDR (we report MAXPHYADDR 52, so none) and NX without NXE.
      if (!ctl.nxe && (eHi & PTE_HI_NX) !== 0) {
        this.errorCode = access | PFEC_P | PFEC_RSVD;
        return -1;
      }
      if ((eLo & PTE_US) === 0) userOk = false;
      if ((eLo & PTE_RW) === 0) writeOk = false;
      if ((eHi & PTE_HI_NX) !== 0) nx = true;
      const isLeaf = level === 1 || ((eLo & PTE_PS) !== 0 && (level === 2 || level === 3));
      if ((eLo & PTE_PS) !== 0 && level > 3) {
        this.errorCode = access | PFEC_P | PFEC_RSVD;
        return -1;
      }
      if (!isLeaf) {
        if ((eLo & PTE_A) === 0) mem.write(pteAddr, 4, eLo | PTE_A);
        table = (eHi & 0xfffff) * 4294967296 + ((eLo & ~0xfff) >>> 0);
        continue;
      }
      // Leaf: permission checks (SDM vol. 3, 4.6).
      const user = (access & ACC_USER) !== 0;
      const write = (access & ACC_WRITE) !== 0;
      const fetch = (access & ACC_FETCH) !== 0;
      let ok = true;
      if (user) {
        if (!userOk) ok = false;
        else if (write && !writeOk) ok = false;
      } else {
        if (write && !writeOk && ctl.wp) ok = false;
        if (userOk && fetch && ctl.smep) ok = false;
        if (userOk && !fetch && ctl.smap && !ctl.ac) ok = false;
      }
      if (fetch && nx && ctl.nxe) ok = false;
      if (!ok) {
        this.errorCode = access | PFEC_P;
        return -1;
      }
      let nlo = eLo | PTE_A;
      if (write) nlo |= PTE_D;
      if (nlo !== eLo) mem.write(pteAddr, 4, nlo);
      const pageBits = shift; // 12, 21 or 30
      this.pageSize = 2 ** pageBits;
      this.global = (eLo & 0x100) !== 0;
      const frameLo = pageBits === 12 ? eLo & ~0xfff : eLo & ~(this.pageSize - 1) & ~0xfff;
      const base = (eHi & 0xfffff) * 4294967296 + (frameLo >>> 0);
      // Offset within the page: low pageBits bits of the linear address.
      const offset = pageBits >= 32 ? lo >>> 0 : (lo & (this.pageSize - 1)) >>> 0;
      return base + offset;
    }
    this.errorCode = access;
    return -1;
  }
}
