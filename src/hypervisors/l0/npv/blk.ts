/**
 * The mediated virtio-blk data path (BLK_SETUP / BLK_TEARDOWN, docs/npv-abi.md §4 "Mediated
 * block I/O"). L1 emulates the virtio-mmio registers; once set up, L0 handles L2's writes to
 * QueueNotify itself: it walks the split ring through L2's map (never L1's page tables), checks
 * every buffer is mapped with the permission the device needs, performs the request on the
 * backend with nestlab's VirtioBlk model, writes the used ring and queues the completion vector.
 *
 * A buffer in an unmapped (or wrongly protected) L2 page fails that request with IOERR; a
 * malformed ring (bad index, loop, ring area unmapped, missing header) stops the device and
 * RUN returns BLK_ERROR to L1.
 */
import type { DmaMemory, MmioHandler } from "../../../cpu/ports.js";
import type { BlockBackend } from "../../../devices/block-backend.js";
import { VIRTIO_BLK_S_IOERR, VirtioBlk } from "../../../devices/virtio-blk.js";
import {
  VIRTIO_MMIO_INTERRUPT_ACK,
  VIRTIO_MMIO_INTERRUPT_STATUS,
  VIRTIO_MMIO_QUEUE_NOTIFY,
} from "../../../devices/virtio-mmio.js";
import { type Descriptor, GuestMemoryView, SplitVirtqueue, VirtqueueError } from "../../../devices/virtqueue.js";
import type { PhysicalMemory } from "../../../mmu/phys.js";
import { NPV_MAX_L2_GPA_BITS, NPV_PERM_R, NPV_PERM_W } from "../../npv-abi.js";
import type { Vm } from "../vm.js";
import { entryL1Pfn, entryPerms, type L2Map } from "./l2-map.js";

/** L2 guest-physical memory as the mediated device reaches it: through the L2 map only. */
export class L2Dma implements DmaMemory {
  readonly size = 2 ** NPV_MAX_L2_GPA_BITS;

  constructor(
    private readonly map: L2Map,
    private readonly l1vm: Vm,
    private readonly hostMem: PhysicalMemory,
  ) {}

  /** Host-physical address of L2 GPA `a` if its page is mapped with `perm`, else -1. */
  private host(a: number, perm: number): number {
    const entry = this.map.get(Math.floor(a / 4096));
    if (entry === 0 || (entryPerms(entry) & perm) !== perm) return -1;
    const l1 = entryL1Pfn(entry) * 4096 + (a % 4096);
    return this.l1vm.memslots.translate(l1);
  }

  /** True when [addr, addr + len) is mapped with `perm` throughout. */
  accessible(addr: number, len: number, perm: number): boolean {
    if (!Number.isSafeInteger(addr) || addr < 0 || addr + len > this.size) return false;
    for (let a = addr - (addr % 4096); a < addr + len; a += 4096) if (this.host(a, perm) < 0) return false;
    return true;
  }

  readBytes(addr: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; ) {
      const a = addr + i;
      const n = Math.min(4096 - (a % 4096), length - i);
      const h = this.host(a, NPV_PERM_R);
      if (h < 0) throw new VirtqueueError(`L2 0x${a.toString(16)} is not mapped readable`);
      out.set(this.hostMem.readBytes(h, n), i);
      i += n;
    }
    return out;
  }

  writeBytes(addr: number, bytes: Uint8Array): void {
    // Check the whole range first so a failing write changes nothing.
    if (!this.accessible(addr, bytes.length, NPV_PERM_W))
      throw new VirtqueueError(`L2 0x${addr.toString(16)} is not mapped writable`);
    for (let i = 0; i < bytes.length; ) {
      const a = addr + i;
      const n = Math.min(4096 - (a % 4096), bytes.length - i);
      this.hostMem.writeBytes(this.host(a, NPV_PERM_W), bytes.subarray(i, i + n));
      i += n;
    }
  }
}

export interface BlkSetup {
  window: number;
  queueSize: number;
  backendId: number;
  desc: number;
  avail: number;
  used: number;
  vector: number;
  /** Deliver the vector as ExtINT (an 8259's, bypassing L2's LAPIC) rather than through the LAPIC. */
  extInt: boolean;
  featuresLo: number;
  featuresHi: number;
}

export interface NotifyResult {
  requests: number;
  ioErrors: number;
  /** The device met a malformed queue and stopped. */
  error: string | null;
  /** Inject the completion vector. */
  interrupt: boolean;
}

