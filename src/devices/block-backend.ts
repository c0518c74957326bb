/**
 * Storage behind a block device. Offsets and lengths are in bytes; the device model checks ranges
 * before calling, but implementations also reject out-of-range accesses (by throwing a RangeError,
 * which the device turns into VIRTIO_BLK_S_IOERR) so a bad caller can never corrupt a neighbour.
 */
import * as fs from "node:fs";

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

function checkRange(size: number, offset: number, length: number): void {
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

/**
 * A disk image file, accessed with synchronous positioned reads and writes on a file descriptor.
 * The capacity is fixed at open (the file's size unless given); bytes past the file's end read as 0.
 */
export class FileBlockBackend implements BlockBackend {
  readonly size: number;
  readonly readOnly: boolean;
  private fd: number;

  constructor(fd: number, size: number, readOnly = false) {
    this.fd = fd;
    this.size = size;
    this.readOnly = readOnly;
  }

  static open(path: string, opts: { readOnly?: boolean; size?: number } = {}): FileBlockBackend {
    const readOnly = opts.readOnly ?? false;
    const fd = fs.openSync(path, readOnly ? "r" : "r+");
    const size = opts.size ?? fs.fstatSync(fd).size;
    return new FileBlockBackend(fd, size, readOnly);
  }

  read(offset: number, dest: Uint8Array): void {
    checkRange(this.size, offset, dest.length);
    let done = 0;
    while (done < dest.length) {
      const n = fs.readSync(this.fd, dest, done, dest.length - done, offset + done);
      if (n === 0) {
        dest.fill(0, done);
        break;
      }
      done += n;
    }
  }

  write(offset: number, src: Uint8Array): void {
    if (this.readOnly) throw new Error("read-only backend");
    checkRange(this.size, offset, src.length);
    let done = 0;
    while (done < src.length) done += fs.writeSync(this.fd, src, done, src.length - done, offset + done);
  }

  flush(): void {
    if (!this.readOnly) fs.fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd >= 0) {
      fs.closeSync(this.fd);
      this.fd = -1;
    }
  }
}
