import { PFEC_I, PFEC_P, PFEC_RSVD, PFEC_U, PFEC_W } from "../x86/exceptions.js";
import type { DataCacheModel } from "./data-cache.js";
import type { PagingStructureCache } from "./paging-structure-cache.js";
import type { PhysicalMemory } from "./phys.js";

/**
 * One page walker for x86-64 paging (4-level, 5-level as an option) and for EPT (SDM vol. 3,
 * 4.5 and 28.3.2), the way KVM's paging_tmpl.h serves both: the loop, the index arithmetic, the
 * paging-structure cache, the reference counting and the Accessed/Dirty updates are shared; the
 * format decides what "present", "reserved", the permission bits and A/D mean.
 *
 * Nested translation is a composition: a guest-format walker has a `translator` (a
 * GuestPhysicalTranslator: an EPT-format walker, or null for identity) that it calls for the
 * guest-physical address of every paging-structure it references and for the final address.
 * So a cold 4-level walk over a 4-level EPT makes 4 + 5 x 4 = 24 references.
 *
 * Hot-path rules: no allocation, no BigInt; addresses are plain numbers (< 2^53), linear
 * addresses and entries are int32 halves.
 */

// ---- Access kinds (x86 format): the #PF error-code bit positions, so a fault's code is access|P. ----
export const ACC_READ = 0;
export const ACC_WRITE = PFEC_W;
export const ACC_USER = PFEC_U;
export const ACC_FETCH = PFEC_I;
/**
 * A supervisor-mode access for which RFLAGS.AC does not lift SMAP: an implicit supervisor access
 * made at CPL 3 (SDM vol. 3, 4.6.1). Not an error-code bit; stripped from the error code.
 */
export const ACC_NOAC = 1 << 8;

// ---- EPT access / permission bits (also EPT-violation qualification bits 0-2 and 3-5 >> 3). ----
export const EPT_R = 1;
export const EPT_W = 2;
export const EPT_X = 4;

/** Walker formats. */
export const FMT_X86 = 0;
export const FMT_EPT = 1;

/** Why the last walk failed. */
export const FAULT_NONE = 0;
export const FAULT_PF = 1;
export const FAULT_EPT_VIOLATION = 2;
export const FAULT_EPT_MISCONFIG = 3;
/** A software walk's translator found no memory behind a guest-physical address (not hardware). */
export const FAULT_UNBACKED = 4;

/** What a guest-physical access is, for the EPT-violation qualification (SDM vol. 3, table 28-7). */
export const GPA_TABLE = 0; // a guest paging-structure entry, during a walk of a linear address
export const GPA_FINAL = 1; // the translation of a linear address
export const GPA_NO_GLA = 2; // a guest-physical access with no linear address (bit 7 clear)

/** Accumulated permissions of a translation (the TLB stores these; checks happen at use). */
export const PERM_R = 1; // x86: always 1 once present; EPT: readable
export const PERM_W = 2; // x86: R/W=1 at every level; EPT: writable
export const PERM_X = 4; // x86: XD=0 at every level; EPT: executable
export const PERM_U = 8; // x86 only: U/S=1 at every level
export const PERM_ALL = 15;

/** Leaf attributes reported in `leafInfo` (and stored by the TLB). */
export const LEAF_D = 1 << 4; // dirty (set by this walk or before)
export const LEAF_G = 1 << 5; // global (G bit, x86 leaf)
export const LEAF_PAT_SHIFT = 6; // 3 bits: PAT index = PAT<<2 | PCD<<1 | PWT (x86); EPT: memory type
export const LEAF_IPAT = 1 << 9; // EPT ignore-PAT
/** Nested translations: the EPT denies reads / writes / fetches of the final page (0 natively). */
export const LEAF_EPT_NO_R = 1 << 10;
export const LEAF_EPT_NO_W = 1 << 11;
export const LEAF_EPT_NO_X = 1 << 12;

