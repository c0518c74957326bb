/**
 * QEMU firmware configuration device (fw_cfg), traditional port-I/O interface only.
 *
 * Followed: QEMU's docs/specs/fw_cfg.rst and hw/nvram/fw_cfg.c (read for reference, not copied).
 * On x86 the selector register is a 16-bit port at 0x510 and the data register an 8-bit port at
 * 0x511. Writing a key to the selector selects an item and rewinds its offset to 0; each byte read
 * from the data port returns the next byte of the item, and 0 once past its end or for a key with
 * no item. As in QEMU's combined x86 region, a 1-byte read at either port reads data; a 16-bit write
 * (at 0x510) selects; 1-byte writes are data writes, which modern QEMU ignores. Other access sizes
 * are rejected (reads all-ones, writes dropped). Bit 14 of the key (write channel) is ignored when
 * selecting; bit 15 (arch-local) selects a separate item space, as in QEMU (keys 0x8000+n are
 * distinct items, empty unless added with `addItem`).
 *
 * Left out: the DMA interface (port 0x514; the ID item reports only bit 0, "traditional interface"),
 * writable items, and the kernel/initrd items (the machine can add them with `addItem`).
 */
import { allOnes, type PortRegistrar } from "./port-io.js";

export const FW_CFG_PORT_SEL = 0x510;
export const FW_CFG_PORT_DATA = 0x511;

export const FW_CFG_SIGNATURE = 0x0000;
export const FW_CFG_ID = 0x0001;
export const FW_CFG_UUID = 0x0002;
export const FW_CFG_RAM_SIZE = 0x0003;
export const FW_CFG_NOGRAPHIC = 0x0004;
export const FW_CFG_NB_CPUS = 0x0005;
export const FW_CFG_MAX_CPUS = 0x000f;
export const FW_CFG_FILE_DIR = 0x0019;
export const FW_CFG_FILE_FIRST = 0x0020;
const FW_CFG_WRITE_CHANNEL = 0x4000;
export const FW_CFG_ARCH_LOCAL = 0x8000;
const FW_CFG_MAX_FILE_NAME = 56;

export interface FwCfgOptions {
  /** Guest RAM size in bytes (item 0x0003, u64 LE). */
  ramSize: number;
  /** Number of CPUs (items 0x0005 and 0x000F, u16 LE). Default 1. */
  cpus?: number;
  base?: number;
}

function u16le(v: number): Uint8Array {
  return new Uint8Array([v & 0xff, (v >>> 8) & 0xff]);
}
function u32le(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}
function u64le(v: number): Uint8Array {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, (v % 0x100000000) >>> 0, true);
  dv.setUint32(4, Math.floor(v / 0x100000000) >>> 0, true);
  return b;
}

export class FwCfg {
  readonly base: number;
  private readonly items = new Map<number, Uint8Array>();
  private readonly files: { name: string; key: number }[] = [];
  private current: Uint8Array | null = null;
  private offset = 0;
  private selected = 0;
  /** Data-port bytes read. */
  bytesRead = 0;

  constructor(opts: FwCfgOptions) {
    this.base = opts.base ?? FW_CFG_PORT_SEL;
    const cpus = opts.cpus ?? 1;
    this.items.set(FW_CFG_SIGNATURE, new TextEncoder().encode("QEMU"));
    this.items.set(FW_CFG_ID, u32le(1)); // bit 0: traditional interface; no DMA
    this.items.set(FW_CFG_UUID, new Uint8Array(16));
    this.items.set(FW_CFG_RAM_SIZE, u64le(opts.ramSize));
    this.items.set(FW_CFG_NOGRAPHIC, u16le(1));
    this.items.set(FW_CFG_NB_CPUS, u16le(cpus));
    this.items.set(FW_CFG_MAX_CPUS, u16le(cpus));
    this.rebuildDirectory();
    this.select(0);
  }

  /** Claim the selector and data ports on `bus`. */
  attach(bus: PortRegistrar): void {
    bus.register(this.base, 2, this, "fw_cfg");
  }

  /** Add or replace an item under `key` (e.g. kernel command line items). */
  addItem(key: number, data: Uint8Array): void {
    this.items.set(key & 0xffff & ~FW_CFG_WRITE_CHANNEL, data.slice());
  }

  /** Add a named file (listed in the 0x0019 directory); returns its selector key. */
  addFile(name: string, data: Uint8Array): number {
    const nameBytes = new TextEncoder().encode(name);
    if (nameBytes.length >= FW_CFG_MAX_FILE_NAME) throw new RangeError(`fw_cfg file name too long: ${name}`);
    const existing = this.files.find((f) => f.name === name);
    const key = existing?.key ?? FW_CFG_FILE_FIRST + this.files.length;
    if (existing === undefined) this.files.push({ name, key });
    this.items.set(key, data.slice());
    this.rebuildDirectory();
    return key;
  }

  /** Directory: u32 BE count, then per file u32 BE size, u16 BE select, u16 reserved, char name[56]. */
  private rebuildDirectory(): void {
    const sorted = [...this.files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const dir = new Uint8Array(4 + 64 * sorted.length);
    const dv = new DataView(dir.buffer);
    dv.setUint32(0, sorted.length, false);
    sorted.forEach((f, i) => {
      const o = 4 + 64 * i;
      dv.setUint32(o, this.items.get(f.key)?.length ?? 0, false);
      dv.setUint16(o + 4, f.key, false);
      dir.set(new TextEncoder().encode(f.name), o + 8);
    });
    this.items.set(FW_CFG_FILE_DIR, dir);
  }

  /** The selected key (as masked) and the read offset within it. */
  get selector(): number {
    return this.selected;
  }
  get readOffset(): number {
    return this.offset;
  }

  select(key: number): void {
    const k = key & 0xffff & ~FW_CFG_WRITE_CHANNEL;
    this.selected = k;
    this.current = this.items.get(k) ?? null;
    this.offset = 0;
  }

  /** One data-port byte. */
  readData(): number {
    this.bytesRead++;
    const c = this.current;
    if (c === null || this.offset >= c.length) return 0;
    return c[this.offset++];
  }

  portIn(_port: number, size: 1 | 2 | 4): number {
    if (size !== 1) return allOnes(size);
    return this.readData();
  }

  portOut(port: number, size: 1 | 2 | 4, value: number): void {
    if (size === 2 && port === this.base) this.select(value & 0xffff);
    // 1-byte data writes are ignored (no writable items); other sizes are rejected.
  }
}
