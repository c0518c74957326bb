import { describe, expect, it } from "vitest";
import { PagingStructureCache } from "../../src/mmu/paging-structure-cache.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import {
  ACC_READ,
  ACC_WRITE,
  EPT_R,
  EPT_W,
  EPT_X,
  FAULT_EPT_MISCONFIG,
  FAULT_EPT_VIOLATION,
  FAULT_NONE,
  FMT_EPT,
  GPA_FINAL,
  GPA_NO_GLA,
  GPA_TABLE,
  PageWalker,
} from "../../src/mmu/walker.js";
import { buildEpt, ctl, EA, ED, ER, EW, EWB, EX, entryAddrs, halves, P, RW, Tables, US } from "./tables.js";

const GPA = 0x1234_5000n;
const HPA = 0x0067_8000n;

function eptSetup(leaf = ER | EW | EX | EWB, leafLevel = 1, ad = false, hpa = HPA) {
  const mem = new PhysicalMemory(32 << 20);
  const t = new Tables(mem, 0x100000, true);
  const root = t.alloc();
  const entries = t.map(root, GPA, hpa, leaf, leafLevel);
  const w = new PageWalker(mem, FMT_EPT);
  w.setEptp(root | 6 | (3 << 3) | (ad ? 1 << 6 : 0), 0);
  return { mem, t, w, entries, root };
}

function ewalk(w: PageWalker, access: number, kind = GPA_NO_GLA, gpa = GPA + 0x10n): number {
  const [lo, hi] = halves(gpa);
  return w.walk(lo, hi, access, ctl(), kind);
}

describe("EPT walker", () => {
  it("translates with 4 references; 3 for a 2 MiB page", () => {
    const { w } = eptSetup();
    expect(ewalk(w, EPT_R)).toBe(Number(HPA) + 0x10);
    expect(w.refs).toBe(4);
    const l = eptSetup(ER | EW | EX | EWB, 2, false, 0x800000n);
    expect(ewalk(l.w, EPT_W)).toBe(0x800000 + Number(GPA & 0x1fffffn) + 0x10);
    expect(l.w.refs).toBe(3);
  });
  it("violations: access bits 0-2, permissions of the translation in bits 3-5", () => {
    const { w } = eptSetup(ER | EWB);
    expect(ewalk(w, EPT_R)).toBeGreaterThan(0);
    expect(ewalk(w, EPT_W)).toBe(-1);
    expect(w.fault).toBe(FAULT_EPT_VIOLATION);
    expect(w.qualification).toBe(EPT_W | (EPT_R << 3));
    expect(w.faultGpa).toBe(Number(GPA) + 0x10);
    expect(ewalk(w, EPT_X)).toBe(-1);
    expect(w.qualification).toBe(EPT_X | (EPT_R << 3));
  });
  it("execute-only pages are allowed (no misconfiguration)", () => {
    const { w } = eptSetup(EX | EWB);
    expect(ewalk(w, EPT_X)).toBeGreaterThan(0);
    expect(ewalk(w, EPT_R)).toBe(-1);
    expect(w.qualification).toBe(EPT_R | (EPT_X << 3));
  });
  it("permissions are ANDed over the levels", () => {
    const { t, w, entries } = eptSetup();
    t.write(entries[3], t.read(entries[3]) & ~EW);
    expect(ewalk(w, EPT_W)).toBe(-1);
    expect(w.qualification).toBe(EPT_W | ((EPT_R | EPT_X) << 3));
  });
  it("not present at a level: bits 3-5 are 0", () => {
    const { t, w, entries } = eptSetup();
    t.write(entries[2], 0n);
    expect(ewalk(w, EPT_R)).toBe(-1);
    expect(w.fault).toBe(FAULT_EPT_VIOLATION);
    expect(w.qualification).toBe(EPT_R);
    expect(w.refs).toBe(3);
  });
  it("GLA bits: 7 set for guest-walk accesses, 8 set only for the final translation", () => {
    const { w } = eptSetup(ER | EWB);
    ewalk(w, EPT_W, GPA_TABLE);
    expect(w.qualification).toBe(EPT_W | (EPT_R << 3) | (1 << 7));
    ewalk(w, EPT_W, GPA_FINAL);
    expect(w.qualification).toBe(EPT_W | (EPT_R << 3) | (1 << 7) | (1 << 8));
  });
  it("misconfigurations: W without R, reserved memory type, reserved bits", () => {
    const a = eptSetup(EW | EWB);
    expect(ewalk(a.w, EPT_R)).toBe(-1);
    expect(a.w.fault).toBe(FAULT_EPT_MISCONFIG);
    expect(a.w.qualification).toBe(0);
    const b = eptSetup(ER | (2n << 3n));
    expect(ewalk(b.w, EPT_R)).toBe(-1);
    expect(b.w.fault).toBe(FAULT_EPT_MISCONFIG);
    const c = eptSetup();
    c.t.write(c.entries[3], c.t.read(c.entries[3]) | (1n << 3n)); // bits 7:3 of a non-leaf
    expect(ewalk(c.w, EPT_R)).toBe(-1);
    expect(c.w.fault).toBe(FAULT_EPT_MISCONFIG);
    const d = eptSetup();
    d.t.write(d.entries[1], d.t.read(d.entries[1]) | (1n << 48n)); // above MAXPHYADDR
    expect(ewalk(d.w, EPT_R)).toBe(-1);
    expect(d.w.fault).toBe(FAULT_EPT_MISCONFIG);
    // A write-without-read non-leaf entry is a misconfiguration even for a fetch.
    const e = eptSetup();
    e.t.write(e.entries[4], (e.t.read(e.entries[4]) & ~7n) | EW);
    expect(ewalk(e.w, EPT_X)).toBe(-1);
    expect(e.w.fault).toBe(FAULT_EPT_MISCONFIG);
  });
  it("A/D flags only with EPTP bit 6: A on every level, D on the leaf for writes", () => {
    const off = eptSetup(ER | EW | EX | EWB, 1, false);
    ewalk(off.w, EPT_W);
    for (const l of [4, 3, 2, 1]) expect(off.t.read(off.entries[l]) & (EA | ED)).toBe(0n);
    const on = eptSetup(ER | EW | EX | EWB, 1, true);
    ewalk(on.w, EPT_R);
    for (const l of [4, 3, 2, 1]) expect(on.t.read(on.entries[l]) & (EA | ED)).toBe(EA);
    ewalk(on.w, EPT_W);
    for (const l of [4, 3, 2]) expect(on.t.read(on.entries[l]) & (EA | ED)).toBe(EA);
    expect(on.t.read(on.entries[1]) & (EA | ED)).toBe(EA | ED);
  });
});