/** True when a cached nested translation's EPT rights (LEAF_EPT_NO_*) forbid `access`. */
export function eptDenied(info: number, access: number): boolean {
  if ((info & (LEAF_EPT_NO_R | LEAF_EPT_NO_W | LEAF_EPT_NO_X)) === 0) return false;
  if ((access & ACC_FETCH) !== 0) return (info & LEAF_EPT_NO_X) !== 0;
  if ((access & ACC_WRITE) !== 0) return (info & LEAF_EPT_NO_W) !== 0;
  return (info & LEAF_EPT_NO_R) !== 0;
}

// EPTP fields (SDM vol. 3, 25.6.11).
export const EPTP_AD = 1 << 6;

// x86 entry bits.
const X_P = 1;
const X_RW = 2;
const X_US = 4;
const X_PWT = 8;
const X_PCD = 16;
const X_A = 32;
const X_D = 64;
const X_PS = 128;
const X_G = 256;
const X_HI_NX = 1 << 31;
// EPT entry bits.
const E_RWX = 7;
const E_IPAT = 64;
const E_LARGE = 128;
const E_A = 256;
const E_D = 512;

/** Paging controls the walk needs (copied from CR0/CR4/EFER/RFLAGS by the CPU). */
export interface PagingControls {
  wp: boolean;
  nxe: boolean;
  smep: boolean;
  smap: boolean;
  /** RFLAGS.AC: with SMAP, allows supervisor data access to user pages (at CPL < 3). */
  ac: boolean;
  la57: boolean;
}

/**
 * Translates guest-physical addresses to host-physical ones for a guest-format walk. An
 * EPT-format PageWalker is one; null on the guest walker means identity (native).
 */
export interface GuestPhysicalTranslator {
  /**
   * Translate `gpa` for an access of kind `access` (EPT_R / EPT_W / EPT_X) made as `kind`
   * (GPA_TABLE, GPA_FINAL, GPA_NO_GLA). Returns the host-physical address, or -1 with `fault`,
   * `faultGpa` and `qualification` describing the EPT violation / misconfiguration.
   */
  translateGpa(gpa: number, access: number, kind: number): number;
  /** EPT_R|EPT_W|EPT_X allowed by the last successful translation. */
  readonly perms: number;
  readonly fault: number;
  readonly faultGpa: number;
  readonly qualification: number;
  /** Memory references made by all translations so far. */
  readonly totalRefs: number;
  /** EPT A/D enabled: guest paging-structure accesses count as writes (SDM vol. 3, 28.3.5). */
  readonly adEnabled: boolean;
  /** Log2 of the page size that mapped the last translation (a TLB entry is the smaller of both). */
  readonly pageShift: number;
}

/** Index of a 9-bit table index at `shift` (12, 21, 30, 39, 48) of the address lo/hi. */
function tableIndex(lo: number, hi: number, shift: number): number {
  return shift >= 32 ? (hi >>> (shift - 32)) & 0x1ff : ((lo >>> shift) | (hi << (32 - shift))) & 0x1ff;
}

/**
 * True when x86 accumulated permissions `perm` forbid `access` under `ctl` (SDM vol. 3, 4.6).
 * Shared by the walker (at the leaf) and by the TLB (on hits: the TLB caches rights, the rules
 * are applied at use).
 */
export function x86Denied(perm: number, access: number, ctl: PagingControls): boolean {
  const write = (access & ACC_WRITE) !== 0;
  const fetch = (access & ACC_FETCH) !== 0;
  const userPage = (perm & PERM_U) !== 0;
  if ((access & ACC_USER) !== 0) {
    if (!userPage) return true;
    if (write && (perm & PERM_W) === 0) return true;
  } else {
    if (write && (perm & PERM_W) === 0 && ctl.wp) return true;
    if (userPage) {
      if (fetch) {
        if (ctl.smep) return true;
      } else if (ctl.smap && (!ctl.ac || (access & ACC_NOAC) !== 0)) return true;
    }
  }
  return fetch && (perm & PERM_X) === 0 && ctl.nxe;
}

