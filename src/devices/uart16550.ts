/**
 * National Semiconductor 16550A UART (the PC's COM1), port-I/O, eight byte-wide registers.
 *
 * Register behaviour follows the NS16550A datasheet and QEMU's hw/char/serial.c (read for reference,
 * not copied): reset values (IER 0, IIR 0x01, LCR 0, MCR OUT2, LSR THRE|TEMT, MSR DCD|DSR|CTS,
 * divisor 12 = 9600 baud), the DLAB-switched divisor latch at offsets 0/1, FIFO enable via FCR
 * (IIR bits 7:6 = 11), the interrupt priority order RLS > RDA/timeout > THRE > MSR, the THRE interrupt
 * that is cleared by reading IIR or writing THR, and loopback (MCR bit 4).
 *
 * Transmission is instantaneous (THRE|TEMT read back set at once): each byte written to THR goes to
 * the `onTransmit` sink. Received bytes come from a host-side input queue (`enqueueInput`) that is
 * not limited to the 16-byte FIFO so nothing a user types is lost; DR is set while it is non-empty.
 * The character-timeout interrupt (IIR 0x0C) is reported, without a timer, whenever FIFOs are on and
 * fewer bytes than the trigger level are waiting. As in QEMU, MCR.OUT2 does not gate the IRQ line.
 */
import { type PortRegistrar, splitIn, splitOut } from "./port-io.js";

export const COM1_BASE = 0x3f8;
export const COM1_IRQ = 4;

// Register offsets.
const RBR_THR_DLL = 0;
const IER_DLM = 1;
const IIR_FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

// IER bits.
const IER_RDI = 0x01;
const IER_THRI = 0x02;
const IER_RLSI = 0x04;
const IER_MSI = 0x08;

// IIR values.
const IIR_NO_INT = 0x01;
const IIR_MSI = 0x00;
const IIR_THRI = 0x02;
const IIR_RDI = 0x04;
const IIR_RLSI = 0x06;
const IIR_CTI = 0x0c;
const IIR_FIFO_ENABLED = 0xc0;

// LCR, MCR bits.
const LCR_DLAB = 0x80;
const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;

// LSR bits.
export const LSR_DR = 0x01;
export const LSR_OE = 0x02;
export const LSR_PE = 0x04;
export const LSR_FE = 0x08;
export const LSR_BI = 0x10;
export const LSR_THRE = 0x20;
export const LSR_TEMT = 0x40;
const LSR_INT_ANY = LSR_OE | LSR_PE | LSR_FE | LSR_BI;

// MSR bits.
const MSR_DCTS = 0x01;
const MSR_DDSR = 0x02;
const MSR_TERI = 0x04;
const MSR_DDCD = 0x08;
const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;
const MSR_DELTA = MSR_DCTS | MSR_DDSR | MSR_TERI | MSR_DDCD;

// FCR bits.
const FCR_ENABLE = 0x01;
const FCR_CLEAR_RX = 0x02;
const FCR_CLEAR_TX = 0x04;

const TRIGGER_LEVELS = [1, 4, 8, 14];

export interface Uart16550Options {
  /** First port (default 0x3F8). */
  base?: number;
  /** Called with every transmitted byte (not called for bytes looped back in loopback mode). */
  onTransmit?: (byte: number) => void;
  /** The interrupt line: called with the new level whenever it changes. */
  setIrq?: (level: boolean) => void;
}

export class Uart16550 {
  readonly base: number;
  private readonly onTransmit: (byte: number) => void;
  private readonly setIrq: ((level: boolean) => void) | null;

  private ier = 0;
  private lcr = 0;
  private mcr = MCR_OUT2;
  private lsrErrors = 0; // OE/PE/FE/BI latched until LSR is read
  private msr = MSR_DCD | MSR_DSR | MSR_CTS;
  private scr = 0;
  private divisor = 12;
  private fcr = 0;
  private thrIpending = false;
  private irqLevel = false;
  private readonly rx: number[] = [];
  private rxHead = 0;

  /** Bytes transmitted and received (read by the guest) since reset. */
  txBytes = 0;
  rxBytes = 0;

  constructor(opts: Uart16550Options = {}) {
    this.base = opts.base ?? COM1_BASE;
    this.onTransmit = opts.onTransmit ?? (() => {});
    this.setIrq = opts.setIrq ?? null;
    this.reset();
  }

  /** Claim the eight ports on `bus`. */
  attach(bus: PortRegistrar): void {
    bus.register(this.base, 8, this, "uart16550");
  }

  /** Hardware reset (MR pin): registers to their power-up values; the input queue is kept. */
  reset(): void {
    this.ier = 0;
    this.lcr = 0;
    this.mcr = MCR_OUT2;
    this.lsrErrors = 0;
    this.msr = MSR_DCD | MSR_DSR | MSR_CTS;
    this.scr = 0;
    this.divisor = 12;
    this.fcr = 0;
    this.thrIpending = false;
    this.updateIrq();
  }

  /** Queue bytes for the guest to receive. Strings are encoded as UTF-8. */
  enqueueInput(data: string | Uint8Array | number[]): void {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    for (let i = 0; i < bytes.length; i++) this.rx.push(bytes[i] & 0xff);
    this.updateIrq();
  }

  /** Bytes queued and not yet read by the guest. */
  get pendingInput(): number {
    return this.rx.length - this.rxHead;
  }

  /** Divisor latch value (baud = 115200 / divisor). */
  get divisorLatch(): number {
    return this.divisor;
  }

  /** Current level of the IRQ output. */
  get irq(): boolean {
    return this.irqLevel;
  }

