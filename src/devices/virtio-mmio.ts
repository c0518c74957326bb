/**
 * virtio-mmio transport, version 2 ("modern", no legacy registers), device side.
 *
 * Followed: OASIS virtio 1.1/1.2 spec section 4.2 "Virtio Over MMIO" (register layout table 4.1,
 * device requirements 4.2.2.1: reset on Status 0, FEATURES_OK only for an acceptable feature set,
 * DEVICE_NEEDS_RESET with a configuration-change interrupt when the device hits an error) and
 * section 2.1 device status bits; QEMU's hw/virtio/virtio-mmio.c for the corner cases (control
 * registers need aligned 32-bit accesses, others are logged and ignored; QueueNumMax reads 0 for a
 * queue that does not exist; VendorID "QEMU"). Read for reference, not copied.
 *
 * Design: the transport owns the register file, the queues and the interrupt line; a
 * `VirtioDeviceModel` (e.g. VirtioBlk) supplies the device ID, features, config space and request
 * handling. `processQueue(q)` is public so that whoever runs the data path (the device's own notify
 * handler, or later a hypervisor) can drive it; `onNotify` lets that someone intercept QueueNotify.
 * Guest memory is reached only through `dma` (a bounded view of a DmaMemory), which can be swapped.
 */
import type { DmaMemory, MmioHandler } from "../cpu/ports.js";
import { type DescriptorChain, GuestMemoryView, SplitVirtqueue } from "./virtqueue.js";

export const VIRTIO_MMIO_MAGIC = 0x74726976; // "virt"
export const VIRTIO_MMIO_VERSION = 2;
export const VIRTIO_MMIO_VENDOR_QEMU = 0x554d4551; // "QEMU"
export const VIRTIO_MMIO_SIZE = 0x200;

// Register offsets (spec table 4.1).
export const VIRTIO_MMIO_MAGIC_VALUE = 0x000;
export const VIRTIO_MMIO_VERSION_REG = 0x004;
export const VIRTIO_MMIO_DEVICE_ID = 0x008;
export const VIRTIO_MMIO_VENDOR_ID = 0x00c;
export const VIRTIO_MMIO_DEVICE_FEATURES = 0x010;
export const VIRTIO_MMIO_DEVICE_FEATURES_SEL = 0x014;
export const VIRTIO_MMIO_DRIVER_FEATURES = 0x020;
export const VIRTIO_MMIO_DRIVER_FEATURES_SEL = 0x024;
export const VIRTIO_MMIO_QUEUE_SEL = 0x030;
export const VIRTIO_MMIO_QUEUE_NUM_MAX = 0x034;
export const VIRTIO_MMIO_QUEUE_NUM = 0x038;
export const VIRTIO_MMIO_QUEUE_READY = 0x044;
export const VIRTIO_MMIO_QUEUE_NOTIFY = 0x050;
export const VIRTIO_MMIO_INTERRUPT_STATUS = 0x060;
export const VIRTIO_MMIO_INTERRUPT_ACK = 0x064;
export const VIRTIO_MMIO_STATUS = 0x070;
export const VIRTIO_MMIO_QUEUE_DESC_LOW = 0x080;
export const VIRTIO_MMIO_QUEUE_DESC_HIGH = 0x084;
export const VIRTIO_MMIO_QUEUE_DRIVER_LOW = 0x090;
export const VIRTIO_MMIO_QUEUE_DRIVER_HIGH = 0x094;
export const VIRTIO_MMIO_QUEUE_DEVICE_LOW = 0x0a0;
export const VIRTIO_MMIO_QUEUE_DEVICE_HIGH = 0x0a4;
export const VIRTIO_MMIO_SHM_SEL = 0x0ac;
export const VIRTIO_MMIO_SHM_LEN_LOW = 0x0b0;
export const VIRTIO_MMIO_SHM_LEN_HIGH = 0x0b4;
export const VIRTIO_MMIO_SHM_BASE_LOW = 0x0b8;
export const VIRTIO_MMIO_SHM_BASE_HIGH = 0x0bc;
export const VIRTIO_MMIO_CONFIG_GENERATION = 0x0fc;
export const VIRTIO_MMIO_CONFIG = 0x100;

// Device status bits (spec 2.1).
export const VIRTIO_STATUS_ACKNOWLEDGE = 1;
export const VIRTIO_STATUS_DRIVER = 2;
export const VIRTIO_STATUS_DRIVER_OK = 4;
export const VIRTIO_STATUS_FEATURES_OK = 8;
export const VIRTIO_STATUS_NEEDS_RESET = 0x40;
export const VIRTIO_STATUS_FAILED = 0x80;