/** The #PF error code of an access (without P/RSVD): W, U, and I when NXE or SMEP (SDM 4.7). */
export function pfErrorBase(access: number, ctl: PagingControls): number {
  let e = access & (ACC_WRITE | ACC_USER);
  if ((access & ACC_FETCH) !== 0 && (ctl.nxe || ctl.smep)) e |= PFEC_I;
  return e;
}

const NO_CONTROLS: PagingControls = { wp: true, nxe: true, smep: false, smap: false, ac: false, la57: false };

export class PageWalker {
  readonly format: number;
  /** 4 or 5 (x86: from CR4.LA57; EPT: from EPTP bits 5:3). */
  levels = 4;
  /** Physical address of the root table (CR3 / EPTP bits 51:12). Guest-physical when nested. */
  root = 0;
  /** EPT only: EPTP bit 6 (accessed and dirty flags). */
  adEnabled = false;
  /** Context tag of the paging-structure cache entries this walker makes and uses. */
  ctx = 0;
  psc: PagingStructureCache | null = null;
  /** Nested translation of guest-physical addresses (null: identity). */
  translator: GuestPhysicalTranslator | null = null;
  /** The data caches each entry read goes through (null: not modelled). */
  cache: DataCacheModel | null = null;
  /**
   * With a translator: also translate the final address (the hardware's 2-D walk). False for a
   * hypervisor's software walk of tables in guest memory, which wants the address the tables
   * give (an L1 GPA from an EPT12, an L2 GPA from L2's page tables).
   */
  translateFinal = true;
  /** Where reference counts go: stats[statBase + level - 1]++ for each entry read (levels 1..5). */
  stats: Float64Array | null = null;
  statBase = 0;
  /** stats index bumped on every PSC hit, by level: pscStatBase + level - 2 (levels 2..5); -1: none. */
  pscStatBase = -1;
  /** stats index bumped on every A/D write; -1: none. */
  adStat = -1;
  /** stats index bumped on every walk (an EPT walker under a guest walker: each nested translation); -1: none. */
  walkStat = -1;

  // ---- Results of the last walk. ----
  fault = FAULT_NONE;
  /** x86: the #PF error code. */
  errorCode = 0;
  /** EPT: the exit qualification of a violation (table 28-7). */
  qualification = 0;
  /** EPT: the guest-physical address that failed. */
  faultGpa = 0;
  /** EPT: the level of the entry that caused the violation / misconfiguration. */
  faultLevel = 0;
  /** Memory references of the last walk, including those of nested translations. */
  refs = 0;
  /** Memory references of all walks (own entries only; nested ones count in the translator). */
  totalRefs = 0;
  /** Log2 of the page size of the last translation: 12, 21 or 30. */
  pageShift = 12;
  /** Accumulated PERM_* of the last translation (EPT: R/W/X; `perms` is the same thing). */
  perm = 0;
  /** EPT rights (EPT_R|W|X) of the final guest-physical page of the last nested translation. */
  finalEptPerms = 7;
  /** LEAF_* attributes of the last translation. */
  leafInfo = 0;
  /** Level at which the last walk started (after a PSC hit: below the cached level). */
  startLevel = 0;

  private readonly mem: PhysicalMemory;
  /** Mask of the high half of an entry for bits 51:MAXPHYADDR (reserved). */
  private readonly rsvdHi: number;
  // Per-level scratch of the current walk (index = level).
  private readonly entAddr = new Float64Array(6);
  private readonly entGpa = new Float64Array(6);
  private readonly entLo = new Int32Array(6);
  private readonly entTperm = new Int32Array(6);
  private readonly nextAddr = new Float64Array(6);
  private readonly nextGpa = new Float64Array(6);
  private readonly nextTperm = new Int32Array(6);
  private readonly permAt = new Int32Array(6);

  /** Address (as `mem` sees it) of the entry the last walk read at `level` (valid from the start level down to the leaf's). */
  entryAddress(level: number): number {
    return this.entAddr[level];
  }

