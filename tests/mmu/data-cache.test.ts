import { describe, expect, it } from "vitest";
import {
  CacheGeometryError,
  DataCacheModel,
  FOUND_DRAM,
  FOUND_L1D,
  FOUND_L2,
  FOUND_LLC,
  pageLine,
} from "../../src/mmu/data-cache.js";

/** A tiny hierarchy: L1D 2 sets x 2 ways, L2 4 sets x 2 ways, LLC 8 sets x 2 ways. */
const TINY = { l1d: { kib: 0.25, ways: 2 }, l2: { kib: 0.5, ways: 2 }, llc: { kib: 1, ways: 2 } };

describe("data-cache model", () => {
  it("finds a line where LRU left it: L1D, then L2 after an L1D eviction, LLC, DRAM", () => {
    const c = new DataCacheModel(TINY);
    expect(c.access(0)).toBe(FOUND_DRAM);
    expect(c.access(0)).toBe(FOUND_L1D);
    // Lines 2 and 4 share L1D set 0 with line 0 (2 sets): two more evict line 0 from L1D.
    c.access(2);
    c.access(4);
    expect(c.access(0)).toBe(FOUND_L2);
    // L2 set 0 (4 sets) holds lines 0, 4, 8, ...: two more lines there push 0 out of L2 too.
    c.access(8);
    c.access(12);
    c.access(2); // refill L1D set 0 so line 0 is out of it
    expect(c.access(0)).toBe(FOUND_LLC);
  });

  it("counts walk references by where found, and names a page's first line as the slow path does", () => {
    const c = new DataCacheModel();
    expect(c.walkRef(0x5008)).toBe(FOUND_DRAM);
    expect(c.walkRef(0x5010)).toBe(FOUND_L1D); // same 64-byte line
    expect([...c.walkFound]).toEqual([1, 0, 0, 1]);
    expect(pageLine(0x5) + (0x10 >>> 6)).toBe(Math.floor(0x5010 / 64));
    c.touchDataAt(0x6000);
    expect([...c.dataFound]).toEqual([0, 0, 0, 1]);
  });

  it("skipping the call for a set's most recent line changes nothing (the fast-path filter is exact)", () => {
    const filtered = new DataCacheModel(TINY);
    const full = new DataCacheModel(TINY);
    let x = 12345;
    for (let k = 0; k < 20000; k++) {
      x = (Math.imul(x, 1103515245) + 12345) | 0;
      const line = (x >>> 16) & 63;
      const want = full.access(line);
      const got = filtered.mru[line & filtered.l1Mask] === line ? FOUND_L1D : filtered.access(line);
      expect(got).toBe(want);
    }
  });

  it("rejects a geometry without a power-of-two number of sets", () => {
    expect(() => new DataCacheModel({ ...TINY, l2: { kib: 3, ways: 2 } })).toThrow(CacheGeometryError);
    expect(() => new DataCacheModel({ ...TINY, llc: { kib: 1, ways: 0 } })).toThrow(/power-of-two/);
  });
});
