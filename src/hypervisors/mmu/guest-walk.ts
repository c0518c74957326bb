/**
 * Software walks of tables that live in guest memory — an L1's EPT12, an L2's page tables —
 * through the same walker the CPU uses (src/mmu/walker.ts), as KVM runs its one paging_tmpl.h
 * walker over guest tables (FNAME(walk_addr_generic), with the EPT instance for nested EPT).
 *
 * The tables sit at guest-physical addresses; a `GuestMemoryTranslator` turns each into the
 * host-physical address where its bytes are (through memslots, an EPT02 lookup, an L2 map…).
 * The walker translates every table address through it but not the final address: the result
 * is what the guest's tables say (an L1 GPA for an EPT12 walk, an L2 GPA for an L2 walk). Fault
 * reporting is the walker's (#PF error code, EPT violation qualification, misconfiguration),
 * plus FAULT_UNBACKED when a table address has no memory behind it. The walk writes A/D bits as
 * the hardware would (EPT A/D only when the EPTP enables them). No counters are touched; `refs`
 * says how many entries the walk read, and with a `cache`, `found` where the data caches found
 * each one (the hypervisor's loads go through the same caches as the CPU's walks), for the
 * caller to charge.
 */
import type { DataCacheModel } from "../../mmu/data-cache.js";
import type { PhysicalMemory } from "../../mmu/phys.js";
import {
  FAULT_NONE,
  FAULT_UNBACKED,
  type FMT_EPT,
  type FMT_X86,
  GPA_NO_GLA,
  type GuestPhysicalTranslator,
  PageWalker,
  type PagingControls,
} from "../../mmu/walker.js";

/** Guest-physical → host-physical for the memory holding a guest's tables (-1: no memory there). */
export type GuestToHost = (gpa: number) => number;

/** A GuestPhysicalTranslator over a plain function (the guest's memory map, not an EPT). */
export class GuestMemoryTranslator implements GuestPhysicalTranslator {
  perms = 7;
  fault = FAULT_NONE;
  faultGpa = 0;
  qualification = 0;
  totalRefs = 0;
  readonly adEnabled = false;
  readonly pageShift = 12;

  constructor(private readonly toHost: GuestToHost) {}

  translateGpa(gpa: number, _access: number, _kind: number): number {
    const h = this.toHost(gpa);
    if (h < 0) {
      this.fault = FAULT_UNBACKED;
      this.faultGpa = gpa;
      return -1;
    }
    this.fault = FAULT_NONE;
    return h;
  }
}

const CONTROLS: PagingControls = { wp: true, nxe: true, smep: false, smap: false, ac: false, la57: false };

/** Walks of one guest's tables (EPT or x86-64 format) living in that guest's memory. */
export class GuestTableWalker {
  readonly walker: PageWalker;
  /** The data caches the entry reads go through (null: not modelled). */
  cache: DataCacheModel | null = null;
  /** The last walk's entry reads by where `cache` found them (FOUND_* order; zeros without a cache). */
  readonly found = new Float64Array(4);

  constructor(hostMem: PhysicalMemory, format: typeof FMT_EPT | typeof FMT_X86, toHost: GuestToHost) {
    this.walker = new PageWalker(hostMem, format);
    this.walker.translator = new GuestMemoryTranslator(toHost);
    this.walker.translateFinal = false;
  }

  /**
   * EPT format: translate guest-physical `gpa` through the EPT whose EPTP is lo/hi (root,
   * walk length, A/D enable) for an access of EPT_R/W/X bits. Returns the address the EPT maps
   * it to, or -1 with the walker's `fault`, `qualification`, `faultGpa`.
   */
  walkEpt(eptpLo: number, eptpHi: number, gpa: number, access: number): number {
    const w = this.walker;
    w.setEptp(eptpLo, eptpHi);
    return this.priced(w.walk(gpa >>> 0, Math.floor(gpa / 4294967296) | 0, access, CONTROLS, GPA_NO_GLA));
  }

  /**
   * x86 format: translate linear lo/hi through the tables at CR3 (`levels` 4 or 5) for an
   * access of ACC_* bits under `ctl`. Returns the guest-physical address, or -1 with `fault`
   * (FAULT_PF: `errorCode` is the #PF error code).
   */
  walkLinear(cr3Lo: number, cr3Hi: number, levels: number, lo: number, hi: number, access: number, ctl = CONTROLS) {
    const w = this.walker;
    w.setCr3(cr3Lo, cr3Hi);
    w.levels = levels;
    return this.priced(w.walk(lo, hi, access, ctl));
  }

  /**
   * Run the last walk's entry reads through `cache`, in the order they were made (top level
   * down; this walker has no PSC and its translator reads nothing), and count where each was found.
   */
  private priced(result: number): number {
    const f = this.found;
    f.fill(0);
    const c = this.cache;
    if (c === null) return result;
    const w = this.walker;
    for (let k = 0; k < w.refs; k++) f[c.loadAt(w.entryAddress(w.startLevel - k))]++;
    return result;
  }

  get fault(): number {
    return this.walker.fault;
  }

  /** Entries read by the last walk. */
  get refs(): number {
    return this.walker.refs;
  }
}
