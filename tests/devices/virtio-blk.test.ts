import { describe, expect, it } from "vitest";
import type { DmaMemory } from "../../src/cpu/ports.js";
import { MemoryBlockBackend } from "../../src/devices/block-backend.js";
import {
  createVirtioBlkMmio,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  type VirtioBlk,
} from "../../src/devices/virtio-blk.js";
import type { VirtioMmioTransport } from "../../src/devices/virtio-mmio.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";

const BASE = 0xfeb00000;
const QSIZE = 8;
const DESC = 0x1000;
const AVAIL = 0x2000;
const USED = 0x3000;
const HDR = 0x4000;
const DATA = 0x5000;
const STATUS = 0x8000;
const NEXT = 1;
const WRITE = 2;
const INDIRECT = 4;

interface Desc {
  addr: number;
  len: number;
  flags: number;
  next?: number;
}

/** A minimal virtio-mmio driver that talks to the device only through guest-physical MMIO and RAM. */
class Driver {
  availIdx = 0;
  irqs: boolean[] = [];
  constructor(
    readonly mem: PhysicalMemory,
    readonly dev: VirtioMmioTransport,
  ) {}
  r(off: number): number {
    return this.mem.read(BASE + off, 4);
  }
  w(off: number, v: number): void {
    this.mem.write(BASE + off, 4, v);
  }
  /** Spec 3.1.1 initialisation; returns the status read back after FEATURES_OK. */
  init(features: [number, number] = [1 << 9, 1]): number {
    this.w(0x70, 0);
    this.w(0x70, 1);
    this.w(0x70, 1 | 2);
    this.w(0x24, 0);
    this.w(0x20, features[0]);
    this.w(0x24, 1);
    this.w(0x20, features[1]);
    this.w(0x70, 1 | 2 | 8);
    const st = this.r(0x70);
    if ((st & 8) === 0) return st;
    this.w(0x30, 0);
    this.w(0x38, QSIZE);
    this.w(0x80, DESC);
    this.w(0x84, 0);
    this.w(0x90, AVAIL);
    this.w(0x94, 0);
    this.w(0xa0, USED);
    this.w(0xa4, 0);
    this.w(0x44, 1);
    this.w(0x70, 1 | 2 | 8 | 4);
    return st;
  }
  writeDescs(table: number, descs: Desc[]): void {
    descs.forEach((d, i) => {
      this.mem.write64(table + 16 * i, d.addr, 0);
      this.mem.write(table + 16 * i + 8, 4, d.len);
      const chained = table === DESC && i < descs.length - 1 && d.next === undefined;
      this.mem.write(table + 16 * i + 12, 2, d.flags | (chained ? NEXT : 0));
      this.mem.write(table + 16 * i + 14, 2, d.next ?? i + 1);
    });
  }
  /** Put `descs` at descriptor 0.., publish head 0, notify. */
  submit(descs: Desc[], notify = true): void {
    this.writeDescs(DESC, descs);
    this.mem.write(AVAIL + 4 + 2 * (this.availIdx % QSIZE), 2, 0);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.mem.write(AVAIL + 2, 2, this.availIdx);
    if (notify) this.w(0x50, 0);
  }
  header(type: number, sector: number): void {
    this.mem.write(HDR, 4, type);
    this.mem.write(HDR + 4, 4, 0);
    this.mem.write64(HDR + 8, sector % 2 ** 32, Math.floor(sector / 2 ** 32));
  }
  request(type: number, sector: number, data: Desc[]): void {
    this.header(type, sector);
    this.mem.write(STATUS, 1, 0xee);
    this.submit([{ addr: HDR, len: 16, flags: 0 }, ...data, { addr: STATUS, len: 1, flags: WRITE }]);
  }
  usedIdx(): number {
    return this.mem.read(USED + 2, 2);
  }
  usedElem(i: number): [number, number] {
    return [this.mem.read(USED + 4 + 8 * (i % QSIZE), 4), this.mem.read(USED + 8 + 8 * (i % QSIZE), 4)];
  }
  status(): number {
    return this.mem.read(STATUS, 1);
  }
}

