/** An MMIO device window in physical address space. Offsets are relative to the window base. */
export interface MmioHandler {
  mmioRead(offset: number, size: 1 | 2 | 4 | 8): number;
  /** For size 8, `value` holds the low 32 bits and `valueHi` the high 32 bits. */
  mmioWrite(offset: number, size: 1 | 2 | 4 | 8, value: number, valueHi: number): void;
}

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

/**
 * Page slots come in chunks of 512 (2 MiB of physical space), each made when a page in it is
 * first touched: one flat array of a slot per page cost every machine 2-20 ms to allocate (65536
 * slots for 256 MiB, and a loader's scratch memory paid it again; issue 11), while a guest touches
 * a few chunks.
 */
const CHUNK_SHIFT = 9;
const CHUNK_PAGES = 1 << CHUNK_SHIFT;

interface MmioRegion {
  base: number;
  size: number;
  handler: MmioHandler;
}

/**
 * Guest-physical (or host-physical) memory: page-granular, each 4 KiB page allocated on first
 * touch so a 4 GiB machine costs only what it uses. Physical addresses are plain numbers
 * (< 2^53, exact in a double); the hot path never computes them: the CPU caches page DataViews.
 *
 * Pages that hold decoded instructions are flagged in `codePage`; any write to such a page
 * (CPU, DMA or loader) calls `onCodeWrite` so the decoded-instruction cache stays coherent.
 */
export class PhysicalMemory {
  readonly size: number;
  readonly pageCount: number;
  /** Page slots by pfn >>> CHUNK_SHIFT, then pfn & (CHUNK_PAGES - 1); see CHUNK_SHIFT. */
  private readonly chunks: ((DataView | undefined)[] | undefined)[];
  private readonly mmio: MmioRegion[] = [];
  /** 1 where the page holds code the CPU has decoded. */
  readonly codePage: Uint8Array;
  /**
   * Which 64-byte chunks of each page hold decoded instructions (2 words a page), so data that
   * shares a page with code can be written without throwing the decoded code away.
   */
  readonly codeBits: Uint32Array;
  /** Called with the page frame number when a code page is written. */
  onCodeWrite: ((pfn: number) => void) | null = null;

