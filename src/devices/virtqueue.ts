/**
 * Split virtqueues (virtio 1.x spec, section 2.7 "Split Virtqueues"), device side, and the bounded
 * view of guest memory the device reaches them through.
 *
 * Followed: the OASIS virtio 1.1/1.2 specification (descriptor table, available and used rings,
 * VIRTQ_DESC_F_NEXT/WRITE/INDIRECT, VIRTQ_AVAIL_F_NO_INTERRUPT) and, for how a device treats a
 * malformed ring, QEMU's hw/virtio/virtio.c (virtqueue_pop / virtqueue_split_read_next_desc:
 * a head or next index past the queue size, a chain longer than the table, a bad indirect table or
 * an available index that moved by more than the queue size are device errors); read for reference,
 * not copied.
 *
 * Guest memory is reached only through a `DmaMemory` (which may be an L2-guest-physical view) and
 * every access is checked against `limit` first, so nothing is ever read or written outside the
 * window the machine granted. Problems are thrown as `VirtqueueError` inside the device model and
 * caught by the transport, which never lets them escape.
 */
import type { DmaMemory } from "../cpu/ports.js";

export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;

/** A malformed ring, descriptor or request, or a DMA outside the allowed window. */
export class VirtqueueError extends Error {}

/** A DmaMemory with a bounds check: accesses must lie in [0, limit). */
export class GuestMemoryView {
  readonly mem: DmaMemory;
  readonly limit: number;

  /** `limit` defaults to the memory's `size` property when it has one (PhysicalMemory does). */
  constructor(mem: DmaMemory, limit?: number) {
    this.mem = mem;
    const size = (mem as { size?: unknown }).size;
    this.limit = limit ?? (typeof size === "number" ? size : Number.MAX_SAFE_INTEGER);
  }

  /** True when [addr, addr+len) is inside the window. */
  contains(addr: number, len: number): boolean {
    return Number.isSafeInteger(addr) && Number.isSafeInteger(len) && addr >= 0 && len >= 0 && addr + len <= this.limit;
  }

  check(addr: number, len: number): void {
    if (!this.contains(addr, len)) {
      throw new VirtqueueError(`DMA outside guest memory: 0x${addr.toString(16)}+0x${len.toString(16)}`);
    }
  }

  read(addr: number, len: number): Uint8Array {
    this.check(addr, len);
    return this.mem.readBytes(addr, len);
  }

  write(addr: number, bytes: Uint8Array): void {
    this.check(addr, bytes.length);
    this.mem.writeBytes(addr, bytes);
  }

  read16(addr: number): number {
    const b = this.read(addr, 2);
    return b[0] | (b[1] << 8);
  }
  read32(addr: number): number {
    const b = this.read(addr, 4);
    return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
  }
  /** 64-bit little-endian; values of 2^53 and above come back inexact, which only ever fails a bounds check. */
  read64(addr: number): number {
    const b = this.read(addr, 8);
    const lo = (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
    const hi = (b[4] | (b[5] << 8) | (b[6] << 16) | (b[7] << 24)) >>> 0;
    return hi * 0x100000000 + lo;
  }
  write16(addr: number, v: number): void {
    this.write(addr, new Uint8Array([v & 0xff, (v >>> 8) & 0xff]));
  }
  write32(addr: number, v: number): void {
    this.write(addr, new Uint8Array([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff]));
  }
}

export interface Descriptor {
  addr: number;
  len: number;
}

/** A descriptor chain, split into its device-readable part and the device-writable part after it. */
export interface DescriptorChain {
  head: number;
  readable: Descriptor[];
  writable: Descriptor[];
  readableLength: number;
  writableLength: number;
}

/** Copy `length` bytes starting `skip` bytes into the buffers described by `descs`. */
export function gather(view: GuestMemoryView, descs: Descriptor[], skip: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let pos = 0;
  let s = skip;
  for (const d of descs) {
    if (pos >= length) break;
    if (s >= d.len) {
      s -= d.len;
      continue;
    }
    const n = Math.min(d.len - s, length - pos);
    out.set(view.read(d.addr + s, n), pos);
    pos += n;
    s = 0;
  }
  if (pos < length) throw new VirtqueueError("gather past the end of the chain");
  return out;
}

/** Copy `data` into the buffers described by `descs`, starting `skip` bytes in. */
export function scatter(view: GuestMemoryView, descs: Descriptor[], skip: number, data: Uint8Array): void {
  let pos = 0;
  let s = skip;
  for (const d of descs) {
    if (pos >= data.length) break;
    if (s >= d.len) {
      s -= d.len;
      continue;
    }
    const n = Math.min(d.len - s, data.length - pos);
    view.write(d.addr + s, data.subarray(pos, pos + n));
    pos += n;
    s = 0;
  }
  if (pos < data.length) throw new VirtqueueError("scatter past the end of the chain");
}

/** Device-side state of one split virtqueue (what the transport's Queue* registers configure). */
export class SplitVirtqueue {
  readonly index: number;
  readonly maxSize: number;
  size = 0;
  ready = false;
  descAddr = 0;
  driverAddr = 0;
  deviceAddr = 0;
  /** Next available-ring slot the device will consume (free-running 16-bit). */
  lastAvailIdx = 0;
  /** Next used-ring slot (free-running 16-bit), also what used.idx holds. */
  usedIdx = 0;

