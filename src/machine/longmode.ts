import type { Cpu } from "../cpu/cpu.js";
import { setSegment } from "../cpu/segments.js";
import { CR0_PE, CR0_PG, CR0_WP, CR4_PAE, EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE } from "../x86/control.js";

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
 * Put the CPU straight into 64-bit long mode at CPL 0, as a 64-bit boot protocol hands over:
 * a GDT with flat 64-bit code and data segments, identity-mapped page tables with 2 MiB pages
 * covering `identityGiB`, CR0.PG|PE|WP, CR4.PAE, EFER.LME|LMA|NXE|SCE, interrupts disabled.
 */
export function enterLongMode(c: Cpu, layout: LongModeLayout = DEFAULT_LAYOUT): void {
  const mem = c.mem;
  const gib = Math.max(1, Math.min(512, layout.identityGiB));
  const pml4 = layout.pageTables;
  const pdpt = pml4 + 0x1000;
  const pd0 = pml4 + 0x2000; // gib page directories follow
  mem.write64(pml4, pdpt | 0x3, 0); // P|RW
  for (let g = 0; g < gib; g++) {
    const pd = pd0 + g * 0x1000;
    mem.write64(pdpt + g * 8, pd | 0x3, 0);
    for (let e = 0; e < 512; e++) {
      const addr = g * 2 ** 30 + e * 2 ** 21;
      mem.write64(pd + e * 8, (addr % 2 ** 32) | 0x83 | 0, Math.floor(addr / 2 ** 32)); // P|RW|PS
    }
  }
  // GDT: null, 64-bit code (L=1, P, DPL0, type 0xB), data (P, type 3), 32-bit code.
  const gdt = layout.gdt;
  mem.write64(gdt, 0, 0);
  mem.write64(gdt + 8, 0x0000ffff, 0x00af9b00);
  mem.write64(gdt + 16, 0x0000ffff, 0x00cf9300);
  mem.write64(gdt + 24, 0x0000ffff, 0x00cf9b00);
  c.gdtrBaseLo = gdt;
  c.gdtrBaseHi = 0;
  c.gdtrLimit = 31;
  c.cr3Lo = pml4;
  c.cr3Hi = 0;
  c.cr4 |= CR4_PAE;
  c.efer |= EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE;
  c.cr0 = (c.cr0 | CR0_PE | CR0_PG | CR0_WP) & ~0x60000000;
  setSegment(c, 1, SEL_CODE64, 0, 0, 0xffffffff, 0xa09b);
  for (const s of [0, 2, 3, 4, 5]) setSegment(c, s, SEL_DATA, 0, 0, 0xffffffff, 0xc093);
  c.setFlags(0x2);
  c.setCpl(0);
  c.updateMode();
  c.flushTlb();
}
