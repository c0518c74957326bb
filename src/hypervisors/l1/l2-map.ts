/**
 * L1's record of one L2's memory map: which L1 guest-physical page backs each L2 guest-physical
 * page, with its permissions. L1 keeps it in software, in a structure of its choosing (the npv
 * ABI never asks L1 for page tables): here a **sorted list of extents** — runs of L2 pages backed
 * by a run of consecutive L1 pages with the same permissions — searched by binary search.
 *
 * Why extents rather than a Map from L2 pfn to L1 pfn: L1 maps memory in runs (the loaded image,
 * a fault's batch of neighbours, all of RAM when eager) from a bump allocator that hands out
 * consecutive pages, so runs stay runs and the list stays short (an eagerly mapped 256 MiB L2 is
 * one extent; a demand-paged one a few hundred), where a per-page Map would hold 65,536 entries.
 * A lookup is O(log extents); inserting merges with contiguous neighbours; an extent is also
 * exactly what a MAP hypercall or a MAP_BATCH entry describes, so L1 can replay its map to L0 as
 * it is. Page numbers (pfns) are used throughout, so everything stays below 2^53.
 */
export interface Extent {
  /** First L2 page frame number. */
  l2Pfn: number;
  /** First L1 page frame number backing it. */
  l1Pfn: number;
  npages: number;
  /** NPV_PERM_* bits. */
  perms: number;
}

export class L2MemoryMap {
  private readonly ext: Extent[] = [];
  /** Pages mapped in total. */
  mappedPages = 0;

  get extentCount(): number {
    return this.ext.length;
  }

  /** The extents, in L2 order (copies). */
  extents(): Extent[] {
    return this.ext.map((e) => ({ ...e }));
  }

  /** Index of the last extent starting at or below `l2Pfn`, or -1. */
  private floor(l2Pfn: number): number {
    let lo = 0;
    let hi = this.ext.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.ext[mid].l2Pfn <= l2Pfn) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  /** The L1 pfn and permissions backing L2 page `l2Pfn`, or null when unmapped. */
  lookup(l2Pfn: number): { l1Pfn: number; perms: number } | null {
    const i = this.floor(l2Pfn);
    if (i < 0) return null;
    const e = this.ext[i];
    if (l2Pfn >= e.l2Pfn + e.npages) return null;
    return { l1Pfn: e.l1Pfn + (l2Pfn - e.l2Pfn), perms: e.perms };
  }

  isMapped(l2Pfn: number): boolean {
    return this.lookup(l2Pfn) !== null;
  }

  /** True when any page of [l2Pfn, l2Pfn + npages) is mapped. */
  overlaps(l2Pfn: number, npages: number): boolean {
    const i = this.floor(l2Pfn + npages - 1);
    if (i < 0) return false;
    const e = this.ext[i];
    return e.l2Pfn + e.npages > l2Pfn;
  }

  /**
   * Record [l2Pfn, +npages) → [l1Pfn, +npages). Like the MAP hypercall, refuses (throws) if any
   * page is already mapped: L1 never remaps silently. Merges with contiguous neighbours.
   */
  insert(l2Pfn: number, l1Pfn: number, npages: number, perms: number): void {
    if (
      !Number.isSafeInteger(l2Pfn) ||
      !Number.isSafeInteger(l1Pfn) ||
      !Number.isInteger(npages) ||
      npages <= 0 ||
      l2Pfn < 0 ||
      l1Pfn < 0
    ) {
      throw new RangeError(`bad extent ${l2Pfn}+${npages} → ${l1Pfn}`);
    }
    if (this.overlaps(l2Pfn, npages))
      throw new RangeError(`L2 pages ${l2Pfn}..${l2Pfn + npages - 1} are already (partly) mapped`);
    const i = this.floor(l2Pfn); // the extent before the new one (or -1)
    const prev = i >= 0 ? this.ext[i] : undefined;
    const next = this.ext[i + 1];
    const joinPrev =
      prev !== undefined &&
      prev.l2Pfn + prev.npages === l2Pfn &&
      prev.l1Pfn + prev.npages === l1Pfn &&
      prev.perms === perms;
    const joinNext =
      next !== undefined && l2Pfn + npages === next.l2Pfn && l1Pfn + npages === next.l1Pfn && next.perms === perms;
    if (joinPrev && joinNext) {
      prev.npages += npages + next.npages;
      this.ext.splice(i + 1, 1);
    } else if (joinPrev) prev.npages += npages;
    else if (joinNext) {
      next.l2Pfn = l2Pfn;
      next.l1Pfn = l1Pfn;
      next.npages += npages;
    } else this.ext.splice(i + 1, 0, { l2Pfn, l1Pfn, npages, perms });
    this.mappedPages += npages;
  }

  /** Forget [l2Pfn, +npages) (unmapped pages are skipped); returns the removed pieces. */
  remove(l2Pfn: number, npages: number): Extent[] {
    const end = l2Pfn + npages;
    const removed: Extent[] = [];
    const kept: Extent[] = [];
    let i = Math.max(0, this.floor(l2Pfn));
    let j = i;
    for (; j < this.ext.length && this.ext[j].l2Pfn < end; j++) {
      const e = this.ext[j];
      const eEnd = e.l2Pfn + e.npages;
      if (eEnd <= l2Pfn) {
        kept.push(e);
        continue;
      }
      const cutLo = Math.max(l2Pfn, e.l2Pfn);
      const cutHi = Math.min(end, eEnd);
      if (e.l2Pfn < cutLo) kept.push({ ...e, npages: cutLo - e.l2Pfn });
      removed.push({ l2Pfn: cutLo, l1Pfn: e.l1Pfn + (cutLo - e.l2Pfn), npages: cutHi - cutLo, perms: e.perms });
      if (cutHi < eEnd) kept.push({ ...e, l2Pfn: cutHi, l1Pfn: e.l1Pfn + (cutHi - e.l2Pfn), npages: eEnd - cutHi });
    }
    if (i > j) i = j;
    this.ext.splice(i, j - i, ...kept);
    for (const r of removed) this.mappedPages -= r.npages;
    return removed;
  }

  /** The unmapped runs of [l2Pfn, +npages), as [start, length] pairs in order. */
  holes(l2Pfn: number, npages: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    let run = -1;
    for (let p = l2Pfn; p < l2Pfn + npages; p++) {
      if (this.isMapped(p)) {
        if (run >= 0) out.push([run, p - run]);
        run = -1;
      } else if (run < 0) run = p;
    }
    if (run >= 0) out.push([run, l2Pfn + npages - run]);
    return out;
  }
}