function setup(sectors = 64, dma?: (mem: PhysicalMemory) => { dma: DmaMemory; limit?: number }) {
  const mem = new PhysicalMemory(0x100000);
  const backend = new MemoryBlockBackend(sectors * 512);
  const irqs: boolean[] = [];
  const view = dma ? dma(mem) : { dma: mem };
  const dev = createVirtioBlkMmio(
    { backend, serial: "NESTLAB-DISK-0" },
    { dma: view.dma, dmaLimit: view.limit, setIrq: (l) => irqs.push(l) },
  );
  mem.addMmio(BASE, 0x200, dev);
  const drv = new Driver(mem, dev);
  return { mem, backend, dev, drv, irqs, blk: dev.device as VirtioBlk };
}

describe("virtio-mmio transport", () => {
  it("identifies as a modern virtio block device", () => {
    const { drv } = setup();
    expect(drv.r(0x000)).toBe(0x74726976);
    expect(drv.r(0x004)).toBe(2);
    expect(drv.r(0x008)).toBe(2);
    expect(drv.r(0x00c)).toBe(0x554d4551);
    drv.w(0x14, 0);
    expect(drv.r(0x010)).toBe((1 << 2) | (1 << 6) | (1 << 9) | (1 << 28));
    drv.w(0x14, 1);
    expect(drv.r(0x010)).toBe(1); // VIRTIO_F_VERSION_1
    drv.w(0x14, 2);
    expect(drv.r(0x010)).toBe(0);
    drv.w(0x30, 0);
    expect(drv.r(0x034)).toBe(256);
    drv.w(0x30, 1);
    expect(drv.r(0x034)).toBe(0); // no queue 1
    expect(drv.r(0x0b0)).toBe(0xffffffff); // no shared memory
    expect(drv.r(0x0fc)).toBe(0);
  });

  it("exposes virtio_blk_config at 0x100", () => {
    const { mem } = setup(0x12345);
    expect(mem.read(BASE + 0x100, 4)).toBe(0x12345);
    expect(mem.read(BASE + 0x104, 4)).toBe(0);
    expect(mem.read(BASE + 0x10c, 4)).toBe(254); // seg_max
    expect(mem.read(BASE + 0x114, 4)).toBe(512); // blk_size
    expect(mem.read(BASE + 0x100, 1)).toBe(0x45);
    expect(mem.read(BASE + 0x101, 2)).toBe(0x0123);
    expect(mem.read(BASE + 0x1f0, 4)).toBe(0);
  });

  it("negotiates features: FEATURES_OK needs VERSION_1 and only offered bits", () => {
    expect(setup().drv.init([1 << 9, 0]) & 8).toBe(0); // no VERSION_1
    expect(setup().drv.init([(1 << 9) | (1 << 29), 1]) & 8).toBe(0); // EVENT_IDX not offered
    const { drv, dev } = setup();
    expect(drv.init([1 << 9, 1])).toBe(0x0b);
    expect(drv.r(0x70)).toBe(0x0f);
    expect(dev.negotiatedFeatures).toEqual([1 << 9, 1]);
    expect(drv.r(0x44)).toBe(1);
    drv.w(0x24, 0);
    drv.w(0x20, 0xffff); // ignored after FEATURES_OK
    expect(dev.negotiatedFeatures).toEqual([1 << 9, 1]);
  });

  it("keeps a queue not-ready when its size or rings are bad", () => {
    const { drv, dev } = setup();
    drv.init();
    drv.w(0x70, 0);
    drv.w(0x70, 1 | 2 | 8);
    drv.w(0x30, 0);
    drv.w(0x38, 6); // not a power of two
    drv.w(0x80, DESC);
    drv.w(0x90, AVAIL);
    drv.w(0xa0, USED);
    drv.w(0x44, 1);
    expect(drv.r(0x44)).toBe(0);
    drv.w(0x38, 8);
    drv.w(0xa0, 0xfffffff0); // used ring outside RAM
    drv.w(0x44, 1);
    expect(drv.r(0x44)).toBe(0);
    expect(dev.lastError).toContain("used ring");
  });

  it("ignores non-32-bit accesses to control registers", () => {
    const { mem, dev } = setup();
    expect(mem.read(BASE, 2)).toBe(0);
    mem.write(BASE + 0x70, 1, 1);
    expect(dev.status).toBe(0);
    expect(dev.badAccesses).toBe(2);
  });
});