  constructor(mem: PhysicalMemory, format: number = FMT_X86, maxPhysAddr = 46) {
    this.mem = mem;
    this.format = format;
    const m = Math.max(32, Math.min(52, maxPhysAddr)) - 32;
    this.rsvdHi = 0xfffff & ~((1 << m) - 1);
  }

  get perms(): number {
    return this.perm & 7;
  }

  /** EPT: load an EPTP (root, walk length, A/D enable). */
  setEptp(lo: number, hi: number): void {
    this.root = (hi & 0xfffff) * 4294967296 + ((lo & ~0xfff) >>> 0);
    this.levels = ((lo >>> 3) & 7) + 1;
    this.adEnabled = (lo & EPTP_AD) !== 0;
  }

  /** x86: load a CR3 value (PCID / PWT / PCD bits ignored here). */
  setCr3(lo: number, hi: number): void {
    this.root = (hi & 0xfffff) * 4294967296 + ((lo & ~0xfff) >>> 0);
  }

  /** GuestPhysicalTranslator: an EPT walk of `gpa`. */
  translateGpa(gpa: number, access: number, kind: number): number {
    return this.walk(gpa >>> 0, Math.floor(gpa / 4294967296) | 0, access, NO_CONTROLS, kind);
  }

  /**
   * Walk `lo/hi` (x86: a linear address, `access` ACC_* bits, `ctl` the paging controls;
   * EPT: a guest-physical address, `access` EPT_R/W/X, `kind` GPA_*). Returns the (host-)
   * physical address, or -1 with `fault` set. A and D bits are written only when the whole
   * translation succeeds.
   */
  walk(lo: number, hi: number, access: number, ctl: PagingControls, kind = GPA_FINAL): number {
    const ept = this.format === FMT_EPT;
    const mem = this.mem;
    const tr = this.translator;
    const stats = this.stats;
    const psc = this.psc;
    const cache = this.cache;
    const refs0 = tr === null ? 0 : tr.totalRefs;
    let refs = 0;
    this.fault = FAULT_NONE;
    if (stats !== null && this.walkStat >= 0) stats[this.walkStat]++;
    let level = this.levels;
    let perm = PERM_ALL;
    let table = this.root; // host-physical address of the current table
    let tableGpa = this.root;
    let tperm = 7; // EPT permissions of the current table's page (nested)
    // Table accesses as the EPT sees them: reads, or writes when EPT A/D is on (SDM 28.3.5).
    const tableAcc = tr?.adEnabled ? EPT_W : EPT_R;
    // ---- Paging-structure caches: longest prefix first (SDM 4.10.3). ----
    let fromPsc = false;
    if (psc !== null) {
      for (let l = 2; l <= this.levels; l++) {
        const k = psc.lookup(l, lo, hi, this.ctx);
        if (k >= 0) {
          level = l - 1;
          table = psc.next[k];
          tableGpa = psc.nextGpa[k];
          perm = psc.perm[k];
          tperm = psc.tperm[k];
          fromPsc = true;
          if (stats !== null && this.pscStatBase >= 0) stats[this.pscStatBase + l - 2]++;
          break;
        }
      }
    }
    this.startLevel = level;
    if (!fromPsc && tr !== null) {
      table = tr.translateGpa(tableGpa, tableAcc, kind === GPA_NO_GLA ? GPA_NO_GLA : GPA_TABLE);
      if (table < 0) return this.nestedFault(refs0, 0);
      tperm = tr.perms;
    }
    const top = level;
    for (; level >= 1; level--) {
      const shift = 12 + 9 * (level - 1);
      const idx = tableIndex(lo, hi, shift);
      const addr = table + idx * 8;
      refs++;
      if (stats !== null) stats[this.statBase + level - 1]++;
      if (cache !== null) cache.walkRef(addr);
      const eLo = mem.read(addr, 4) | 0;
      const eHi = mem.read(addr + 4, 4) | 0;
      this.entAddr[level] = addr;
      this.entGpa[level] = tableGpa + idx * 8;
      this.entLo[level] = eLo;
      this.entTperm[level] = tperm;
      let leaf: boolean;
      if (ept) {
        // ---- EPT entry (SDM 28.3.2). Present when any of R/W/X is set. ----
        const rwx = eLo & E_RWX;
        if (rwx === 0) return this.eptFault(FAULT_EPT_VIOLATION, lo, hi, access, 0, kind, refs, level);
        leaf = level === 1 || ((eLo & E_LARGE) !== 0 && level <= 3);
        let bad = (rwx & 3) === EPT_W || (eHi & this.rsvdHi) !== 0; // W without R; bits 51:MAXPHYADDR
        if (!leaf)
          bad ||= (eLo & 0xf8) !== 0; // bits 7:3 of non-leaf entries
        else {
          const mt = (eLo >>> 3) & 7;
          bad ||= mt === 2 || mt === 3 || mt === 7;
          if (level === 2)
            bad ||= (eLo & 0x1ff000) !== 0; // 2 MiB: bits 20:12
          else if (level === 3) bad ||= (eLo & 0x3ffff000) !== 0; // 1 GiB: bits 29:12
        }
        if (bad) return this.eptFault(FAULT_EPT_MISCONFIG, lo, hi, access, 0, kind, refs, level);
        perm &= rwx;
      } else {
        // ---- x86 entry (SDM 4.5, tables 4-15..4-20). ----
        if ((eLo & X_P) === 0) return this.pageFault(pfErrorBase(access, ctl), refs0, refs);
        leaf = level === 1 || ((eLo & X_PS) !== 0 && level <= 3);
        let bad = (eHi & this.rsvdHi) !== 0 || (!ctl.nxe && (eHi & X_HI_NX) !== 0);
        if ((eLo & X_PS) !== 0) {
          if (level >= 4) bad = true;
          else if (level === 3)
            bad ||= (eLo & 0x3fffe000) !== 0; // 1 GiB: bits 29:13
          else if (level === 2) bad ||= (eLo & 0x1fe000) !== 0; // 2 MiB: bits 20:13
        }
        if (bad) return this.pageFault(pfErrorBase(access, ctl) | PFEC_P | PFEC_RSVD, refs0, refs);
        let p = PERM_R;
        if ((eLo & X_RW) !== 0) p |= PERM_W;
        if ((eHi & X_HI_NX) === 0) p |= PERM_X;
        if ((eLo & X_US) !== 0) p |= PERM_U;
        perm &= p;
      }
      this.permAt[level] = perm;
      const frame = (eHi & 0xfffff) * 4294967296;
      if (!leaf) {
        const nextGpa = frame + ((eLo & ~0xfff) >>> 0);
        let next = nextGpa;
        if (tr !== null) {
          next = tr.translateGpa(nextGpa, tableAcc, kind === GPA_NO_GLA ? GPA_NO_GLA : GPA_TABLE);
          if (next < 0) return this.nestedFault(refs0, refs);
          tperm = tr.perms;
        }
        this.nextAddr[level] = next;
        this.nextGpa[level] = nextGpa;
        this.nextTperm[level] = tperm;
        table = next;
        tableGpa = nextGpa;
        continue;
      }
      // ---- Leaf: permissions, then the final (nested) translation, then A/D. ----
      const write = ept ? (access & EPT_W) !== 0 : (access & ACC_WRITE) !== 0;
      if (ept) {
        if ((access & ~perm & 7) !== 0)
          return this.eptFault(FAULT_EPT_VIOLATION, lo, hi, access, perm, kind, refs, level);
      } else if (x86Denied(perm, access, ctl)) {
        return this.pageFault(pfErrorBase(access, ctl) | PFEC_P, refs0, refs);
      }
      const mask = shift === 12 ? 0xfff : shift === 21 ? 0x1fffff : 0x3fffffff;
      const base = frame + ((eLo & ~mask) >>> 0);
      const offset = (lo & mask) >>> 0;
      let pa = base + offset;
      if (tr !== null && this.translateFinal) {
        const a = (access & ACC_FETCH) !== 0 ? EPT_X : write ? EPT_W : EPT_R;
        pa = tr.translateGpa(pa, a, kind === GPA_NO_GLA ? GPA_NO_GLA : GPA_FINAL);
        if (pa < 0) return this.nestedFault(refs0, refs);
        this.finalEptPerms = tr.perms & 7;
      } else this.finalEptPerms = 7;
      // A/D updates (guest tables: need EPT write permission to their pages).
      const aBit = ept ? (this.adEnabled ? E_A : 0) : X_A;
      const dBit = ept ? (this.adEnabled ? E_D : 0) : X_D;
      for (let l = top; l >= level; l--) {
        const e = this.entLo[l];
        let ne = e | aBit;
        if (l === level && write) ne |= dBit;
        if (ne !== e) {
          if (tr !== null && (this.entTperm[l] & EPT_W) === 0) {
            if (tr.translateGpa(this.entGpa[l], EPT_W, kind === GPA_NO_GLA ? GPA_NO_GLA : GPA_TABLE) < 0) {
              return this.nestedFault(refs0, refs);
            }
          }
          mem.write(this.entAddr[l], 4, ne);
          if (stats !== null && this.adStat >= 0) stats[this.adStat]++;
          this.entLo[l] = ne;
        }
      }
      // Fill the paging-structure caches with the non-leaf entries this walk read.
      if (psc !== null) {
        for (let l = top; l > level; l--) {
          psc.insert(l, lo, hi, this.ctx, this.nextAddr[l], this.nextGpa[l], this.permAt[l], this.nextTperm[l]);
        }
      }
      const le = this.entLo[level];
      this.pageShift = shift;
      this.perm = perm;
      let info = 0;
      if (ept) {
        if (!this.adEnabled || (le & E_D) !== 0) info |= LEAF_D;
        info |= ((le >>> 3) & 7) << LEAF_PAT_SHIFT;
        if ((le & E_IPAT) !== 0) info |= LEAF_IPAT;
      } else {
        if ((le & X_D) !== 0) info |= LEAF_D;
        if ((le & X_G) !== 0) info |= LEAF_G;
        const patBit = shift === 12 ? (le >>> 7) & 1 : (le >>> 12) & 1;
        info |= ((le & X_PWT ? 1 : 0) | (le & X_PCD ? 2 : 0) | (patBit << 2)) << LEAF_PAT_SHIFT;
      }
      this.leafInfo = info;
      this.totalRefs += refs;
      this.refs = tr === null ? refs : refs + (tr.totalRefs - refs0);
      return pa;
    }
    // Not reached: level 1 is always a leaf.
    return this.pageFault(pfErrorBase(access, ctl), refs0, refs);
  }

