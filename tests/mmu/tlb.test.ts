import { describe, expect, it } from "vitest";
import { MC, MMU_COUNTERS } from "../../src/mmu/counters.js";
import { Mmu, type MmuConfig, type MmuHost } from "../../src/mmu/mmu.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { ACC_FETCH, ACC_READ, ACC_USER, ACC_WRITE, type PagingControls } from "../../src/mmu/walker.js";
import { CR0_PG, CR0_WP, CR4_PAE, CR4_PCIDE, CR4_PGE } from "../../src/x86/control.js";
import { buildEpt, G, halves, P, RW, Tables, US } from "./tables.js";

class FakeHost implements MmuHost {
  cr0 = CR0_PG | CR0_WP | 1;
  cr3Lo = 0;
  cr3Hi = 0;
  cr4 = CR4_PAE;
  cpl = 0;
  nonRoot = false;
  readonly paging: PagingControls = { wp: true, nxe: true, smep: false, smap: false, ac: false, la57: false };
  readonly icountSlot = new Float64Array(1);
  fullFlushes = 0;
  pageFlushes: number[] = [];
  flushTlb(): void {
    this.fullFlushes++;
  }
  flushTlbPage(lo: number, _hi: number): void {
    this.pageFlushes.push(lo >>> 0);
  }
}

const BASE = 0x40000000; // linear addresses used: BASE + n * 4096 (one PT covers 512 pages)

function machine(config: Partial<MmuConfig> = {}, flags = P | RW | US) {
  const mem = new PhysicalMemory(16 << 20);
  const t = new Tables(mem, 0x100000);
  const root = t.alloc();
  const root2 = t.alloc();
  for (let n = 0; n < 600; n++) {
    t.map(root, BigInt(BASE + n * 4096), BigInt(0x800000 + (n % 512) * 4096), flags | (n >= 512 ? G : 0n));
    t.map(root2, BigInt(BASE + n * 4096), BigInt(0xa00000 + (n % 512) * 4096), flags);
  }
  const host = new FakeHost();
  host.cr3Lo = root;
  const mmu = new Mmu(mem, host, config);
  return { mem, t, root, root2, host, mmu };
}

const page = (n: number) => BASE + n * 4096;
const get = (mmu: Mmu, name: (typeof MMU_COUNTERS)[number]) => mmu.stats()[MC[name]];

