/**
 * The PC/AT pair of Intel 8259A programmable interrupt controllers: master at 0x20/0x21, slave at
 * 0xA0/0xA1 cascaded on master IRQ2, plus the PIIX edge/level control registers (ELCR) at
 * 0x4D0/0x4D1.
 *
 * Behaviour follows the Intel 8259A datasheet (order no. 231468) and QEMU's hw/intc/i8259.c
 * (read for reference, not copied): the ICW1–ICW4 initialisation sequence (ICW1 resets IMR, ISR,
 * priority and the read-register select), OCW1 masks, OCW2 non-specific / specific / rotating EOI
 * and set-priority, OCW3 IRR/ISR read select, poll and special mask mode, automatic EOI, special
 * fully nested mode, rotating priority (`priorityAdd` is the lowest-priority line + 1), edge detection
 * on IRR (a line must go low before it can be latched again), level mode via ICW1.LTIM or ELCR, and
 * the spurious vectors: when the INTA finds nothing, the master answers with IRQ7's vector (ISR
 * untouched); when the slave has nothing, the master's IRQ2 is acknowledged and the slave answers
 * with IRQ15's vector.
 */
import type { PortRegistrar } from "./port-io.js";

export const PIC_MASTER_CMD = 0x20;
export const PIC_MASTER_DATA = 0x21;
export const PIC_SLAVE_CMD = 0xa0;
export const PIC_SLAVE_DATA = 0xa1;
export const PIC_ELCR = 0x4d0;
const CASCADE_IRQ = 2;

/** One 8259A. */
class Pic8259Chip {
  lastIrr = 0; // input line levels, for edge detection
  irr = 0;
  imr = 0;
  isr = 0;
  priorityAdd = 0;
  irqBase = 0;
  readRegSelect = 0; // 0 = IRR, 1 = ISR
  poll = false;
  specialMask = false;
  initState = 0;
  autoEoi = false;
  rotateOnAutoEoi = false;
  specialFullyNested = false;
  init4 = false;
  singleMode = false;
  ltim = false;
  elcr = 0;

  constructor(
    readonly isMaster: boolean,
    readonly elcrMask: number,
  ) {}

  /** ICW1 (and power-on) reset. IRR keeps level-triggered inputs that are still asserted. */
  initReset(): void {
    this.lastIrr = 0;
    this.irr &= this.elcr;
    this.imr = 0;
    this.isr = 0;
    this.priorityAdd = 0;
    this.irqBase = 0;
    this.readRegSelect = 0;
    this.poll = false;
    this.specialMask = false;
    this.initState = 0;
    this.autoEoi = false;
    this.rotateOnAutoEoi = false;
    this.specialFullyNested = false;
    this.init4 = false;
    this.singleMode = false;
    this.ltim = false;
  }

  setIrq(irq: number, level: boolean): void {
    const mask = 1 << irq;
    if (this.ltim || (this.elcr & mask) !== 0) {
      if (level) {
        this.irr |= mask;
        this.lastIrr |= mask;
      } else {
        this.irr &= ~mask;
        this.lastIrr &= ~mask;
      }
    } else if (level) {
      if ((this.lastIrr & mask) === 0) this.irr |= mask;
      this.lastIrr |= mask;
    } else {
      this.lastIrr &= ~mask;
    }
  }

  /** Priority (0 = highest) of the highest-priority bit set in `mask`, 8 if none. */
  priority(mask: number): number {
    if ((mask & 0xff) === 0) return 8;
    let p = 0;
    while ((mask & (1 << ((p + this.priorityAdd) & 7))) === 0) p++;
    return p;
  }

  /** The line the chip would present on INTA, or -1. */
  getIrq(): number {
    const p = this.priority(this.irr & ~this.imr);
    if (p === 8) return -1;
    let inService = this.isr;
    if (this.specialMask) inService &= ~this.imr;
    // In special fully nested mode the master lets the slave interrupt a slave IRQ in service.
    if (this.specialFullyNested && this.isMaster) inService &= ~(1 << CASCADE_IRQ);
    const cur = this.priority(inService);
    return p < cur ? (p + this.priorityAdd) & 7 : -1;
  }

