/**
 * The hypervisor-side MMU one L0 keeps for all the tables it builds (EPT01 of each VM, EPT02 of
 * each nested guest, shadow tables later): the reverse map from backing frames to the leaves
 * that map them, write tracking of frames, and the operations built on both — zap a frame,
 * write-protect it, emulate a write to a tracked frame. Tables report every leaf they set or
 * clear here (page-table.ts); after changing entries behind the hardware's back this calls each
 * affected table's `flush` once (INVEPT/INVVPID for the contexts using it), as KVM batches
 * kvm_flush_remote_tlbs after an rmap walk.
 */
import type { VmxHost } from "../../cpu/vmx/host.js";
import { PERM_W } from "../../mmu/walker.js";
import { EPT4, type TableFormat } from "./formats.js";
import { PageTableBuilder, type TableMemory, type TablePageSource } from "./page-table.js";
import { PageTracker, type WriteNotifier } from "./page-track.js";
import { ReverseMap } from "./rmap.js";
import { WriteThroughWindow } from "./write-through.js";

export class HypervisorMmu {
  readonly rmap = new ReverseMap();
  readonly tracker = new PageTracker();
  /** Leaves zapped through the reverse map. */
  zapped = 0;
  private window: WriteThroughWindow | null = null;

  constructor(
    /** The hardware, for emulating writes to tracked frames (null: tables only, e.g. tests). */
    private readonly host: VmxHost | null = null,
    /** Reserves a host-physical window for that emulation (asked once, on first use). */
    private readonly reserveWindow: (() => number) | null = null,
  ) {}

  /** A table in `mem` whose leaves this MMU follows. */
  newTable(mem: TableMemory, pages: TablePageSource, format: TableFormat = EPT4): PageTableBuilder {
    return new PageTableBuilder(mem, pages, format, this);
  }

  // ---- Called by the tables ----

  leafSet(table: PageTableBuilder, va: number, pa: number, level: number): void {
    this.rmap.add(table, va, pa, level);
  }

  leafCleared(table: PageTableBuilder, va: number, pa: number, level: number): void {
    this.rmap.remove(table, va, pa, level);
  }

  /** The permissions a new leaf over [pa, pa + size) really gets: no W over a tracked frame. */
  leafPerms(pa: number, size: number, perms: number): number {
    return (perms & PERM_W) !== 0 && this.tracker.anyIn(pa, size) ? perms & ~PERM_W : perms;
  }

  // ---- Reverse-map operations ----

  /**
   * Reclaim: remove every leaf mapping the 4 KiB frame at `pa` (a large leaf containing it goes
   * whole), then flush each table touched once. Returns the number of leaves removed.
   */
  zapFrame(pa: number): number {
    const touched = new Set<PageTableBuilder>();
    const maps = this.rmap.mappingsOf(pa);
    for (const m of maps) {
      m.table.unmap(m.va);
      touched.add(m.table);
    }
    for (const t of touched) t.flush?.();
    this.zapped += maps.length;
    return maps.length;
  }

  // ---- Page tracking ----

  /**
   * Call `notifier` for every guest write to the frame at `pa`. The first tracker of a frame
   * write-protects every leaf that maps it (and flushes those tables).
   */
  trackWrites(pa: number, notifier: WriteNotifier): void {
    if (!this.tracker.add(pa, notifier)) return;
    const touched = new Set<PageTableBuilder>();
    for (const m of this.rmap.mappingsOf(pa)) {
      const leaf = m.table.lookup(m.va);
      if (leaf === null || (leaf.perms & PERM_W) === 0) continue;
      m.table.protect(m.va, leaf.perms); // rebuilt through leafPerms: W removed
      touched.add(m.table);
    }
    for (const t of touched) t.flush?.();
  }

  /**
   * Stop `notifier`. Leaves stay read-only until the next write fault maps the page again with
   * its full rights (KVM restores write access lazily too).
   */
  untrackWrites(pa: number, notifier: WriteNotifier): void {
    this.tracker.remove(pa, notifier);
  }

  /**
   * The guest currently loaded wrote tracked guest-physical `gpa` (backed by host `pa`) and took
   * an EPT violation: emulate the instruction with the page routed through a write-through
   * window that reports each write to the notifiers. Returns true when the emulated instruction
   * itself exited (the caller handles that exit next), as VmxHost.emulateMmioInstruction.
   */
  emulateTrackedWrite(gpa: number, pa: number): boolean {
    const host = this.host;
    if (host === null || this.reserveWindow === null) throw new Error("this hypervisor MMU cannot emulate");
    if (this.window === null) {
      const base = this.reserveWindow();
      this.window = new WriteThroughWindow(host.mem, this.tracker, base);
      host.mem.addMmio(base, 4096, this.window);
    }
    const w = this.window;
    const page = gpa - (gpa % 4096);
    w.target(page, pa - (pa % 4096));
    try {
      return host.emulateMmioInstruction(page, 4096, w.base).exited;
    } finally {
      w.target(0, -1);
    }
  }
}
