/**
 * Storage behind a block device. Offsets and lengths are in bytes; the device model checks ranges
 * before calling, but implementations also reject out-of-range accesses (by throwing a RangeError,
 * which the device turns into VIRTIO_BLK_S_IOERR) so a bad caller can never corrupt a neighbour.
 */
export interface BlockBackend {
  /** Capacity in bytes. */
  readonly size: number;
  readonly readOnly: boolean;
  /** Fill `dest` from byte `offset`. */
  read(offset: number, dest: Uint8Array): void;
  /** Store `src` at byte `offset`. */
  write(offset: number, src: Uint8Array): void;
  /** Make completed writes durable. */
  flush(): void;
}

export function checkRange(size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > size) {
    throw new RangeError(`block access ${offset}+${length} outside 0..${size}`);
  }
}

/**
 * A disk held in a Uint8Array. A zero-filled disk is allocated on its first access: most runs
 * never touch their disk, and every machine has one (8 MiB zeroed per run otherwise).
 */
export class MemoryBlockBackend implements BlockBackend {
  private bytes: Uint8Array | null;
  readonly size: number;
  readonly readOnly: boolean;
  flushes = 0;

  /** `init` is a size in bytes (zero-filled disk) or the initial contents (copied). */
  constructor(init: number | Uint8Array, opts: { readOnly?: boolean } = {}) {
    this.bytes = typeof init === "number" ? null : init.slice();
    this.size = typeof init === "number" ? init : init.length;
    this.readOnly = opts.readOnly ?? false;
  }

  /** The disk's contents. */
  get data(): Uint8Array {
    if (this.bytes === null) this.bytes = new Uint8Array(this.size);
    return this.bytes;
  }

  read(offset: number, dest: Uint8Array): void {
    checkRange(this.size, offset, dest.length);
    dest.set(this.data.subarray(offset, offset + dest.length));
  }

  write(offset: number, src: Uint8Array): void {
    if (this.readOnly) throw new Error("read-only backend");
    checkRange(this.size, offset, src.length);
    this.data.set(src, offset);
  }

  flush(): void {
    this.flushes++;
  }
}
