/**
 * The hypervisor-side page-table builder: for every format (EPT 4/5-level, x86-64 4/5-level)
 * and leaf size (4 KiB, 2 MiB, 1 GiB), what it builds is what the CPU's walker (src/mmu)
 * translates, with the references and faults the hardware model gives.
 */
import { describe, expect, it } from "vitest";
import { HostPageAllocator } from "../../src/hypervisors/l0/host-pages.js";
import { EPT4, EPT5, type TableFormat, X86_4LEVEL, X86_5LEVEL } from "../../src/hypervisors/mmu/formats.js";
import { levelSize, PageTableBuilder, type TableMemory } from "../../src/hypervisors/mmu/page-table.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import {
  ACC_FETCH,
  ACC_READ,
  ACC_USER,
  ACC_WRITE,
  EPT_R,
  EPT_W,
  EPT_X,
  FAULT_EPT_MISCONFIG,
  FAULT_EPT_VIOLATION,
  FAULT_NONE,
  FAULT_PF,
  FMT_EPT,
  FMT_X86,
  GPA_FINAL,
  PageWalker,
  PERM_R,
  PERM_U,
  PERM_W,
  PERM_X,
} from "../../src/mmu/walker.js";
import { PFEC_P, PFEC_RSVD, PFEC_U, PFEC_W } from "../../src/x86/exceptions.js";
import { ctl } from "../mmu/tables.js";

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

function bed(format: TableFormat) {
  const mem = new PhysicalMemory(64 * MIB);
  const alloc = new HostPageAllocator(mem, 32 * MIB, 64 * MIB);
  const pt = new PageTableBuilder(mem, alloc, format);
  const ept = format.ept;
  const w = new PageWalker(mem, ept ? FMT_EPT : FMT_X86);
  if (ept) {
    const p = pt.pointer();
    w.setEptp(p % 2 ** 32, Math.floor(p / 2 ** 32));
  } else {
    w.setCr3(pt.pointer(), 0);
    w.levels = format.levels;
  }
  /** Walk `va` for a read (or `access`), returning the physical address or -1. */
  const walk = (va: number, access = ept ? EPT_R : ACC_READ): number =>
    w.walk((va % 2 ** 32) | 0, Math.floor(va / 2 ** 32) | 0, access, ctl({ la57: format.levels === 5 }), GPA_FINAL);
  return { mem, alloc, pt, w, walk, ept };
}

const FORMATS: [string, TableFormat][] = [
  ["EPT 4-level", EPT4],
  ["EPT 5-level", EPT5],
  ["x86-64 4-level", X86_4LEVEL],
  ["x86-64 5-level", X86_5LEVEL],
];
/** A virtual address with non-zero indices at every level (5-level: bit 48 set too). */
function vaFor(format: TableFormat): number {
  return (format.levels === 5 ? 2 ** 48 : 0) + 0x7f_4000_0000 + 3 * GIB;
}

