import { pageLine } from "../mmu/data-cache.js";
import { PAGE_SIZE } from "../mmu/phys.js";
import { ACC_WRITE } from "../mmu/walker.js";
import type { Cpu } from "./cpu.js";
import { dataAccess } from "./debug.js";

/**
 * The data memory path's slow half: what `Cpu.readN` / `writeN` (and compiled blocks) do when
 * the software TLB misses. The fast halves stay in cpu.ts, inlined into every handler: a probe of
 * the direct-mapped software TLB, the data-access counter and the data-cache touch. Here: the
 * page walk (`Cpu.translate`, with its charges and faults), the TLB fill, accesses that cross a
 * page, device memory, data breakpoints, and stores to pages that hold decoded code.
 */

/** Direct-mapped software TLB entries per privilege set (supervisor, user). */
export const TLB_SIZE = 256;
/** A tag no page-aligned address can equal. */
export const TLB_INVALID = 1;

/** The software-TLB slot of linear page lo:hi in the set starting at `set`. */
export function tlbIndex(lo: number, hi: number, set: number): number {
  return (((lo >>> 12) ^ hi) & (TLB_SIZE - 1)) | set;
}

/**
 * Write translations of pages that hold decoded code. Such pages never enter the fast write TLB
 * (every store to them must reach the self-modifying-code check), so their stores come to
 * `writeSlow`; this second-chance entry spares them the walk.
 */
export class CodePageWrites {
  readonly tagLo = new Int32Array(TLB_SIZE * 2).fill(TLB_INVALID);
  readonly tagHi = new Int32Array(TLB_SIZE * 2);
  readonly pfn = new Float64Array(TLB_SIZE * 2);
}

export function readSlow(c: Cpu, lo: number, hi: number, size: number): number {
  if (c.dbgData) dataAccess(c, lo, hi, size, false);
  const off = lo & 0xfff;
  if (off + size > PAGE_SIZE) {
    // Page-crossing: byte by byte (each byte translated; rare), lowest first so that CR2 is
    // where the fault begins (the access's start, or the first byte of the second page).
    let v = 0;
    for (let k = 0; k < size; k++) {
      const a = (lo + k) | 0;
      const h = a >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi;
      v |= c.read8(a, h) << (8 * k);
    }
    return size === 2 ? v & 0xffff : v;
  }
  const pa = c.translate(lo, hi, c.userAccess());
  const pfn = Math.floor(pa / PAGE_SIZE);
  const ram = c.mem.isRam(pa);
  if (ram) c.dcache.touchDataAt(pa); // device memory is uncached: not modelled
  const view = ram && !c.dbgData ? c.mem.page(pfn) : undefined;
  if (view === undefined) {
    const v = c.mem.read(pa, size as 1 | 2 | 4);
    return size === 4 ? v | 0 : v;
  }
  const idx = tlbIndex(lo, hi, c.tlbSet);
  c.rTagLo[idx] = lo & ~0xfff;
  c.rTagHi[idx] = hi;
  c.rView[idx] = view;
  c.rLine[idx] = pageLine(pfn);
  c.counters.tlbFills++;
  return size === 1 ? view.getUint8(off) : size === 2 ? view.getUint16(off, true) : view.getInt32(off, true);
}

export function writeSlow(c: Cpu, lo: number, hi: number, size: number, v: number): void {
  const off = lo & 0xfff;
  const cw = c.codeWrites;
  if (c.dbgData) dataAccess(c, lo, hi, size, true);
  if (off + size <= PAGE_SIZE && !c.dbgData) {
    const idx = tlbIndex(lo, hi, c.tlbSet);
    if (cw.tagLo[idx] === (lo & ~0xfff) && cw.tagHi[idx] === hi) {
      const pfn = cw.pfn[idx];
      c.dcache.touchDataAt(pfn * PAGE_SIZE + off);
      storeToPage(c, c.mem.page(pfn) as DataView, pfn, off, size, v);
      return;
    }
  }
  if (off + size > PAGE_SIZE) {
    // Probe every byte's page first so a fault on the second page writes nothing (CR2: the
    // first byte of that page).
    const a2 = ((lo | 0xfff) + 1) | 0;
    c.translate(lo, hi, ACC_WRITE | c.userAccess());
    c.translate(a2, a2 >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi, ACC_WRITE | c.userAccess());
    for (let k = 0; k < size; k++) {
      const a = (lo + k) | 0;
      c.write8(a, a >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi, v >>> (8 * k));
    }
    return;
  }
  const pa = c.translate(lo, hi, ACC_WRITE | c.userAccess());
  const pfn = Math.floor(pa / PAGE_SIZE);
  const ram = c.mem.isRam(pa);
  if (ram) c.dcache.touchDataAt(pa); // device memory is uncached: not modelled
  if (!ram || c.dbgData) {
    c.mem.write(pa, size as 1 | 2 | 4, v);
    return;
  }
  const view = c.mem.page(pfn) as DataView;
  const idx = tlbIndex(lo, hi, c.tlbSet);
  if (c.mem.codePage[pfn] === 0) {
    c.wTagLo[idx] = lo & ~0xfff;
    c.wTagHi[idx] = hi;
    c.wView[idx] = view;
    c.wLine[idx] = pageLine(pfn);
    c.counters.tlbFills++;
  } else {
    cw.tagLo[idx] = lo & ~0xfff;
    cw.tagHi[idx] = hi;
    cw.pfn[idx] = pfn;
  }
  storeToPage(c, view, pfn, off, size, v);
}

function storeToPage(c: Cpu, view: DataView, pfn: number, off: number, size: number, v: number): void {
  c.mem.noteWrite(pfn, off, size); // self-modifying code: drop overlapping decoded instructions
  if (size === 1) view.setUint8(off, v);
  else if (size === 2) view.setUint16(off, v, true);
  else view.setInt32(off, v, true);
}