  constructor(index: number, maxSize: number) {
    this.index = index;
    this.maxSize = maxSize;
  }

  reset(): void {
    this.size = 0;
    this.ready = false;
    this.descAddr = 0;
    this.driverAddr = 0;
    this.deviceAddr = 0;
    this.lastAvailIdx = 0;
    this.usedIdx = 0;
  }

  /** Why this queue's configuration is unusable, or null if it is fine. */
  validate(view: GuestMemoryView): string | null {
    const n = this.size;
    if (n === 0 || n > this.maxSize || (n & (n - 1)) !== 0) return `bad queue size ${n}`;
    if (!view.contains(this.descAddr, 16 * n) || this.descAddr % 16 !== 0)
      return "descriptor table outside memory or misaligned";
    if (!view.contains(this.driverAddr, 6 + 2 * n) || this.driverAddr % 2 !== 0)
      return "available ring outside memory or misaligned";
    if (!view.contains(this.deviceAddr, 6 + 8 * n) || this.deviceAddr % 4 !== 0)
      return "used ring outside memory or misaligned";
    return null;
  }

  /** Take the next available head index, or null when the ring is empty. */
  pop(view: GuestMemoryView): number | null {
    const availIdx = view.read16(this.driverAddr + 2);
    const pending = (availIdx - this.lastAvailIdx) & 0xffff;
    if (pending === 0) return null;
    if (pending > this.size) throw new VirtqueueError(`available index moved from ${this.lastAvailIdx} to ${availIdx}`);
    const head = view.read16(this.driverAddr + 4 + 2 * (this.lastAvailIdx % this.size));
    this.lastAvailIdx = (this.lastAvailIdx + 1) & 0xffff;
    if (head >= this.size) throw new VirtqueueError(`head index ${head} >= queue size ${this.size}`);
    return head;
  }

  /**
   * Walk the chain starting at `head`. At most `size` descriptors (or the indirect table's length)
   * are followed, so a loop is an error, not a hang. An indirect descriptor must be the only one in
   * the chain (the spec forbids INDIRECT with NEXT) and may not nest.
   */
  readChain(view: GuestMemoryView, head: number, allowIndirect: boolean): DescriptorChain {
    const chain: DescriptorChain = { head, readable: [], writable: [], readableLength: 0, writableLength: 0 };
    let table = this.descAddr;
    let tableSize = this.size;
    let idx = head;
    let count = 0;
    let indirect = false;
    for (;;) {
      if (idx >= tableSize) throw new VirtqueueError(`descriptor index ${idx} >= ${tableSize}`);
      if (++count > tableSize) throw new VirtqueueError("descriptor chain loops or exceeds the queue size");
      const d = table + 16 * idx;
      const addr = view.read64(d);
      const len = view.read32(d + 8);
      const flags = view.read16(d + 12);
      const next = view.read16(d + 14);
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (!allowIndirect) throw new VirtqueueError("indirect descriptor without VIRTIO_F_INDIRECT_DESC");
        if (indirect) throw new VirtqueueError("nested indirect descriptor");
        if (count !== 1 || (flags & VIRTQ_DESC_F_NEXT) !== 0)
          throw new VirtqueueError("indirect descriptor inside a chain");
        if (len === 0 || len % 16 !== 0) throw new VirtqueueError(`bad indirect table length ${len}`);
        view.check(addr, len);
        indirect = true;
        table = addr;
        tableSize = len / 16;
        idx = 0;
        count = 0;
        continue;
      }
      view.check(addr, len);
      if (flags & VIRTQ_DESC_F_WRITE) {
        chain.writable.push({ addr, len });
        chain.writableLength += len;
      } else {
        if (chain.writable.length > 0)
          throw new VirtqueueError("device-readable descriptor after a device-writable one");
        chain.readable.push({ addr, len });
        chain.readableLength += len;
      }
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
      idx = next;
    }
    return chain;
  }

  /** Return a chain to the driver: used.ring[usedIdx] = {id, len}, then publish used.idx. */
  pushUsed(view: GuestMemoryView, head: number, len: number): void {
    const slot = this.deviceAddr + 4 + 8 * (this.usedIdx % this.size);
    view.write32(slot, head);
    view.write32(slot + 4, len);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    view.write16(this.deviceAddr + 2, this.usedIdx);
  }

  /** False when the driver set VIRTQ_AVAIL_F_NO_INTERRUPT. */
  wantsInterrupt(view: GuestMemoryView): boolean {
    return (view.read16(this.driverAddr) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }
}
