/**
 * The hypervisor's page-table builder: tables a hypervisor owns and the hardware walks (EPT01,
 * EPT02, shadow x86 tables), in the format the MMU reads (formats.ts), so the CPU's 2-D walk in
 * src/mmu reads exactly what is built here. Leaves map 4 KiB, 2 MiB or 1 GiB; intermediate
 * tables are allocated on demand and stay while the table lives (as KVM's TDP MMU keeps empty
 * tables until teardown), unless the owner removes leaves with `unmapAndPrune`, which gives back
 * the tables it empties (as KVM frees zapped shadow pages). Every leaf set or cleared is reported to the hypervisor MMU
 * (hv-mmu.ts: reverse map, page tracking) when one is attached.
 *
 * Not a hot path: it runs on EPT violations and hypercalls, never per guest instruction.
 */
import { PERM_R, PERM_W } from "../../mmu/walker.js";
import { PT_ENTRIES, PT_LEVEL_BITS } from "../../x86/control.js";
import { EPT4, entryAddress, type TableFormat } from "./formats.js";
import type { HypervisorMmu } from "./hv-mmu.js";

/** Where a builder's tables live: host memory (PhysicalMemory satisfies it) or a guest's. */
export interface TableMemory {
  read(addr: number, size: 4): number;
  write(addr: number, size: 4, value: number): void;
}

/** Zeroed 4 KiB pages for tables. */
export interface TablePageSource {
  page(): number;
}

/** One leaf, as lookup reports it. */
export interface Leaf {
  /** The physical address `va` translates to (the leaf's frame plus the offset). */
  pa: number;
  /** PERM_R/W/X/U. */
  perms: number;
  /** 1: 4 KiB, 2: 2 MiB, 3: 1 GiB. */
  level: number;
}

/** Bytes mapped by a leaf at `level`. */
export function levelSize(level: number): number {
  return 2 ** (12 + PT_LEVEL_BITS * (level - 1));
}

export class PageTableBuilder {
  readonly root: number;
  /** Leaf entries currently present (MMIO markers excluded). */
  leaves = 0;
  /** Table pages allocated (the root included). */
  tables = 1;
  /**
   * Invalidate what the hardware may cache from these tables (INVEPT / INVVPID for the contexts
   * that use them). Set by the owner; called by the hypervisor MMU after it zapped or
   * write-protected entries of this table.
   */
  flush: (() => void) | null = null;

  constructor(
    private readonly mem: TableMemory,
    private readonly pages: TablePageSource,
    readonly format: TableFormat = EPT4,
    /** Reverse map and page tracking to keep informed (null: a table nobody tracks). */
    readonly mmu: HypervisorMmu | null = null,
  ) {
    this.root = pages.page();
  }

  /** The value that points the hardware at these tables: an EPTP (WB, walk length, A/D) or a CR3. */
  pointer(): number {
    return this.format.pointer(this.root);
  }

  /** EPT formats: the EPTP. */
  eptp(): number {
    if (!this.format.ept) throw new Error(`${this.format.name} tables have no EPTP`);
    return this.pointer();
  }

  private slot(table: number, va: number, level: number): number {
    return table + (Math.floor(va / levelSize(level)) % PT_ENTRIES) * 8;
  }

  /**
   * The table at `level` on va's path, allocating missing ones when `create`; -1 when one is
   * missing (and not created) or a larger leaf covers va.
   */
  private tableAt(va: number, level: number, create: boolean): number {
    const f = this.format;
    let table = this.root;
    for (let l = f.levels; l > level; l--) {
      const ea = this.slot(table, va, l);
      const lo = this.mem.read(ea, 4);
      const hi = this.mem.read(ea + 4, 4);
      if (!f.present(lo, hi)) {
        if (!create) return -1;
        const t = this.pages.page();
        this.tables++;
        this.mem.write(ea, 4, f.tableLo(t));
        this.mem.write(ea + 4, 4, f.tableHi(t));
        table = t;
      } else {
        if (l <= 3 && f.isLarge(lo)) return -1;
        table = entryAddress(lo, hi);
      }
    }
    return table;
  }

  /** The entry holding va's leaf (or MMIO marker): its address and level, or null. */
  private leafSlot(va: number): { ea: number; level: number } | null {
    const f = this.format;
    let table = this.root;
    for (let l = f.levels; l >= 1; l--) {
      const ea = this.slot(table, va, l);
      const lo = this.mem.read(ea, 4);
      const hi = this.mem.read(ea + 4, 4);
      if (!f.present(lo, hi)) return null;
      if (l === 1 || (l <= 3 && f.isLarge(lo)) || f.isMmio(lo, hi)) return { ea, level: l };
      table = entryAddress(lo, hi);
    }
    return null;
  }