export class MediatedBlk {
  readonly device: VirtioBlk;
  readonly queue: SplitVirtqueue;
  readonly view: GuestMemoryView;
  readonly dma: L2Dma;
  stopped = false;
  requests = 0;

  constructor(
    readonly setup: BlkSetup,
    backend: BlockBackend,
    map: L2Map,
    l1vm: Vm,
    hostMem: PhysicalMemory,
  ) {
    this.device = new VirtioBlk({ backend, queueSize: setup.queueSize });
    this.dma = new L2Dma(map, l1vm, hostMem);
    this.view = new GuestMemoryView(this.dma, this.dma.size);
    this.queue = new SplitVirtqueue(0, 1024);
    this.queue.size = setup.queueSize;
    this.queue.descAddr = setup.desc;
    this.queue.driverAddr = setup.avail;
    this.queue.deviceAddr = setup.used;
    this.queue.ready = true;
    // Continue from where the used ring is (L1 may have completed requests before setup).
    try {
      const idx = this.view.read16(setup.used + 2);
      this.queue.usedIdx = idx;
      this.queue.lastAvailIdx = idx;
    } catch {
      // Not mapped yet: start at 0.
    }
  }

  get notifyGpa(): number {
    return this.setup.window + VIRTIO_MMIO_QUEUE_NOTIFY;
  }

  /**
   * virtio-mmio InterruptStatus (+0x60): bit 0 "used buffer notification". L0 owns it with the
   * data path, so a driver that polls and acknowledges completions never reaches L1 per request.
   */
  interruptStatus = 0;

  /** An MMIO handler for the device's window page: InterruptStatus reads, InterruptACK (+0x64) writes. */
  isrHandler(pageOffsetOfWindow: number): MmioHandler {
    return {
      mmioRead: (offset: number) =>
        offset - pageOffsetOfWindow === VIRTIO_MMIO_INTERRUPT_STATUS ? this.interruptStatus : 0,
      mmioWrite: (offset: number, _size: 1 | 2 | 4 | 8, value: number) => {
        if (offset - pageOffsetOfWindow === VIRTIO_MMIO_INTERRUPT_ACK) this.interruptStatus &= ~value;
      },
    };
  }

  /** Process the available ring (one QueueNotify). Never throws. */
  notify(onRequest: () => void): NotifyResult {
    const res: NotifyResult = { requests: 0, ioErrors: 0, error: null, interrupt: false };
    if (this.stopped) return res;
    const q = this.queue;
    const view = this.view;
    const features: [number, number] = [this.setup.featuresLo >>> 0, this.setup.featuresHi >>> 0];
    const allowIndirect = (features[0] & (1 << 28)) !== 0;
    try {
      const bad = q.validate(view);
      if (bad !== null) throw new VirtqueueError(bad);
      for (let guard = 0; guard <= q.size; guard++) {
        const head = q.pop(view);
        if (head === null) break;
        const chain = q.readChain(view, head, allowIndirect);
        onRequest();
        res.requests++;
        this.requests++;
        if (!this.buffersOk(chain.readable, NPV_PERM_R) || !this.buffersOk(chain.writable, NPV_PERM_W)) {
          // A buffer L1 has not mapped for L2 (or not with the needed permission): IOERR.
          res.ioErrors++;
          const status = this.lastByte(chain.writable);
          let len = 0;
          if (status >= 0 && this.dma.accessible(status, 1, NPV_PERM_W)) {
            this.dma.writeBytes(status, new Uint8Array([VIRTIO_BLK_S_IOERR]));
            len = 1;
          }
          q.pushUsed(view, head, len);
          continue;
        }
        const written = this.device.handleChain(0, chain, view, features);
        q.pushUsed(view, head, written);
      }
      if (res.requests > 0) this.interruptStatus |= 1;
      if (res.requests > 0 && q.wantsInterrupt(view)) res.interrupt = true;
    } catch (x) {
      this.stopped = true;
      res.error = x instanceof Error ? x.message : String(x);
    }
    return res;
  }

  private buffersOk(descs: Descriptor[], perm: number): boolean {
    for (const d of descs) if (d.len > 0 && !this.dma.accessible(d.addr, d.len, perm)) return false;
    return true;
  }

  private lastByte(descs: Descriptor[]): number {
    for (let k = descs.length - 1; k >= 0; k--) if (descs[k].len > 0) return descs[k].addr + descs[k].len - 1;
    return -1;
  }
}