describe("virtio-blk requests", () => {
  it("writes sectors and reads them back, completing through the used ring with an interrupt", () => {
    const { mem, drv, backend, dev, irqs, blk } = setup();
    drv.init();
    const pattern = new Uint8Array(1024).map((_, i) => (i * 7 + 3) & 0xff);
    mem.writeBytes(DATA, pattern);
    drv.request(VIRTIO_BLK_T_OUT, 2, [{ addr: DATA, len: 1024, flags: 0 }]);
    expect(drv.status()).toBe(VIRTIO_BLK_S_OK);
    expect(drv.usedIdx()).toBe(1);
    expect(drv.usedElem(0)).toEqual([0, 1]); // head 0, 1 byte written (status)
    expect(backend.data.subarray(1024, 2048)).toEqual(pattern);
    expect(drv.r(0x60)).toBe(1);
    expect(irqs).toEqual([true]);
    drv.w(0x64, 1);
    expect(drv.r(0x60)).toBe(0);
    expect(irqs).toEqual([true, false]);

    // Read sector 2..3 back through two writable data descriptors of odd sizes.
    drv.request(VIRTIO_BLK_T_IN, 2, [
      { addr: 0x6000, len: 100, flags: WRITE },
      { addr: 0x7000, len: 924, flags: WRITE },
    ]);
    expect(drv.status()).toBe(VIRTIO_BLK_S_OK);
    expect(drv.usedElem(1)).toEqual([0, 1025]);
    const back = new Uint8Array(1024);
    back.set(mem.readBytes(0x6000, 100), 0);
    back.set(mem.readBytes(0x7000, 924), 100);
    expect(back).toEqual(pattern);
    expect(blk.stats).toMatchObject({ requests: 2, reads: 1, writes: 1, bytesRead: 1024, bytesWritten: 1024 });
    expect(dev.notifications).toBe(2);
    expect(dev.chainsProcessed).toBe(2);
  });

  it("handles a header and data sharing one descriptor, FLUSH and GET_ID", () => {
    const { mem, drv, backend } = setup();
    drv.init();
    drv.header(VIRTIO_BLK_T_OUT, 0);
    mem.writeBytes(HDR + 16, new Uint8Array(512).fill(0xab));
    drv.submit([
      { addr: HDR, len: 16 + 512, flags: 0 },
      { addr: STATUS, len: 1, flags: WRITE },
    ]);
    expect(drv.status()).toBe(VIRTIO_BLK_S_OK);
    expect(backend.data[511]).toBe(0xab);
    drv.request(VIRTIO_BLK_T_FLUSH, 0, []);
    expect(drv.status()).toBe(VIRTIO_BLK_S_OK);
    expect(backend.flushes).toBe(1);
    mem.writeBytes(DATA, new Uint8Array(32).fill(0xff));
    drv.request(VIRTIO_BLK_T_GET_ID, 0, [{ addr: DATA, len: 32, flags: WRITE }]);
    expect(drv.status()).toBe(VIRTIO_BLK_S_OK);
    expect(new TextDecoder().decode(mem.readBytes(DATA, 14))).toBe("NESTLAB-DISK-0");
    expect(Array.from(mem.readBytes(DATA + 14, 8))).toEqual([0, 0, 0, 0, 0, 0, 0xff, 0xff]);
    expect(drv.usedElem(2)).toEqual([0, 21]);
  });

  it("fails out-of-range and partial-sector transfers with IOERR and unknown types with UNSUPP", () => {
    const { drv, blk, backend } = setup(64);
    drv.init();
    drv.request(VIRTIO_BLK_T_IN, 64, [{ addr: DATA, len: 512, flags: WRITE }]);
    expect(drv.status()).toBe(VIRTIO_BLK_S_IOERR);
    expect(drv.usedElem(0)).toEqual([0, 1]);
    drv.request(VIRTIO_BLK_T_OUT, 63, [{ addr: DATA, len: 1024, flags: 0 }]);
    expect(drv.status()).toBe(VIRTIO_BLK_S_IOERR);
    drv.request(VIRTIO_BLK_T_OUT, 0, [{ addr: DATA, len: 100, flags: 0 }]);
    expect(drv.status()).toBe(VIRTIO_BLK_S_IOERR);
    drv.request(VIRTIO_BLK_T_IN, 2 ** 60, [{ addr: DATA, len: 512, flags: WRITE }]);
    expect(drv.status()).toBe(VIRTIO_BLK_S_IOERR);
    drv.request(11 /* DISCARD */, 0, [{ addr: DATA, len: 16, flags: 0 }]);
    expect(drv.status()).toBe(VIRTIO_BLK_S_UNSUPP);
    expect(blk.stats.ioErrors).toBe(4);
    expect(blk.stats.unsupported).toBe(1);
    expect(backend.data.every((b) => b === 0)).toBe(true);
    expect(drv.r(0x70) & 0x40).toBe(0); // request errors do not break the device
  });

  it("follows indirect descriptor tables when negotiated", () => {
    const { mem, drv, backend } = setup();
    drv.init([(1 << 9) | (1 << 28), 1]);
    backend.data.fill(0x5a, 512 * 5, 512 * 6);
    drv.header(VIRTIO_BLK_T_IN, 5);
    const table = 0x9000;
    drv.writeDescs(table, [
      { addr: HDR, len: 16, flags: NEXT, next: 1 },
      { addr: DATA, len: 512, flags: WRITE | NEXT, next: 2 },
      { addr: STATUS, len: 1, flags: WRITE, next: 0 },
    ]);
    drv.submit([{ addr: table, len: 48, flags: INDIRECT }]);
    expect(drv.status()).toBe(VIRTIO_BLK_S_OK);
    expect(mem.read(DATA + 511, 1)).toBe(0x5a);
    expect(drv.usedElem(0)).toEqual([0, 513]);
  });

  it("suppresses the interrupt when the driver sets VIRTQ_AVAIL_F_NO_INTERRUPT", () => {
    const { mem, drv, irqs } = setup();
    drv.init();
    mem.write(AVAIL, 2, 1);
    drv.request(VIRTIO_BLK_T_FLUSH, 0, []);
    expect(drv.usedIdx()).toBe(1);
    expect(drv.r(0x60)).toBe(0);
    expect(irqs).toEqual([]);
  });

  it("does nothing before DRIVER_OK, and lets onNotify take over the data path", () => {
    const { drv, dev } = setup();
    drv.init();
    drv.w(0x70, 1 | 2 | 8); // drop DRIVER_OK
    drv.request(VIRTIO_BLK_T_FLUSH, 0, []);
    expect(drv.usedIdx()).toBe(0);
    drv.w(0x70, 1 | 2 | 8 | 4);
    const seen: number[] = [];
    dev.onNotify = (q) => {
      seen.push(q);
      return true;
    };
    drv.w(0x50, 0);
    expect(seen).toEqual([0]);
    expect(drv.usedIdx()).toBe(0);
    expect(dev.processQueue(0)).toBe(1);
    expect(drv.usedIdx()).toBe(1);
    expect(drv.status()).toBe(VIRTIO_BLK_S_OK);
  });

  it("reaches guest memory only through the DmaMemory it was given (an offset L2 view)", () => {
    // The "L2" guest-physical address X lives at L1 address X + 0x80000, and the view is 0x40000 long.
    const OFF = 0x80000;
    const s = setup(64, (mem) => ({
      dma: {
        readBytes: (a, n) => mem.readBytes(a + OFF, n),
        writeBytes: (a, b) => mem.writeBytes(a + OFF, b),
      },
      limit: 0x40000,
    }));
    const l2 = {
      read: (a: number, n: 1 | 2 | 4) => s.mem.read(a + OFF, n),
      write: (a: number, n: 1 | 2 | 4, v: number) => s.mem.write(a + OFF, n, v),
      write64: (a: number, lo: number, hi: number) => s.mem.write64(a + OFF, lo, hi),
      writeBytes: (a: number, b: Uint8Array) => s.mem.writeBytes(a + OFF, b),
      readBytes: (a: number, n: number) => s.mem.readBytes(a + OFF, n),
    };
    // The driver writes its rings through the L2 view; MMIO still goes to the transport.
    const drv = new Driver(
      Object.assign(Object.create(s.mem), {
        ...l2,
        read: (a: number, n: 1 | 2 | 4) => (a >= BASE ? s.mem.read(a, n) : l2.read(a, n)),
        write: (a: number, n: 1 | 2 | 4, v: number) => (a >= BASE ? s.mem.write(a, n, v) : l2.write(a, n, v)),
      }) as PhysicalMemory,
      s.dev,
    );
    drv.init();
    s.backend.data.fill(0x77, 0, 512);
    drv.request(VIRTIO_BLK_T_IN, 0, [{ addr: DATA, len: 512, flags: WRITE }]);
    expect(drv.status()).toBe(VIRTIO_BLK_S_OK);
    expect(s.mem.read(DATA + OFF, 1)).toBe(0x77);
    expect(s.mem.read(DATA, 1)).toBe(0); // the identity address was not touched
    // An address inside L1 RAM but outside the L2 window is refused.
    drv.request(VIRTIO_BLK_T_IN, 0, [{ addr: 0x50000, len: 512, flags: WRITE }]);
    expect(drv.r(0x70) & 0x40).toBe(0x40);
    expect(s.mem.read(0x50000 + OFF, 1)).toBe(0);
  });
});