describe("TLB model: hits, misses, STLB, walks", () => {
  it("a miss walks and fills L1 and STLB; the next lookup hits L1", () => {
    const { mmu } = machine();
    expect(mmu.translate(page(3) + 5, 0, ACC_READ)).toBe(0x800000 + 3 * 4096 + 5);
    expect(get(mmu, "dtlb_misses")).toBe(1);
    expect(get(mmu, "stlb_misses")).toBe(1);
    expect(get(mmu, "walks")).toBe(1);
    expect(mmu.lastWalkRefs).toBe(4);
    expect(mmu.translate(page(3) + 9, 0, ACC_READ)).toBe(0x800000 + 3 * 4096 + 9);
    expect(get(mmu, "dtlb_misses")).toBe(1);
    expect(get(mmu, "dtlb_model_hits")).toBe(1);
    expect(get(mmu, "walks")).toBe(1);
  });
  it("instruction and data L1 TLBs are separate; the STLB is shared", () => {
    const { mmu } = machine();
    mmu.translate(page(1), 0, ACC_READ);
    mmu.translate(page(1), 0, ACC_FETCH);
    expect(get(mmu, "itlb_misses")).toBe(1);
    expect(get(mmu, "stlb_i_hits")).toBe(1);
    expect(get(mmu, "walks")).toBe(1);
  });
  it("the PDE cache shortens the next walk in the same 2 MiB region to 1 reference", () => {
    const { mmu } = machine();
    mmu.translate(page(0), 0, ACC_READ);
    mmu.translate(page(1), 0, ACC_READ);
    expect(mmu.lastWalkRefs).toBe(1);
    expect(get(mmu, "psc_hits_pde")).toBe(1);
    expect(get(mmu, "psc_misses")).toBe(1);
    expect(get(mmu, "walk_refs")).toBe(5);
    expect(get(mmu, "walk_refs_l4")).toBe(1);
    expect(get(mmu, "walk_refs_l1")).toBe(2);
  });
  it("LRU eviction within a set, and the CPU is told to drop the evicted page", () => {
    const { mmu, host } = machine({ dtlb4k: { entries: 8, ways: 2 } }); // 4 sets x 2 ways
    // Pages 0, 4, 8 map to set 0.
    mmu.translate(page(0), 0, ACC_READ);
    mmu.translate(page(4), 0, ACC_READ);
    mmu.translate(page(0), 0, ACC_READ); // 0 is now most recent
    expect(host.pageFlushes).toEqual([]);
    mmu.translate(page(8), 0, ACC_READ); // evicts 4
    expect(host.pageFlushes).toEqual([page(4)]);
    expect(get(mmu, "l1_evictions")).toBe(1);
    mmu.translate(page(0), 0, ACC_READ);
    expect(get(mmu, "dtlb_misses")).toBe(3);
    mmu.translate(page(4), 0, ACC_READ); // L1 miss, STLB hit, no walk; evicts 8 (LRU)
    expect(get(mmu, "dtlb_misses")).toBe(4);
    expect(get(mmu, "stlb_hits")).toBe(1);
    expect(get(mmu, "walks")).toBe(3);
    expect(host.pageFlushes).toEqual([page(4), page(8)]);
  });
  it("STLB capacity: 1536 entries, 12-way", () => {
    const { mmu } = machine();
    expect(mmu.stlb.arrays[0].entries).toBe(1536);
    expect(mmu.stlb.arrays[0].ways).toBe(12);
    expect(mmu.dtlb.arrays[0].entries).toBe(64);
    expect(mmu.itlb.arrays[0].entries).toBe(128);
  });
  it("a write to a clean entry re-walks to set D; a rights violation re-walks and faults", () => {
    const { mmu } = machine();
    mmu.translate(page(2), 0, ACC_READ);
    mmu.translate(page(2), 0, ACC_WRITE);
    expect(get(mmu, "rewalks_dirty")).toBe(1);
    expect(get(mmu, "walks")).toBe(2);
    mmu.translate(page(2), 0, ACC_WRITE);
    expect(get(mmu, "walks")).toBe(2);
  });
  it("a page fault invalidates the faulting page's entries", () => {
    const { mmu, host } = machine({}, P | US);
    host.cpl = 3;
    expect(mmu.translate(page(5), 0, ACC_READ | ACC_USER)).toBeGreaterThan(0);
    expect(mmu.translate(page(5), 0, ACC_WRITE | ACC_USER)).toBe(-1);
    expect(mmu.errorCode).toBe(7);
    expect(get(mmu, "page_faults")).toBe(1);
    expect(get(mmu, "inval_page_fault")).toBe(1);
    expect(mmu.dtlb.lookup(page(5), 0, mmu.ctx)).toBe(false);
    expect(mmu.stlb.lookup(page(5), 0, mmu.ctx)).toBe(false);
  });
});

