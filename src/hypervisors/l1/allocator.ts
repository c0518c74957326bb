/**
 * L1's page allocator for L2 memory: a region of L1 guest-physical RAM that L1 reserved at boot
 * for its guests, handed out page by page. A bump pointer gives fresh pages in address order (so
 * neighbouring L2 pages tend to get neighbouring L1 pages and a MAP covers them in one range); freed
 * pages go on a LIFO free list and are reused first. `allocRun` takes a contiguous run from the
 * bump region (eager mapping of a whole L2 uses it).
 */
const PAGE = 4096;

export class L1PageAllocator {
  private next: number;
  private readonly end: number;
  private readonly freeList: number[] = [];
  /** Pages handed out and not freed. */
  inUse = 0;

  /** Manage L1 GPAs [base, base + size), both page-aligned. */
  constructor(
    readonly base: number,
    readonly size: number,
  ) {
    if (base % PAGE !== 0 || size % PAGE !== 0 || size <= 0)
      throw new RangeError("allocator region must be page-aligned and non-empty");
    this.next = base;
    this.end = base + size;
  }

  /** Pages still available. */
  get available(): number {
    return (this.end - this.next) / PAGE + this.freeList.length;
  }

  /** One page (its L1 GPA). `reused` tells the caller the page may hold old data. */
  alloc(): { gpa: number; reused: boolean } {
    const f = this.freeList.pop();
    if (f !== undefined) {
      this.inUse++;
      return { gpa: f, reused: true };
    }
    if (this.next >= this.end)
      throw new L1OutOfMemory(`L1 has no free page left for L2 (${this.size / PAGE} pages reserved)`);
    const gpa = this.next;
    this.next += PAGE;
    this.inUse++;
    return { gpa, reused: false };
  }

  /** `n` contiguous fresh pages; returns the first one's L1 GPA. */
  allocRun(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`bad page count ${n}`);
    if (this.next + n * PAGE > this.end) throw new L1OutOfMemory(`L1 cannot find ${n} contiguous pages for L2`);
    const gpa = this.next;
    this.next += n * PAGE;
    this.inUse += n;
    return gpa;
  }

  /** Return a page to the free list. */
  free(gpa: number): void {
    if (gpa % PAGE !== 0 || gpa < this.base || gpa >= this.next)
      throw new RangeError(`0x${gpa.toString(16)} was not allocated here`);
    this.freeList.push(gpa);
    this.inUse--;
  }
}

export class L1OutOfMemory extends Error {}
