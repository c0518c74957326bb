/**
 * EPT02: the table L2 really runs on, a shadow of EPT12 ∘ (L1 guest-physical → host-physical),
 * built on EPT02 misses (KVM's nested TDP MMU with the EPT flavour of paging_tmpl.h): walk L1's
 * EPT12 in L1 memory with the hypervisor MMU's guest-table walker; when EPT12 maps the address
 * with the access's rights, map the page in EPT02 with EPT12's rights (W held back while an EPT12
 * leaf with A/D flags on is clean) to the frame backing the L1 page — a 2 MiB leaf when EPT12 and
 * EPT01 both map the range with large leaves, else 4 KiB; otherwise the violation (or
 * misconfiguration) is L1's.
 *
 * The EPT12 pages each walk read are write-tracked through the hypervisor MMU's page tracking
 * (KVM's page_track for shadowed guest tables): L1's writes to them exit, L0 emulates them, and
 * the notifier drops the EPT02 leaves built from the entry written — a new entry (one no leaf
 * came from) drops nothing, a changed or removed leaf entry drops the L2 pages it mapped, a
 * changed non-leaf entry drops EPT02 whole. L1's INVEPT also drops EPT02 whole (SDM vol. 3C,
 * 29.4.3.1), and stops the tracking until the next misses. EPT02 table pages a drop leaves empty,
 * and all of them on a whole drop, go back to a recycling pool after the flush.
 */
import {
  EPT_W,
  FAULT_EPT_MISCONFIG,
  FAULT_EPT_VIOLATION,
  FMT_EPT,
  LEAF_D,
  type PageWalker,
} from "../../../mmu/walker.js";
import { GuestTableWalker } from "../../mmu/guest-walk.js";
import { levelSize, type PageTableBuilder } from "../../mmu/page-table.js";
import type { TrackedWrite } from "../../mmu/page-track.js";
import { RecyclingPages } from "../host-pages.js";
import type { L0Hypervisor } from "../l0.js";
import type { Vm } from "../vm.js";

/** Outcome of an EPT02 miss. */
export const EPT02_MAPPED = 0;
export const EPT02_L1_VIOLATION = 1;
export const EPT02_L1_MISCONFIG = 2;
export const EPT02_NOT_RAM = 3;

/** The walker's stats slots (PageWalker.stats): A/D writes at 0, entry reads by level at 1..5. */
const AD_STAT = 0;
const REF_STATS = 1;
/** A 2 MiB leaf's size. */
const LARGE = levelSize(2);

export class Ept02 {
  table: PageTableBuilder;
  /** L0's software walks of EPT12 (their entry reads are charged by the caller: L0.chargeTableWalk). */
  readonly walker: GuestTableWalker;
  /** Qualification of the last L1 violation (table 28-7, as EPT12 says it). */
  qualification = 0;
  /** Leaves built (2 MiB ones also in `largeBuilt`) and zaps done. */
  built = 0;
  largeBuilt = 0;
  zaps = 0;
  /** EPT02 table pages given back to the pool: a zap's, and those a dropped leaf left empty. */
  tablesFreed = 0;
  /** Where EPT02's table pages come from and go back to (recycled pages are only zeroed). */
  private readonly pages: RecyclingPages;
  /** Writes to tracked EPT12 pages reported (an 8-byte store through the MMIO path is two), and EPT02 leaves they dropped. */
  trackedWrites = 0;
  leavesDropped = 0;
  /** Host address of an EPT12 leaf entry → the L2 addresses of the EPT02 leaves built from it. */
  private readonly fromLeaf = new Map<number, number[]>();
  /** Host addresses of the EPT12 non-leaf entries walks went through. */
  private readonly nonLeaf = new Set<number>();
  /** Host frames of EPT12 pages tracked. */
  private readonly frames = new Set<number>();
  private readonly notifier = (w: TrackedWrite): void => this.written(w);
  private readonly walkStats = new Float64Array(6);

  constructor(
    private readonly l0: L0Hypervisor,
    private readonly vm: Vm,
    private readonly vpid: number,
  ) {
    this.pages = new RecyclingPages(l0.host.mem, l0.alloc);
    this.walker = new GuestTableWalker(l0.host.mem, FMT_EPT, (gpa) => vm.memslots.translate(gpa));
    this.walker.walker.stats = this.walkStats;
    this.walker.walker.statBase = REF_STATS;
    this.walker.walker.adStat = AD_STAT;
    this.table = this.newTable();
  }

  private newTable(): PageTableBuilder {
    const t = this.l0.mmu.newTable(this.l0.host.mem, this.pages);
    t.flush = () => this.l0.host.invalidateVpid(this.vpid);
    return t;
  }

  /** An EPT02 miss at L2 guest-physical `gpa` for an access of EPT R/W/X bits `access`. */
  miss(eptp12Lo: number, eptp12Hi: number, gpa: number, access: number): number {
    const w = this.walker;
    w.cache = this.l0.host.dataCache;
    const gpa1 = w.walkEpt(eptp12Lo, eptp12Hi, gpa, access);
    if (gpa1 < 0) {
      const f = w.walker.fault;
      if (f === FAULT_EPT_MISCONFIG) return EPT02_L1_MISCONFIG;
      if (f !== FAULT_EPT_VIOLATION) return EPT02_NOT_RAM; // an EPT12 table outside L1 RAM
      this.qualification = w.walker.qualification;
      return EPT02_L1_VIOLATION;
    }
    const page1 = gpa1 - (gpa1 % 4096);
    const hpa = this.vm.memslots.translate(page1);
    if (hpa < 0) return EPT02_NOT_RAM;
    const wk = w.walker;
    const level = this.leafLevel(wk, gpa1, gpa);
    const size = levelSize(level);
    const base2 = gpa - (gpa % size);
    // An L1 page L1 never touched has no host page yet: L0 backs it now, as EPT01 would.
    this.vm.back(page1 - (page1 % size), size);
    if (level === 1) this.splitOver(base2);
    this.record(wk.startLevel, wk.pageShift === 12 ? 1 : wk.pageShift === 21 ? 2 : 3, base2);
    this.table.map(base2, hpa - (page1 % size), this.rights(wk), level);
    this.built++;
    if (level > 1) this.largeBuilt++;
    return EPT02_MAPPED;
  }

