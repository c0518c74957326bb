/**
 * TLB arrays: set-associative, LRU, tagged by a context tag, storage in typed arrays.
 *
 * Context tag (an int32): bits 11:0 PCID, 15:12 EPTP index, 31:16 VPID (see `contextTag`).
 * A global entry (G with CR4.PGE) matches any PCID of the same VPID/EPTP; INVPCID/CR3
 * invalidations only ever touch the current VPID/EPTP.
 *
 * An entry caches the translation of one page: its virtual page number at the entry's page size,
 * the page's physical base, the permissions accumulated over the walk (PERM_* of walker.ts),
 * dirty, global, memory-type bits. Rights are checked at use, as on hardware.
 */

import { LEAF_G } from "./walker.js";

/** Page-size codes (an entry's `size`), and the page shift for each. */
export const SZ_4K = 0;
export const SZ_2M = 1;
export const SZ_1G = 2;
export const SIZE_SHIFT = [12, 21, 30] as const;
/** Bit masks for an array's accepted sizes. */
export const SIZES_4K = 1 << SZ_4K;
export const SIZES_2M = 1 << SZ_2M;
export const SIZES_1G = 1 << SZ_1G;

/** PCID bits of a context tag. */
export const CTX_PCID_MASK = 0xfff;

/** The context tag of (vpid, eptpIndex, pcid). */
export function contextTag(vpid: number, eptpIndex: number, pcid: number): number {
  return ((vpid & 0xffff) << 16) | ((eptpIndex & 0xf) << 12) | (pcid & 0xfff);
}

export function sizeCodeOfShift(shift: number): number {
  return shift === 12 ? SZ_4K : shift === 21 ? SZ_2M : SZ_1G;
}

/** Geometry of one array. */
export interface TlbGeometry {
  entries: number;
  ways: number;
}

export class TlbArray {
  readonly name: string;
  readonly sets: number;
  readonly ways: number;
  /** SIZES_* mask of page sizes this array holds. */
  readonly sizes: number;
  readonly vpnLo: Int32Array;
  readonly vpnHi: Int32Array;
  readonly ctx: Int32Array;
  /** 0: invalid; else 1 | size << 1 | info << 3 (info: PERM_* | LEAF_* bits from the walker). */
  readonly meta: Int32Array;
  /** Physical base address of the page. */
  readonly base: Float64Array;
  private readonly stamp: Float64Array;
  private clock = 0;

  // Set by insert() when it evicted a valid entry.
  evicted = false;
  evictedLo = 0;
  evictedHi = 0;
  evictedSize = 0;

  constructor(name: string, geometry: TlbGeometry, sizes: number) {
    const ways = Math.max(1, geometry.ways | 0);
    const sets = Math.max(1, Math.floor(geometry.entries / ways));
    if ((sets & (sets - 1)) !== 0) throw new RangeError(`${name}: set count ${sets} is not a power of two`);
    this.name = name;
    this.sets = sets;
    this.ways = ways;
    this.sizes = sizes;
    const n = sets * ways;
    this.vpnLo = new Int32Array(n);
    this.vpnHi = new Int32Array(n);
    this.ctx = new Int32Array(n);
    this.meta = new Int32Array(n);
    this.base = new Float64Array(n);
    this.stamp = new Float64Array(n);
  }

  get entries(): number {
    return this.sets * this.ways;
  }

  /** Index of the entry for lo/hi at page size `size` in context `ctx`, or -1 (LRU updated). */
  probe(lo: number, hi: number, size: number, ctx: number): number {
    const shift = SIZE_SHIFT[size];
    const vl = (lo >>> shift) | (hi << (32 - shift));
    const vh = hi >>> shift;
    const w = this.ways;
    const first = (vl & (this.sets - 1)) * w;
    const want = 1 | (size << 1);
    for (let k = first; k < first + w; k++) {
      const m = this.meta[k];
      if ((m & 7) === want && this.vpnLo[k] === vl && this.vpnHi[k] === vh) {
        const c = this.ctx[k];
        if (c === ctx || ((m & (LEAF_G << 3)) !== 0 && ((c ^ ctx) & ~CTX_PCID_MASK) === 0)) {
          this.stamp[k] = ++this.clock;
          return k;
        }
      }
    }
    return -1;
  }

  /** Look lo/hi up at every page size this array holds. */
  lookup(lo: number, hi: number, ctx: number): number {
    const s = this.sizes;
    if ((s & SIZES_4K) !== 0) {
      const k = this.probe(lo, hi, SZ_4K, ctx);
      if (k >= 0) return k;
    }
    if ((s & SIZES_2M) !== 0) {
      const k = this.probe(lo, hi, SZ_2M, ctx);
      if (k >= 0) return k;
    }
    if ((s & SIZES_1G) !== 0) return this.probe(lo, hi, SZ_1G, ctx);
    return -1;
  }

  /** Insert (or refresh) a translation; the LRU victim's address is reported in evicted*. */
  insert(lo: number, hi: number, size: number, ctx: number, info: number, base: number): number {
    const shift = SIZE_SHIFT[size];
    const vl = (lo >>> shift) | (hi << (32 - shift));
    const vh = hi >>> shift;
    const w = this.ways;
    const first = (vl & (this.sets - 1)) * w;
    const want = 1 | (size << 1);
    this.evicted = false;
    let victim = -1;
    for (let k = first; k < first + w; k++) {
      const m = this.meta[k];
      if ((m & 7) === want && this.vpnLo[k] === vl && this.vpnHi[k] === vh && this.ctx[k] === ctx) {
        victim = k; // same page, same context: refresh
        break;
      }
      if (m === 0) {
        if (victim < 0 || this.meta[victim] !== 0) victim = k;
      } else if (victim < 0 || (this.meta[victim] !== 0 && this.stamp[k] < this.stamp[victim])) victim = k;
    }
    const old = this.meta[victim];
    if (old !== 0 && !((old & 7) === want && this.vpnLo[victim] === vl && this.vpnHi[victim] === vh)) {
      this.evicted = true;
      this.reportAddress(victim);
    }
    this.vpnLo[victim] = vl;
    this.vpnHi[victim] = vh;
    this.ctx[victim] = ctx;
    this.meta[victim] = want | (info << 3);
    this.base[victim] = base;
    this.stamp[victim] = ++this.clock;
    return victim;
  }

