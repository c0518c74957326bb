/**
 * virtio block device model (device ID 2), one request queue.
 *
 * Followed: OASIS virtio 1.1/1.2 spec section 5.2 "Block Device" (feature bits, struct
 * virtio_blk_config layout, request header {le32 type; le32 reserved; le64 sector}, data, trailing
 * status byte; VIRTIO_BLK_T_IN/OUT/FLUSH/GET_ID; status OK/IOERR/UNSUPP) and QEMU's
 * hw/block/virtio-blk.c for device behaviour the spec leaves open: requests are parsed without
 * assuming any descriptor layout; a chain without room for the 16-byte header or the status byte is
 * a device error ("missing headers"); a transfer whose length is not a multiple of 512 or that runs
 * past the capacity fails with IOERR; GET_ID returns at most 20 bytes of serial, zero-padded; other
 * request types get UNSUPP. Read for reference, not copied.
 *
 * Offered features: VIRTIO_F_VERSION_1, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_BLK_F_SEG_MAX,
 * VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH, and VIRTIO_BLK_F_RO for a read-only backend.
 * Used-ring `len` is the number of bytes the device wrote (data read + the status byte).
 */
import type { BlockBackend } from "./block-backend.js";
import { type VirtioDeviceModel, type VirtioMmioOptions, VirtioMmioTransport } from "./virtio-mmio.js";
import { type DescriptorChain, type GuestMemoryView, gather, scatter, VirtqueueError } from "./virtqueue.js";

export const VIRTIO_ID_BLOCK = 2;
export const SECTOR_SIZE = 512;

export const VIRTIO_BLK_F_SIZE_MAX = 1;
export const VIRTIO_BLK_F_SEG_MAX = 2;
export const VIRTIO_BLK_F_RO = 5;
export const VIRTIO_BLK_F_BLK_SIZE = 6;
export const VIRTIO_BLK_F_FLUSH = 9;

export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;

export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

export const VIRTIO_BLK_ID_BYTES = 20;
const HEADER_SIZE = 16;
const CONFIG_SIZE = 0x3c; // through the write_zeroes fields; we fill capacity, seg_max, blk_size

export interface VirtioBlkOptions {
  backend: BlockBackend;
  /** Queue size offered in QueueNumMax. Default 256. */
  queueSize?: number;
  /** Serial number returned by GET_ID (at most 20 bytes used). */
  serial?: string;
}

/** Per-device counters. */
export interface VirtioBlkStats {
  requests: number;
  reads: number;
  writes: number;
  flushes: number;
  getIds: number;
  bytesRead: number;
  bytesWritten: number;
  ioErrors: number;
  unsupported: number;
}

export class VirtioBlk implements VirtioDeviceModel {
  readonly deviceId = VIRTIO_ID_BLOCK;
  readonly numQueues = 1;
  readonly queueMaxSize: number;
  readonly backend: BlockBackend;
  private readonly serial: Uint8Array;
  private readonly config = new Uint8Array(CONFIG_SIZE);
  readonly stats: VirtioBlkStats = {
    requests: 0,
    reads: 0,
    writes: 0,
    flushes: 0,
    getIds: 0,
    bytesRead: 0,
    bytesWritten: 0,
    ioErrors: 0,
    unsupported: 0,
  };

  constructor(opts: VirtioBlkOptions) {
    this.backend = opts.backend;
    this.queueMaxSize = opts.queueSize ?? 256;
    this.serial = new TextEncoder().encode(opts.serial ?? "nestlab-virtio-blk").subarray(0, VIRTIO_BLK_ID_BYTES);
    const dv = new DataView(this.config.buffer);
    const sectors = Math.floor(this.backend.size / SECTOR_SIZE);
    dv.setUint32(0x00, sectors % 0x100000000, true); // capacity (le64)
    dv.setUint32(0x04, Math.floor(sectors / 0x100000000), true);
    dv.setUint32(0x0c, Math.max(this.queueMaxSize - 2, 1), true); // seg_max
    dv.setUint32(0x14, SECTOR_SIZE, true); // blk_size
  }

  /** Capacity in 512-byte sectors. */
  get capacity(): number {
    return Math.floor(this.backend.size / SECTOR_SIZE);
  }