describe("TLB model: PCIDs, global pages, invalidation", () => {
  it("MOV CR3 flushes non-global entries; global pages (G with CR4.PGE) survive", () => {
    const { mmu, host, root } = machine();
    host.cr4 |= CR4_PGE;
    mmu.syncControls();
    mmu.translate(page(1), 0, ACC_READ); // not global
    mmu.translate(page(513), 0, ACC_READ); // global
    mmu.writeCr3(root, 0);
    expect(get(mmu, "inval_cr3")).toBe(1);
    mmu.translate(page(513), 0, ACC_READ);
    expect(get(mmu, "dtlb_misses")).toBe(2);
    mmu.translate(page(1), 0, ACC_READ);
    expect(get(mmu, "dtlb_misses")).toBe(3);
    expect(get(mmu, "walks")).toBe(3);
  });
  it("without CR4.PGE the G bit is ignored", () => {
    const { mmu, root } = machine();
    mmu.translate(page(513), 0, ACC_READ);
    mmu.writeCr3(root, 0);
    mmu.translate(page(513), 0, ACC_READ);
    expect(get(mmu, "walks")).toBe(2);
  });
  it("entries are tagged by PCID; CR3 bit 63 keeps them", () => {
    const { mmu, host, root, root2 } = machine();
    host.cr4 |= CR4_PCIDE;
    mmu.syncControls();
    mmu.writeCr3(root | 1, 0);
    expect(mmu.translate(page(7), 0, ACC_READ)).toBe(0x800000 + 7 * 4096);
    mmu.writeCr3(root2 | 2, 0x80000000 | 0);
    expect(host.cr3Hi).toBe(0); // bit 63 is not stored
    expect(get(mmu, "inval_cr3_noflush")).toBe(1);
    expect(mmu.translate(page(7), 0, ACC_READ)).toBe(0xa00000 + 7 * 4096); // PCID 2 misses
    expect(get(mmu, "walks")).toBe(2);
    mmu.writeCr3(root | 1, 0x80000000 | 0); // back to PCID 1, no flush: still cached
    expect(mmu.translate(page(7), 0, ACC_READ)).toBe(0x800000 + 7 * 4096);
    expect(get(mmu, "walks")).toBe(2);
    mmu.writeCr3(root | 1, 0); // flushes PCID 1 only
    expect(mmu.translate(page(7), 0, ACC_READ)).toBe(0x800000 + 7 * 4096);
    expect(get(mmu, "walks")).toBe(3);
    mmu.writeCr3(root2 | 2, 0x80000000 | 0);
    expect(mmu.translate(page(7), 0, ACC_READ)).toBe(0xa00000 + 7 * 4096);
    expect(get(mmu, "walks")).toBe(3);
  });
  it("global entries match every PCID", () => {
    const { mmu, host, root, root2 } = machine();
    host.cr4 |= CR4_PCIDE | CR4_PGE;
    mmu.syncControls();
    mmu.writeCr3(root | 1, 0);
    mmu.translate(page(520), 0, ACC_READ);
    mmu.writeCr3(root2 | 2, 0);
    expect(mmu.translate(page(520), 0, ACC_READ)).toBe(0x800000 + 8 * 4096); // the global one
    expect(get(mmu, "walks")).toBe(1);
  });
  it("INVLPG drops the page (global too) and the PSCs, leaves other pages", () => {
    const { mmu, host } = machine();
    host.cr4 |= CR4_PGE;
    mmu.syncControls();
    mmu.translate(page(1), 0, ACC_READ);
    mmu.translate(page(2), 0, ACC_READ);
    mmu.translate(page(514), 0, ACC_READ);
    host.pageFlushes.length = 0;
    mmu.invlpg(page(514), 0);
    mmu.invlpg(page(1), 0);
    expect(host.pageFlushes).toEqual([page(514), page(1)]);
    expect(get(mmu, "inval_invlpg")).toBe(2);
    const walks = get(mmu, "walks");
    mmu.translate(page(2), 0, ACC_READ);
    expect(get(mmu, "walks")).toBe(walks);
    mmu.translate(page(1), 0, ACC_READ);
    expect(mmu.lastWalkRefs).toBe(4); // PSC gone too
    mmu.translate(page(514), 0, ACC_READ);
    expect(get(mmu, "walks")).toBe(walks + 2);
  });
  it("INVPCID type 0: one page of one PCID, globals kept", () => {
    const { mmu, host, root } = machine();
    host.cr4 |= CR4_PCIDE | CR4_PGE;
    mmu.syncControls();
    mmu.writeCr3(root | 1, 0);
    mmu.translate(page(1), 0, ACC_READ);
    mmu.translate(page(2), 0, ACC_READ);
    mmu.translate(page(515), 0, ACC_READ);
    mmu.invpcid(0, 1, page(1), 0);
    mmu.invpcid(0, 1, page(515), 0); // global: kept
    mmu.invpcid(0, 5, page(2), 0); // other PCID: nothing
    const w = get(mmu, "walks");
    mmu.translate(page(2), 0, ACC_READ);
    mmu.translate(page(515), 0, ACC_READ);
    expect(get(mmu, "walks")).toBe(w);
    mmu.translate(page(1), 0, ACC_READ);
    expect(get(mmu, "walks")).toBe(w + 1);
    expect(get(mmu, "inval_invpcid_0")).toBe(3);
  });
  it("INVPCID type 1: all of one PCID except globals; other PCIDs kept", () => {
    const { mmu, host, root } = machine();
    host.cr4 |= CR4_PCIDE | CR4_PGE;
    mmu.syncControls();
    mmu.writeCr3(root | 1, 0);
    mmu.translate(page(1), 0, ACC_READ);
    mmu.translate(page(516), 0, ACC_READ);
    mmu.writeCr3(root | 2, 0x80000000 | 0);
    mmu.translate(page(2), 0, ACC_READ);
    mmu.invpcid(1, 1, 0, 0);
    const w = get(mmu, "walks");
    mmu.translate(page(2), 0, ACC_READ); // PCID 2: kept
    mmu.translate(page(516), 0, ACC_READ); // global: kept
    expect(get(mmu, "walks")).toBe(w);
    mmu.writeCr3(root | 1, 0x80000000 | 0);
    mmu.translate(page(1), 0, ACC_READ);
    expect(get(mmu, "walks")).toBe(w + 1);
  });
  it("INVPCID type 2 drops everything including globals; type 3 keeps globals", () => {
    for (const type of [2, 3]) {
      const { mmu, host, root } = machine();
      host.cr4 |= CR4_PCIDE | CR4_PGE;
      mmu.syncControls();
      mmu.writeCr3(root | 1, 0);
      mmu.translate(page(1), 0, ACC_READ);
      mmu.translate(page(517), 0, ACC_READ);
      mmu.writeCr3(root | 2, 0x80000000 | 0);
      mmu.translate(page(2), 0, ACC_READ);
      mmu.invpcid(type, 0, 0, 0);
      const w = get(mmu, "walks");
      mmu.translate(page(2), 0, ACC_READ);
      expect(get(mmu, "walks")).toBe(w + 1);
      mmu.translate(page(517), 0, ACC_READ);
      expect(get(mmu, "walks")).toBe(type === 2 ? w + 2 : w + 1);
      expect(get(mmu, type === 2 ? "inval_invpcid_2" : "inval_invpcid_3")).toBe(1);
    }
  });
  it("CR4.PGE change and CR0.PG change flush everything, globals included", () => {
    const { mmu, host } = machine();
    host.cr4 |= CR4_PGE;
    mmu.syncControls();
    mmu.translate(page(518), 0, ACC_READ);
    host.cr4 &= ~CR4_PGE;
    mmu.syncControls();
    expect(get(mmu, "inval_cr4")).toBe(2);
    expect(mmu.dtlb.occupancy() + mmu.stlb.occupancy()).toBe(0);
    mmu.translate(page(1), 0, ACC_READ);
    host.cr0 &= ~CR0_PG;
    mmu.syncControls();
    expect(get(mmu, "inval_cr0")).toBe(1);
    expect(mmu.dtlb.occupancy()).toBe(0);
  });
  it("a CR3 changed behind the MMU's back is treated as a flushing load", () => {
    const { mmu, host, root2 } = machine();
    mmu.translate(page(9), 0, ACC_READ);
    host.cr3Lo = root2;
    expect(mmu.translate(page(9), 0, ACC_READ)).toBe(0xa00000 + 9 * 4096);
    expect(get(mmu, "cr3_implicit_loads")).toBe(1);
    expect(get(mmu, "inval_cr3")).toBe(0);
  });
  it("VM entry/exit (non-root changes) flush everything while VPIDs are not modelled", () => {
    const { mmu, host } = machine();
    host.cr4 |= CR4_PGE;
    mmu.syncControls();
    mmu.translate(page(519), 0, ACC_READ); // global
    host.nonRoot = true;
    mmu.translate(page(519), 0, ACC_READ);
    expect(get(mmu, "walks")).toBe(2);
    expect(get(mmu, "vm_transitions")).toBe(1);
    host.nonRoot = false;
    mmu.syncControls();
    expect(get(mmu, "vm_transitions")).toBe(2);
    expect(mmu.dtlb.occupancy()).toBe(0);
    mmu.vmTransitionsFlush = false;
    mmu.translate(page(519), 0, ACC_READ);
    host.nonRoot = true;
    mmu.translate(page(519), 0, ACC_READ);
    expect(get(mmu, "walks")).toBe(3);
  });
  it("counters are declared once and serialise by name", () => {
    const { mmu } = machine();
    mmu.translate(page(1), 0, ACC_READ);
    const j = mmu.toJSON();
    expect(Object.keys(j)).toEqual([...MMU_COUNTERS]);
    expect(j.walks).toBe(1);
    const [lo, hi] = halves(BigInt(page(1)));
    expect(mmu.translate(lo, hi, ACC_READ)).toBe(0x800000 + 4096);
  });
});

