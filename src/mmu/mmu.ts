import { CR0_PG, CR4_LA57, CR4_PAE, CR4_PCIDE, CR4_PGE, CR4_SMEP } from "../x86/control.js";
import { MC, MMU_COUNTERS, type MmuCounterName } from "./counters.js";
import { DataCacheModel } from "./data-cache.js";
import { DEFAULT_PSC_SIZES, PagingStructureCache, type PscSizes } from "./paging-structure-cache.js";
import type { PhysicalMemory } from "./phys.js";
import {
  contextTag,
  SIZE_SHIFT,
  SIZES_1G,
  SIZES_2M,
  SIZES_4K,
  SZ_4K,
  sizeCodeOfShift,
  Tlb,
  TlbArray,
  type TlbGeometry,
} from "./tlb.js";
import {
  ACC_FETCH,
  ACC_NOAC,
  ACC_USER,
  ACC_WRITE,
  EPT_R,
  EPT_W,
  EPT_X,
  eptDenied,
  FAULT_EPT_MISCONFIG,
  FAULT_EPT_VIOLATION,
  FAULT_NONE,
  FAULT_PF,
  FMT_EPT,
  FMT_X86,
  GPA_FINAL,
  type GuestPhysicalTranslator,
  LEAF_D,
  LEAF_EPT_NO_R,
  LEAF_EPT_NO_W,
  LEAF_EPT_NO_X,
  LEAF_G,
  PageWalker,
  type PagingControls,
  PERM_ALL,
  x86Denied,
} from "./walker.js";

/**
 * What the MMU needs from the CPU it serves (the Cpu satisfies this structurally). The MMU
 * never reaches further into the CPU: it reads the control registers, and tells the CPU to drop
 * pages from its software TLB when the modelled L1 TLB loses them.
 */
export interface MmuHost {
  cr0: number;
  cr3Lo: number;
  cr3Hi: number;
  cr4: number;
  cpl: number;
  readonly paging: PagingControls;
  /** Retired instructions (ITLB accesses). */
  readonly icountSlot: Float64Array;
  /** VMX non-root operation (optional: hosts without VMX leave it undefined). */
  readonly nonRoot?: boolean;
  /** Drop the whole software TLB (and the current code page). */
  flushTlb(): void;
  /** Drop one linear page from the software TLB (and the current code page). */
  flushTlbPage(lo: number, hi: number): void;
}

/** TLB and paging-structure-cache geometry. Defaults: see docs/mmu.md for sources. */
export interface MmuConfig {
  itlb4k: TlbGeometry;
  itlb2m: TlbGeometry;
  dtlb4k: TlbGeometry;
  dtlb2m: TlbGeometry;
  dtlb1g: TlbGeometry;
  /** Shared second level, 4 KiB and 2 MiB pages. */
  stlb: TlbGeometry;
  stlb1g: TlbGeometry;
  psc: PscSizes;
  eptPsc: PscSizes;
  /** MAXPHYADDR (reserved-bit checks). */
  maxPhysAddr: number;
}

/** Skylake-class defaults (Intel optimization manual; calibration.md "TLB sizes to model"). */
export const DEFAULT_MMU_CONFIG: MmuConfig = {
  itlb4k: { entries: 128, ways: 8 },
  itlb2m: { entries: 8, ways: 8 },
  dtlb4k: { entries: 64, ways: 4 },
  dtlb2m: { entries: 32, ways: 4 },
  dtlb1g: { entries: 4, ways: 4 },
  stlb: { entries: 1536, ways: 12 },
  stlb1g: { entries: 16, ways: 4 },
  psc: DEFAULT_PSC_SIZES,
  eptPsc: DEFAULT_PSC_SIZES,
  maxPhysAddr: 46,
};

/** Why everything was flushed (counter attribution). */
export type FlushReason = "cr0" | "cr4" | "other";

const NOTIFY_PAGE = 1;
const NOTIFY_ALL = 2;

/**
 * The memory-management unit of one logical processor: L1 ITLB and DTLB, a shared STLB,
 * paging-structure caches, the page walker (and, nested, an EPT walker under it), counters.
 *
 * The CPU's direct-mapped software TLB is a cache of the modelled L1 TLBs: every page it holds
 * is in the modelled L1 (DTLB for data, ITLB for the current code page), so the model tells the
 * CPU to drop a page whenever an L1 entry is evicted or invalidated. The CPU calls `translate`
 * on a software-TLB miss; the model counts misses/walks there, and L1 hits as accesses minus
 * misses (the CPU counts data accesses in `dataAccesses`, instructions in its icount).
 */