  deviceFeatures(): [number, number] {
    let lo = (1 << VIRTIO_BLK_F_SEG_MAX) | (1 << VIRTIO_BLK_F_BLK_SIZE) | (1 << VIRTIO_BLK_F_FLUSH) | (1 << 28);
    if (this.backend.readOnly) lo |= 1 << VIRTIO_BLK_F_RO;
    return [lo >>> 0, 1]; // high word bit 0 = VIRTIO_F_VERSION_1
  }

  readConfig(offset: number, size: 1 | 2 | 4 | 8): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) {
      const o = offset + i;
      v = v * 256 + (o >= 0 && o < CONFIG_SIZE ? this.config[o] : 0);
    }
    return v;
  }

  writeConfig(_offset: number, _size: 1 | 2 | 4 | 8, _value: number): void {
    // No writable config fields without VIRTIO_BLK_F_CONFIG_WCE.
  }

  reset(): void {}

  /** Is [sector, sector + bytes/512) a whole-sector range inside the disk? */
  private rangeOk(sector: number, bytes: number): boolean {
    return (
      bytes % SECTOR_SIZE === 0 && Number.isSafeInteger(sector) && sector * SECTOR_SIZE + bytes <= this.backend.size
    );
  }

  handleChain(_queue: number, chain: DescriptorChain, mem: GuestMemoryView, _features: [number, number]): number {
    if (chain.readableLength < HEADER_SIZE || chain.writableLength < 1) {
      throw new VirtqueueError("virtio-blk request missing header or status byte");
    }
    this.stats.requests++;
    const hdr = new DataView(gather(mem, chain.readable, 0, HEADER_SIZE).buffer);
    const type = hdr.getUint32(0, true);
    const sector = hdr.getUint32(12, true) * 0x100000000 + hdr.getUint32(8, true);
    const statusAt = chain.writableLength - 1;
    let status = VIRTIO_BLK_S_OK;
    let written = 0;
    switch (type) {
      case VIRTIO_BLK_T_IN: {
        const len = chain.writableLength - 1;
        if (!this.rangeOk(sector, len)) {
          status = VIRTIO_BLK_S_IOERR;
          break;
        }
        const buf = new Uint8Array(len);
        try {
          this.backend.read(sector * SECTOR_SIZE, buf);
        } catch {
          status = VIRTIO_BLK_S_IOERR;
          break;
        }
        scatter(mem, chain.writable, 0, buf);
        written = len;
        this.stats.reads++;
        this.stats.bytesRead += len;
        break;
      }
      case VIRTIO_BLK_T_OUT: {
        const len = chain.readableLength - HEADER_SIZE;
        if (this.backend.readOnly || !this.rangeOk(sector, len)) {
          status = VIRTIO_BLK_S_IOERR;
          break;
        }
        const data = gather(mem, chain.readable, HEADER_SIZE, len);
        try {
          this.backend.write(sector * SECTOR_SIZE, data);
        } catch {
          status = VIRTIO_BLK_S_IOERR;
          break;
        }
        this.stats.writes++;
        this.stats.bytesWritten += len;
        break;
      }
      case VIRTIO_BLK_T_FLUSH:
        try {
          this.backend.flush();
        } catch {
          status = VIRTIO_BLK_S_IOERR;
          break;
        }
        this.stats.flushes++;
        break;
      case VIRTIO_BLK_T_GET_ID: {
        const n = Math.min(VIRTIO_BLK_ID_BYTES, chain.writableLength - 1);
        const id = new Uint8Array(n);
        id.set(this.serial.subarray(0, n));
        scatter(mem, chain.writable, 0, id);
        written = n;
        this.stats.getIds++;
        break;
      }
      default:
        status = VIRTIO_BLK_S_UNSUPP;
        this.stats.unsupported++;
        break;
    }
    if (status === VIRTIO_BLK_S_IOERR) this.stats.ioErrors++;
    scatter(mem, chain.writable, statusAt, new Uint8Array([status]));
    return written + 1;
  }
}

/** Convenience: a virtio-blk device behind a virtio-mmio transport (the platform places its window: machine/pc-layout.ts). */
export function createVirtioBlkMmio(blk: VirtioBlkOptions, transport: VirtioMmioOptions): VirtioMmioTransport {
  return new VirtioMmioTransport(new VirtioBlk(blk), transport);
}