  intack(irq: number): void {
    if (this.autoEoi) {
      if (this.rotateOnAutoEoi) this.priorityAdd = (irq + 1) & 7;
    } else {
      this.isr |= 1 << irq;
    }
    // Edge-triggered requests are consumed; level-triggered ones stay while the line is high.
    if (!this.ltim && (this.elcr & (1 << irq)) === 0) this.irr &= ~(1 << irq);
  }
}

export interface Pic8259Options {
  /** Called when the master's INT output changes (optional; the CPU can poll `hasPending`). */
  onIntr?: (level: boolean) => void;
}

/** Master + slave 8259A with ELCR, as on a PC. Lines 0–7 are the master's, 8–15 the slave's. */
export class Pic8259 {
  private readonly master = new Pic8259Chip(true, 0xf8);
  private readonly slave = new Pic8259Chip(false, 0xde);
  private readonly onIntr: ((level: boolean) => void) | null;
  private intrLevel = false;
  /** Number of INTA cycles answered, and how many of those were spurious. */
  acks = 0;
  spurious = 0;

  constructor(opts: Pic8259Options = {}) {
    this.onIntr = opts.onIntr ?? null;
    this.master.initReset();
    this.slave.initReset();
  }

  /** Port ranges the pair claims: [base, count]. */
  static readonly ioRanges: readonly (readonly [number, number])[] = [
    [PIC_MASTER_CMD, 2],
    [PIC_SLAVE_CMD, 2],
    [PIC_ELCR, 2],
  ];

  /** Claim the master, slave and ELCR ports on `bus`. */
  attach(bus: PortRegistrar): void {
    bus.register(PIC_MASTER_CMD, 2, this, "pic-master");
    bus.register(PIC_SLAVE_CMD, 2, this, "pic-slave");
    bus.register(PIC_ELCR, 2, this, "elcr");
  }

  /** Raise or lower ISA IRQ line `line` (0–15). Lines out of range are ignored. */
  setIrq(line: number, level: boolean): void {
    if (!Number.isInteger(line) || line < 0 || line > 15) return;
    if (line < 8) this.master.setIrq(line, level);
    else this.slave.setIrq(line - 8, level);
    this.update();
  }

  /** True when the master's INT output is asserted. */
  hasPending(): boolean {
    return this.master.getIrq() >= 0;
  }

  /** The INTA cycle: returns the vector and updates ISR/IRR. */
  acknowledge(): number {
    this.acks++;
    let vector: number;
    const irq = this.master.getIrq();
    if (irq >= 0) {
      this.master.intack(irq);
      if (irq === CASCADE_IRQ) {
        let irq2 = this.slave.getIrq();
        if (irq2 >= 0) {
          this.slave.intack(irq2);
        } else {
          irq2 = 7; // spurious IRQ15
          this.spurious++;
        }
        vector = this.slave.irqBase + irq2;
      } else {
        vector = this.master.irqBase + irq;
      }
    } else {
      this.spurious++;
      vector = this.master.irqBase + 7; // spurious IRQ7
    }
    this.update();
    return vector;
  }

  /** Interrupt request / in-service / mask registers of both chips as 16-bit values (slave high). */
  get irr(): number {
    return this.master.irr | (this.slave.irr << 8);
  }
  get isr(): number {
    return this.master.isr | (this.slave.isr << 8);
  }
  get imr(): number {
    return this.master.imr | (this.slave.imr << 8);
  }
  /** Vector bases programmed by ICW2. */
  get masterBase(): number {
    return this.master.irqBase;
  }
  get slaveBase(): number {
    return this.slave.irqBase;
  }