describe("virtio-blk read-only disks and config changes", () => {
  it("offers VIRTIO_BLK_F_RO and fails writes with IOERR", () => {
    const mem = new PhysicalMemory(0x100000);
    const backend = new MemoryBlockBackend(new Uint8Array(4096).fill(3), { readOnly: true });
    const dev = createVirtioBlkMmio({ backend }, { dma: mem });
    mem.addMmio(BASE, 0x200, dev);
    const drv = new Driver(mem, dev);
    drv.w(0x14, 0);
    expect(drv.r(0x10) & (1 << 5)).toBe(1 << 5);
    drv.init([1 << 5, 1]);
    drv.request(VIRTIO_BLK_T_OUT, 0, [{ addr: DATA, len: 512, flags: 0 }]);
    expect(drv.status()).toBe(VIRTIO_BLK_S_IOERR);
    expect(backend.data[0]).toBe(3);
    drv.request(VIRTIO_BLK_T_IN, 7, [{ addr: DATA, len: 512, flags: WRITE }]);
    expect(drv.status()).toBe(VIRTIO_BLK_S_OK);
    expect(mem.read(DATA, 1)).toBe(3);
  });

  it("bumps ConfigGeneration and raises interrupt bit 1 on a configuration change", () => {
    const { drv, dev, irqs } = setup();
    drv.init();
    dev.configChanged();
    expect(drv.r(0xfc)).toBe(1);
    expect(drv.r(0x60)).toBe(2);
    expect(irqs).toEqual([true]);
  });
});