// InterruptStatus bits.
export const VIRTIO_MMIO_INT_VRING = 1;
export const VIRTIO_MMIO_INT_CONFIG = 2;

// Transport feature bits (as [word, bit]).
export const VIRTIO_F_RING_INDIRECT_DESC = 28;
export const VIRTIO_F_VERSION_1 = 32;

/** The device half of a virtio device: what the transport needs from it. */
export interface VirtioDeviceModel {
  readonly deviceId: number;
  readonly numQueues: number;
  readonly queueMaxSize: number;
  /** Offered feature bits as [bits 0–31, bits 32–63]. */
  deviceFeatures(): [number, number];
  /** Read `size` bytes of config space at `offset` (little-endian); 0 outside it. */
  readConfig(offset: number, size: 1 | 2 | 4 | 8): number;
  writeConfig(offset: number, size: 1 | 2 | 4 | 8, value: number): void;
  /** Device reset (Status written 0). */
  reset(): void;
  /**
   * Handle one descriptor chain taken from queue `queue`; return the number of bytes written into
   * the chain's device-writable buffers (the used-ring `len`). Throwing a VirtqueueError marks the
   * device as needing reset.
   */
  handleChain(queue: number, chain: DescriptorChain, mem: GuestMemoryView, features: [number, number]): number;
}

export interface VirtioMmioOptions {
  /** Guest memory for DMA (the machine's RAM or an L2 view). */
  dma: DmaMemory;
  /** Upper bound of DMA addresses; defaults to `dma.size` when present. */
  dmaLimit?: number;
  /** The interrupt line; called with the new level on changes and on each new interrupt. */
  setIrq?: (level: boolean) => void;
  /**
   * Called on QueueNotify before the device processes the queue; return true to say the queue was
   * handled elsewhere (e.g. by a hypervisor's data path), false to let the device process it.
   */
  onNotify?: (queue: number) => boolean;
}

export class VirtioMmioTransport implements MmioHandler {
  readonly device: VirtioDeviceModel;
  readonly queues: SplitVirtqueue[];
  private view: GuestMemoryView;
  private readonly setIrq: ((level: boolean) => void) | null;
  onNotify: ((queue: number) => boolean) | null;

  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private readonly driverFeatures: [number, number] = [0, 0];
  private queueSel = 0;
  status = 0;
  interruptStatus = 0;
  configGeneration = 0;
  private irqLevel = false;
  private processing = false;
  /** Why the device last set NEEDS_RESET (or refused a setting), for diagnostics. */
  lastError: string | null = null;

  // Counters.
  notifications = 0;
  chainsProcessed = 0;
  interrupts = 0;
  badAccesses = 0;

  constructor(device: VirtioDeviceModel, opts: VirtioMmioOptions) {
    this.device = device;
    this.queues = [];
    for (let i = 0; i < device.numQueues; i++) this.queues.push(new SplitVirtqueue(i, device.queueMaxSize));
    this.view = new GuestMemoryView(opts.dma, opts.dmaLimit);
    this.setIrq = opts.setIrq ?? null;
    this.onNotify = opts.onNotify ?? null;
  }

  /** Replace the DMA view (e.g. give the device an L2-guest-physical view). */
  setDma(dma: DmaMemory, limit?: number): void {
    this.view = new GuestMemoryView(dma, limit);
  }

  get dma(): GuestMemoryView {
    return this.view;
  }

  /** Features the driver accepted (meaningful once FEATURES_OK is set). */
  get negotiatedFeatures(): [number, number] {
    return [this.driverFeatures[0], this.driverFeatures[1]];
  }

  hasFeature(bit: number): boolean {
    return ((this.driverFeatures[bit >= 32 ? 1 : 0] >>> (bit & 31)) & 1) !== 0;
  }

  /** Device reset: what writing 0 to Status does. */
  reset(): void {
    this.deviceFeaturesSel = 0;
    this.driverFeaturesSel = 0;
    this.driverFeatures[0] = 0;
    this.driverFeatures[1] = 0;
    this.queueSel = 0;
    this.status = 0;
    this.interruptStatus = 0;
    this.lastError = null;
    for (const q of this.queues) q.reset();
    this.device.reset();
    this.updateIrq(false);
  }

  private selectedQueue(): SplitVirtqueue | undefined {
    return this.queues[this.queueSel];
  }

