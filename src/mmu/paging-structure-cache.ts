/**
 * Paging-structure caches (SDM vol. 3, 4.10.3): per level, small fully-associative LRU caches
 * of non-leaf entries, keyed by the linear-address (or, for EPT, guest-physical) bits that
 * select them and by a context tag. A hit on the PDE cache lets a walk start at the page table
 * (1 reference instead of 4); a PDPTE hit at the page directory; a PML4E hit at the PDPT.
 *
 * Level L caches entries of level L (2 = PDE, 3 = PDPTE, 4 = PML4E, 5 = PML5E), keyed by
 * address bits 47(56):12+9(L-1). An entry holds the (host-)physical address of the next table,
 * its guest-physical address (nested walks), the permissions accumulated down to and including
 * the entry, and the EPT permissions of the next table's page.
 *
 * Sizes are an assumption (no row in calibration.md): PDE 32, PDPTE 4, PML4E 2, PML5E 2 entries,
 * the figures commonly given for Intel cores (Barr, Cox, Rixner, ISCA 2010; Bhattacharjee,
 * MICRO 2013). See docs/mmu.md.
 */

export interface PscSizes {
  pde: number;
  pdpte: number;
  pml4e: number;
  pml5e: number;
}

export const DEFAULT_PSC_SIZES: PscSizes = { pde: 32, pdpte: 4, pml4e: 2, pml5e: 2 };

function keyLo(lo: number, hi: number, shift: number): number {
  return shift >= 32 ? hi >>> (shift - 32) : (lo >>> shift) | (hi << (32 - shift));
}

function keyHi(hi: number, shift: number): number {
  return shift >= 32 ? 0 : hi >>> shift;
}

export class PagingStructureCache {
  /** First slot and slot count of each level (index = level 2..5). */
  private readonly first = new Int32Array(6);
  private readonly count = new Int32Array(6);
  private readonly kLo: Int32Array;
  private readonly kHi: Int32Array;
  private readonly ctxs: Int32Array;
  private readonly valid: Uint8Array;
  private readonly stamp: Float64Array;
  readonly next: Float64Array;
  readonly nextGpa: Float64Array;
  readonly perm: Int32Array;
  readonly tperm: Int32Array;
  private clock = 0;

  constructor(sizes: PscSizes = DEFAULT_PSC_SIZES) {
    const n = [0, 0, sizes.pde, sizes.pdpte, sizes.pml4e, sizes.pml5e];
    let total = 0;
    for (let l = 2; l <= 5; l++) {
      this.first[l] = total;
      this.count[l] = Math.max(0, n[l] | 0);
      total += this.count[l];
    }
    this.kLo = new Int32Array(total);
    this.kHi = new Int32Array(total);
    this.ctxs = new Int32Array(total);
    this.valid = new Uint8Array(total);
    this.stamp = new Float64Array(total);
    this.next = new Float64Array(total);
    this.nextGpa = new Float64Array(total);
    this.perm = new Int32Array(total);
    this.tperm = new Int32Array(total);
  }

  /** Entries of level `level`. */
  size(level: number): number {
    return this.count[level];
  }

  /** Slot of the level-`level` entry for address lo/hi in context `ctx`, or -1. */
  lookup(level: number, lo: number, hi: number, ctx: number): number {
    const n = this.count[level];
    if (n === 0) return -1;
    const shift = 12 + 9 * (level - 1);
    const kl = keyLo(lo, hi, shift);
    const kh = keyHi(hi, shift);
    const f = this.first[level];
    for (let k = f; k < f + n; k++) {
      if (this.valid[k] !== 0 && this.kLo[k] === kl && this.kHi[k] === kh && this.ctxs[k] === ctx) {
        this.stamp[k] = ++this.clock;
        return k;
      }
    }
    return -1;
  }

  insert(
    level: number,
    lo: number,
    hi: number,
    ctx: number,
    next: number,
    nextGpa: number,
    perm: number,
    tperm: number,
  ): void {
    const n = this.count[level];
    if (n === 0) return;
    const shift = 12 + 9 * (level - 1);
    const kl = keyLo(lo, hi, shift);
    const kh = keyHi(hi, shift);
    const f = this.first[level];
    let victim = f;
    for (let k = f; k < f + n; k++) {
      if (this.valid[k] !== 0 && this.kLo[k] === kl && this.kHi[k] === kh && this.ctxs[k] === ctx) {
        victim = k; // refresh in place
        break;
      }
      if (this.valid[k] === 0) {
        if (this.valid[victim] !== 0) victim = k;
      } else if (this.valid[victim] !== 0 && this.stamp[k] < this.stamp[victim]) victim = k;
    }
    this.valid[victim] = 1;
    this.kLo[victim] = kl;
    this.kHi[victim] = kh;
    this.ctxs[victim] = ctx;
    this.next[victim] = next;
    this.nextGpa[victim] = nextGpa;
    this.perm[victim] = perm;
    this.tperm[victim] = tperm;
    this.stamp[victim] = ++this.clock;
  }

  /** Drop entries whose context matches `ctx` on the bits of `mask`. Returns how many. */
  invalidateCtx(ctx: number, mask: number): number {
    let n = 0;
    for (let k = 0; k < this.valid.length; k++) {
      if (this.valid[k] !== 0 && ((this.ctxs[k] ^ ctx) & mask) === 0) {
        this.valid[k] = 0;
        n++;
      }
    }
    return n;
  }

  /** Drop the entries that would be used to translate lo/hi in context `ctx` (page faults). */
  invalidateAddr(lo: number, hi: number, ctx: number): number {
    let n = 0;
    for (let l = 2; l <= 5; l++) {
      const k = this.lookup(l, lo, hi, ctx);
      if (k >= 0) {
        this.valid[k] = 0;
        n++;
      }
    }
    return n;
  }

  invalidateAll(): number {
    let n = 0;
    for (let k = 0; k < this.valid.length; k++) n += this.valid[k];
    this.valid.fill(0);
    return n;
  }

  /** Valid entries (tests, stats). */
  occupancy(level: number): number {
    let n = 0;
    const f = this.first[level];
    for (let k = f; k < f + this.count[level]; k++) n += this.valid[k];
    return n;
  }
}