  constructor(sizeBytes: number) {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % PAGE_SIZE !== 0) {
      throw new RangeError(`memory size must be a positive multiple of 4096 bytes, got ${sizeBytes}`);
    }
    this.size = sizeBytes;
    this.pageCount = sizeBytes / PAGE_SIZE;
    this.chunks = new Array(Math.ceil(this.pageCount / CHUNK_PAGES));
    this.codePage = new Uint8Array(this.pageCount);
    this.codeBits = new Uint32Array(this.pageCount * 2);
  }

  /** Map an MMIO window. Accesses to it never reach RAM. */
  addMmio(base: number, size: number, handler: MmioHandler): void {
    this.mmio.push({ base, size, handler });
  }

  findMmio(addr: number): MmioRegion | undefined {
    for (let i = 0; i < this.mmio.length; i++) {
      const r = this.mmio[i];
      if (addr >= r.base && addr < r.base + r.size) return r;
    }
    return undefined;
  }

  isRam(addr: number): boolean {
    return addr >= 0 && addr < this.size && this.findMmio(addr) === undefined;
  }

  /** The DataView of a RAM page, allocated (zeroed) on first use. Undefined outside RAM. */
  page(pfn: number): DataView | undefined {
    if (pfn < 0 || pfn >= this.pageCount) return undefined;
    // pfn < pageCount, which an array length bounds below 2^32: `>>>` is exact here.
    let chunk = this.chunks[pfn >>> CHUNK_SHIFT];
    if (chunk === undefined) {
      chunk = new Array(CHUNK_PAGES);
      this.chunks[pfn >>> CHUNK_SHIFT] = chunk;
    }
    let p = chunk[pfn & (CHUNK_PAGES - 1)];
    if (p === undefined) {
      p = new DataView(new ArrayBuffer(PAGE_SIZE));
      chunk[pfn & (CHUNK_PAGES - 1)] = p;
    }
    return p;
  }

  /** Visit every allocated page in frame order (loaders copy a prepared image into a guest this way). */
  forEachPage(cb: (pfn: number, page: DataView) => void): void {
    for (let c = 0; c < this.chunks.length; c++) {
      const chunk = this.chunks[c];
      if (chunk === undefined) continue;
      for (let k = 0; k < CHUNK_PAGES; k++) {
        const p = chunk[k];
        if (p !== undefined) cb(c * CHUNK_PAGES + k, p);
      }
    }
  }

  /** How many pages have been touched (allocated). */
  allocatedPages(): number {
    let n = 0;
    this.forEachPage(() => n++);
    return n;
  }

  /** Record that bytes [off, off+len) of page `pfn` hold decoded code. Returns true if the page was not a code page before. */
  markCode(pfn: number, off: number, len: number): boolean {
    const first = off >> 6;
    const last = Math.min(63, (off + len - 1) >> 6);
    for (let k = first; k <= last; k++) this.codeBits[pfn * 2 + (k >> 5)] |= 1 << (k & 31);
    const was = this.codePage[pfn];
    this.codePage[pfn] = 1;
    return was === 0;
  }

  /**
   * Tell the code cache that bytes [off, off+len) of page `pfn` are being written. When they
   * overlap decoded code, the page's decoded instructions are dropped (self-modifying code).
   */
  noteWrite(pfn: number, off: number, len: number): void {
    if (this.codePage[pfn] === 0) return;
    const first = off >> 6;
    const last = Math.min(63, (off + len - 1) >> 6);
    let hit = false;
    for (let k = first; k <= last; k++) if ((this.codeBits[pfn * 2 + (k >> 5)] & (1 << (k & 31))) !== 0) hit = true;
    if (!hit) return;
    this.codePage[pfn] = 0;
    this.codeBits[pfn * 2] = 0;
    this.codeBits[pfn * 2 + 1] = 0;
    if (this.onCodeWrite !== null) this.onCodeWrite(pfn);
  }

  // ---- Byte-granular slow path (loaders, devices, page walkers, unaligned CPU accesses). ----

  read8(addr: number): number {
    const r = this.findMmio(addr);
    if (r !== undefined) return r.handler.mmioRead(addr - r.base, 1) & 0xff;
    const p = this.page(Math.floor(addr / PAGE_SIZE));
    return p === undefined ? 0xff : p.getUint8(addr % PAGE_SIZE);
  }

  write8(addr: number, v: number): void {
    const r = this.findMmio(addr);
    if (r !== undefined) {
      r.handler.mmioWrite(addr - r.base, 1, v & 0xff, 0);
      return;
    }
    const pfn = Math.floor(addr / PAGE_SIZE);
    const p = this.page(pfn);
    if (p === undefined) return; // writes outside RAM are dropped, as on a real bus
    this.noteWrite(pfn, addr % PAGE_SIZE, 1);
    p.setUint8(addr % PAGE_SIZE, v);
  }

  /** Read an aligned-or-not 16/32-bit little-endian value (unsigned). */
  read(addr: number, size: 1 | 2 | 4): number {
    const off = addr % PAGE_SIZE;
    if (off + size <= PAGE_SIZE) {
      const r = this.findMmio(addr);
      if (r !== undefined) return r.handler.mmioRead(addr - r.base, size) >>> 0;
      const p = this.page(Math.floor(addr / PAGE_SIZE));
      if (p === undefined) return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
      return size === 1 ? p.getUint8(off) : size === 2 ? p.getUint16(off, true) : p.getUint32(off, true);
    }
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.read8(addr + i);
    return v >>> 0;
  }

  write(addr: number, size: 1 | 2 | 4, value: number): void {
    const off = addr % PAGE_SIZE;
    if (off + size <= PAGE_SIZE) {
      const r = this.findMmio(addr);
      if (r !== undefined) {
        r.handler.mmioWrite(addr - r.base, size, value >>> 0, 0);
        return;
      }
      const pfn = Math.floor(addr / PAGE_SIZE);
      const p = this.page(pfn);
      if (p === undefined) return;
      this.noteWrite(pfn, off, size);
      if (size === 1) p.setUint8(off, value);
      else if (size === 2) p.setUint16(off, value, true);
      else p.setUint32(off, value, true);
      return;
    }
    for (let i = 0; i < size; i++) this.write8(addr + i, (value >>> (8 * i)) & 0xff);
  }

  /** 64-bit read as halves into `out[0]` (low) and `out[1]` (high). */
  read64(addr: number, out: Int32Array): void {
    out[0] = this.read(addr, 4) | 0;
    out[1] = this.read(addr + 4, 4) | 0;
  }

  write64(addr: number, lo: number, hi: number): void {
    this.write(addr, 4, lo);
    this.write(addr + 4, 4, hi);
  }

  /** Copy bytes in (loaders, DMA). */
  writeBytes(addr: number, bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; ) {
      const a = addr + i;
      const pfn = Math.floor(a / PAGE_SIZE);
      const off = a % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, bytes.length - i);
      const p = this.page(pfn);
      if (p === undefined || this.findMmio(a) !== undefined) {
        for (let j = 0; j < n; j++) this.write8(a + j, bytes[i + j]);
      } else {
        this.noteWrite(pfn, off, n);
        new Uint8Array(p.buffer, off, n).set(bytes.subarray(i, i + n));
      }
      i += n;
    }
  }

  /** Copy bytes out (DMA, tests). */
  readBytes(addr: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(addr, out, 0, length);
    return out;
  }

  /**
   * Copy [addr, addr + length) into `out` at `at`, allocating nothing (a RAM page is copied byte
   * by byte rather than through a view of it: the callers copy a few hundred bytes per event).
   */
  readInto(addr: number, out: Uint8Array, at: number, length: number): void {
    for (let i = 0; i < length; ) {
      const a = addr + i;
      const pfn = Math.floor(a / PAGE_SIZE);
      const off = a % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, length - i);
      const p = this.page(pfn);
      const o = at + i;
      if (p === undefined || this.findMmio(a) !== undefined) {
        for (let j = 0; j < n; j++) out[o + j] = this.read8(a + j);
      } else {
        for (let j = 0; j < n; j++) out[o + j] = p.getUint8(off + j);
      }
      i += n;
    }
  }
}