  /** Forget the leaf at `ea` (reverse map, count); the caller rewrites the entry. */
  private dropLeaf(ea: number, va: number, level: number): void {
    const lo = this.mem.read(ea, 4);
    const hi = this.mem.read(ea + 4, 4);
    if (!this.format.present(lo, hi) || this.format.isMmio(lo, hi)) return;
    this.leaves--;
    const size = levelSize(level);
    this.mmu?.leafCleared(this, va - (va % size), entryAddress(lo, hi) - (entryAddress(lo, hi) % size), level);
  }

  private writeLeaf(ea: number, va: number, pa: number, perms: number, level: number): void {
    const p = this.mmu === null ? perms : this.mmu.leafPerms(pa, levelSize(level), perms);
    this.mem.write(ea, 4, this.format.leafLo(pa, p, level));
    this.mem.write(ea + 4, 4, this.format.leafHi(pa, p, level));
    this.leaves++;
    this.mmu?.leafSet(this, va, pa, level);
  }

  /**
   * Map [va, va + size of `level`) to `pa` with PERM_* `perms` (level 1: 4 KiB, 2: 2 MiB,
   * 3: 1 GiB; both addresses aligned to it). Replaces a leaf or MMIO marker at that level;
   * throws when a larger leaf covers va or smaller mappings exist under it (a hypervisor bug).
   */
  map(va: number, pa: number, perms: number, level = 1): void {
    const size = levelSize(level);
    if (level < 1 || level > 3 || va % size !== 0 || pa % size !== 0)
      throw new Error(`page table: cannot map 0x${va.toString(16)} → 0x${pa.toString(16)} at level ${level}`);
    if ((perms & 7) === 0 || ((perms & PERM_W) !== 0 && (perms & PERM_R) === 0))
      throw new Error(`page table: invalid permissions ${perms}`);
    const t = this.tableAt(va, level, true);
    if (t < 0) throw new Error(`page table: 0x${va.toString(16)} is inside a large mapping`);
    const ea = this.slot(t, va, level);
    const lo = this.mem.read(ea, 4);
    const hi = this.mem.read(ea + 4, 4);
    if (level > 1 && this.format.present(lo, hi) && !this.format.isLarge(lo) && !this.format.isMmio(lo, hi))
      throw new Error(`page table: smaller mappings exist under 0x${va.toString(16)}`);
    this.dropLeaf(ea, va, level);
    this.writeLeaf(ea, va, pa, perms, level);
  }

  /**
   * Mark a 4 KiB page as MMIO the way KVM does: an entry every access exits on without a walk
   * of the memslots (EPT: a misconfiguration, W without R; x86: a reserved-bit fault).
   */
  mapMmio(va: number): void {
    const t = this.tableAt(va, 1, true);
    if (t < 0) throw new Error(`page table: 0x${va.toString(16)} is inside a large mapping`);
    const ea = this.slot(t, va, 1);
    this.dropLeaf(ea, va, 1);
    this.mem.write(ea, 4, this.format.mmioLo);
    this.mem.write(ea + 4, 4, this.format.mmioHi);
  }

  /** Remove the leaf (of any size) or MMIO marker covering va; returns whether one was there. */
  unmap(va: number): boolean {
    const s = this.leafSlot(va);
    if (s === null) return false;
    this.dropLeaf(s.ea, va, s.level);
    this.mem.write(s.ea, 4, 0);
    this.mem.write(s.ea + 4, 4, 0);
    return true;
  }

  /**
   * Remove the leaf (or MMIO marker) covering va as `unmap` does, then take out every table on its
   * path the removal left empty, bottom up (the root stays): each one's parent entry is cleared
   * and its page returned, for the caller to free once the hardware's cached copies of these
   * tables are flushed (KVM frees zapped shadow pages after the TLB flush: kvm_mmu_commit_zap_page).
   */
  unmapAndPrune(va: number): number[] {
    const f = this.format;
    const entries: number[] = [];
    let table = this.root;
    for (let l = f.levels; l >= 1; l--) {
      const ea = this.slot(table, va, l);
      entries[l] = ea;
      const lo = this.mem.read(ea, 4);
      const hi = this.mem.read(ea + 4, 4);
      if (!f.present(lo, hi)) return [];
      if (l === 1 || (l <= 3 && f.isLarge(lo)) || f.isMmio(lo, hi)) {
        this.dropLeaf(ea, va, l);
        this.mem.write(ea, 4, 0);
        this.mem.write(ea + 4, 4, 0);
        return this.prune(entries, l);
      }
      table = entryAddress(lo, hi);
    }
    return [];
  }