  mmioRead(offset: number, size: 1 | 2 | 4 | 8): number {
    if (offset >= VIRTIO_MMIO_CONFIG) {
      if (size === 8) return 0; // the spec allows 8/16/32-bit config accesses only
      return this.device.readConfig(offset - VIRTIO_MMIO_CONFIG, size) >>> 0;
    }
    if (size !== 4 || (offset & 3) !== 0) {
      this.badAccesses++;
      return 0;
    }
    const q = this.selectedQueue();
    switch (offset) {
      case VIRTIO_MMIO_MAGIC_VALUE:
        return VIRTIO_MMIO_MAGIC;
      case VIRTIO_MMIO_VERSION_REG:
        return VIRTIO_MMIO_VERSION;
      case VIRTIO_MMIO_DEVICE_ID:
        return this.device.deviceId;
      case VIRTIO_MMIO_VENDOR_ID:
        return VIRTIO_MMIO_VENDOR_QEMU;
      case VIRTIO_MMIO_DEVICE_FEATURES:
        return this.deviceFeaturesSel <= 1 ? this.device.deviceFeatures()[this.deviceFeaturesSel] >>> 0 : 0;
      case VIRTIO_MMIO_QUEUE_NUM_MAX:
        return q === undefined ? 0 : q.maxSize;
      case VIRTIO_MMIO_QUEUE_READY:
        return q?.ready ? 1 : 0;
      case VIRTIO_MMIO_INTERRUPT_STATUS:
        return this.interruptStatus;
      case VIRTIO_MMIO_STATUS:
        return this.status;
      case VIRTIO_MMIO_CONFIG_GENERATION:
        return this.configGeneration;
      case VIRTIO_MMIO_SHM_LEN_LOW:
      case VIRTIO_MMIO_SHM_LEN_HIGH:
      case VIRTIO_MMIO_SHM_BASE_LOW:
      case VIRTIO_MMIO_SHM_BASE_HIGH:
        return 0xffffffff; // no shared memory regions: length (and base) read as -1
      default:
        // Write-only or reserved registers.
        this.badAccesses++;
        return 0;
    }
  }

  mmioWrite(offset: number, size: 1 | 2 | 4 | 8, value: number, _valueHi: number): void {
    if (offset >= VIRTIO_MMIO_CONFIG) {
      if (size !== 8) this.device.writeConfig(offset - VIRTIO_MMIO_CONFIG, size, value >>> 0);
      return;
    }
    if (size !== 4 || (offset & 3) !== 0) {
      this.badAccesses++;
      return;
    }
    const v = value >>> 0;
    const q = this.selectedQueue();
    switch (offset) {
      case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
        this.deviceFeaturesSel = v;
        return;
      case VIRTIO_MMIO_DRIVER_FEATURES:
        // Feature bits may only change before FEATURES_OK (spec 3.1.1).
        if ((this.status & VIRTIO_STATUS_FEATURES_OK) === 0 && this.driverFeaturesSel <= 1) {
          this.driverFeatures[this.driverFeaturesSel] = v;
        }
        return;
      case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
        this.driverFeaturesSel = v;
        return;
      case VIRTIO_MMIO_QUEUE_SEL:
        this.queueSel = v;
        return;
      case VIRTIO_MMIO_QUEUE_NUM:
        if (q !== undefined && !q.ready) q.size = v;
        return;
      case VIRTIO_MMIO_QUEUE_READY:
        if (q === undefined) return;
        if ((v & 1) === 0) {
          q.ready = false;
          return;
        }
        {
          const problem = q.validate(this.view);
          if (problem !== null) {
            this.lastError = `queue ${q.index}: ${problem}`;
            return; // the queue stays not-ready; the driver sees 0 when it reads QueueReady back
          }
          q.ready = true;
        }
        return;
      case VIRTIO_MMIO_QUEUE_NOTIFY:
        this.notify(v & 0xffff);
        return;
      case VIRTIO_MMIO_INTERRUPT_ACK:
        this.interruptStatus &= ~v;
        this.updateIrq(false);
        return;
      case VIRTIO_MMIO_STATUS:
        this.writeStatus(v & 0xff);
        return;
      case VIRTIO_MMIO_QUEUE_DESC_LOW:
      case VIRTIO_MMIO_QUEUE_DESC_HIGH:
      case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
      case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
      case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
      case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
        if (q !== undefined && !q.ready) this.writeQueueAddress(q, offset, v);
        return;
      case VIRTIO_MMIO_SHM_SEL:
        return; // no shared memory regions to select
      default:
        this.badAccesses++;
        return;
    }
  }

