/**
 * Tables that live in guest memory: built there (a TableMemory view), read by the hardware's 2-D
 * walk, and walked in software by the hypervisor through src/mmu/walker.ts (GuestTableWalker):
 * an L1's EPT12 (result: an L1 GPA) and an L2's x86 page tables (result: an L2 GPA).
 */
import { describe, expect, it } from "vitest";
import { HostPageAllocator } from "../../src/hypervisors/l0/host-pages.js";
import { EPT4, EPT5, X86_4LEVEL, X86_5LEVEL } from "../../src/hypervisors/mmu/formats.js";
import { GuestTableWalker } from "../../src/hypervisors/mmu/guest-walk.js";
import { PageTableBuilder, type TableMemory, type TablePageSource } from "../../src/hypervisors/mmu/page-table.js";
import { DataCacheModel } from "../../src/mmu/data-cache.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import {
  ACC_READ,
  ACC_USER,
  ACC_WRITE,
  EPT_R,
  EPT_W,
  EPT_X,
  FAULT_EPT_VIOLATION,
  FAULT_NONE,
  FAULT_PF,
  FAULT_UNBACKED,
  FMT_EPT,
  FMT_X86,
  PageWalker,
  PERM_R,
  PERM_U,
  PERM_W,
  PERM_X,
} from "../../src/mmu/walker.js";
import { PFEC_P, PFEC_U, PFEC_W } from "../../src/x86/exceptions.js";
import { ctl } from "../mmu/tables.js";

const MIB = 1024 * 1024;
/** The guest's RAM: guest-physical [0, 16 MiB) at host 16 MiB up (a memslot). */
const GUEST_BASE = 16 * MIB;
const GUEST_SIZE = 16 * MIB;
const toHost = (gpa: number): number => (gpa >= 0 && gpa < GUEST_SIZE ? GUEST_BASE + gpa : -1);

function guestBed() {
  const mem = new PhysicalMemory(48 * MIB);
  const view: TableMemory = {
    read: (a, s) => mem.read(toHost(a), s),
    write: (a, s, v) => mem.write(toHost(a), s, v),
  };
  let next = 0x100000; // guest-physical pages for the guest's own tables
  const pages: TablePageSource = {
    page: () => {
      const p = next;
      next += 4096;
      return p;
    },
  };
  return { mem, view, pages };
}