// ---- The 2-D walk: a guest 4-level walk whose every table reference goes through EPT. ----

const OFF = 0x1000000; // GPA x lives at HPA x + 16 MiB

function nested(eptLarge: boolean, levels = 4, withPsc = false) {
  const mem = new PhysicalMemory(64 << 20);
  const et = new Tables(mem, 0x3000000, true);
  const eroot = et.alloc();
  buildEpt(et, eroot, 8 << 20, OFF, eptLarge, levels); // guest-physical 0..8 MiB
  const ept = new PageWalker(mem, FMT_EPT);
  ept.setEptp(eroot | 6 | ((levels - 1) << 3), 0);
  const gt = new Tables(mem, 0x100000, false, OFF); // guest tables at GPA 1 MiB+
  const groot = gt.alloc();
  const va = levels === 5 ? 0x0012_3456_789a_b000n : 0x7f00_1234_5000n;
  gt.map(groot, va, 0x400000n, P | RW | US, 1, levels);
  gt.map(groot, va + 0x1000n, 0x401000n, P | RW | US, 1, levels);
  const guest = new PageWalker(mem);
  guest.root = groot;
  guest.levels = levels;
  guest.translator = ept;
  if (withPsc) {
    guest.psc = new PagingStructureCache();
    ept.psc = new PagingStructureCache();
  }
  return { mem, guest, ept, va, gt, groot, et, eroot };
}

function gwalk(w: PageWalker, va: bigint, access = ACC_READ, la57 = false): number {
  const [lo, hi] = halves(va);
  return w.walk(lo, hi, access, ctl({ la57 }));
}