export class Mmu {
  readonly config: MmuConfig;
  readonly counters = new Float64Array(MMU_COUNTERS.length);
  /** One slot (a view into `counters`): the CPU bumps it for each data access (DTLB accesses). */
  readonly dataAccesses: Float64Array;
  readonly walker: PageWalker;
  readonly psc: PagingStructureCache;
  readonly eptPsc: PagingStructureCache;
  /** The EPT walker the guest walker translates through (null: native). */
  ept: PageWalker | null = null;
  /** The one EPT walker `ept` is while EPT is in use: made at the first entry, kept across exits. */
  private eptWalker: PageWalker | null = null;
  readonly itlb: Tlb;
  readonly dtlb: Tlb;
  readonly stlb: Tlb;

  /** Fault of the last failed translate(): FAULT_PF / FAULT_EPT_*. */
  fault = FAULT_NONE;
  /** #PF error code of the last failed translate(). */
  errorCode = 0;
  /** Memory references of the last walk (0 when the TLB answered). */
  lastWalkRefs = 0;
  /** EPT translations the last walk made (its nested steps; 0 natively or when the TLB answered). */
  lastNestedSteps = 0;
  /** Those references by where the data caches found them (FOUND_*; valid when lastWalkRefs > 0). */
  readonly lastWalkFound = new Float64Array(4);
  /** The data-side caches the walks go through (data-cache.ts); null when the model is off. */
  dataCache: DataCacheModel | null;

  vpid = 0;
  eptpIndex = 0;
  /**
   * VM entries and exits (host.nonRoot changing) flush everything, as with VPID disabled
   * (SDM vol. 3, 28.3.3.3). Whoever models VPIDs sets this false and calls setContext instead.
   */
  vmTransitionsFlush = true;
  private lastNonRoot = false;
  /** Current context tag (vpid, eptpIndex, pcid). */
  ctx = 0;

  private readonly host: MmuHost;
  private cr3Lo = 0;
  private cr3Hi = 0;
  private lastCr0 = 0;
  private lastCr4 = 0;
  private icountBase = 0;

  constructor(mem: PhysicalMemory, host: MmuHost, config: Partial<MmuConfig> = {}) {
    const cfg: MmuConfig = { ...DEFAULT_MMU_CONFIG, ...config };
    this.config = cfg;
    this.host = host;
    this.dataAccesses = this.counters.subarray(MC.dtlb_accesses, MC.dtlb_accesses + 1);
    this.psc = new PagingStructureCache(cfg.psc);
    this.eptPsc = new PagingStructureCache(cfg.eptPsc);
    const w = new PageWalker(mem, FMT_X86, cfg.maxPhysAddr);
    w.psc = this.psc;
    w.stats = this.counters;
    w.statBase = MC.walk_refs_l1;
    w.pscStatBase = MC.psc_hits_pde;
    w.adStat = MC.ad_writes;
    this.walker = w;
    this.dataCache = new DataCacheModel();
    w.cache = this.dataCache;
    this.itlb = new Tlb("itlb", [
      new TlbArray("itlb4k", cfg.itlb4k, SIZES_4K),
      new TlbArray("itlb2m", cfg.itlb2m, SIZES_2M),
    ]);
    this.dtlb = new Tlb("dtlb", [
      new TlbArray("dtlb4k", cfg.dtlb4k, SIZES_4K),
      new TlbArray("dtlb2m", cfg.dtlb2m, SIZES_2M),
      new TlbArray("dtlb1g", cfg.dtlb1g, SIZES_1G),
    ]);
    this.stlb = new Tlb("stlb", [
      new TlbArray("stlb", cfg.stlb, SIZES_4K | SIZES_2M),
      new TlbArray("stlb1g", cfg.stlb1g, SIZES_1G),
    ]);
    this.mem = mem;
    this.cr3Lo = host.cr3Lo;
    this.cr3Hi = host.cr3Hi;
    this.lastCr0 = host.cr0;
    this.lastCr4 = host.cr4;
    w.setCr3(host.cr3Lo, host.cr3Hi);
    w.levels = (host.cr4 & CR4_LA57) !== 0 ? 5 : 4;
    this.recomputeCtx();
  }

  private readonly mem: PhysicalMemory;