describe("guest-resident tables through walker.ts", () => {
  it("an L1's EPT12 (4- and 5-level, 4 KiB and 2 MiB leaves): the walk gives the L1 GPA", () => {
    for (const format of [EPT4, EPT5]) {
      const { mem, view, pages } = guestBed();
      const ept12 = new PageTableBuilder(view, pages, format);
      ept12.map(0x4000_0000, 0x20_0000, PERM_R | PERM_W | PERM_X); // L2 1 GiB → L1 2 MiB (4 KiB)
      ept12.map(0x4060_0000, 0x40_0000, PERM_R, 2); // a 2 MiB read-only leaf
      const g = new GuestTableWalker(mem, FMT_EPT, toHost);
      const p = ept12.pointer();
      expect(g.walkEpt(p, 0, 0x4000_0123, EPT_W)).toBe(0x20_0123);
      expect(g.fault).toBe(FAULT_NONE);
      expect(g.refs).toBe(format.levels);
      expect(g.walkEpt(p, 0, 0x4065_4321, EPT_R)).toBe(0x45_4321);
      expect(g.refs).toBe(format.levels - 1);
      // A write to the read-only leaf: the EPT violation L0 would reflect to L1.
      expect(g.walkEpt(p, 0, 0x4065_4321, EPT_W)).toBe(-1);
      expect(g.fault).toBe(FAULT_EPT_VIOLATION);
      expect(g.walker.qualification & 0x3f).toBe(EPT_W | (EPT_R << 3));
      // Unmapped: violation with nothing readable.
      expect(g.walkEpt(p, 0, 0x8000_0000, EPT_R)).toBe(-1);
      expect(g.walker.qualification & 0x3f).toBe(EPT_R);
    }
  });

  it("sets EPT A/D bits in the guest's memory, as the hardware would", () => {
    const { mem, view, pages } = guestBed();
    const ept12 = new PageTableBuilder(view, pages, EPT4);
    ept12.map(0x1000, 0x5000, PERM_R | PERM_W);
    const g = new GuestTableWalker(mem, FMT_EPT, toHost);
    expect(g.walkEpt(ept12.pointer(), 0, 0x1008, EPT_W)).toBe(0x5008);
    // Find the leaf entry in guest memory: root → … → PTE for GPA 0x1000.
    let t = ept12.root;
    for (let l = 4; l > 1; l--) t = view.read(t, 4) & ~0xfff;
    const pte = view.read(t + 8, 4);
    expect(pte & 0x300).toBe(0x300); // accessed (bit 8) and dirty (bit 9)
  });

  it("an L2's x86 page tables (4- and 5-level): the walk gives the L2 GPA and exact #PF codes", () => {
    for (const format of [X86_4LEVEL, X86_5LEVEL]) {
      const { mem, view, pages } = guestBed();
      const pt = new PageTableBuilder(view, pages, format);
      const va = 0x7fff_1234_5000;
      pt.map(va, 0x80_0000, PERM_R | PERM_W | PERM_X | PERM_U);
      pt.map(va + 0x1000, 0x80_1000, PERM_R | PERM_X); // supervisor, read-only
      const g = new GuestTableWalker(mem, FMT_X86, toHost);
      const walk = (addr: number, access: number) =>
        g.walkLinear(pt.pointer(), 0, format.levels, (addr % 2 ** 32) | 0, Math.floor(addr / 2 ** 32), access, ctl());
      expect(walk(va + 0x10, ACC_WRITE | ACC_USER)).toBe(0x80_0010);
      expect(g.refs).toBe(format.levels);
      expect(walk(va + 0x1010, ACC_READ | ACC_USER)).toBe(-1);
      expect(g.fault).toBe(FAULT_PF);
      expect(g.walker.errorCode).toBe(PFEC_P | PFEC_U);
      expect(walk(va + 0x1010, ACC_WRITE)).toBe(-1);
      expect(g.walker.errorCode).toBe(PFEC_P | PFEC_W);
      expect(walk(va + 0x2010, ACC_READ)).toBe(-1);
      expect(g.walker.errorCode).toBe(0);
    }
  });

  it("with a cache model, each entry read goes through it and is counted where it was found", () => {
    const { mem, view, pages } = guestBed();
    const ept12 = new PageTableBuilder(view, pages, EPT4);
    ept12.map(0x1000, 0x5000, PERM_R | PERM_W);
    ept12.map(0x2000, 0x6000, PERM_R | PERM_W); // same tables, the next PTE (same line)
    const g = new GuestTableWalker(mem, FMT_EPT, toHost);
    const cache = new DataCacheModel();
    g.cache = cache;
    // Cold: four tables, four distinct lines, all from memory.
    expect(g.walkEpt(ept12.pointer(), 0, 0x1008, EPT_R)).toBe(0x5008);
    expect([...g.found]).toEqual([0, 0, 0, 4]);
    // Warm: the same four lines (the PTE of 0x2000 shares 0x1000's line), all in L1D.
    expect(g.walkEpt(ept12.pointer(), 0, 0x2008, EPT_R)).toBe(0x6008);
    expect([...g.found]).toEqual([4, 0, 0, 0]);
    // A faulting walk counts the entries it read up to the fault (an unmapped PTE, same line: 4).
    expect(g.walkEpt(ept12.pointer(), 0, 0x7008, EPT_R)).toBe(-1);
    expect([...g.found]).toEqual([4, 0, 0, 0]);
    // The hypervisor's reads are not page-walk references of the CPU: not in walkFound.
    expect([...cache.walkFound]).toEqual([0, 0, 0, 0]);
    // No cache: nothing is counted.
    g.cache = null;
    g.walkEpt(ept12.pointer(), 0, 0x1008, EPT_R);
    expect([...g.found]).toEqual([0, 0, 0, 0]);
  });

  it("a table pointer outside the guest's memory is FAULT_UNBACKED, not a crash", () => {
    const { mem, view, pages } = guestBed();
    const pt = new PageTableBuilder(view, pages, X86_4LEVEL);
    pt.map(0x1000, 0x2000, PERM_R);
    // Point the PML4 entry at a guest-physical address with no RAM behind it.
    view.write(pt.root, 4, GUEST_SIZE + 0x3000 + 0x7);
    const g = new GuestTableWalker(mem, FMT_X86, toHost);
    expect(g.walkLinear(pt.pointer(), 0, 4, 0x1000, 0, ACC_READ)).toBe(-1);
    expect(g.fault).toBe(FAULT_UNBACKED);
    expect(g.walker.faultGpa).toBe(GUEST_SIZE + 0x3000);
  });
});

describe("the hardware's 2-D walk reads what the builder built", () => {
  it("guest x86 tables in guest memory over a builder EPT: 24 references cold", () => {
    const { mem, view, pages } = guestBed();
    const alloc = new HostPageAllocator(mem, 40 * MIB, 48 * MIB);
    const ept = new PageTableBuilder(mem, alloc, EPT4);
    for (let g = 0; g < 2 * MIB; g += 4096) ept.map(g, GUEST_BASE + g, PERM_R | PERM_W | PERM_X);
    for (let g = 8 * MIB; g < 10 * MIB; g += 4096) ept.map(g, GUEST_BASE + g, PERM_R | PERM_W | PERM_X);
    const gpt = new PageTableBuilder(view, pages, X86_4LEVEL);
    gpt.map(0x4000_0000, 8 * MIB, PERM_R | PERM_W | PERM_U);
    const eptWalker = new PageWalker(mem, FMT_EPT);
    eptWalker.setEptp(ept.pointer(), 0);
    const guest = new PageWalker(mem, FMT_X86);
    guest.translator = eptWalker;
    guest.setCr3(gpt.pointer(), 0);
    expect(guest.walk(0x4000_0010, 0, ACC_READ, ctl())).toBe(GUEST_BASE + 8 * MIB + 0x10);
    expect(guest.refs).toBe(24);
    // EPT02-style write protection shows through the 2-D walk as an EPT violation on the final page.
    ept.protect(8 * MIB, PERM_R | PERM_X);
    expect(guest.walk(0x4000_0010, 0, ACC_WRITE, ctl())).toBe(-1);
    expect(guest.fault).toBe(FAULT_EPT_VIOLATION);
    expect(guest.qualification & 0x3f).toBe(EPT_W | ((EPT_R | EPT_X) << 3));
  });
});
