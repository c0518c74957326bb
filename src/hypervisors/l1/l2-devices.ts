/**
 * The devices L1 emulates for its L2 (the PC the guest kernel expects, docs/boot.md §5), built from
 * the same device classes the native machine and L0 use. The port devices (COM1 UART, debug-exit,
 * fw_cfg, 8259 PICs; port 0x80 and other ports unclaimed) and the virtio-mmio registers of the
 * block device. The block device is **mediated**: L1 runs its control path (registers, feature
 * negotiation, config space, queue set-up) with the ordinary virtio-mmio transport, whose DMA L1
 * never uses; once the queue is ready L0 takes the data path (BLK_SETUP) and L1 sees no request.
 */
import type { DmaMemory } from "../../cpu/ports.js";
import type { BlockBackend } from "../../devices/block-backend.js";
import { DebugExit } from "../../devices/debug-exit.js";
import { FwCfg } from "../../devices/fw-cfg.js";
import { Pic8259 } from "../../devices/pic8259.js";
import { Uart16550 } from "../../devices/uart16550.js";
import { createVirtioBlkMmio } from "../../devices/virtio-blk.js";
import type { VirtioMmioTransport } from "../../devices/virtio-mmio.js";
import { IoPortBus } from "../../machine/io-port-bus.js";
import {
  PC_COM1_IRQ,
  PC_IN_KERNEL_PORTS,
  PC_RAM_HOLE_START,
  PC_VIRTIO_BLK_BASE,
  PC_VIRTIO_BLK_IRQ,
  PC_VIRTIO_BLK_SIZE,
} from "../../machine/pc-layout.js";

/** L2 guest-physical address and size of the virtio-mmio window (one page is declared to L0). */
export const L2_VIRTIO_GPA = PC_VIRTIO_BLK_BASE;
export const L2_VIRTIO_SIZE = PC_VIRTIO_BLK_SIZE;
/** Ports L1's kernel handles itself (its irqchip); the others go to L1's userspace VMM. */
const IN_KERNEL_PORTS = new Set(PC_IN_KERNEL_PORTS);

/** What L1 knows of the disk L0 assigned it: its size and mode; the bytes stay with L0. */
export interface MediatedDisk {
  /** Backend id L0 assigned to this L1 (BLK_SETUP names it). */
  backendId: number;
  size: number;
  readOnly: boolean;
}

/** The backend as L1's control path sees it: capacity only; L0 moves the data. */
class RemoteBackend implements BlockBackend {
  constructor(
    readonly size: number,
    readonly readOnly: boolean,
  ) {}
  read(): void {
    throw new Error("the mediated block device's data path belongs to L0");
  }
  write(): void {
    throw new Error("the mediated block device's data path belongs to L0");
  }
  flush(): void {}
}

/** A DMA view L1 never uses: touching it is a bug in L1 (requests are L0's). */
class NoDma implements DmaMemory {
  readBytes(addr: number): Uint8Array {
    throw new Error(`L1 tried to DMA from L2 0x${addr.toString(16)}: the block data path is L0's`);
  }
  writeBytes(addr: number): void {
    throw new Error(`L1 tried to DMA to L2 0x${addr.toString(16)}: the block data path is L0's`);
  }
}

export interface L2DevicesOptions {
  /** L2 RAM in bytes (fw_cfg reports it; bounds the virtqueue addresses). */
  memory: number;
  onSerial?: (byte: number) => void;
  serialInput?: string;
  disk: MediatedDisk | null;
}

export class L2Devices {
  readonly io = new IoPortBus();
  readonly pic = new Pic8259();
  readonly uart: Uart16550;
  readonly debugExit: DebugExit;
  readonly fwcfg: FwCfg;
  readonly virtio: VirtioMmioTransport | null;
  /** Set when L2 wrote the debug-exit port: (value << 1) | 1. */
  exitStatus: number | null = null;
  /** QueueNotify writes that reached L1 (only before BLK_SETUP; should stay 0). */
  notifiesSeen = 0;

  constructor(readonly opts: L2DevicesOptions) {
    this.pic.attach(this.io);
    this.uart = new Uart16550({
      onTransmit: opts.onSerial ?? (() => {}),
      setIrq: (l) => this.pic.setIrq(PC_COM1_IRQ, l),
    });
    this.uart.attach(this.io);
    if (opts.serialInput) this.uart.enqueueInput(opts.serialInput);
    this.debugExit = new DebugExit({ onExit: (s) => (this.exitStatus = s) });
    this.debugExit.attach(this.io);
    this.fwcfg = new FwCfg({ ramSize: opts.memory, cpus: 1 });
    this.fwcfg.attach(this.io);
    this.virtio =
      opts.disk === null
        ? null
        : createVirtioBlkMmio(
            { backend: new RemoteBackend(opts.disk.size, opts.disk.readOnly) },
            {
              dma: new NoDma(),
              dmaLimit: Math.min(opts.memory, PC_RAM_HOLE_START),
              setIrq: (l) => this.pic.setIrq(PC_VIRTIO_BLK_IRQ, l),
              onNotify: () => {
                this.notifiesSeen++;
                return true; // never process a queue in L1
              },
            },
          );
  }

  portInKernel(port: number): boolean {
    return IN_KERNEL_PORTS.has(port);
  }
}