  private pageFault(code: number, refs0: number, refs: number): number {
    this.fault = FAULT_PF;
    this.errorCode = code & 0xff;
    this.totalRefs += refs;
    this.refs = this.translator === null ? refs : refs + (this.translator.totalRefs - refs0);
    return -1;
  }

  /** A nested translation failed: report the translator's fault. */
  private nestedFault(refs0: number, refs: number): number {
    const tr = this.translator as GuestPhysicalTranslator;
    this.fault = tr.fault;
    this.qualification = tr.qualification;
    this.faultGpa = tr.faultGpa;
    this.totalRefs += refs;
    this.refs = refs + (tr.totalRefs - refs0);
    return -1;
  }

  private eptFault(
    kind: number,
    lo: number,
    hi: number,
    access: number,
    perm: number,
    gk: number,
    refs: number,
    level: number,
  ): number {
    this.fault = kind;
    this.faultLevel = level;
    this.faultGpa = (hi & 0xfffff) * 4294967296 + (lo >>> 0);
    let q = 0;
    if (kind === FAULT_EPT_VIOLATION) {
      q = (access & 7) | ((perm & 7) << 3);
      if (gk !== GPA_NO_GLA) q |= 1 << 7;
      if (gk === GPA_FINAL) q |= 1 << 8;
    }
    this.qualification = q;
    this.totalRefs += refs;
    this.refs = refs;
    return -1;
  }
}
