/** A block device backed by a disk image file (Node only; the browser page uses memory disks). */
import * as fs from "node:fs";
import { type BlockBackend, checkRange } from "./block-backend.js";

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
