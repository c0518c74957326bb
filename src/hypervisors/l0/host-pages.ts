import type { PhysicalMemory } from "../../mmu/phys.js";

/**
 * L0's allocator of host-physical pages (for EPT tables, VMCS regions, and guest RAM backing),
 * a bump allocator over a region of host RAM. Pages come zeroed (fresh PhysicalMemory pages are).
 */
export class HostPageAllocator {
  private next: number;
  allocated = 0;
  /**
   * Told of every page handed out (zeroOnly: a recycled page that is zeroed, not allocated), so
   * L0 charges `host.page_alloc` / `host.page_zero` by count; null: nobody charges (set-up).
   */
  onPage: ((zeroOnly: boolean) => void) | null = null;

  constructor(
    private readonly mem: PhysicalMemory,
    base: number,
    private readonly limit: number,
  ) {
    this.next = base;
  }

  /** One zeroed 4 KiB host page; throws when L0 is out of memory (a configuration error). */
  page(): number {
    if (this.next + 4096 > this.limit) throw new Error("L0 is out of host memory for its own structures");
    const p = this.next;
    this.next += 4096;
    this.allocated++;
    this.mem.page(p / 4096); // materialize (zeroed)
    this.onPage?.(false);
    return p;
  }

  /**
   * A contiguous host range (guest RAM backing) aligned to `align` bytes (4 KiB, or a large page
   * so EPT can map it with large leaves); its pages materialize on first touch.
   */
  range(bytes: number, align = 4096): number {
    const size = Math.ceil(bytes / 4096) * 4096;
    const p = Math.ceil(this.next / align) * align;
    if (p + size > this.limit) throw new Error(`L0 cannot back ${bytes} bytes: host memory exhausted`);
    this.next = p;
    this.next += size;
    return p;
  }
}

/**
 * A page allocator over L0's own that reuses pages given back with `free` (zeroing them): the pool
 * a nested engine's table pages return to (npv's destroyed L2 VMs, nested VMX's zapped EPT02
 * tables). A recycled page is charged its zeroing only (`onPage(true)`).
 */
export class RecyclingPages extends HostPageAllocator {
  private readonly freeList: number[] = [];

  constructor(
    private readonly hostMem: PhysicalMemory,
    private readonly parent: HostPageAllocator,
  ) {
    super(hostMem, 0, 0);
  }

  override page(): number {
    const p = this.freeList.pop();
    if (p === undefined) {
      const q = this.parent.page();
      this.allocated++;
      return q;
    }
    this.hostMem.writeBytes(p, new Uint8Array(4096));
    this.parent.onPage?.(true);
    return p;
  }

  override range(bytes: number, align = 4096): number {
    return this.parent.range(bytes, align);
  }

  free(page: number): void {
    this.freeList.push(page);
  }

  get freePages(): number {
    return this.freeList.length;
  }
}