  portIn(port: number, size: 1 | 2 | 4): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.read8(port + i);
    return v >>> 0;
  }

  portOut(port: number, size: 1 | 2 | 4, value: number): void {
    for (let i = 0; i < size; i++) this.write8(port + i, (value >>> (8 * i)) & 0xff);
  }

  private chipFor(port: number): Pic8259Chip | null {
    if (port === PIC_MASTER_CMD || port === PIC_MASTER_DATA) return this.master;
    if (port === PIC_SLAVE_CMD || port === PIC_SLAVE_DATA) return this.slave;
    return null;
  }

  read8(port: number): number {
    if (port === PIC_ELCR) return this.master.elcr;
    if (port === PIC_ELCR + 1) return this.slave.elcr;
    const s = this.chipFor(port);
    if (s === null) return 0xff;
    if (s.poll) return this.pollRead(s);
    if ((port & 1) === 0) return s.readRegSelect ? s.isr : s.irr;
    return s.imr;
  }

  /** OCW3 poll: acknowledge as an INTA would, return 0x80 | line, or 0 when nothing is pending. */
  private pollRead(s: Pic8259Chip): number {
    s.poll = false;
    const irq = s.getIrq();
    if (irq < 0) return 0;
    s.intack(irq);
    this.update();
    return 0x80 | irq;
  }

  write8(port: number, value: number): void {
    const v = value & 0xff;
    if (port === PIC_ELCR || port === PIC_ELCR + 1) {
      const s = port === PIC_ELCR ? this.master : this.slave;
      s.elcr = v & s.elcrMask;
      this.update();
      return;
    }
    const s = this.chipFor(port);
    if (s === null) return;
    if ((port & 1) === 0) {
      if (v & 0x10) {
        // ICW1
        s.initReset();
        s.initState = 1;
        s.init4 = (v & 0x01) !== 0;
        s.singleMode = (v & 0x02) !== 0;
        s.ltim = (v & 0x08) !== 0;
      } else if (v & 0x08) {
        // OCW3
        if (v & 0x04) s.poll = true;
        if (v & 0x02) s.readRegSelect = v & 1;
        if (v & 0x40) s.specialMask = ((v >> 5) & 1) !== 0;
      } else {
        // OCW2
        const cmd = v >> 5;
        switch (cmd) {
          case 0: // clear rotate in automatic EOI mode
          case 4: // set rotate in automatic EOI mode
            s.rotateOnAutoEoi = cmd === 4;
            break;
          case 1: // non-specific EOI
          case 5: {
            // rotate on non-specific EOI
            const p = s.priority(s.isr);
            if (p !== 8) {
              const irq = (p + s.priorityAdd) & 7;
              s.isr &= ~(1 << irq);
              if (cmd === 5) s.priorityAdd = (irq + 1) & 7;
            }
            break;
          }
          case 3: // specific EOI
            s.isr &= ~(1 << (v & 7));
            break;
          case 6: // set priority: line v&7 becomes the lowest
            s.priorityAdd = (v + 1) & 7;
            break;
          case 7: // rotate on specific EOI
            s.isr &= ~(1 << (v & 7));
            s.priorityAdd = ((v & 7) + 1) & 7;
            break;
          default: // 2: no operation
            break;
        }
        this.update();
      }
      return;
    }
    switch (s.initState) {
      case 0: // OCW1
        s.imr = v;
        this.update();
        break;
      case 1: // ICW2
        s.irqBase = v & 0xf8;
        s.initState = s.singleMode ? (s.init4 ? 3 : 0) : 2;
        break;
      case 2: // ICW3 (cascade wiring is fixed on a PC; the value is not needed)
        s.initState = s.init4 ? 3 : 0;
        break;
      default: // ICW4
        s.specialFullyNested = ((v >> 4) & 1) !== 0;
        s.autoEoi = ((v >> 1) & 1) !== 0;
        s.initState = 0;
        break;
    }
  }

  /** Propagate the slave's INT output to master IRQ2, then the master's to the CPU. */
  private update(): void {
    this.master.setIrq(CASCADE_IRQ, this.slave.getIrq() >= 0);
    const level = this.master.getIrq() >= 0;
    if (level !== this.intrLevel) {
      this.intrLevel = level;
      if (this.onIntr !== null) this.onIntr(level);
    }
  }
}