  /**
   * The EPT02 leaf level for the translation the walk found: 2 MiB when EPT12's leaf is 2 MiB or
   * larger and EPT01 maps the L1 range with a 2 MiB or larger leaf too (so it is contiguous and
   * aligned in host memory), no frame in it is write-tracked and EPT02 holds no smaller mappings
   * there; else 4 KiB. KVM: the shadow page's level is the smaller of the guest's and the host's
   * (kvm_mmu_hugepage_adjust, with disallow_lpage for write-tracked frames). A range EPT01 has
   * not mapped yet gets 4 KiB leaves; 1 GiB leaves on both sides still give 2 MiB ones.
   */
  private leafLevel(wk: PageWalker, gpa1: number, gpa2: number): number {
    if (wk.pageShift < 21) return 1;
    const leaf01 = this.vm.ept01.lookup(gpa1 - (gpa1 % LARGE));
    if (leaf01 === null || leaf01.level < 2) return 1;
    if (this.l0.mmu.tracker.anyIn(leaf01.pa, LARGE) || this.table.tableUnder(gpa2, 2)) return 1;
    return 2;
  }

  /**
   * A 4 KiB leaf is wanted where a 2 MiB EPT02 leaf is (a frame in it became write-tracked):
   * drop the large leaf first; its other pages fault back in at 4 KiB (KVM zaps a huge SPTE above
   * the fault's goal level).
   */
  private splitOver(page2: number): void {
    const leaf = this.table.lookup(page2);
    if (leaf === null || leaf.level === 1) return;
    this.table.unmap(page2);
    this.l0.host.invalidateVpid(this.vpid);
  }

  /**
   * EPT02 rights for the EPT12 translation the walk found. With EPTP12's A/D flags on, the walk
   * set EPT12's accessed flags (and the leaf's dirty flag for a write) in L1 memory, as the
   * processor would for L1; a leaf still clean maps without W, so L2's first write faults into
   * L0, whose walk for the write sets the dirty flag before EPT02 lets the write through (KVM:
   * FNAME(update_accessed_dirty_bits) and FNAME(protect_clean_gpte) in paging_tmpl.h).
   */
  private rights(wk: PageWalker): number {
    const perms = wk.perm & 7;
    return wk.adEnabled && (wk.leafInfo & LEAF_D) === 0 ? perms & ~EPT_W : perms;
  }

  /** EPT02 table pages waiting in the pool. */
  get poolPages(): number {
    return this.pages.freePages;
  }

  /** EPT12 entries L0's walks read at paging level `level` (1 = PTE … 4 = PML4E). */
  walkReads(level: number): number {
    return this.walkStats[REF_STATS + level - 1];
  }

  /** EPT12 accessed/dirty flags L0's walks set (in L1 memory). */
  get adWrites(): number {
    return this.walkStats[AD_STAT];
  }

  /** Remember which EPT12 entries the walk used and track their pages. */
  private record(top: number, leafLevel: number, page2: number): void {
    const walker = this.walker.walker;
    for (let l = top; l >= leafLevel; l--) {
      const a = walker.entryAddress(l);
      if (l === leafLevel) {
        const list = this.fromLeaf.get(a);
        if (list === undefined) this.fromLeaf.set(a, [page2]);
        else if (!list.includes(page2)) list.push(page2);
      } else this.nonLeaf.add(a);
      const frame = a - (a % 4096);
      if (!this.frames.has(frame)) {
        this.frames.add(frame);
        this.l0.mmu.trackWrites(frame, this.notifier);
      }
    }
  }

  /** L1 wrote a tracked EPT12 page (the write is in memory): drop what came from that entry. */
  private written(w: TrackedWrite): void {
    this.trackedWrites++;
    const entry = w.pa - (w.pa % 8);
    if (this.nonLeaf.has(entry)) {
      this.zap();
      this.l0.chargeHandler("nvmx.ept02_zap", "nvmx_ept12_write");
      return;
    }
    const pages = this.fromLeaf.get(entry);
    if (pages === undefined) return; // a new entry: the next miss finds it
    const emptied: number[] = [];
    for (const p of pages) emptied.push(...this.table.unmapAndPrune(p));
    this.fromLeaf.delete(entry);
    this.leavesDropped += pages.length;
    this.l0.host.invalidateVpid(this.vpid);
    this.free(emptied);
    this.l0.chargeHandler("nvmx.ept02_zap", "nvmx_ept12_write");
  }

  /** Give EPT02 table pages back to the pool (after the flush that drops the CPU's cached copies). */
  private free(pages: readonly number[]): void {
    for (const p of pages) this.pages.free(p);
    this.tablesFreed += pages.length;
  }

  /** Drop every EPT02 leaf (L1's INVEPT, or a new EPTP12) and flush L2's TLB entries. */
  zap(): void {
    for (const f of this.frames) this.l0.mmu.untrackWrites(f, this.notifier);
    this.frames.clear();
    this.fromLeaf.clear();
    this.nonLeaf.clear();
    const pages = this.table.destroy();
    this.l0.host.invalidateVpid(this.vpid);
    this.free(pages);
    this.table = this.newTable();
    this.zaps++;
  }
}