describe.each(FORMATS)("page-table builder, %s", (_name, format) => {
  for (const level of [1, 2, 3]) {
    it(`a ${levelSize(level) / 1024} KiB leaf translates with ${format.levels - level + 1} references`, () => {
      const { pt, w, walk, ept } = bed(format);
      const all = ept ? PERM_R | PERM_W | PERM_X : PERM_R | PERM_W | PERM_X | PERM_U; // EPT has no U
      const va = vaFor(format);
      const pa = 2 * GIB + (level === 3 ? GIB : 6 * MIB);
      pt.map(va, pa, PERM_R | PERM_W | PERM_X | PERM_U, level);
      const off = Math.min(levelSize(level) - 8, 0x12345);
      expect(walk(va + off)).toBe(pa + off);
      expect(w.fault).toBe(FAULT_NONE);
      expect(w.refs).toBe(format.levels - level + 1);
      expect(w.pageShift).toBe(12 + 9 * (level - 1));
      expect(pt.leaves).toBe(1);
      expect(pt.tables).toBe(format.levels - level + 1);
      expect(pt.lookup(va + off)).toEqual({ pa: pa + off, perms: all, level });
      const seen: number[][] = [];
      pt.forEachLeaf((v, p, perms, l) => seen.push([v, p, perms, l]));
      expect(seen).toEqual([[va, pa, all, level]]);
      expect(pt.tablePages().length).toBe(pt.tables);
      // Unmap: the walk faults at the leaf level.
      expect(pt.unmap(va + off)).toBe(true);
      expect(walk(va + off)).toBe(-1);
      expect(w.fault).toBe(format.ept ? FAULT_EPT_VIOLATION : FAULT_PF);
      expect(pt.leaves).toBe(0);
      expect(pt.lookup(va)).toBeNull();
      expect(pt.unmap(va)).toBe(false);
    });
  }

  it("protect takes write permission away, the walk then faults on writes only", () => {
    const { pt, w, walk, ept } = bed(format);
    const va = vaFor(format);
    pt.map(va, 0x400000, PERM_R | PERM_W | PERM_X | PERM_U);
    expect(walk(va, ept ? EPT_W : ACC_WRITE | ACC_USER)).toBe(0x400000);
    expect(pt.protect(va, PERM_R | PERM_X | PERM_U)).toBe(true);
    expect(walk(va, ept ? EPT_R : ACC_READ | ACC_USER)).toBe(0x400000);
    expect(walk(va, ept ? EPT_W : ACC_WRITE | ACC_USER)).toBe(-1);
    if (ept) {
      expect(w.fault).toBe(FAULT_EPT_VIOLATION);
      expect(w.qualification & 0x3f).toBe(EPT_W | ((EPT_R | EPT_X) << 3));
    } else {
      expect(w.fault).toBe(FAULT_PF);
      expect(w.errorCode).toBe(PFEC_P | PFEC_W | PFEC_U);
    }
    expect(pt.lookup(va)?.perms).toBe(ept ? PERM_R | PERM_X : PERM_R | PERM_X | PERM_U);
    expect(pt.leaves).toBe(1);
    expect(pt.protect(va + 4096, PERM_R)).toBe(false);
  });

  it("MMIO markers make every access exit without being leaves", () => {
    const { pt, w, walk, ept } = bed(format);
    const va = vaFor(format);
    pt.mapMmio(va);
    expect(walk(va)).toBe(-1);
    if (ept) expect(w.fault).toBe(FAULT_EPT_MISCONFIG);
    else expect(w.errorCode & (PFEC_P | PFEC_RSVD)).toBe(PFEC_P | PFEC_RSVD);
    expect(pt.lookup(va)).toBeNull();
    expect(pt.leaves).toBe(0);
    let n = 0;
    pt.forEachLeaf(() => n++);
    expect(n).toBe(0);
    pt.map(va, 0x5000, PERM_R | PERM_X);
    expect(walk(va)).toBe(0x5000);
    expect(pt.leaves).toBe(1);
  });

  it("rejects mappings that cannot be built", () => {
    const { pt } = bed(format);
    expect(() => pt.map(0x1000, 0x3000, PERM_R, 2)).toThrow(/cannot map/);
    expect(() => pt.map(0x200000, 0x1000, PERM_R, 2)).toThrow(/cannot map/);
    expect(() => pt.map(0, 0x1000, PERM_W)).toThrow(/permissions/);
    pt.map(0x200000, 0x400000, PERM_R, 2);
    expect(() => pt.map(0x201000, 0x1000, PERM_R)).toThrow(/inside a large mapping/);
    pt.map(0x400000, 0x1000, PERM_R);
    expect(() => pt.map(0x400000, 0x600000, PERM_R, 2)).toThrow(/smaller mappings/);
  });

  it("unmapAndPrune gives back exactly the tables a removal empties, bottom up, never the root", () => {
    const { pt, walk } = bed(format);
    const rw = PERM_R | PERM_W;
    pt.map(0x1000, 0x5000, rw);
    pt.map(0x2000, 0x6000, rw);
    pt.map(0x40000000, 0x800000, rw, 2); // another PDPT entry: its own PD, no page table
    const below = format.levels - 1; // tables on 0x1000's path below the root
    expect(pt.tables).toBe(1 + below + 1);
    expect(pt.tableUnder(0x1000, 2)).toBe(true);
    expect(pt.tableUnder(0x40000000, 2)).toBe(false); // a 2 MiB leaf is there, not a table
    expect(pt.unmapAndPrune(0x1000)).toEqual([]); // the page table still holds 0x2000
    expect(walk(0x2000)).toBe(0x6000);
    // The last leaf of the page table: the page table and the PD go; the PDPT still holds 1 GiB's PD.
    const freed = pt.unmapAndPrune(0x2000);
    expect(freed.length).toBe(2);
    expect(pt.tables).toBe(1 + below + 1 - 2);
    expect(pt.tableUnder(0x1000, 2)).toBe(false);
    expect(walk(0x2000)).toBe(-1);
    expect(walk(0x40000000)).toBe(0x800000);
    // The large leaf was the last: everything down from the root goes, the root stays.
    expect(pt.unmapAndPrune(0x40000000).length).toBe(below - 1);
    expect(pt.tables).toBe(1);
    expect(pt.leaves).toBe(0);
    expect(pt.unmapAndPrune(0x40000000)).toEqual([]);
    pt.map(0x2000, 0x7000, rw); // rebuilt from scratch after the prune
    expect(walk(0x2000)).toBe(0x7000);
  });

  it("user and execute rights reach the hardware's checks", () => {
    const { pt, w, walk, ept } = bed(format);
    pt.map(0x1000, 0x2000, PERM_R); // no W, no X, no U
    if (ept) {
      expect(walk(0x1000, EPT_X)).toBe(-1);
      expect(w.fault).toBe(FAULT_EPT_VIOLATION);
    } else {
      expect(walk(0x1000, ACC_READ | ACC_USER)).toBe(-1);
      expect(walk(0x1000, ACC_FETCH)).toBe(-1);
      expect(walk(0x1000, ACC_READ)).toBe(0x2000);
    }
  });
});