describe("2-D walk (guest paging over EPT)", () => {
  it("4-level over 4-level, 4 KiB pages, cold: (4+1)(4+1)-1 = 24 references", () => {
    const { guest, ept, va } = nested(false);
    expect(gwalk(guest, va)).toBe(0x400000 + OFF);
    expect(guest.refs).toBe(24);
    expect(ept.totalRefs).toBe(20);
    expect(guest.totalRefs).toBe(4);
  });
  it("4-level over 4-level with 2 MiB EPT pages: (4+1)(3+1)-1 = 19", () => {
    const { guest, va } = nested(true);
    expect(gwalk(guest, va)).toBe(0x400000 + OFF);
    expect(guest.refs).toBe(19);
  });
  it("5-level over 5-level: (5+1)(5+1)-1 = 35", () => {
    const { guest, va } = nested(false, 5);
    expect(gwalk(guest, va, ACC_READ, true)).toBe(0x400000 + OFF);
    expect(guest.refs).toBe(35);
  });
  it("fewer with the paging-structure caches warm", () => {
    const { guest, ept, va } = nested(false, 4, true);
    // Cold TLB, cold PSCs: the guest walk makes 4 refs; the EPT walk of the guest PML4's GPA 4,
    // then the PDPT, PD and PT (same 2 MiB of GPA) hit the EPT PDE cache (1 each), and the
    // data page (another 2 MiB, same 1 GiB) hits the EPT PDPTE cache (2): 4 + 4+1+1+1+2 = 13.
    expect(gwalk(guest, va)).toBe(0x400000 + OFF);
    expect(guest.refs).toBe(13);
    // Neighbouring page: guest PDE-cache hit (1 guest ref, its table address already host-
    // physical) + the final GPA's EPT walk, itself shortened by the EPT PDE cache (1 ref).
    expect(gwalk(guest, va + 0x1000n)).toBe(0x401000 + OFF);
    expect(guest.refs).toBe(2);
    // Only the guest PSC warm: 1 + 4.
    ept.psc?.invalidateAll();
    expect(gwalk(guest, va)).toBe(0x400000 + OFF);
    expect(guest.refs).toBe(5);
    // Both cold again: the full 24 only when EPT has no PSC at all.
    guest.psc?.invalidateAll();
    ept.psc = null;
    expect(gwalk(guest, va)).toBe(0x400000 + OFF);
    expect(guest.refs).toBe(24);
  });
  it("A/D bits are set in the guest tables through the EPT mapping", () => {
    const { guest, gt, groot, va } = nested(false);
    gwalk(guest, va, ACC_WRITE);
    const pml4e = gt.read(groot + Number((va >> 39n) & 0x1ffn) * 8);
    expect(pml4e & 0x20n).toBe(0x20n);
  });
  it("an EPT violation on a guest paging-structure reference: GLA valid, not a translation", () => {
    const { guest, et, eroot, va, groot } = nested(false);
    // Unmap the guest PML4's page in EPT.
    et.map(eroot, BigInt(groot), BigInt(groot + OFF), 0n, 1);
    expect(gwalk(guest, va)).toBe(-1);
    expect(guest.fault).toBe(FAULT_EPT_VIOLATION);
    expect(guest.faultGpa).toBe(groot);
    expect(guest.qualification).toBe(EPT_R | (1 << 7));
    expect(guest.refs).toBe(4); // the EPT walk of the PML4's address only
  });
  it("an EPT violation on the final address: GLA valid and a translation (bits 7 and 8)", () => {
    const { guest, et, eroot, va } = nested(false);
    et.map(eroot, 0x400000n, BigInt(0x400000 + OFF), ER | EX | EWB, 1);
    expect(gwalk(guest, va, ACC_WRITE)).toBe(-1);
    expect(guest.fault).toBe(FAULT_EPT_VIOLATION);
    expect(guest.faultGpa).toBe(0x400000);
    expect(guest.qualification).toBe(EPT_W | ((EPT_R | EPT_X) << 3) | (1 << 7) | (1 << 8));
    expect(guest.refs).toBe(24);
    // Guest A/D bits are not written for a translation that failed.
    expect(gwalk(guest, va, ACC_READ)).toBe(0x400000 + OFF);
    expect(guest.fault).toBe(FAULT_NONE);
  });
  it("EPT A/D on: guest paging-structure accesses are writes (EPT D set on table pages)", () => {
    const { guest, ept, et, eroot, va, groot } = nested(false);
    ept.setEptp(eroot | 6 | (3 << 3) | (1 << 6), 0);
    expect(gwalk(guest, va, ACC_READ)).toBe(0x400000 + OFF);
    const tablePage = entryAddrs(et, eroot, BigInt(groot));
    expect(et.read(tablePage[1]) & (EA | ED)).toBe(EA | ED);
    expect(et.read(tablePage[2]) & (EA | ED)).toBe(EA);
    const dataPage = entryAddrs(et, eroot, 0x400000n);
    expect(et.read(dataPage[1]) & (EA | ED)).toBe(EA); // a read of the data page
  });
  it("EPT A/D off: setting a guest A bit needs EPT write access to the table page", () => {
    const { guest, et, eroot, va, groot } = nested(false);
    et.map(eroot, BigInt(groot), BigInt(groot + OFF), ER | EX | EWB, 1); // PML4 page read-only
    expect(gwalk(guest, va, ACC_READ)).toBe(-1);
    expect(guest.fault).toBe(FAULT_EPT_VIOLATION);
    expect(guest.qualification).toBe(EPT_W | ((EPT_R | EPT_X) << 3) | (1 << 7));
    expect(guest.faultGpa).toBe(groot + Number((va >> 39n) & 0x1ffn) * 8);
  });
});