  // =====================================================================================
  // Translation
  // =====================================================================================

  /**
   * Translate linear lo/hi (canonical already checked) for `access` (ACC_* bits): L1 TLB → STLB →
   * page walk (with PSCs) → fill. Returns the physical address, or -1 with `fault`/`errorCode`
   * set. Called by the CPU on software-TLB misses only: with paging on, or with paging off under
   * EPT, where the linear address is the guest-physical one and the TLBs cache guest-physical
   * mappings that only EPT's rights apply to (SDM vol. 3, 29.4.1); a miss walks EPT alone.
   */
  translate(lo: number, hi: number, access: number): number {
    const h = this.host;
    if ((h.nonRoot === true) !== this.lastNonRoot) this.vmTransition();
    if (h.cr3Lo !== this.cr3Lo || h.cr3Hi !== this.cr3Hi) this.cr3Loaded(true, true);
    if (h.cpl === 3 && (access & ACC_USER) === 0) access |= ACC_NOAC;
    const c = this.counters;
    const fetch = (access & ACC_FETCH) !== 0;
    const l1 = fetch ? this.itlb : this.dtlb;
    const ctx = this.ctx;
    // Paging off: no x86 rights (a CR0.PG change flushes every entry, so none made here is seen with paging on).
    const ctl = (h.cr0 & CR0_PG) !== 0 ? h.paging : null;
    this.lastWalkRefs = 0;
    if (l1.lookup(lo, hi, ctx)) {
      const a = l1.hitArray;
      const k = l1.hitIndex;
      const info = a.info(k);
      if (!fetch) c[MC.dtlb_model_hits]++;
      if (!(ctl !== null && x86Denied(info, access, ctl)) && !eptDenied(info, access)) {
        if ((access & ACC_WRITE) === 0 || (info & LEAF_D) !== 0) return a.base[k] + pageOffset(lo, a.size(k));
        c[MC.rewalks_dirty]++;
      } else c[MC.rewalks_rights]++;
      // The cached entry cannot serve this access: drop it (everywhere) and walk again.
      this.dropPage(lo, hi);
      return this.walkFill(lo, hi, access, fetch, l1);
    }
    c[fetch ? MC.itlb_misses : MC.dtlb_misses]++;
    const s = this.stlb;
    if (s.lookup(lo, hi, ctx)) {
      c[MC.stlb_hits]++;
      c[fetch ? MC.stlb_i_hits : MC.stlb_d_hits]++;
      const a = s.hitArray;
      const k = s.hitIndex;
      const info = a.info(k);
      const denied = (ctl !== null && x86Denied(info, access, ctl)) || eptDenied(info, access);
      if (!denied && ((access & ACC_WRITE) === 0 || (info & LEAF_D) !== 0)) {
        const size = a.size(k);
        const base = a.base[k];
        this.fillL1(l1, lo, hi, size, info, base);
        return base + pageOffset(lo, size);
      }
      c[denied ? MC.rewalks_rights : MC.rewalks_dirty]++;
      this.dropPage(lo, hi);
    } else {
      c[MC.stlb_misses]++;
      c[fetch ? MC.stlb_i_misses : MC.stlb_d_misses]++;
    }
    return ctl === null ? this.eptWalkFill(lo, access, fetch, l1) : this.walkFill(lo, hi, access, fetch, l1);
  }

  /**
   * Paging off under EPT: the walk is one EPT walk of the guest-physical address `lo` (its
   * references in lastWalkRefs, no nested step: there is no guest walk for it to serve).
   */
  private eptWalkFill(lo: number, access: number, fetch: boolean, l1: Tlb): number {
    const c = this.counters;
    const e = this.ept as PageWalker;
    const dc = this.dataCache;
    if (dc !== null) this.lastWalkFound.set(dc.walkFound);
    c[MC.walks]++;
    c[fetch ? MC.walks_i : MC.walks_d]++;
    const eacc = fetch ? EPT_X : (access & ACC_WRITE) !== 0 ? EPT_W : EPT_R;
    const pa = e.translateGpa(lo >>> 0, eacc, GPA_FINAL);
    this.lastWalkRefs = e.refs;
    this.lastNestedSteps = 0;
    if (dc !== null) this.foundSince(dc);
    if (pa < 0) return this.eptWalkFault(e.fault);
    const size = sizeCodeOfShift(e.pageShift);
    let info = PERM_ALL | e.leafInfo;
    if ((e.perms & EPT_R) === 0) info |= LEAF_EPT_NO_R;
    if ((e.perms & EPT_W) === 0) info |= LEAF_EPT_NO_W;
    if ((e.perms & EPT_X) === 0) info |= LEAF_EPT_NO_X;
    this.fill(l1, lo, 0, size, info, pa - pageOffset(lo, size));
    return pa;
  }

