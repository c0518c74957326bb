/**
 * Entry layouts the hypervisor-side page-table builder writes: EPT (SDM vol. 3, 28.3.2) with a
 * 4- or 5-level walk, and x86-64 paging (SDM vol. 3, 4.5) with 4 or 5 levels (shadow tables).
 * A format only encodes and decodes entries; the builder (page-table.ts) owns the tables.
 * Permissions use the walker's PERM_R/W/X/U bits (EPT's R/W/X sit at the same positions).
 */
import { PERM_R, PERM_U, PERM_W, PERM_X } from "../../mmu/walker.js";
import { PTE_HI_NX, PTE_P, PTE_PS, PTE_RW, PTE_US } from "../../x86/control.js";
import {
  EPT_LARGE,
  EPT_MEMTYPE_WB,
  EPT_R,
  EPT_W,
  EPT_X,
  EPTP_AD_ENABLE,
  EPTP_WALK_4,
  EPTP_WALK_5,
  EPTP_WB,
} from "../../x86/vmx-controls.js";

const TWO_32 = 4294967296;

export interface TableFormat {
  readonly name: string;
  /** EPT (second-level, pointed to by an EPTP) rather than x86 paging (pointed to by CR3). */
  readonly ept: boolean;
  /** Paging-structure levels (4 or 5). */
  readonly levels: number;
  /** True when the entry is in use (points to a table, maps a page, or is an MMIO marker). */
  present(lo: number, hi: number): boolean;
  /** True when the entry at `level` (> 1) is a leaf (large page): PS / EPT bit 7. */
  isLarge(lo: number): boolean;
  /** The entry that points to the table at `addr`. */
  tableLo(addr: number): number;
  tableHi(addr: number): number;
  /** The leaf mapping `addr` with PERM_* `perms` at `level` (1: 4 KiB, 2: 2 MiB, 3: 1 GiB). */
  leafLo(addr: number, perms: number, level: number): number;
  leafHi(addr: number, perms: number, level: number): number;
  /** PERM_* of a leaf. */
  perms(lo: number, hi: number): number;
  /** The marker entry that makes every access exit for MMIO emulation (KVM's MMIO SPTE). */
  readonly mmioLo: number;
  readonly mmioHi: number;
  isMmio(lo: number, hi: number): boolean;
  /** What software loads to use tables rooted at `root`: an EPTP or a CR3. */
  pointer(root: number): number;
}

/** The physical address an entry holds (bits 51:12), without the format's flag bits. */
export function entryAddress(lo: number, hi: number): number {
  return (hi & 0xfffff) * TWO_32 + ((lo & ~0xfff) >>> 0);
}

function addrLo(addr: number): number {
  return ((addr % TWO_32) & ~0xfff) | 0;
}

function addrHi(addr: number): number {
  return Math.floor(addr / TWO_32) & 0xfffff;
}

/**
 * EPT: present = any of R/W/X; tables get R/W/X (permissions are ANDed over the walk, so the
 * leaf decides); leaves are write-back; MMIO is W without R, a misconfiguration (28.3.3.1), as
 * KVM marks MMIO SPTEs so the exit needs no memslot search. The EPTP asks for A/D flags.
 */
function eptFormat(levels: 4 | 5): TableFormat {
  return {
    name: `ept${levels}`,
    ept: true,
    levels,
    present: (lo) => (lo & 7) !== 0,
    isLarge: (lo) => (lo & EPT_LARGE) !== 0,
    tableLo: (addr) => addrLo(addr) | EPT_R | EPT_W | EPT_X,
    tableHi: addrHi,
    leafLo: (addr, perms, level) => addrLo(addr) | (perms & 7) | EPT_MEMTYPE_WB | (level > 1 ? EPT_LARGE : 0),
    leafHi: addrHi,
    perms: (lo) => lo & 7,
    mmioLo: EPT_W,
    mmioHi: 0,
    isMmio: (lo) => (lo & 7) === EPT_W,
    pointer: (root) => root + (EPTP_WB | (levels === 5 ? EPTP_WALK_5 : EPTP_WALK_4) | EPTP_AD_ENABLE),
  };
}

/** Bit 51 (high half bit 19): reserved below MAXPHYADDR 52, so the walk faults with RSVD. */
const X86_MMIO_HI = 1 << 19;

/**
 * x86-64 paging (shadow page tables): tables get P|RW|US (rights accumulate by AND, so the leaf
 * decides); leaves carry RW, US and NX from the permissions; MMIO is a present entry with a
 * reserved address bit, which faults with PFEC.RSVD as KVM's shadow MMIO entries do.
 */
function x86Format(levels: 4 | 5): TableFormat {
  return {
    name: `x86-${levels}level`,
    ept: false,
    levels,
    present: (lo) => (lo & PTE_P) !== 0,
    isLarge: (lo) => (lo & PTE_PS) !== 0,
    tableLo: (addr) => addrLo(addr) | PTE_P | PTE_RW | PTE_US,
    tableHi: addrHi,
    leafLo: (addr, perms, level) =>
      addrLo(addr) |
      PTE_P |
      ((perms & PERM_W) !== 0 ? PTE_RW : 0) |
      ((perms & PERM_U) !== 0 ? PTE_US : 0) |
      (level > 1 ? PTE_PS : 0),
    leafHi: (addr, perms) => addrHi(addr) | ((perms & PERM_X) !== 0 ? 0 : PTE_HI_NX),
    perms: (lo, hi) =>
      PERM_R |
      ((lo & PTE_RW) !== 0 ? PERM_W : 0) |
      ((hi & PTE_HI_NX) === 0 ? PERM_X : 0) |
      ((lo & PTE_US) !== 0 ? PERM_U : 0),
    mmioLo: PTE_P | PTE_RW | PTE_US,
    mmioHi: X86_MMIO_HI,
    isMmio: (lo, hi) => (lo & PTE_P) !== 0 && (hi & X86_MMIO_HI) !== 0,
    pointer: (root) => root,
  };
}

export const EPT4 = eptFormat(4);
export const EPT5 = eptFormat(5);
export const X86_4LEVEL = x86Format(4);
export const X86_5LEVEL = x86Format(5);