  private writeQueueAddress(q: SplitVirtqueue, offset: number, v: number): void {
    const set = (old: number, high: boolean): number => {
      const lo = old % 0x100000000;
      const hi = Math.floor(old / 0x100000000);
      return high ? v * 0x100000000 + lo : hi * 0x100000000 + v;
    };
    const high = (offset & 4) !== 0;
    if (offset <= VIRTIO_MMIO_QUEUE_DESC_HIGH) q.descAddr = set(q.descAddr, high);
    else if (offset <= VIRTIO_MMIO_QUEUE_DRIVER_HIGH) q.driverAddr = set(q.driverAddr, high);
    else q.deviceAddr = set(q.deviceAddr, high);
  }

  private writeStatus(v: number): void {
    if (v === 0) {
      this.reset();
      return;
    }
    let next = (v & ~VIRTIO_STATUS_NEEDS_RESET) | (this.status & VIRTIO_STATUS_NEEDS_RESET);
    if ((next & VIRTIO_STATUS_FEATURES_OK) !== 0 && (this.status & VIRTIO_STATUS_FEATURES_OK) === 0) {
      const offered = this.device.deviceFeatures();
      const extra0 = this.driverFeatures[0] & ~offered[0];
      const extra1 = this.driverFeatures[1] & ~offered[1];
      if (extra0 !== 0 || extra1 !== 0 || !this.hasFeature(VIRTIO_F_VERSION_1)) {
        this.lastError = "driver features not acceptable (unknown bits, or VIRTIO_F_VERSION_1 missing)";
        next &= ~VIRTIO_STATUS_FEATURES_OK;
      }
    }
    this.status = next;
  }

  /** QueueNotify: let `onNotify` claim it, else process the queue. */
  notify(queue: number): void {
    this.notifications++;
    if (queue >= this.queues.length) return;
    if (this.onNotify?.(queue)) return;
    this.processQueue(queue);
  }

  /**
   * Consume every available chain of queue `index`, hand each to the device model, publish the used
   * entries and interrupt the driver (unless it asked not to be). Returns the number of chains
   * completed. Never throws: a malformed ring sets DEVICE_NEEDS_RESET and stops the device.
   */
  processQueue(index: number): number {
    const q = this.queues[index];
    if (q === undefined || !q.ready || this.processing) return 0;
    if ((this.status & VIRTIO_STATUS_DRIVER_OK) === 0 || (this.status & VIRTIO_STATUS_NEEDS_RESET) !== 0) return 0;
    this.processing = true;
    let done = 0;
    try {
      const allowIndirect = this.hasFeature(VIRTIO_F_RING_INDIRECT_DESC);
      for (;;) {
        const head = q.pop(this.view);
        if (head === null) break;
        const chain = q.readChain(this.view, head, allowIndirect);
        const written = this.device.handleChain(index, chain, this.view, this.negotiatedFeatures);
        q.pushUsed(this.view, head, written);
        done++;
        this.chainsProcessed++;
      }
      if (done > 0 && q.wantsInterrupt(this.view)) this.raise(VIRTIO_MMIO_INT_VRING);
    } catch (e) {
      if (done > 0) this.raise(VIRTIO_MMIO_INT_VRING);
      this.needsReset(e instanceof Error ? e.message : String(e));
    } finally {
      this.processing = false;
    }
    return done;
  }

  /** Enter DEVICE_NEEDS_RESET and send a configuration-change interrupt (spec 2.1.2). */
  needsReset(reason: string): void {
    this.lastError = reason;
    if ((this.status & VIRTIO_STATUS_NEEDS_RESET) !== 0) return;
    this.status |= VIRTIO_STATUS_NEEDS_RESET;
    if ((this.status & VIRTIO_STATUS_DRIVER_OK) !== 0) this.raise(VIRTIO_MMIO_INT_CONFIG);
  }

  /** Signal a configuration change (bumps ConfigGeneration, interrupts with bit 1). */
  configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) >>> 0;
    if ((this.status & VIRTIO_STATUS_DRIVER_OK) !== 0) this.raise(VIRTIO_MMIO_INT_CONFIG);
  }

  private raise(bits: number): void {
    this.interruptStatus |= bits;
    this.interrupts++;
    this.updateIrq(true);
  }

  private updateIrq(raised: boolean): void {
    const level = this.interruptStatus !== 0;
    if (level !== this.irqLevel || (raised && level)) {
      this.irqLevel = level;
      if (this.setIrq !== null) this.setIrq(level);
    }
  }

  get irq(): boolean {
    return this.irqLevel;
  }
}
