import { describe, expect, it } from "vitest";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import {
  ACC_FETCH,
  ACC_NOAC,
  ACC_READ,
  ACC_USER,
  ACC_WRITE,
  FAULT_PF,
  LEAF_D,
  LEAF_G,
  LEAF_PAT_SHIFT,
  PageWalker,
  PERM_U,
  PERM_W,
  PERM_X,
} from "../../src/mmu/walker.js";
import { A, ctl, D, G, halves, NX, P, PCD, PS, PWT, RW, Tables, US } from "./tables.js";

const VA = 0x00007f12_3456_7000n + 0x123n; // user-half address, all four indices non-zero
const PA = 0x0035_6000n;

function setup(leafFlags = P | RW | US, leafLevel = 1, pa = PA) {
  const mem = new PhysicalMemory(16 << 20);
  const t = new Tables(mem, 0x100000);
  const root = t.alloc();
  const entries = t.map(root, VA & ~0xfffn, pa, leafFlags, leafLevel);
  const w = new PageWalker(mem);
  w.root = root;
  return { mem, t, w, entries };
}

function walk(w: PageWalker, access: number, c = ctl(), va = VA): number {
  const [lo, hi] = halves(va);
  return w.walk(lo, hi, access, c);
}

describe("x86-64 page walker: translations", () => {
  it("translates a 4 KiB page with 4 references", () => {
    const { w } = setup();
    expect(walk(w, ACC_READ)).toBe(Number(PA) + 0x123);
    expect(w.refs).toBe(4);
    expect(w.pageShift).toBe(12);
  });
  it("translates 2 MiB and 1 GiB pages with 3 and 2 references", () => {
    const s2 = setup(P | RW | US, 2, 0x600000n);
    expect(walk(s2.w, ACC_READ)).toBe(0x600000 + Number(VA & 0x1fffffn));
    expect(s2.w.refs).toBe(3);
    expect(s2.w.pageShift).toBe(21);
    const s1 = setup(P | RW | US, 3, 0x40000000n);
    expect(walk(s1.w, ACC_READ)).toBe(0x40000000 + Number(VA & 0x3fffffffn));
    expect(s1.w.refs).toBe(2);
    expect(s1.w.pageShift).toBe(30);
  });
  it("walks 5 levels with LA57 (5 references)", () => {
    const mem = new PhysicalMemory(16 << 20);
    const t = new Tables(mem, 0x100000);
    const root = t.alloc();
    const va = 0x00ab_cdef_1234_5000n;
    t.map(root, va, PA, P | RW, 1, 5);
    const w = new PageWalker(mem);
    w.root = root;
    w.levels = 5;
    const [lo, hi] = halves(va);
    expect(w.walk(lo, hi, ACC_READ, ctl({ la57: true }))).toBe(Number(PA));
    expect(w.refs).toBe(5);
  });
  it("reports G, PAT index and accumulated rights", () => {
    const { w } = setup(P | US | G | PCD | PWT | NX);
    walk(w, ACC_READ);
    expect(w.leafInfo & LEAF_G).toBe(LEAF_G);
    expect((w.leafInfo >> LEAF_PAT_SHIFT) & 7).toBe(3);
    expect(w.perm & PERM_W).toBe(0);
    expect(w.perm & PERM_X).toBe(0);
    expect(w.perm & PERM_U).toBe(PERM_U);
  });
});