  portIn(port: number, size: 1 | 2 | 4): number {
    return splitIn(port, size, (p) => this.read(p - this.base));
  }

  portOut(port: number, size: 1 | 2 | 4, value: number): void {
    splitOut(port, size, value, (p, v) => this.write(p - this.base, v));
  }

  /** Read register `offset` (0–7); other offsets read 0xFF. */
  read(offset: number): number {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case RBR_THR_DLL: {
        if (dlab) return this.divisor & 0xff;
        if (this.pendingInput === 0) return 0;
        const b = this.rx[this.rxHead++];
        if (this.rxHead > 4096 && this.rxHead * 2 > this.rx.length) {
          this.rx.splice(0, this.rxHead);
          this.rxHead = 0;
        }
        this.rxBytes++;
        this.updateIrq();
        return b;
      }
      case IER_DLM:
        return dlab ? (this.divisor >>> 8) & 0xff : this.ier;
      case IIR_FCR: {
        const iir = this.computeIir();
        // Reading IIR while it reports THRE acknowledges that interrupt.
        if ((iir & 0x0f) === IIR_THRI) {
          this.thrIpending = false;
          this.updateIrq();
        }
        return iir;
      }
      case LCR:
        return this.lcr;
      case MCR:
        return this.mcr;
      case LSR: {
        const v = this.lsr();
        if (this.lsrErrors !== 0) {
          this.lsrErrors = 0;
          this.updateIrq();
        }
        return v;
      }
      case MSR: {
        let v: number;
        if (this.mcr & MCR_LOOP) {
          // Loopback: modem inputs are wired to the modem outputs.
          v = 0;
          if (this.mcr & MCR_RTS) v |= MSR_CTS;
          if (this.mcr & MCR_DTR) v |= MSR_DSR;
          if (this.mcr & MCR_OUT1) v |= MSR_RI;
          if (this.mcr & MCR_OUT2) v |= MSR_DCD;
          v |= this.msr & MSR_DELTA;
        } else {
          v = this.msr;
        }
        if (this.msr & MSR_DELTA) {
          this.msr &= ~MSR_DELTA;
          this.updateIrq();
        }
        return v;
      }
      case SCR:
        return this.scr;
      default:
        return 0xff;
    }
  }

  /** Write register `offset` (0–7); other offsets are ignored. */
  write(offset: number, value: number): void {
    const v = value & 0xff;
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case RBR_THR_DLL:
        if (dlab) {
          this.divisor = (this.divisor & 0xff00) | v;
          return;
        }
        this.thrIpending = false;
        this.txBytes++;
        if (this.mcr & MCR_LOOP) {
          this.rx.push(v);
        } else {
          this.onTransmit(v);
        }
        // The transmitter is instantaneous: THR is empty again at once.
        this.thrIpending = true;
        this.updateIrq();
        return;
      case IER_DLM:
        if (dlab) {
          this.divisor = (this.divisor & 0x00ff) | (v << 8);
          return;
        }
        {
          const old = this.ier;
          this.ier = v & 0x0f;
          // Enabling THRI while THR is empty raises a THRE interrupt (as the 16550 and QEMU do).
          if ((old & IER_THRI) === 0 && (this.ier & IER_THRI) !== 0) this.thrIpending = true;
          this.updateIrq();
        }
        return;
      case IIR_FCR:
        if (v & FCR_CLEAR_RX) {
          this.rx.length = 0;
          this.rxHead = 0;
        }
        if (v & FCR_CLEAR_TX) this.thrIpending = true;
        this.fcr = v & 0xc9; // enable, DMA mode, trigger level (clear bits self-clear)
        if ((v & FCR_ENABLE) === 0) this.fcr = 0;
        this.updateIrq();
        return;
      case LCR:
        this.lcr = v;
        return;
      case MCR:
        this.mcr = v & 0x1f;
        return;
      case LSR:
        return; // read-only (factory test register)
      case MSR:
        return; // read-only
      case SCR:
        this.scr = v;
        return;
      default:
        return;
    }
  }

  private lsr(): number {
    let v = LSR_THRE | LSR_TEMT | this.lsrErrors;
    if (this.pendingInput > 0) v |= LSR_DR;
    return v;
  }

  private fifoEnabled(): boolean {
    return (this.fcr & FCR_ENABLE) !== 0;
  }

  private computeIir(): number {
    const fifoBits = this.fifoEnabled() ? IIR_FIFO_ENABLED : 0;
    if (this.ier & IER_RLSI && this.lsrErrors !== 0) return fifoBits | IIR_RLSI;
    if (this.ier & IER_RDI && this.pendingInput > 0) {
      if (this.fifoEnabled() && this.pendingInput < TRIGGER_LEVELS[(this.fcr >> 6) & 3]) return fifoBits | IIR_CTI;
      return fifoBits | IIR_RDI;
    }
    if (this.ier & IER_THRI && this.thrIpending) return fifoBits | IIR_THRI;
    if (this.ier & IER_MSI && (this.msr & MSR_DELTA) !== 0) return fifoBits | IIR_MSI;
    return fifoBits | IIR_NO_INT;
  }

  private updateIrq(): void {
    const level = (this.computeIir() & IIR_NO_INT) === 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      if (this.setIrq !== null) this.setIrq(level);
    }
  }

  /** Flag an overrun/parity/framing/break condition (for tests and fault injection). */
  injectLineError(bits: number): void {
    this.lsrErrors |= bits & LSR_INT_ANY;
    this.updateIrq();
  }
}
