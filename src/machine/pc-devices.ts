/**
 * The PC's devices, the base of the bare machine (machine.ts) and of each of L0's VMs
 * (hypervisors/l0/vm.ts): the 8259 pair, COM1, debug-exit and fw_cfg on an I/O-port bus, a local
 * APIC and virtio-blk, and the interrupt routing between them. Where each sits is pc-layout.ts's;
 * the owner places the two MMIO devices (directly in physical memory, or behind L0's windows) and
 * says what the PIC's INTR line, a LAPIC write and the debug-exit port do to its CPU.
 */
import type { Clock, DmaMemory } from "../cpu/ports.js";
import { type BlockBackend, MemoryBlockBackend } from "../devices/block-backend.js";
import { DebugExit } from "../devices/debug-exit.js";
import { FwCfg } from "../devices/fw-cfg.js";
import { LocalApic } from "../devices/lapic.js";
import { Pic8259 } from "../devices/pic8259.js";
import { Uart16550 } from "../devices/uart16550.js";
import { createVirtioBlkMmio } from "../devices/virtio-blk.js";
import type { VirtioMmioTransport } from "../devices/virtio-mmio.js";
import { InterruptRouter } from "./interrupt-router.js";
import { IoPortBus } from "./io-port-bus.js";
import { PC_COM1_IRQ, PC_VIRTIO_BLK_IRQ } from "./pc-layout.js";

export interface PcDeviceOptions {
  /** RAM size fw_cfg reports. */
  ramSize: number;
  /** The clock the LAPIC timer counts. */
  clock: Clock;
  /** The guest-physical memory virtio-blk reads and writes. */
  dma: DmaMemory;
  /** Called with each byte the guest sends to COM1. */
  onSerial?: (byte: number) => void;
  /** Bytes for the guest to read from COM1. */
  serialInput?: string;
  /** The virtio-blk backend (default: an in-memory 8 MiB disk). */
  disk?: BlockBackend;
  /** The PICs' INTR output changed. */
  onIntr?: (level: boolean) => void;
  /** A LAPIC register write (it may make an interrupt deliverable at once). */
  onLapicWrite?: () => void;
}

export class PcDevices {
  readonly io = new IoPortBus();
  readonly pic: Pic8259;
  readonly uart: Uart16550;
  readonly debugExit: DebugExit;
  readonly fwcfg: FwCfg;
  readonly lapic: LocalApic;
  readonly virtioBlk: VirtioMmioTransport;
  readonly router: InterruptRouter;
  /** Set when the guest wrote the debug-exit port. */
  exitStatus: number | null = null;

  constructor(o: PcDeviceOptions) {
    this.pic = new Pic8259({ onIntr: o.onIntr });
    this.pic.attach(this.io);
    this.uart = new Uart16550({
      onTransmit: o.onSerial ?? (() => {}),
      setIrq: (level) => this.pic.setIrq(PC_COM1_IRQ, level),
    });
    this.uart.attach(this.io);
    if (o.serialInput) this.uart.enqueueInput(o.serialInput);
    this.debugExit = new DebugExit({ onExit: (status) => this.debugExitWritten(status) });
    this.debugExit.attach(this.io);
    this.fwcfg = new FwCfg({ ramSize: o.ramSize, cpus: 1 });
    this.fwcfg.attach(this.io);
    this.lapic = new LocalApic({ clock: o.clock, onWrite: o.onLapicWrite });
    this.virtioBlk = createVirtioBlkMmio(
      { backend: o.disk ?? new MemoryBlockBackend(8 * 1024 * 1024) },
      { dma: o.dma, setIrq: (level) => this.pic.setIrq(PC_VIRTIO_BLK_IRQ, level) },
    );
    this.router = new InterruptRouter(this.lapic, this.pic);
  }

  /** The guest wrote `status` to the debug-exit port (the machine also stops its CPU). */
  protected debugExitWritten(status: number): void {
    this.exitStatus = status;
  }
}
