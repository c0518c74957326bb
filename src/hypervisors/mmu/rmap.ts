/**
 * Reverse map: from a backing frame to every leaf of every hypervisor-built table (EPT01, EPT02,
 * shadow tables) that maps it, as KVM's rmap (arch/x86/kvm/mmu/mmu.c, pte_list_add /
 * kvm_zap_rmap) — so reclaiming or protecting a frame touches exactly the entries that map it,
 * without scanning any table. Leaves are kept per level, keyed by the frame number at that
 * level's granularity, so a 2 MiB or 1 GiB leaf is one record and is found from any 4 KiB frame
 * inside it.
 */
import type { PageTableBuilder } from "./page-table.js";
import { levelSize } from "./page-table.js";

export interface Mapping {
  table: PageTableBuilder;
  /** The address the leaf translates (aligned to its size). */
  va: number;
  /** 1: 4 KiB, 2: 2 MiB, 3: 1 GiB. */
  level: number;
}

export class ReverseMap {
  /** byLevel[level - 1]: frame number at that level → leaves mapping it. */
  private readonly byLevel: Map<number, Mapping[]>[] = [new Map(), new Map(), new Map()];
  /** Leaves recorded. */
  size = 0;

  private key(pa: number, level: number): number {
    return Math.floor(pa / levelSize(level));
  }

  add(table: PageTableBuilder, va: number, pa: number, level: number): void {
    const m = this.byLevel[level - 1];
    const k = this.key(pa, level);
    let list = m.get(k);
    if (list === undefined) {
      list = [];
      m.set(k, list);
    }
    list.push({ table, va, level });
    this.size++;
  }

  remove(table: PageTableBuilder, va: number, pa: number, level: number): void {
    const m = this.byLevel[level - 1];
    const k = this.key(pa, level);
    const list = m.get(k);
    if (list === undefined) return;
    const i = list.findIndex((e) => e.table === table && e.va === va);
    if (i < 0) return;
    list.splice(i, 1);
    this.size--;
    if (list.length === 0) m.delete(k);
  }

  /** Every leaf whose page contains the 4 KiB frame at `pa` (a copy: callers may change the tables). */
  mappingsOf(pa: number): Mapping[] {
    const out: Mapping[] = [];
    for (let level = 1; level <= 3; level++) {
      const list = this.byLevel[level - 1].get(this.key(pa, level));
      if (list !== undefined) out.push(...list);
    }
    return out;
  }
}