describe("x86-64 page walker: faults and error codes", () => {
  for (const level of [4, 3, 2, 1]) {
    it(`not present at level ${level}`, () => {
      const { t, w, entries } = setup();
      t.write(entries[level], t.read(entries[level]) & ~P);
      expect(walk(w, ACC_READ)).toBe(-1);
      expect(w.fault).toBe(FAULT_PF);
      expect(w.errorCode).toBe(0);
      expect(walk(w, ACC_WRITE | ACC_USER)).toBe(-1);
      expect(w.errorCode).toBe(6); // W|U, P clear
      expect(w.refs).toBe(5 - level);
    });
  }
  it("write to a read-only page: CPL0 faults with CR0.WP, succeeds without", () => {
    const { w } = setup(P | US);
    expect(walk(w, ACC_WRITE, ctl({ wp: true }))).toBe(-1);
    expect(w.errorCode).toBe(3); // P|W
    expect(walk(w, ACC_WRITE, ctl({ wp: false }))).toBe(Number(PA) + 0x123);
    expect(walk(w, ACC_WRITE | ACC_USER, ctl({ wp: false }))).toBe(-1);
    expect(w.errorCode).toBe(7); // P|W|U: user writes ignore WP
  });
  it("read-only at an upper level makes the page read-only", () => {
    const { t, w, entries } = setup();
    t.write(entries[3], t.read(entries[3]) & ~RW);
    expect(walk(w, ACC_WRITE | ACC_USER)).toBe(-1);
    expect(w.errorCode).toBe(7);
    expect(walk(w, ACC_READ | ACC_USER)).toBeGreaterThan(0);
  });
  it("user access to a supervisor page (U/S clear at one level)", () => {
    const { t, w, entries } = setup();
    t.write(entries[2], t.read(entries[2]) & ~US);
    expect(walk(w, ACC_USER)).toBe(-1);
    expect(w.errorCode).toBe(5); // P|U
    expect(walk(w, ACC_READ)).toBe(Number(PA) + 0x123); // supervisor may read it
  });
  it("NX fetch with EFER.NXE faults with I/D; NX without NXE is a reserved-bit fault", () => {
    const { w } = setup(P | RW | US | NX);
    expect(walk(w, ACC_FETCH, ctl({ nxe: true }))).toBe(-1);
    expect(w.errorCode).toBe(0x11); // P|I
    expect(walk(w, ACC_READ, ctl({ nxe: true }))).toBeGreaterThan(0);
    expect(walk(w, ACC_READ, ctl({ nxe: false }))).toBe(-1);
    expect(w.errorCode).toBe(9); // P|RSVD
    expect(walk(w, ACC_FETCH, ctl({ nxe: false }))).toBe(-1);
    expect(w.errorCode).toBe(9); // I/D is reserved (0) with NXE=0 and SMEP=0
  });
  it("SMEP: supervisor fetch from a user page", () => {
    const { w } = setup(P | RW | US);
    expect(walk(w, ACC_FETCH, ctl({ smep: false }))).toBeGreaterThan(0);
    expect(walk(w, ACC_FETCH, ctl({ smep: true }))).toBe(-1);
    expect(w.errorCode).toBe(0x11);
    expect(walk(w, ACC_FETCH | ACC_USER, ctl({ smep: true }))).toBeGreaterThan(0);
  });
  it("SMAP: supervisor data access to a user page, with and without RFLAGS.AC", () => {
    const { w } = setup(P | RW | US);
    expect(walk(w, ACC_READ, ctl({ smap: true, ac: false }))).toBe(-1);
    expect(w.errorCode).toBe(1);
    expect(walk(w, ACC_WRITE, ctl({ smap: true, ac: false }))).toBe(-1);
    expect(w.errorCode).toBe(3);
    expect(walk(w, ACC_READ, ctl({ smap: true, ac: true }))).toBeGreaterThan(0);
    expect(walk(w, ACC_WRITE, ctl({ smap: true, ac: true }))).toBeGreaterThan(0);
    // Implicit supervisor access at CPL 3: AC does not help.
    expect(walk(w, ACC_READ | ACC_NOAC, ctl({ smap: true, ac: true }))).toBe(-1);
    expect(w.errorCode).toBe(1);
    // Supervisor page: SMAP does not apply.
    const s = setup(P | RW);
    expect(walk(s.w, ACC_READ, ctl({ smap: true }))).toBeGreaterThan(0);
  });
  it("reserved bits: above MAXPHYADDR, PS in a PML4E, low bits of a 2 MiB / 1 GiB frame", () => {
    const a = setup();
    a.t.write(a.entries[1], a.t.read(a.entries[1]) | (1n << 50n));
    expect(walk(a.w, ACC_READ)).toBe(-1);
    expect(a.w.errorCode).toBe(9);
    expect(walk(a.w, ACC_WRITE | ACC_USER)).toBe(-1);
    expect(a.w.errorCode).toBe(0xf); // P|W|U|RSVD
    const b = setup();
    b.t.write(b.entries[4], b.t.read(b.entries[4]) | PS);
    expect(walk(b.w, ACC_READ)).toBe(-1);
    expect(b.w.errorCode).toBe(9);
    expect(b.w.refs).toBe(1);
    const c = setup(P | RW | US | (1n << 13n), 2, 0x600000n);
    expect(walk(c.w, ACC_READ)).toBe(-1);
    expect(c.w.errorCode).toBe(9);
    const d = setup(P | RW | US | (1n << 20n), 3, 0x40000000n);
    expect(walk(d.w, ACC_READ)).toBe(-1);
    expect(d.w.errorCode).toBe(9);
    // Bit 45 is a valid address bit with MAXPHYADDR 46; bit 46 is not.
    const e = setup(P | RW | US, 1, 1n << 45n);
    expect(walk(e.w, ACC_READ)).toBe(2 ** 45 + 0x123);
    const f = setup(P | RW | US, 1, 1n << 46n);
    expect(walk(f.w, ACC_READ)).toBe(-1);
  });
  it("a not-present fault outranks nothing: reserved bits at a higher level win", () => {
    const { t, w, entries } = setup();
    t.write(entries[3], t.read(entries[3]) | (1n << 51n));
    t.write(entries[1], 0n);
    expect(walk(w, ACC_READ)).toBe(-1);
    expect(w.errorCode).toBe(9);
  });
});