describe("page-table builder: entry layouts", () => {
  it("EPT leaves and tables are bit for bit what L0 always built (R/W/X tables, WB leaves)", () => {
    const { mem, pt } = bed(EPT4);
    pt.map(0x1234_5000, 0x0067_8000, PERM_R | PERM_W | PERM_X);
    let table = pt.root;
    const entries: number[] = [];
    for (let l = 4; l >= 1; l--) {
      const ea = table + (Math.floor(0x1234_5000 / levelSize(l)) % 512) * 8;
      entries.push(mem.read(ea, 4), mem.read(ea + 4, 4));
      table = mem.read(ea, 4) & ~0xfff;
    }
    const [pml4, , pdpt, , pd, , pte, pteHi] = entries;
    for (const e of [pml4, pdpt, pd]) expect(e & 0xfff).toBe(EPT_R | EPT_W | EPT_X);
    expect(pte >>> 0).toBe(0x0067_8000 | 7 | (6 << 3));
    expect(pteHi).toBe(0);
    expect(pt.eptp()).toBe(pt.root + 6 + (3 << 3) + (1 << 6));
    const big = bed(EPT5);
    expect(big.pt.eptp()).toBe(big.pt.root + 6 + (4 << 3) + (1 << 6));
    expect(() => bed(X86_4LEVEL).pt.eptp()).toThrow(/no EPTP/);
  });

  it("builds in any memory: tables in a guest's physical space through a TableMemory view", () => {
    const mem = new PhysicalMemory(8 * MIB);
    const offset = 4 * MIB; // guest-physical g is host g + 4 MiB
    const guestView: TableMemory = {
      read: (a, s) => mem.read(a + offset, s),
      write: (a, s, v) => mem.write(a + offset, s, v),
    };
    const pt = new PageTableBuilder(guestView, new HostPageAllocator(mem, 0x10000, 0x20000), X86_4LEVEL);
    pt.map(0x7000_0000, 0x3000, PERM_R | PERM_W);
    // The root is a guest-physical address; its bytes are at host root + offset.
    expect(mem.read(pt.root + offset, 4) & 1).toBe(1);
    expect(pt.lookup(0x7000_0010)?.pa).toBe(0x3010);
  });
});
