/**
 * L0's own record of one L2 VM's memory map (L2 guest-physical page → L1 guest-physical page +
 * permissions), as L1 declared it through MAP / UNMAP / PROTECT / MAP_BATCH. L0 never reads an
 * L1 page table: this table is the only source EPT02 is composed from.
 *
 * Structure: a sparse two-level table, like the last level of a page table. The L2 page number is
 * split into a chunk index (pfn >> 9, a Map key) and a slot (pfn & 511) in a Float64Array of 512
 * entries (one 2 MiB L2 range). An entry is 0 when unmapped, else `l1pfn * 8 + perms` (perms is
 * a non-zero subset of R=1, W=2, X=4, so a mapped entry is never 0). 8 bytes per mapped page in
 * dense regions, O(1) lookup on the EPT02-miss path, and range operations skip absent chunks, so
 * an UNMAP of 2^20 pages over a sparse map costs the chunks it touches, not 2^20 lookups.
 */
const CHUNK_SHIFT = 9;
const CHUNK = 1 << CHUNK_SHIFT;

interface Chunk {
  e: Float64Array;
  /** Mapped entries in this chunk. */
  n: number;
}

export class L2Map {
  private readonly chunks = new Map<number, Chunk>();
  /** Mapped pages. */
  size = 0;

  /** The entry for an L2 page number: 0 when unmapped, else l1pfn * 8 + perms. */
  get(l2pfn: number): number {
    const c = this.chunks.get(Math.floor(l2pfn / CHUNK));
    return c === undefined ? 0 : c.e[l2pfn % CHUNK];
  }

  /** True when any page of [l2pfn, l2pfn + n) is mapped. */
  anyMapped(l2pfn: number, n: number): boolean {
    let p = l2pfn;
    const end = l2pfn + n;
    while (p < end) {
      const ci = Math.floor(p / CHUNK);
      const stop = Math.min(end, (ci + 1) * CHUNK);
      const c = this.chunks.get(ci);
      if (c !== undefined && c.n > 0) {
        for (let q = p; q < stop; q++) if (c.e[q % CHUNK] !== 0) return true;
      }
      p = stop;
    }
    return false;
  }

  /** Set a page (entry must be non-zero). Returns whether it was previously unmapped. */
  set(l2pfn: number, entry: number): boolean {
    const ci = Math.floor(l2pfn / CHUNK);
    let c = this.chunks.get(ci);
    if (c === undefined) {
      c = { e: new Float64Array(CHUNK), n: 0 };
      this.chunks.set(ci, c);
    }
    const s = l2pfn % CHUNK;
    const was = c.e[s] === 0;
    c.e[s] = entry;
    if (was) {
      c.n++;
      this.size++;
    }
    return was;
  }

  /** Remove a page; returns the old entry (0 when it was not mapped). */
  clear(l2pfn: number): number {
    const ci = Math.floor(l2pfn / CHUNK);
    const c = this.chunks.get(ci);
    if (c === undefined) return 0;
    const s = l2pfn % CHUNK;
    const old = c.e[s];
    if (old === 0) return 0;
    c.e[s] = 0;
    c.n--;
    this.size--;
    if (c.n === 0) this.chunks.delete(ci);
    return old;
  }

  /**
   * Visit the mapped pages of [l2pfn, l2pfn + n) in order (absent chunks are skipped). The
   * callback may change or clear the visited page (not others).
   */
  forEachIn(l2pfn: number, n: number, cb: (pfn: number, entry: number) => void): void {
    let p = l2pfn;
    const end = l2pfn + n;
    while (p < end) {
      const ci = Math.floor(p / CHUNK);
      const stop = Math.min(end, (ci + 1) * CHUNK);
      const c = this.chunks.get(ci);
      if (c !== undefined) {
        const base = ci * CHUNK;
        for (let q = p; q < stop; q++) {
          const v = c.e[q - base];
          if (v !== 0) cb(q, v);
        }
      }
      p = stop;
    }
  }

  /** Visit every mapped page (in chunk insertion order). */
  forEach(cb: (pfn: number, entry: number) => void): void {
    for (const [ci, c] of [...this.chunks]) {
      const base = ci * CHUNK;
      for (let s = 0; s < CHUNK; s++) if (c.e[s] !== 0) cb(base + s, c.e[s]);
    }
  }

  clearAll(): void {
    this.chunks.clear();
    this.size = 0;
  }
}

export function entryPerms(entry: number): number {
  return entry % 8;
}

export function entryL1Pfn(entry: number): number {
  return Math.floor(entry / 8);
}