  /** Take out the empty tables holding entries[level..] (see unmapAndPrune). */
  private prune(entries: number[], level: number): number[] {
    const freed: number[] = [];
    for (let l = level; l < this.format.levels; l++) {
      const page = entries[l] - (entries[l] % 4096);
      for (let i = 0; i < PT_ENTRIES * 2; i++) if (this.mem.read(page + i * 4, 4) !== 0) return freed;
      this.mem.write(entries[l + 1], 4, 0);
      this.mem.write(entries[l + 1] + 4, 4, 0);
      this.tables--;
      freed.push(page);
    }
    return freed;
  }

  /** True when the entry a leaf at `level` (2 or 3) for va would take points to a smaller table. */
  tableUnder(va: number, level: number): boolean {
    const t = this.tableAt(va, level, false);
    if (t < 0) return false;
    const ea = this.slot(t, va, level);
    const lo = this.mem.read(ea, 4);
    const hi = this.mem.read(ea + 4, 4);
    return this.format.present(lo, hi) && !this.format.isLarge(lo) && !this.format.isMmio(lo, hi);
  }

  /** Rewrite the permissions of the leaf covering va; returns whether there was one. */
  protect(va: number, perms: number): boolean {
    const s = this.leafSlot(va);
    if (s === null) return false;
    const lo = this.mem.read(s.ea, 4);
    const hi = this.mem.read(s.ea + 4, 4);
    if (this.format.isMmio(lo, hi)) return false;
    const size = levelSize(s.level);
    const base = va - (va % size);
    this.dropLeaf(s.ea, base, s.level);
    this.writeLeaf(s.ea, base, entryAddress(lo, hi) - (entryAddress(lo, hi) % size), perms, s.level);
    return true;
  }

  /** The leaf translating va, or null (MMIO markers are not leaves). */
  lookup(va: number): Leaf | null {
    const s = this.leafSlot(va);
    if (s === null) return null;
    const lo = this.mem.read(s.ea, 4);
    const hi = this.mem.read(s.ea + 4, 4);
    if (this.format.isMmio(lo, hi)) return null;
    const size = levelSize(s.level);
    const base = entryAddress(lo, hi);
    return { pa: base - (base % size) + (va % size), perms: this.format.perms(lo, hi), level: s.level };
  }

  /**
   * Visit the tables depth-first in address order: `onTable` for every table below the root,
   * `onLeaf` for every leaf (MMIO markers are skipped).
   */
  private visit(
    onLeaf: ((va: number, pa: number, perms: number, level: number) => void) | null,
    onTable: ((table: number) => void) | null,
  ): void {
    const f = this.format;
    const walk = (table: number, level: number, base: number): void => {
      for (let i = 0; i < PT_ENTRIES; i++) {
        const ea = table + i * 8;
        const lo = this.mem.read(ea, 4);
        const hi = this.mem.read(ea + 4, 4);
        if (!f.present(lo, hi) || f.isMmio(lo, hi)) continue;
        const va = base + i * levelSize(level);
        const addr = entryAddress(lo, hi);
        if (level === 1 || (level <= 3 && f.isLarge(lo))) {
          onLeaf?.(va, addr - (addr % levelSize(level)), f.perms(lo, hi), level);
        } else {
          onTable?.(addr);
          walk(addr, level - 1, va);
        }
      }
    };
    walk(this.root, f.levels, 0);
  }

  /** Every leaf, in address order: (va, pa, perms, level). MMIO markers are skipped. */
  forEachLeaf(cb: (va: number, pa: number, perms: number, level: number) => void): void {
    this.visit(cb, null);
  }

  /** Every table page, the root first (for giving them back). */
  tablePages(): number[] {
    const out: number[] = [this.root];
    this.visit(null, (t) => out.push(t));
    return out;
  }

  /**
   * Tear the tables down: every leaf leaves the reverse map, and the table pages (root first)
   * are returned for the caller to free. The builder must not be used afterwards.
   */
  destroy(): number[] {
    if (this.mmu !== null) {
      const mmu = this.mmu;
      this.forEachLeaf((va, pa, _perms, level) => mmu.leafCleared(this, va, pa, level));
    }
    this.leaves = 0;
    return this.tablePages();
  }
}