describe("x86-64 page walker: accessed and dirty bits", () => {
  it("a read sets A on every level and no D", () => {
    const { t, w, entries } = setup();
    walk(w, ACC_READ);
    for (const l of [4, 3, 2, 1]) {
      expect(t.read(entries[l]) & A).toBe(A);
      expect(t.read(entries[l]) & D).toBe(0n);
    }
  });
  it("a write sets D on the leaf only", () => {
    const { t, w, entries } = setup();
    walk(w, ACC_WRITE);
    for (const l of [4, 3, 2]) expect(t.read(entries[l]) & (A | D)).toBe(A);
    expect(t.read(entries[1]) & (A | D)).toBe(A | D);
    expect(w.leafInfo & LEAF_D).toBe(LEAF_D);
  });
  it("large pages: D on the 2 MiB / 1 GiB leaf", () => {
    const s2 = setup(P | RW, 2, 0x600000n);
    walk(s2.w, ACC_WRITE);
    expect(s2.t.read(s2.entries[2]) & (A | D)).toBe(A | D);
    expect(s2.t.read(s2.entries[3]) & (A | D)).toBe(A);
    const s1 = setup(P | RW, 3, 0x40000000n);
    walk(s1.w, ACC_READ);
    expect(s1.t.read(s1.entries[3]) & (A | D)).toBe(A);
    walk(s1.w, ACC_WRITE);
    expect(s1.t.read(s1.entries[3]) & (A | D)).toBe(A | D);
    expect(s1.t.read(s1.entries[4]) & (A | D)).toBe(A);
  });
  it("a faulting walk writes no A/D bits", () => {
    const { t, w, entries } = setup(P | US);
    expect(walk(w, ACC_WRITE)).toBe(-1);
    for (const l of [4, 3, 2, 1]) expect(t.read(entries[l]) & (A | D)).toBe(0n);
  });
});