  /** lastWalkFound: the references the data caches found at each level since it was set to their count. */
  private foundSince(dc: DataCacheModel): void {
    const f = this.lastWalkFound;
    const now = dc.walkFound;
    for (let k = 0; k < 4; k++) f[k] = now[k] - f[k];
  }

  /** A walk failed with an EPT violation or misconfiguration. */
  private eptWalkFault(fault: number): number {
    const c = this.counters;
    c[MC.walk_faults]++;
    this.fault = fault;
    if (fault === FAULT_EPT_VIOLATION) c[MC.ept_violations]++;
    else if (fault === FAULT_EPT_MISCONFIG) c[MC.ept_misconfigs]++;
    return -1;
  }

  private walkFill(lo: number, hi: number, access: number, fetch: boolean, l1: Tlb): number {
    const c = this.counters;
    const w = this.walker;
    const dc = this.dataCache;
    if (dc !== null) this.lastWalkFound.set(dc.walkFound);
    c[MC.walks]++;
    c[fetch ? MC.walks_i : MC.walks_d]++;
    const eptWalks0 = c[MC.ept_walks];
    let pa = w.walk(lo, hi, access, this.host.paging);
    this.lastWalkRefs = w.refs;
    if (w.startLevel === w.levels) c[MC.psc_misses]++;
    else if (pa < 0 && w.fault === FAULT_PF) {
      // A fault on a walk that began at a (possibly stale) PSC entry is re-verified from the
      // root, so software that changed tables without invalidating sees no spurious #PF.
      c[MC.rewalks_psc]++;
      this.psc.invalidateAddr(lo, hi, this.ctx);
      pa = w.walk(lo, hi, access, this.host.paging);
      this.lastWalkRefs += w.refs;
    }
    this.lastNestedSteps = c[MC.ept_walks] - eptWalks0;
    if (dc !== null) this.foundSince(dc);
    if (pa < 0) {
      if (w.fault !== FAULT_PF) return this.eptWalkFault(w.fault);
      c[MC.walk_faults]++;
      this.fault = w.fault;
      this.errorCode = w.errorCode;
      c[MC.page_faults]++;
      // A #PF invalidates the TLB entries for the faulting page and the PSC entries that
      // would be used for it, in the current PCID (SDM vol. 3, 4.10.4.1).
      c[MC.inval_page_fault]++;
      this.dropPage(lo, hi);
      this.psc.invalidateAddr(lo, hi, this.ctx);
      return -1;
    }
    let shift = w.pageShift;
    const tr = w.translator;
    if (tr !== null && tr.pageShift < shift) shift = tr.pageShift; // splintered: guest 2M over EPT 4K
    const size = sizeCodeOfShift(shift);
    let info = w.perm | w.leafInfo;
    // Nested: the TLB caches the combined translation, so it must remember what the EPT denies.
    const ep = w.finalEptPerms;
    if ((ep & 1) === 0) info |= LEAF_EPT_NO_R;
    if ((ep & 2) === 0) info |= LEAF_EPT_NO_W;
    if ((ep & 4) === 0) info |= LEAF_EPT_NO_X;
    if ((this.host.cr4 & CR4_PGE) === 0) info &= ~LEAF_G;
    this.fill(l1, lo, hi, size, info, pa - pageOffset(lo, size));
    return pa;
  }

  /** Insert a walk's translation into the STLB and the L1 TLB. */
  private fill(l1: Tlb, lo: number, hi: number, size: number, info: number, base: number): void {
    const sa = this.stlb.arrayFor(size);
    if (sa !== undefined) {
      sa.insert(lo, hi, size, this.ctx, info, base);
      if (sa.evicted) this.counters[MC.stlb_evictions]++;
    }
    this.fillL1(l1, lo, hi, size, info, base);
  }

