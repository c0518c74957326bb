/**
 * A set-associative model of the data-side cache hierarchy of one core (L1D, L2, a per-core
 * share of the LLC), used to decide where each page-walk reference is found and so what it costs.
 * Guest loads and stores touch it too (that is what evicts paging-structure lines), but only the
 * walker's references are charged: an ordinary access costs its instruction (docs/cost-model.md).
 *
 * Lines are 64 bytes, named by their line number (physical address / 64) as an int32: physical
 * addresses above 2^37 alias (nestlab's memories are far smaller). Each level is LRU and sees
 * only the misses of the level above; a miss fills every level it missed in (non-inclusive,
 * non-exclusive; no write-backs, no prefetchers). Set index = low bits of the line number.
 *
 * Exactness and speed: in LRU, touching the most recently used line of a set changes nothing,
 * at any level (the levels below never see an L1D hit). `mru` holds each L1D set's MRU line, so
 * the CPU's fast path (and compiled code) skips the call when `mru[line & l1Mask] === line`:
 * the skip is exact, not sampled, and the state after a run is the same with or without it.
 */

export interface CacheLevelGeometry {
  /** Capacity in KiB (a multiple of ways x 64 bytes, giving a power-of-two number of sets). */
  kib: number;
  ways: number;
}

export interface DataCacheGeometry {
  l1d: CacheLevelGeometry;
  l2: CacheLevelGeometry;
  llc: CacheLevelGeometry;
}

/** Where a reference was found (index into the `found` arrays and the walk charges). */
export const FOUND_L1D = 0;
export const FOUND_L2 = 1;
export const FOUND_LLC = 2;
export const FOUND_DRAM = 3;

/** Cascade Lake / Skylake-SP (see the cascadelake-kvm profile's `caches` for the sources). */
export const DEFAULT_DATA_CACHE: DataCacheGeometry = {
  l1d: { kib: 32, ways: 8 },
  l2: { kib: 1024, ways: 16 },
  llc: { kib: 1408, ways: 11 },
};

const LINE_BYTES = 64;

export class CacheGeometryError extends Error {}

/** One LRU level: per set, `ways` tags in recency order (most recent first). */
class CacheLevel {
  readonly tags: Int32Array;
  readonly ways: number;
  readonly mask: number;

  constructor(name: string, g: CacheLevelGeometry) {
    const lines = (g.kib * 1024) / LINE_BYTES;
    const sets = lines / g.ways;
    if (!Number.isInteger(g.ways) || g.ways < 1 || !Number.isInteger(sets) || sets < 1 || (sets & (sets - 1)) !== 0) {
      throw new CacheGeometryError(
        `cache ${name}: ${g.kib} KiB with ${g.ways} ways does not give a power-of-two number of 64-byte-line sets`,
      );
    }
    this.ways = g.ways;
    this.mask = sets - 1;
    this.tags = new Int32Array(lines).fill(-1);
  }

  /** Look `line` up and make it most recent (filling it on a miss); true on a hit. */
  access(line: number): boolean {
    const t = this.tags;
    const w = this.ways;
    const base = (line & this.mask) * w;
    let i = 0;
    while (i < w && t[base + i] !== line) i++;
    const hit = i < w;
    if (!hit) i = w - 1; // evict the least recent
    for (; i > 0; i--) t[base + i] = t[base + i - 1];
    t[base] = line;
    return hit;
  }

  clear(): void {
    this.tags.fill(-1);
  }
}

/**
 * What the CPU's loads and stores touch. The fast paths (and compiled code) test `mru` first and
 * call `touchData` only when the line is not its set's most recent one.
 */
export interface DataTouch {
  readonly mru: Int32Array;
  readonly l1Mask: number;
  /** A load or store of line `line` (an MRU miss). */
  touchData(line: number): void;
  /** A load or store at physical address `pa` (slow paths). */
  touchDataAt(pa: number): void;
}

/**
 * `--cache-model off`: nothing is modelled. Loads and stores touch a one-entry MRU filter (so the
 * CPU's fast paths call `touchData` only when the line changes, and that call only records it);
 * walks are charged flat (the MMU has no data cache, Cpu.chargeWalk).
 */
export class NoDataCache implements DataTouch {
  readonly mru = new Int32Array(1).fill(-1);
  readonly l1Mask = 0;

  touchData(line: number): void {
    this.mru[0] = line;
  }

  touchDataAt(_pa: number): void {}
}

export class DataCacheModel implements DataTouch {
  readonly geometry: DataCacheGeometry;
  /** Most recently used line of each L1D set (the fast-path filter; see the file comment). */
  readonly mru: Int32Array;
  /** Number of L1D sets minus one. */
  readonly l1Mask: number;
  /** Page-walk references by where they were found (FOUND_*). */
  readonly walkFound = new Float64Array(4);
  /** Data accesses that reached the model (not filtered as MRU hits), by where found. */
  readonly dataFound = new Float64Array(4);
  private readonly l1: CacheLevel;
  private readonly l2: CacheLevel;
  private readonly llc: CacheLevel;

  constructor(geometry: DataCacheGeometry = DEFAULT_DATA_CACHE) {
    this.geometry = geometry;
    this.l1 = new CacheLevel("l1d", geometry.l1d);
    this.l2 = new CacheLevel("l2", geometry.l2);
    this.llc = new CacheLevel("llc", geometry.llc);
    this.l1Mask = this.l1.mask;
    this.mru = new Int32Array(this.l1Mask + 1).fill(-1);
  }

  /** Access `line` through the hierarchy; returns where it was found (FOUND_*). */
  access(line: number): number {
    this.mru[line & this.l1Mask] = line;
    if (this.l1.access(line)) return FOUND_L1D;
    if (this.l2.access(line)) return FOUND_L2;
    if (this.llc.access(line)) return FOUND_LLC;
    return FOUND_DRAM;
  }

  /** A guest load or store of line `line` (the caller may skip MRU hits). */
  touchData(line: number): void {
    this.dataFound[this.access(line)]++;
  }

  /** A guest load or store at physical address `pa` (slow paths). */
  touchDataAt(pa: number): void {
    const line = Math.floor(pa / LINE_BYTES) | 0;
    if (this.mru[line & this.l1Mask] !== line) this.dataFound[this.access(line)]++;
  }

  /**
   * A load by software (a hypervisor reading a guest-resident table entry) at physical address
   * `pa`: returns where it was found. Moves the caches like any access; counted by the caller.
   */
  loadAt(pa: number): number {
    return this.access(Math.floor(pa / LINE_BYTES) | 0);
  }

  /** A page-walk reference to the entry at physical address `pa`: returns where it was found. */
  walkRef(pa: number): number {
    const line = Math.floor(pa / LINE_BYTES) | 0;
    const f = this.mru[line & this.l1Mask] === line ? FOUND_L1D : this.access(line);
    this.walkFound[f]++;
    return f;
  }

  /** Empty every level (counters kept). */
  clear(): void {
    this.l1.clear();
    this.l2.clear();
    this.llc.clear();
    this.mru.fill(-1);
  }
}

/** Line number of the first line of page frame `pfn` (as DataCacheModel names lines). */
export function pageLine(pfn: number): number {
  return (pfn << 6) | 0;
}