describe("TLB model: large pages and nested translation", () => {
  it("a 1 GiB page is cached as 1 GiB in the DTLB and splintered to 2 MiB in the ITLB", () => {
    const mem = new PhysicalMemory(16 << 20);
    const t = new Tables(mem, 0x100000);
    const root = t.alloc();
    t.map(root, 0x80_0000_0000n, 0x40000000n, P | RW, 3);
    const host = new FakeHost();
    host.cr3Lo = root;
    const mmu = new Mmu(mem, host);
    const [lo, hi] = halves(0x80_0000_0000n + 0x12345678n);
    expect(mmu.translate(lo, hi, ACC_READ)).toBe(0x40000000 + 0x12345678);
    expect(mmu.dtlb.arrays[2].occupancy()).toBe(1);
    expect(mmu.translate(lo, hi, ACC_FETCH)).toBe(0x40000000 + 0x12345678);
    expect(mmu.itlb.arrays[1].occupancy()).toBe(1); // the 2 MiB array
    expect(get(mmu, "walks")).toBe(1); // the ITLB miss hit the STLB's 1 GiB array
    const [lo2, hi2] = halves(0x80_0000_0000n + 0x12345678n + 0x200000n);
    expect(mmu.translate(lo2, hi2, ACC_FETCH)).toBe(0x40000000 + 0x12345678 + 0x200000);
    expect(get(mmu, "itlb_misses")).toBe(2);
    expect(get(mmu, "walks")).toBe(1);
  });
  it("evicting a large-page L1 entry flushes the whole software TLB", () => {
    const mem = new PhysicalMemory(16 << 20);
    const t = new Tables(mem, 0x100000);
    const root = t.alloc();
    for (let n = 0; n < 3; n++) t.map(root, BigInt(0x40000000 + n * 0x200000), BigInt(n * 0x200000), P | RW, 2);
    const host = new FakeHost();
    host.cr3Lo = root;
    const mmu = new Mmu(mem, host, { dtlb2m: { entries: 2, ways: 2 } });
    for (let n = 0; n < 3; n++) mmu.translate(0x40000000 + n * 0x200000, 0, ACC_READ);
    expect(get(mmu, "l1_evictions")).toBe(1);
    expect(host.fullFlushes).toBe(1);
    expect(host.pageFlushes).toEqual([]);
  });
  it("a 2-D walk through the MMU: 24 references cold (no PSCs), 0 on a TLB hit", () => {
    const OFF = 0x1000000;
    const mem = new PhysicalMemory(64 << 20);
    const et = new Tables(mem, 0x3000000, true);
    const eroot = et.alloc();
    buildEpt(et, eroot, 8 << 20, OFF);
    const gt = new Tables(mem, 0x100000, false, OFF);
    const groot = gt.alloc();
    gt.map(groot, 0x7f00_1234_5000n, 0x400000n, P | RW | US);
    const host = new FakeHost();
    host.cr3Lo = groot;
    const none = { pde: 0, pdpte: 0, pml4e: 0, pml5e: 0 };
    const mmu = new Mmu(mem, host, { psc: none, eptPsc: none });
    mmu.useEpt(eroot | 6 | (3 << 3), 0);
    const [lo, hi] = halves(0x7f00_1234_5000n + 0x10n);
    expect(mmu.translate(lo, hi, ACC_READ)).toBe(0x400000 + OFF + 0x10);
    expect(mmu.lastWalkRefs).toBe(24);
    expect(get(mmu, "walk_refs")).toBe(24);
    expect(get(mmu, "ept_refs")).toBe(20);
    expect(get(mmu, "ept_refs_l1")).toBe(5);
    expect(mmu.translate(lo, hi, ACC_READ)).toBe(0x400000 + OFF + 0x10);
    expect(mmu.lastWalkRefs).toBe(0);
    expect(get(mmu, "walk_refs")).toBe(24);
  });
});