  /** Insert into an L1 TLB (splintering to a smaller size it holds) and tell the CPU about evictions. */
  private fillL1(l1: Tlb, lo: number, hi: number, size: number, info: number, base: number): void {
    let a = l1.arrayFor(size);
    while (a === undefined && size > SZ_4K) {
      // No array for this size (e.g. 1 GiB in the ITLB): cache the containing smaller page.
      const off = pageOffset(lo, size);
      size--;
      base += off - pageOffset(lo, size);
      a = l1.arrayFor(size);
    }
    if (a === undefined) return;
    a.insert(lo, hi, size, this.ctx, info, base);
    if (a.evicted) {
      this.counters[MC.l1_evictions]++;
      this.notify(a.evictedSize === SZ_4K ? NOTIFY_PAGE : NOTIFY_ALL, a.evictedLo, a.evictedHi);
    }
  }

  /** Drop every TLB entry (current context, global ones too) translating lo/hi. */
  private dropPage(lo: number, hi: number): void {
    const ctx = this.ctx;
    const d = this.itlb.invalidatePage(lo, hi, ctx, true) | this.dtlb.invalidatePage(lo, hi, ctx, true);
    this.stlb.invalidatePage(lo, hi, ctx, true);
    if (d !== 0) this.notify((d & 2) !== 0 ? NOTIFY_ALL : NOTIFY_PAGE, lo, hi);
  }

  private notify(kind: number, lo: number, hi: number): void {
    if (kind === NOTIFY_PAGE) {
      this.counters[MC.soft_page_flushes]++;
      this.host.flushTlbPage(lo & ~0xfff, hi);
    } else if (kind === NOTIFY_ALL) {
      this.counters[MC.soft_flushes]++;
      this.host.flushTlb();
    }
  }

  // =====================================================================================
  // Context and invalidation (SDM vol. 3, 4.10.4)
  // =====================================================================================

  private recomputeCtx(): void {
    const pcid = (this.host.cr4 & CR4_PCIDE) !== 0 ? this.cr3Lo & 0xfff : 0;
    this.ctx = contextTag(this.vpid, this.eptpIndex, pcid);
    this.walker.ctx = this.ctx;
  }

  /** PCID of the current context. */
  get pcid(): number {
    return this.ctx & 0xfff;
  }

  /**
   * MOV to CR3: loads CR3 (bit 63 is not stored) and invalidates as the SDM says: with
   * CR4.PCIDE=0, all non-global TLB entries and all PSC entries of PCID 0; with PCIDE=1, those
   * of the new PCID unless bit 63 of the source is set. (Reserved-bit #GP checks are the
   * caller's.)
   */
  writeCr3(lo: number, hi: number): void {
    const h = this.host;
    const noFlush = (h.cr4 & CR4_PCIDE) !== 0 && (hi & 0x80000000) !== 0;
    h.cr3Lo = lo;
    h.cr3Hi = hi & 0x7fffffff;
    this.cr3Loaded(!noFlush);
  }

  /** CR3 was loaded (explicitly, or found changed by someone who set it directly: treated as a flushing load). */
  private cr3Loaded(flush: boolean, implicit = false): void {
    const h = this.host;
    this.cr3Lo = h.cr3Lo;
    this.cr3Hi = h.cr3Hi;
    this.walker.setCr3(h.cr3Lo, h.cr3Hi);
    this.recomputeCtx();
    const c = this.counters;
    if (implicit) c[MC.cr3_implicit_loads]++;
    if (flush) {
      if (!implicit) c[MC.inval_cr3]++;
      this.dropMatching(this.ctx, -1, false);
    } else c[MC.inval_cr3_noflush]++;
    // The software TLB is not tagged: a new CR3 always empties it.
    this.notify(NOTIFY_ALL, 0, 0);
  }

  private dropMatching(ctx: number, mask: number, global: boolean): void {
    const n =
      this.itlb.invalidateMatching(ctx, mask, global) +
      this.dtlb.invalidateMatching(ctx, mask, global) +
      this.stlb.invalidateMatching(ctx, mask, global);
    this.counters[MC.inval_entries] += n;
    this.psc.invalidateCtx(ctx, mask);
  }

  /** INVLPG: the page's entries in the current PCID and global ones, plus all PSC entries of the PCID. */
  invlpg(lo: number, hi: number): void {
    const c = this.counters;
    c[MC.inval_invlpg]++;
    const ctx = this.ctx;
    const d = this.itlb.invalidatePage(lo, hi, ctx, true) | this.dtlb.invalidatePage(lo, hi, ctx, true);
    this.stlb.invalidatePage(lo, hi, ctx, true);
    this.psc.invalidateCtx(ctx, -1);
    this.notify((d & 2) !== 0 ? NOTIFY_ALL : NOTIFY_PAGE, lo, hi);
  }

