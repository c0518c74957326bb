/**
 * The host-physical window L0 emulates L2 MMIO instructions against (as KVM's emulator runs an
 * MMIO instruction against its device model): one 4 KiB window whose handler is switched per
 * access — the L2's LAPIC, a recorder that captures a write (or probes a read without letting
 * it retire), or a source that returns the value L1 supplied for a forwarded read.
 */
import type { MmioHandler } from "../../../cpu/ports.js";

/** Dispatches to whichever handler L0 set for the instruction being emulated. */
export class MmioProxy implements MmioHandler {
  target: MmioHandler | null = null;
  mmioRead(offset: number, size: 1 | 2 | 4 | 8): number {
    return this.target === null ? 0xffffffff : this.target.mmioRead(offset, size);
  }
  mmioWrite(offset: number, size: 1 | 2 | 4 | 8, value: number, valueHi: number): void {
    this.target?.mmioWrite(offset, size, value, valueHi);
  }
}

/**
 * Records the accesses of one instruction: the first access's kind, the lowest offset and the
 * bytes (an 8-byte access may arrive as two 4-byte ones). Reads return bytes from `source`
 * (zeros when probing, L1's value when completing a forwarded read).
 */
export class MmioRecorder implements MmioHandler {
  accesses = 0;
  firstIsWrite = false;
  base = -1;
  extent = 0;
  readonly bytes = new Uint8Array(8);
  readonly source = new Uint8Array(8);
  /** A write seen after a read (read-modify-write instructions). */
  wroteAfterRead = false;
  readonly written = new Uint8Array(8);
  writtenBase = -1;
  writtenExtent = 0;

  reset(): void {
    this.accesses = 0;
    this.firstIsWrite = false;
    this.base = -1;
    this.extent = 0;
    this.bytes.fill(0);
    this.source.fill(0);
    this.wroteAfterRead = false;
    this.written.fill(0);
    this.writtenBase = -1;
    this.writtenExtent = 0;
  }

  private note(offset: number, size: number, write: boolean): number {
    if (this.accesses === 0) {
      this.firstIsWrite = write;
      this.base = offset;
    }
    this.accesses++;
    const rel = offset - this.base;
    if (rel >= 0 && rel + size <= 8) this.extent = Math.max(this.extent, rel + size);
    return rel;
  }

  mmioRead(offset: number, size: 1 | 2 | 4 | 8): number {
    const rel = this.note(offset, size, false);
    let v = 0;
    for (let i = size - 1; i >= 0; i--) {
      const k = rel + i;
      v = v * 256 + (k >= 0 && k < 8 ? this.source[k] : 0);
    }
    return v;
  }

  mmioWrite(offset: number, size: 1 | 2 | 4 | 8, value: number, valueHi: number): void {
    const isFirst = this.accesses === 0;
    const rel = this.note(offset, size, true);
    const put = (arr: Uint8Array, r: number): void => {
      for (let i = 0; i < size && i < 8; i++) {
        const k = r + i;
        if (k < 0 || k >= 8) continue;
        arr[k] = i < 4 ? (value >>> (8 * i)) & 0xff : (valueHi >>> (8 * (i - 4))) & 0xff;
      }
    };
    if (this.firstIsWrite || isFirst) put(this.bytes, rel);
    else {
      if (this.writtenBase < 0) this.writtenBase = offset;
      const r = offset - this.writtenBase;
      put(this.written, r);
      if (r >= 0 && r + size <= 8) this.writtenExtent = Math.max(this.writtenExtent, r + size);
      this.wroteAfterRead = true;
    }
  }
}

/** Little-endian u64 of 8 bytes as halves. */
export function bytesLoHi(b: Uint8Array): [number, number] {
  const lo = (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
  const hi = (b[4] | (b[5] << 8) | (b[6] << 16) | (b[7] << 24)) >>> 0;
  return [lo, hi];
}