  /** Put entry k's linear page base in evictedLo/Hi/Size. */
  reportAddress(k: number): void {
    const size = (this.meta[k] >>> 1) & 3;
    const shift = SIZE_SHIFT[size];
    this.evictedSize = size;
    this.evictedLo = this.vpnLo[k] << shift;
    this.evictedHi = (this.vpnHi[k] << shift) | (this.vpnLo[k] >>> (32 - shift));
  }

  /** Info bits (PERM_* | LEAF_*) of entry k. */
  info(k: number): number {
    return this.meta[k] >>> 3;
  }

  size(k: number): number {
    return (this.meta[k] >>> 1) & 3;
  }

  invalidateEntry(k: number): void {
    this.meta[k] = 0;
  }

  /**
   * Drop entries translating lo/hi (any size): non-global ones whose context equals `ctx`, and
   * when `global`, global ones of the same VPID/EPTP (any PCID). Returns a mask: 1 = a 4 KiB entry was dropped, 2 = a larger one.
   */
  invalidatePage(lo: number, hi: number, ctx: number, global: boolean): number {
    let dropped = 0;
    for (let size = 0; size < 3; size++) {
      if ((this.sizes & (1 << size)) === 0) continue;
      const shift = SIZE_SHIFT[size];
      const vl = (lo >>> shift) | (hi << (32 - shift));
      const vh = hi >>> shift;
      const first = (vl & (this.sets - 1)) * this.ways;
      const want = 1 | (size << 1);
      for (let k = first; k < first + this.ways; k++) {
        const m = this.meta[k];
        if ((m & 7) !== want || this.vpnLo[k] !== vl || this.vpnHi[k] !== vh) continue;
        const isGlobal = (m & (LEAF_G << 3)) !== 0;
        const c = this.ctx[k];
        if (isGlobal ? global && ((c ^ ctx) & ~CTX_PCID_MASK) === 0 : c === ctx) {
          this.meta[k] = 0;
          dropped |= size === SZ_4K ? 1 : 2;
        }
      }
    }
    return dropped;
  }

  /**
   * Drop entries whose context matches `ctx` on the bits of `ctxMask`; global entries only when
   * `global`. Returns how many.
   */
  invalidateMatching(ctx: number, ctxMask: number, global: boolean): number {
    let n = 0;
    const meta = this.meta;
    for (let k = 0; k < meta.length; k++) {
      const m = meta[k];
      if (m === 0) continue;
      if (!global && (m & (LEAF_G << 3)) !== 0) continue;
      if (((this.ctx[k] ^ ctx) & ctxMask) !== 0) continue;
      meta[k] = 0;
      n++;
    }
    return n;
  }

  invalidateAll(): number {
    let n = 0;
    for (let k = 0; k < this.meta.length; k++) if (this.meta[k] !== 0) n++;
    this.meta.fill(0);
    return n;
  }

  /** Valid entries. */
  occupancy(): number {
    let n = 0;
    for (let k = 0; k < this.meta.length; k++) if (this.meta[k] !== 0) n++;
    return n;
  }
}

/**
 * One TLB level: a list of arrays, each holding some page sizes (an L1 has one array per size;
 * the STLB one for 4 KiB + 2 MiB and one for 1 GiB). `lookup` sets `hitArray`/`hitIndex`.
 */
export class Tlb {
  readonly name: string;
  readonly arrays: TlbArray[];
  hitArray: TlbArray;
  hitIndex = -1;

  constructor(name: string, arrays: TlbArray[]) {
    this.name = name;
    this.arrays = arrays;
    this.hitArray = arrays[0];
  }

  lookup(lo: number, hi: number, ctx: number): boolean {
    const a = this.arrays;
    for (let i = 0; i < a.length; i++) {
      const k = a[i].lookup(lo, hi, ctx);
      if (k >= 0) {
        this.hitArray = a[i];
        this.hitIndex = k;
        return true;
      }
    }
    this.hitIndex = -1;
    return false;
  }

  /** The array that holds pages of size code `size` (undefined when none does). */
  arrayFor(size: number): TlbArray | undefined {
    const a = this.arrays;
    for (let i = 0; i < a.length; i++) if ((a[i].sizes & (1 << size)) !== 0) return a[i];
    return undefined;
  }

  invalidatePage(lo: number, hi: number, ctx: number, global: boolean): number {
    let d = 0;
    for (const a of this.arrays) d |= a.invalidatePage(lo, hi, ctx, global);
    return d;
  }

  invalidateMatching(ctx: number, ctxMask: number, global: boolean): number {
    let n = 0;
    for (const a of this.arrays) n += a.invalidateMatching(ctx, ctxMask, global);
    return n;
  }

  invalidateAll(): number {
    let n = 0;
    for (const a of this.arrays) n += a.invalidateAll();
    return n;
  }

  occupancy(): number {
    let n = 0;
    for (const a of this.arrays) n += a.occupancy();
    return n;
  }
}