  /**
   * INVPCID (SDM vol. 2, INVPCID; vol. 3, 4.10.4.1). Type 0: the page in `pcid`, except global
   * translations; 1: all of `pcid` except global; 2: everything, globals included; 3: everything
   * except globals. PSC entries of the PCID (types 0, 1) or of all PCIDs (2, 3) go too.
   * The caller checks the type, PCID and canonical-address #GP conditions.
   */
  invpcid(type: number, pcid: number, lo: number, hi: number): void {
    const c = this.counters;
    const target = (this.ctx & ~0xfff) | (pcid & 0xfff);
    const current = target === this.ctx;
    switch (type) {
      case 0: {
        c[MC.inval_invpcid_0]++;
        const d = this.itlb.invalidatePage(lo, hi, target, false) | this.dtlb.invalidatePage(lo, hi, target, false);
        this.stlb.invalidatePage(lo, hi, target, false);
        this.psc.invalidateCtx(target, -1);
        if (current && d !== 0) this.notify((d & 2) !== 0 ? NOTIFY_ALL : NOTIFY_PAGE, lo, hi);
        return;
      }
      case 1:
        c[MC.inval_invpcid_1]++;
        this.dropMatching(target, -1, false);
        if (current) this.notify(NOTIFY_ALL, 0, 0);
        return;
      case 2:
        c[MC.inval_invpcid_2]++;
        this.dropMatching(this.ctx, ~0xfff, true);
        this.notify(NOTIFY_ALL, 0, 0);
        return;
      default:
        c[MC.inval_invpcid_3]++;
        this.dropMatching(this.ctx, ~0xfff, false);
        this.notify(NOTIFY_ALL, 0, 0);
    }
  }

  /** Invalidate every TLB and PSC entry of every context (also the EPT PSC). */
  flushAll(reason: FlushReason = "other"): void {
    const c = this.counters;
    c[reason === "cr0" ? MC.inval_cr0 : reason === "cr4" ? MC.inval_cr4 : MC.inval_other]++;
    c[MC.inval_entries] += this.itlb.invalidateAll() + this.dtlb.invalidateAll() + this.stlb.invalidateAll();
    this.psc.invalidateAll();
    this.eptPsc.invalidateAll();
    this.notify(NOTIFY_ALL, 0, 0);
  }

  /**
   * Re-read CR0/CR4 after a write (the CPU calls this from updateMode). Flushes everything when
   * CR0.PG changes, CR4.PGE changes, CR4.PCIDE goes 1→0, CR4.PAE or LA57 changes, or CR4.SMEP goes
   * 0→1 (SDM 4.10.4.1; the SDM limits the last three to the current PCID: the model flushes all).
   * CR0.WP, SMAP, RFLAGS.AC, EFER.NXE need no flush here: TLB entries keep the raw rights and the
   * rules are applied at each lookup (the CPU flushes its own software TLB, which bakes them in).
   */
  syncControls(): void {
    const h = this.host;
    const cr0 = h.cr0;
    const cr4 = h.cr4;
    if ((h.nonRoot === true) !== this.lastNonRoot) this.vmTransition();
    if (h.cr3Lo !== this.cr3Lo || h.cr3Hi !== this.cr3Hi) this.cr3Loaded(true, true);
    if (cr0 === this.lastCr0 && cr4 === this.lastCr4) return;
    const d0 = cr0 ^ this.lastCr0;
    const d4 = cr4 ^ this.lastCr4;
    this.lastCr0 = cr0;
    this.lastCr4 = cr4;
    this.walker.levels = (cr4 & CR4_LA57) !== 0 ? 5 : 4;
    const oldCtx = this.ctx;
    this.recomputeCtx();
    if ((d0 & CR0_PG) !== 0) this.flushAll("cr0");
    else if (
      (d4 & (CR4_PGE | CR4_PAE | CR4_LA57)) !== 0 ||
      ((d4 & CR4_PCIDE) !== 0 && (cr4 & CR4_PCIDE) === 0) ||
      ((d4 & CR4_SMEP) !== 0 && (cr4 & CR4_SMEP) !== 0)
    ) {
      this.flushAll("cr4");
    } else if (this.ctx !== oldCtx) this.notify(NOTIFY_ALL, 0, 0);
  }

