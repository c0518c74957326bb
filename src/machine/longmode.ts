import type { Cpu } from "../cpu/cpu.js";
import type { PhysicalMemory } from "../mmu/phys.js";
import {
  CR0_CD,
  CR0_NW,
  CR0_PE,
  CR0_PG,
  CR0_WP,
  CR4_PAE,
  EFER_LMA,
  EFER_LME,
  EFER_NXE,
  EFER_SCE,
} from "../x86/control.js";
import { type BootState, cpuBootState, loadBootRegisters } from "./boot-state.js";

/** Where `enterLongMode` puts its structures unless told otherwise (below 1 MiB, page-aligned). */
export interface LongModeLayout {
  /** Physical address of the PML4 (3 more pages follow for PDPT and page directories). */
  pageTables: number;
  /** Physical address of the GDT (3 descriptors). */
  gdt: number;
  /** How many GiB to identity-map with 2 MiB pages (1..512). */
  identityGiB: number;
}

export const DEFAULT_LAYOUT: LongModeLayout = { pageTables: 0x1000, gdt: 0x500, identityGiB: 4 };

/** Selectors of the GDT that enterLongMode builds. */
export const SEL_CODE64 = 0x08;
export const SEL_DATA = 0x10;
export const SEL_CODE32 = 0x18;

/**
 * Write what 64-bit long mode needs in memory: identity-mapped page tables with 2 MiB pages
 * covering `identityGiB` and a GDT with flat 64-bit code and data segments.
 */
export function writeLongModeTables(mem: PhysicalMemory, layout: LongModeLayout = DEFAULT_LAYOUT): void {
  const gib = Math.max(1, Math.min(512, layout.identityGiB));
  const pml4 = layout.pageTables;
  const pdpt = pml4 + 0x1000;
  const pd0 = pml4 + 0x2000; // gib page directories follow
  mem.write64(pml4, pdpt | 0x3, 0); // P|RW
  // Each directory is filled in a buffer and copied in whole: 512 separate 64-bit writes per GiB
  // through the byte-granular path were most of a boot loader's time (issue 11).
  const dir = new Uint8Array(4096);
  const dirView = new DataView(dir.buffer);
  for (let g = 0; g < gib; g++) {
    const pd = pd0 + g * 0x1000;
    mem.write64(pdpt + g * 8, pd | 0x3, 0);
    for (let e = 0; e < 512; e++) {
      const addr = g * 2 ** 30 + e * 2 ** 21;
      dirView.setUint32(e * 8, (addr % 2 ** 32) | 0x83, true); // P|RW|PS
      dirView.setUint32(e * 8 + 4, Math.floor(addr / 2 ** 32), true);
    }
    mem.writeBytes(pd, dir);
  }
  // GDT: null, 64-bit code (L=1, P, DPL0, type 0xB), data (P, type 3), 32-bit code.
  const gdt = layout.gdt;
  mem.write64(gdt, 0, 0);
  mem.write64(gdt + 8, 0x0000ffff, 0x00af9b00);
  mem.write64(gdt + 16, 0x0000ffff, 0x00cf9300);
  mem.write64(gdt + 24, 0x0000ffff, 0x00cf9b00);
}

/**
 * The registers of the 64-bit handover at CPL 0 (tables from `writeLongModeTables`): the GDT,
 * CR3 at the PML4, CR0.PG|PE|WP, CR4.PAE, EFER.LME|LMA|NXE|SCE, flat 64-bit segments,
 * interrupts disabled.
 */
export function longModeRegisters(s: BootState, layout: LongModeLayout = DEFAULT_LAYOUT): void {
  s.gdtr = { baseLo: layout.gdt, baseHi: 0, limit: 31 };
  s.cr3Lo = layout.pageTables;
  s.cr3Hi = 0;
  s.cr4 |= CR4_PAE;
  s.efer |= EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE;
  s.cr0 = (s.cr0 | CR0_PE | CR0_PG | CR0_WP) & ~(CR0_CD | CR0_NW);
  s.segs[1] = { sel: SEL_CODE64, baseLo: 0, baseHi: 0, limit: 0xffffffff, ar: 0xa09b };
  for (const k of [0, 2, 3, 4, 5]) s.segs[k] = { sel: SEL_DATA, baseLo: 0, baseHi: 0, limit: 0xffffffff, ar: 0xc093 };
  s.rflags = 0x2;
}

/** Put a bare CPU straight into 64-bit long mode at CPL 0 (tables and registers as above). */
export function enterLongMode(c: Cpu, layout: LongModeLayout = DEFAULT_LAYOUT): void {
  writeLongModeTables(c.mem, layout);
  const s = cpuBootState(c);
  longModeRegisters(s, layout);
  loadBootRegisters(c, s);
}