describe("virtio-blk malformed input", () => {
  it("turns a descriptor loop into DEVICE_NEEDS_RESET without throwing", () => {
    const { drv, dev, irqs } = setup();
    drv.init();
    drv.header(VIRTIO_BLK_T_IN, 0);
    expect(() =>
      drv.submit([
        { addr: HDR, len: 16, flags: NEXT, next: 1 },
        { addr: DATA, len: 512, flags: NEXT, next: 0 },
      ]),
    ).not.toThrow();
    expect(drv.r(0x70)).toBe(0x4f);
    expect(drv.r(0x60)).toBe(2); // configuration-change interrupt
    expect(irqs).toEqual([true]);
    expect(dev.lastError).toContain("loop");
    expect(drv.usedIdx()).toBe(0);
    // The device stays stopped until reset; a reset brings it back.
    drv.request(VIRTIO_BLK_T_FLUSH, 0, []);
    expect(drv.usedIdx()).toBe(0);
    drv.availIdx = 0;
    drv.mem.write(AVAIL + 2, 2, 0);
    drv.init();
    expect(drv.r(0x70)).toBe(0x0f);
    drv.request(VIRTIO_BLK_T_FLUSH, 0, []);
    expect(drv.status()).toBe(VIRTIO_BLK_S_OK);
  });

  it("refuses buffers outside guest memory and leaves memory untouched", () => {
    const { drv, dev, backend } = setup();
    drv.init();
    backend.data.fill(0x11);
    drv.request(VIRTIO_BLK_T_IN, 0, [{ addr: 0x000ff000, len: 0x2000, flags: WRITE }]);
    expect(drv.r(0x70) & 0x40).toBe(0x40);
    expect(dev.lastError).toContain("outside guest memory");
    expect(drv.mem.read(0x000ff000, 4)).toBe(0);
    expect(drv.status()).toBe(0xee); // status byte never written
  });

  it("rejects bad heads, runaway available indices, short headers and bad indirect tables", () => {
    const cases: [string, (d: Driver) => void][] = [
      [
        "head",
        (d) => {
          d.mem.write(AVAIL + 4, 2, 9);
          d.mem.write(AVAIL + 2, 2, 1);
          d.w(0x50, 0);
        },
      ],
      [
        "available index",
        (d) => {
          d.mem.write(AVAIL + 2, 2, 100);
          d.w(0x50, 0);
        },
      ],
      [
        "missing header",
        (d) => {
          d.submit([
            { addr: HDR, len: 8, flags: 0 },
            { addr: STATUS, len: 1, flags: WRITE },
          ]);
        },
      ],
      [
        "readable descriptor after",
        (d) => {
          d.header(VIRTIO_BLK_T_OUT, 0);
          d.submit([
            { addr: STATUS, len: 1, flags: WRITE },
            { addr: HDR, len: 16, flags: 0 },
          ]);
        },
      ],
      [
        "indirect",
        (d) => {
          d.submit([{ addr: 0x9000, len: 48, flags: INDIRECT }]); // not negotiated
        },
      ],
    ];
    for (const [what, act] of cases) {
      const { drv, dev } = setup();
      drv.init();
      expect(() => act(drv)).not.toThrow();
      expect(drv.r(0x70) & 0x40, what).toBe(0x40);
      expect(dev.lastError, what).toContain(what);
    }
  });

  it("bounds indirect tables: bad length and a loop inside the table", () => {
    for (const [len, loop] of [
      [40, false],
      [32, true],
    ] as const) {
      const { drv } = setup();
      drv.init([(1 << 9) | (1 << 28), 1]);
      drv.writeDescs(0x9000, [
        { addr: HDR, len: 16, flags: NEXT, next: 1 },
        { addr: STATUS, len: 1, flags: WRITE | (loop ? NEXT : 0), next: loop ? 1 : 0 },
      ]);
      drv.submit([{ addr: 0x9000, len, flags: INDIRECT }]);
      expect(drv.r(0x70) & 0x40).toBe(0x40);
    }
  });
});