  /** The host entered or left VMX non-root operation. */
  private vmTransition(): void {
    this.lastNonRoot = this.host.nonRoot === true;
    this.counters[MC.vm_transitions]++;
    if (this.vmTransitionsFlush) this.flushAll("other");
  }

  /** Switch the VPID / EPTP-index part of the context tag (VM entry/exit); no invalidation. */
  setContext(vpid: number, eptpIndex: number): void {
    this.vpid = vpid;
    this.eptpIndex = eptpIndex;
    const old = this.ctx;
    this.recomputeCtx();
    if (this.ept !== null) this.ept.ctx = eptpIndex;
    if (this.ctx !== old) this.notify(NOTIFY_ALL, 0, 0);
  }

  /**
   * Run the guest walker under EPT (the 2-D walk): every guest paging-structure address and the
   * final guest-physical address go through an EPT walk rooted at `eptp`. Pass null to return
   * to native (identity) translation. Flushes nothing: the context tag separates the worlds.
   */
  useEpt(eptpLo: number | null, eptpHi = 0): PageWalker | null {
    if (eptpLo === null) {
      this.ept = null;
      this.walker.translator = null;
      return null;
    }
    let e = this.eptWalker;
    if (e === null) {
      e = new PageWalker(this.mem, FMT_EPT, this.config.maxPhysAddr);
      e.psc = this.eptPsc;
      e.stats = this.counters;
      e.statBase = MC.ept_refs_l1;
      e.pscStatBase = MC.ept_psc_hits_pde;
      e.adStat = MC.ad_writes;
      e.walkStat = MC.ept_walks;
      e.cache = this.dataCache;
      this.eptWalker = e;
    }
    this.ept = e;
    e.setEptp(eptpLo, eptpHi);
    e.ctx = this.eptpIndex;
    this.walker.translator = e;
    return e;
  }

  /** Use `model` as the data caches the walks go through (null: walks are not cache-modelled). */
  setDataCache(model: DataCacheModel | null): void {
    this.dataCache = model;
    this.walker.cache = model;
    if (this.eptWalker !== null) this.eptWalker.cache = model;
  }

  /** Use any GuestPhysicalTranslator under the guest walker (null: identity). */
  setTranslator(t: GuestPhysicalTranslator | null): void {
    this.walker.translator = t;
  }

  // =====================================================================================
  // Counters
  // =====================================================================================

  /** The counters with derived entries filled in (same array as `counters`). */
  stats(): Float64Array {
    const c = this.counters;
    const icount = this.host.icountSlot[0] - this.icountBase;
    c[MC.itlb_accesses] = icount;
    c[MC.itlb_hits] = Math.max(0, icount - c[MC.itlb_misses]);
    c[MC.dtlb_hits] = Math.max(0, c[MC.dtlb_accesses] - c[MC.dtlb_misses]);
    let ept = 0;
    let guest = 0;
    for (let l = 0; l < 5; l++) {
      ept += c[MC.ept_refs_l1 + l];
      guest += c[MC.walk_refs_l1 + l];
    }
    c[MC.ept_refs] = ept;
    c[MC.walk_refs] = guest + ept;
    return c;
  }

  /** Counter values by name (for JSON output). */
  toJSON(): Record<MmuCounterName, number> {
    const c = this.stats();
    const out = {} as Record<MmuCounterName, number>;
    for (let i = 0; i < MMU_COUNTERS.length; i++) out[MMU_COUNTERS[i]] = c[i];
    return out;
  }

  get(name: MmuCounterName): number {
    return this.stats()[MC[name]];
  }

  resetCounters(): void {
    this.counters.fill(0);
    this.icountBase = this.host.icountSlot[0];
  }
}

/** Offset of lo within its page of size code `size`. */
function pageOffset(lo: number, size: number): number {
  return size === SZ_4K ? lo & 0xfff : (lo & ((1 << SIZE_SHIFT[size]) - 1)) >>> 0;
}

/** MAXPHYADDR from a CPU model's CPUID leaf 0x80000008 (EAX[7:0]); 46 when absent. */
export function maxPhysAddrOf(model: { query(leaf: number, subleaf: number, out: Int32Array): void }): number {
  const r = new Int32Array(4);
  model.query(0x80000008, 0, r);
  const n = r[0] & 0xff;
  return n >= 32 && n <= 52 ? n : 46;
}
