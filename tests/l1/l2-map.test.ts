import { describe, expect, it } from "vitest";
import { L1OutOfMemory, L1PageAllocator } from "../../src/hypervisors/l1/allocator.js";
import { L2MemoryMap } from "../../src/hypervisors/l1/l2-map.js";

describe("L1's L2 memory map (sorted extent list)", () => {
  it("looks pages up through extents and merges contiguous runs", () => {
    const m = new L2MemoryMap();
    m.insert(10, 100, 2, 7);
    m.insert(12, 102, 3, 7); // continues both in L2 and L1: merges
    expect(m.extentCount).toBe(1);
    expect(m.lookup(14)).toEqual({ l1Pfn: 104, perms: 7 });
    expect(m.lookup(15)).toBeNull();
    expect(m.lookup(9)).toBeNull();
    m.insert(8, 98, 2, 7); // joins on the left
    expect(m.extents()).toEqual([{ l2Pfn: 8, l1Pfn: 98, npages: 7, perms: 7 }]);
    m.insert(20, 500, 1, 7); // not contiguous in L1 terms with anything
    m.insert(16, 300, 1, 3); // different L1 run
    expect(m.extentCount).toBe(3);
    expect(m.mappedPages).toBe(9);
    expect(m.lookup(16)).toEqual({ l1Pfn: 300, perms: 3 });
  });

  it("fills a hole between two extents and joins all three", () => {
    const m = new L2MemoryMap();
    m.insert(0, 50, 4, 7);
    m.insert(8, 58, 4, 7);
    m.insert(4, 54, 4, 7);
    expect(m.extents()).toEqual([{ l2Pfn: 0, l1Pfn: 50, npages: 12, perms: 7 }]);
  });

  it("refuses to remap (as MAP does with E_EXIST)", () => {
    const m = new L2MemoryMap();
    m.insert(10, 100, 4, 7);
    expect(() => m.insert(13, 200, 2, 7)).toThrow(/already/);
    expect(() => m.insert(8, 200, 3, 7)).toThrow(/already/);
    expect(() => m.insert(0, 200, 100, 7)).toThrow(/already/);
    m.insert(14, 200, 1, 7);
    expect(m.mappedPages).toBe(5);
  });

  it("removes ranges, splitting extents, and reports the pieces", () => {
    const m = new L2MemoryMap();
    m.insert(0, 100, 10, 7);
    m.insert(20, 300, 5, 7);
    const gone = m.remove(5, 18);
    expect(gone).toEqual([
      { l2Pfn: 5, l1Pfn: 105, npages: 5, perms: 7 },
      { l2Pfn: 20, l1Pfn: 300, npages: 3, perms: 7 },
    ]);
    expect(m.extents()).toEqual([
      { l2Pfn: 0, l1Pfn: 100, npages: 5, perms: 7 },
      { l2Pfn: 23, l1Pfn: 303, npages: 2, perms: 7 },
    ]);
    expect(m.mappedPages).toBe(7);
    m.remove(2, 1);
    expect(m.lookup(2)).toBeNull();
    expect(m.lookup(3)).toEqual({ l1Pfn: 103, perms: 7 });
    expect(m.extentCount).toBe(3);
    expect(m.remove(1000, 5)).toEqual([]);
  });

  it("lists the holes of a range", () => {
    const m = new L2MemoryMap();
    m.insert(2, 10, 2, 7);
    m.insert(6, 20, 1, 7);
    expect(m.holes(0, 8)).toEqual([
      [0, 2],
      [4, 2],
      [7, 1],
    ]);
    expect(m.holes(2, 2)).toEqual([]);
  });

  it("agrees with a per-page reference under random inserts and removes", () => {
    const m = new L2MemoryMap();
    const ref = new Map<number, number>();
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let step = 0; step < 2000; step++) {
      const start = rnd(400);
      const n = 1 + rnd(8);
      if (rnd(3) === 0) {
        m.remove(start, n);
        for (let i = 0; i < n; i++) ref.delete(start + i);
      } else {
        let free = true;
        for (let i = 0; i < n; i++) if (ref.has(start + i)) free = false;
        const l1 = rnd(2) === 0 ? start + 1000 : rnd(100000);
        if (free) {
          m.insert(start, l1, n, 7);
          for (let i = 0; i < n; i++) ref.set(start + i, l1 + i);
        } else expect(() => m.insert(start, l1, n, 7)).toThrow();
      }
    }
    for (let p = 0; p < 420; p++) expect(m.lookup(p)?.l1Pfn ?? null).toBe(ref.get(p) ?? null);
    expect(m.mappedPages).toBe(ref.size);
    const ex = m.extents();
    for (let i = 1; i < ex.length; i++) expect(ex[i].l2Pfn).toBeGreaterThanOrEqual(ex[i - 1].l2Pfn + ex[i - 1].npages);
  });
});

describe("L1's page allocator", () => {
  it("hands out pages in address order, reuses freed pages, and runs dry", () => {
    const a = new L1PageAllocator(0x100000, 4 * 4096);
    expect(a.alloc()).toEqual({ gpa: 0x100000, reused: false });
    expect(a.alloc().gpa).toBe(0x101000);
    a.free(0x100000);
    expect(a.alloc()).toEqual({ gpa: 0x100000, reused: true });
    expect(a.allocRun(2)).toBe(0x102000);
    expect(a.inUse).toBe(4);
    expect(a.available).toBe(0);
    expect(() => a.alloc()).toThrow(L1OutOfMemory);
    expect(() => a.free(0x200000)).toThrow(RangeError);
  });
  it("refuses a contiguous run it cannot give", () => {
    const a = new L1PageAllocator(0, 8 * 4096);
    a.allocRun(5);
    expect(() => a.allocRun(4)).toThrow(L1OutOfMemory);
    expect(a.allocRun(3)).toBe(5 * 4096);
  });
});
