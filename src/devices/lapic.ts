/**
 * Local APIC for one CPU: the xAPIC register page (MMIO, 4 KiB at IA32_APIC_BASE, 0xFEE00000 by
 * default) and the x2APIC MSR interface (0x800–0x8FF), IA32_APIC_BASE (0x1B) and
 * IA32_TSC_DEADLINE (0x6E0).
 *
 * Followed: Intel SDM vol. 3A ch. 11 "Advanced Programmable Interrupt Controller (APIC)" (register
 * map table 11-1, LVT layout fig. 11-8, timer 11.5.4 incl. TSC-deadline mode 11.5.4.1, ESR 11.5.3,
 * TPR/PPR 11.8.3.1, IRR/ISR/EOI 11.8.4–11.8.5, spurious vector 11.9, x2APIC 11.12 with the MSR
 * semantics of table 11-6 and the IA32_APIC_BASE state transitions of fig. 11-27), plus QEMU's
 * hw/intc/apic.c and Linux KVM's arch/x86/kvm/lapic.c for behaviour the SDM leaves open (all read for
 * reference, not copied). Choices where they differ:
 *  - Version register reads 0x00050014: version 0x14, 6 LVT entries (timer, thermal, perfmon, LINT0,
 *    LINT1, error; no CMCI), no EOI-broadcast suppression.
 *  - The BSP's LINT0 resets to ExtINT, unmasked (0x700), as QEMU sets it (the BIOS virtual-wire
 *    setup), so the 8259 reaches the CPU from reset; other LVTs reset masked (0x10000).
 *  - Timer: a count of N fires after exactly N ticks and a periodic timer's period is N ticks (SDM and
 *    KVM; QEMU uses N+1). One tick = `cyclesPerTick` TSC cycles (the APIC "bus clock"; constructor
 *    option, default 1) times the divide configuration (1..128). Changing the divider while counting
 *    keeps the current count and continues at the new rate (the partial tick is dropped).
 *    Entering or leaving TSC-deadline mode disarms the timer and zeroes the initial count and deadline
 *    (KVM). Firing while the LVT is masked still expires (and reloads) the timer, without an interrupt.
 *  - A software-disabled APIC (SVR bit 8 clear) drops newly accepted fixed interrupts (KVM) and
 *    delivers nothing to the CPU (QEMU); LVT mask bits are forced on while software-disabled.
 *  - Errors are accumulated internally and become visible in ESR on the next ESR write (SDM 11.5.3);
 *    an unmasked LVT Error entry raises its vector when an error is first logged.
 *  - xAPIC MMIO: sub-dword writes and unaligned writes are ignored (QEMU); reads of any size return the
 *    bytes of the containing 32-bit register. Reserved offsets read 0 and log "illegal register
 *    address" (ESR bit 7). In x2APIC mode or when hardware-disabled the page reads all-ones and drops
 *    writes. Time comes only from the injected Clock.
 */
import type { Clock, MmioHandler } from "../cpu/ports.js";

export const APIC_DEFAULT_BASE = 0xfee00000;
export const APIC_MMIO_SIZE = 0x1000;
export const MSR_IA32_APIC_BASE = 0x1b;
export const MSR_IA32_TSC_DEADLINE = 0x6e0;
export const MSR_X2APIC_FIRST = 0x800;
export const MSR_X2APIC_LAST = 0x8ff;

export const APIC_VERSION = 0x00050014;

const APIC_BASE_BSP = 1 << 8;
const APIC_BASE_EXTD = 1 << 10;
const APIC_BASE_EN = 1 << 11;

// Register offsets (xAPIC MMIO; x2APIC MSR = 0x800 + offset / 16).
export const REG_ID = 0x020;
export const REG_VERSION = 0x030;
export const REG_TPR = 0x080;
export const REG_APR = 0x090;
export const REG_PPR = 0x0a0;
export const REG_EOI = 0x0b0;
export const REG_RRD = 0x0c0;
export const REG_LDR = 0x0d0;
export const REG_DFR = 0x0e0;
export const REG_SVR = 0x0f0;
export const REG_ISR = 0x100;
export const REG_TMR = 0x180;
export const REG_IRR = 0x200;
export const REG_ESR = 0x280;
export const REG_ICR_LO = 0x300;
export const REG_ICR_HI = 0x310;
export const REG_LVT_TIMER = 0x320;
export const REG_LVT_THERMAL = 0x330;
export const REG_LVT_PERF = 0x340;
export const REG_LVT_LINT0 = 0x350;
export const REG_LVT_LINT1 = 0x360;
export const REG_LVT_ERROR = 0x370;
export const REG_TIMER_INITIAL = 0x380;
export const REG_TIMER_CURRENT = 0x390;
export const REG_TIMER_DIVIDE = 0x3e0;
export const REG_SELF_IPI = 0x3f0;

const LVT_TIMER = 0;
const LVT_LINT0 = 3;
const LVT_ERROR = 5;
const LVT_COUNT = 6;
/** Writable bits of each LVT entry (delivery status and remote IRR are read-only). */
const LVT_WRITABLE = [0x000700ff, 0x000107ff, 0x000107ff, 0x0001a7ff, 0x0001a7ff, 0x000100ff];
export const LVT_MASKED = 1 << 16;
const LVT_RESET = LVT_MASKED;
export const DELIVERY_EXTINT = 7;

export const TIMER_ONESHOT = 0;
export const TIMER_PERIODIC = 1;
export const TIMER_TSC_DEADLINE = 2;

const SVR_ENABLE = 1 << 8;

// ESR bits.
export const ESR_SEND_ILLEGAL_VECTOR = 1 << 5;
export const ESR_RECEIVE_ILLEGAL_VECTOR = 1 << 6;
export const ESR_ILLEGAL_REGISTER = 1 << 7;

const TWO32 = 0x100000000;

export interface IpiInfo {
  vector: number;
  deliveryMode: number;
  destinationMode: number;
  shorthand: number;
  destination: number;
  /** True when this APIC was among the targets (and, for fixed/lowest-priority, got the vector). */
  toSelf: boolean;
}

export interface LocalApicOptions {
  /** The simulated TSC. */
  clock: Clock;
  /** Initial APIC ID (the x2APIC ID; the xAPIC ID is its low 8 bits). Default 0. */
  apicId?: number;
  /** Bootstrap processor (IA32_APIC_BASE bit 8, LINT0 ExtINT at reset). Default true. */
  bsp?: boolean;
  /** TSC cycles per APIC timer tick before the divide configuration. Default 1. */
  cyclesPerTick?: number;
  /** MAXPHYADDR for IA32_APIC_BASE reserved-bit checks. Default 40. */
  maxPhysAddrBits?: number;
  /** Called for every IPI sent through ICR/SELF_IPI (INIT/SIPI/NMI or other-CPU targets are not delivered). */
  onIpi?: (ipi: IpiInfo) => void;
  /** Called on EOI of a level-triggered vector (TMR set), where an I/O APIC would be told. */
  onLevelEoi?: (vector: number) => void;
  /**
   * Called after every register write through MMIO or an MSR (TPR, EOI, ICR, SVR, APIC base…):
   * what is deliverable may have changed, and the CPU must look again before its next
   * instruction, not at its next scheduling slice.
   */
  onWrite?: () => void;
}

function highestBit(words: Uint32Array): number {
  for (let w = 7; w >= 0; w--) {
    const v = words[w];
    if (v !== 0) return w * 32 + 31 - Math.clz32(v);
  }
  return -1;
}

export class LocalApic implements MmioHandler {
  private readonly clock: Clock;
  private readonly initialId: number;
  private readonly isBsp: boolean;
  readonly cyclesPerTick: number;
  private readonly maxPhysAddrBits: number;
  private readonly onIpi: ((ipi: IpiInfo) => void) | null;
  private readonly onLevelEoi: ((vector: number) => void) | null;
  private readonly onWrite: (() => void) | null;

  // IA32_APIC_BASE
  private baseAddr = APIC_DEFAULT_BASE;
  private hwEnabled = true;
  private x2 = false;
  private bspFlag = true;

  // Register file
  private xapicId = 0;
  private tpr = 0;
  private ldr = 0;
  private dfr = 0xffffffff;
  private svr = 0xff;
  private esr = 0;
  private esrPending = 0;
  private icrLo = 0;
  private icrHi = 0;
  private readonly irr = new Uint32Array(8);
  private readonly isr = new Uint32Array(8);
  private readonly tmr = new Uint32Array(8);
  private readonly lvt = new Uint32Array(LVT_COUNT);

  // Timer
  private initialCount = 0;
  private dcr = 0;
  private loadTime = 0;
  private armed = false;
  private nextFire = Number.POSITIVE_INFINITY;
  private tscDeadline = 0;

  /** An NMI was sent to this APIC and the CPU has not taken it yet. */
  nmiPending = false;

  // Counters
  timerFires = 0;
  eois = 0;
  acks = 0;
  ipis = 0;

  constructor(opts: LocalApicOptions) {
    this.clock = opts.clock;
    this.initialId = (opts.apicId ?? 0) >>> 0;
    this.isBsp = opts.bsp ?? true;
    this.cyclesPerTick = opts.cyclesPerTick ?? 1;
    if (!(this.cyclesPerTick > 0) || !Number.isFinite(this.cyclesPerTick)) {
      throw new RangeError(`cyclesPerTick must be a positive number, got ${this.cyclesPerTick}`);
    }
    this.maxPhysAddrBits = opts.maxPhysAddrBits ?? 40;
    this.onIpi = opts.onIpi ?? null;
    this.onLevelEoi = opts.onLevelEoi ?? null;
    this.onWrite = opts.onWrite ?? null;
    this.reset();
  }

  /** Power-on / RESET state (SDM 11.4.7.1). */
  reset(): void {
    this.baseAddr = APIC_DEFAULT_BASE;
    this.hwEnabled = true;
    this.x2 = false;
    this.bspFlag = this.isBsp;
    this.resetRegisters();
  }

  private resetRegisters(): void {
    this.xapicId = this.initialId & 0xff;
    this.nmiPending = false;
    this.tpr = 0;
    this.ldr = 0;
    this.dfr = 0xffffffff;
    this.svr = 0xff;
    this.esr = 0;
    this.esrPending = 0;
    this.icrLo = 0;
    this.icrHi = 0;
    this.irr.fill(0);
    this.isr.fill(0);
    this.tmr.fill(0);
    this.lvt.fill(LVT_RESET);
    if (this.isBsp) this.lvt[LVT_LINT0] = DELIVERY_EXTINT << 8;
    this.initialCount = 0;
    this.dcr = 0;
    this.loadTime = 0;
    this.armed = false;
    this.nextFire = Number.POSITIVE_INFINITY;
    this.tscDeadline = 0;
  }

  // ---------------------------------------------------------------- state queries

  /** Physical address of the xAPIC register page (IA32_APIC_BASE[MAXPHYADDR-1:12]). */
  get baseAddress(): number {
    return this.baseAddr;
  }
  /** IA32_APIC_BASE[11]. */
  get hardwareEnabled(): boolean {
    return this.hwEnabled;
  }
  /** SVR[8]. */
  get softwareEnabled(): boolean {
    return (this.svr & SVR_ENABLE) !== 0;
  }
  /** IA32_APIC_BASE[10]. */
  get x2apicMode(): boolean {
    return this.x2;
  }
  get spuriousVector(): number {
    return this.svr & 0xff;
  }
  /** The APIC ID as the current mode reports it (8-bit xAPIC ID or 32-bit x2APIC ID). */
  get id(): number {
    return this.x2 ? this.initialId : this.xapicId;
  }

  /** CR8 view of the TPR (MOV to/from CR8 in 64-bit mode). */
  getCr8(): number {
    return (this.tpr >> 4) & 0xf;
  }
  setCr8(value: number): void {
    this.tpr = (value & 0xf) << 4;
  }

  isIrrSet(vector: number): boolean {
    return (this.irr[vector >>> 5] & (1 << (vector & 31))) !== 0;
  }
  isIsrSet(vector: number): boolean {
    return (this.isr[vector >>> 5] & (1 << (vector & 31))) !== 0;
  }
  isTmrSet(vector: number): boolean {
    return (this.tmr[vector >>> 5] & (1 << (vector & 31))) !== 0;
  }

  /** Processor priority (SDM 11.8.3.1). */
  ppr(): number {
    const isrv = Math.max(highestBit(this.isr), 0);
    return (this.tpr & 0xf0) >= (isrv & 0xf0) ? this.tpr & 0xff : isrv & 0xf0;
  }

  /**
   * True when the 8259's INTR reaches the CPU through this APIC: the APIC is hardware-disabled, or
   * LINT0 is unmasked with delivery mode ExtINT.
   */
  acceptsPicInterrupts(): boolean {
    if (!this.hwEnabled) return true;
    const l = this.lvt[LVT_LINT0];
    return (l & LVT_MASKED) === 0 && ((l >> 8) & 7) === DELIVERY_EXTINT;
  }

  // ---------------------------------------------------------------- interrupt acceptance

  /** The vector that would be delivered now, or -1. Fires expired timers first. */
  private deliverable(): number {
    const now = this.clock.now();
    if (this.nextEventCycle() <= now) this.advance(now);
    if (!this.hwEnabled || !this.softwareEnabled) return -1;
    const v = highestBit(this.irr);
    if (v < 0) return -1;
    return (v & 0xf0) > (this.ppr() & 0xf0) ? v : -1;
  }

  /** A fixed interrupt is pending whose priority class is above the PPR's. */
  hasPending(): boolean {
    return this.deliverable() >= 0;
  }

  /** INTA: move the highest deliverable IRR bit to ISR and return its vector; the spurious vector if none. */
  acknowledge(): number {
    this.acks++;
    const v = this.deliverable();
    if (v < 0) return this.svr & 0xff;
    this.irr[v >>> 5] &= ~(1 << (v & 31));
    this.isr[v >>> 5] |= 1 << (v & 31);
    return v;
  }

  /** EOI: clear the highest ISR bit. */
  eoi(): void {
    this.eois++;
    const v = highestBit(this.isr);
    if (v < 0) return;
    this.isr[v >>> 5] &= ~(1 << (v & 31));
    if (this.isTmrSet(v)) {
      this.tmr[v >>> 5] &= ~(1 << (v & 31));
      if (this.onLevelEoi !== null) this.onLevelEoi(v);
    }
  }

  /** A fixed-mode interrupt from a device (I/O APIC / MSI). `level` records it in TMR. */
  acceptExternal(vector: number, level = false): void {
    this.deliverFixed(vector & 0xff, level);
  }

  private deliverFixed(vector: number, level: boolean): void {
    if (!this.hwEnabled || !this.softwareEnabled) return;
    if (vector < 16) {
      this.signalError(ESR_RECEIVE_ILLEGAL_VECTOR);
      return;
    }
    const bit = 1 << (vector & 31);
    this.irr[vector >>> 5] |= bit;
    if (level) this.tmr[vector >>> 5] |= bit;
    else this.tmr[vector >>> 5] &= ~bit;
  }

  private signalError(bits: number): void {
    const fresh = bits & ~this.esrPending;
    this.esrPending |= bits;
    if (fresh === 0) return;
    const l = this.lvt[LVT_ERROR];
    if ((l & LVT_MASKED) !== 0 || !this.hwEnabled || !this.softwareEnabled) return;
    const v = l & 0xff;
    if (v >= 16) this.irr[v >>> 5] |= 1 << (v & 31);
    else this.esrPending |= ESR_RECEIVE_ILLEGAL_VECTOR;
  }

  // ---------------------------------------------------------------- timer

  private timerMode(): number {
    return (this.lvt[LVT_TIMER] >>> 17) & 3;
  }

  /** TSC cycles per timer tick, including the divide configuration. */
  tickCycles(): number {
    const v = ((this.dcr >> 1) & 4) | (this.dcr & 3);
    return this.cyclesPerTick * (1 << ((v + 1) & 7));
  }

  private currentCount(now: number): number {
    if (this.timerMode() === TIMER_TSC_DEADLINE || this.initialCount === 0) return 0;
    const n = this.initialCount;
    const elapsed = Math.floor((now - this.loadTime) / this.tickCycles());
    if (elapsed < 0) return n;
    if (this.timerMode() === TIMER_PERIODIC) return n - (elapsed % n);
    return elapsed >= n ? 0 : n - elapsed;
  }

  /** Cycle at which the timer next fires, Infinity if it will not. */
  nextEventCycle(): number {
    if (this.timerMode() === TIMER_TSC_DEADLINE) {
      return this.tscDeadline !== 0 ? this.tscDeadline : Number.POSITIVE_INFINITY;
    }
    return this.armed ? this.nextFire : Number.POSITIVE_INFINITY;
  }

  /** Fire every timer event due at or before `now` into IRR (coalescing missed periods). */
  advance(now: number): void {
    if (this.timerMode() === TIMER_TSC_DEADLINE) {
      if (this.tscDeadline !== 0 && now >= this.tscDeadline) {
        this.tscDeadline = 0;
        this.fireTimer();
      }
      return;
    }
    if (!this.armed || now < this.nextFire) return;
    this.fireTimer();
    if (this.timerMode() === TIMER_PERIODIC) {
      const period = this.initialCount * this.tickCycles();
      const k = Math.floor((now - this.nextFire) / period) + 1;
      this.nextFire += k * period;
    } else {
      this.armed = false;
      this.nextFire = Number.POSITIVE_INFINITY;
    }
  }

  private fireTimer(): void {
    this.timerFires++;
    const l = this.lvt[LVT_TIMER];
    if ((l & LVT_MASKED) === 0) this.deliverFixed(l & 0xff, false);
  }

  private startTimer(count: number): void {
    const now = this.clock.now();
    this.initialCount = count >>> 0;
    this.loadTime = now;
    if (this.initialCount === 0) {
      this.armed = false;
      this.nextFire = Number.POSITIVE_INFINITY;
    } else {
      this.armed = true;
      this.nextFire = now + this.initialCount * this.tickCycles();
    }
  }

  private setDivide(value: number): void {
    const now = this.clock.now();
    const c = this.armed ? this.currentCount(now) : 0;
    this.dcr = value & 0xb;
    if (this.armed) {
      const tick = this.tickCycles();
      this.loadTime = now - (this.initialCount - c) * tick;
      this.nextFire = now + c * tick;
    }
  }

  private writeTscDeadline(value: number): void {
    if (this.timerMode() !== TIMER_TSC_DEADLINE) return; // ignored in other modes (SDM 11.5.4.1)
    this.tscDeadline = value;
  }

  // ---------------------------------------------------------------- IPIs

  private sendIpi(lo: number, dest: number): void {
    this.ipis++;
    const vector = lo & 0xff;
    const deliveryMode = (lo >>> 8) & 7;
    const destinationMode = (lo >>> 11) & 1;
    const trigger = (lo >>> 15) & 1;
    const shorthand = (lo >>> 18) & 3;
    let toSelf: boolean;
    if (shorthand === 1 || shorthand === 2) toSelf = true;
    else if (shorthand === 3) toSelf = false;
    else if (destinationMode === 0) toSelf = dest === this.id || dest === (this.x2 ? 0xffffffff : 0xff);
    else toSelf = this.logicalMatch(dest);
    if (toSelf && (deliveryMode === 0 || deliveryMode === 1)) {
      if (vector < 16) this.signalError(ESR_SEND_ILLEGAL_VECTOR);
      else this.deliverFixed(vector, trigger === 1);
    }
    // NMI delivery mode (100b): the vector field is ignored, the target takes an NMI (11.6.1).
    // The SDM's ICR description restricts the "self" shorthand to fixed delivery; KVM (and tests
    // written against it) accept a self-NMI that way too, and so does this model.
    if (toSelf && deliveryMode === 4 && this.hwEnabled) this.nmiPending = true;
    if (this.onIpi !== null) {
      this.onIpi({ vector, deliveryMode, destinationMode, shorthand, destination: dest, toSelf });
    }
  }

  private x2Ldr(): number {
    const id = this.initialId;
    return (((id >>> 4) << 16) | (1 << (id & 0xf))) >>> 0;
  }

  private logicalMatch(dest: number): boolean {
    if (this.x2) {
      if (dest === 0xffffffff) return true;
      const ldr = this.x2Ldr();
      return dest >>> 16 === ldr >>> 16 && (dest & ldr & 0xffff) !== 0;
    }
    const d = dest & 0xff;
    const l = this.ldr >>> 24;
    if (d === 0xff) return true;
    if (this.dfr >>> 28 === 0xf) return (d & l) !== 0; // flat model
    return d >>> 4 === l >>> 4 && (d & l & 0xf) !== 0; // cluster model
  }

  // ---------------------------------------------------------------- register file

  /** Register value by offset, or null where the register does not exist in this mode. */
  private readRegister(off: number, x2: boolean): number | null {
    if (off >= REG_ISR && off < REG_ISR + 0x80) return this.isr[(off - REG_ISR) >> 4];
    if (off >= REG_TMR && off < REG_TMR + 0x80) return this.tmr[(off - REG_TMR) >> 4];
    if (off >= REG_IRR && off < REG_IRR + 0x80) {
      this.deliverable(); // bring timer expiries into IRR
      return this.irr[(off - REG_IRR) >> 4];
    }
    if (off >= REG_LVT_TIMER && off <= REG_LVT_ERROR) return this.lvt[(off - REG_LVT_TIMER) >> 4];
    switch (off) {
      case REG_ID:
        return x2 ? this.initialId : (this.xapicId << 24) >>> 0;
      case REG_VERSION:
        return APIC_VERSION;
      case REG_TPR:
        return this.tpr;
      case REG_APR:
      case REG_RRD:
      case REG_EOI:
        return x2 ? null : 0;
      case REG_PPR:
        return this.ppr();
      case REG_LDR:
        return x2 ? this.x2Ldr() : this.ldr;
      case REG_DFR:
        return x2 ? null : this.dfr;
      case REG_SVR:
        return this.svr;
      case REG_ESR:
        return this.esr;
      case REG_ICR_LO:
        return this.icrLo;
      case REG_ICR_HI:
        return x2 ? null : this.icrHi;
      case REG_TIMER_INITIAL:
        return this.timerMode() === TIMER_TSC_DEADLINE ? 0 : this.initialCount;
      case REG_TIMER_CURRENT:
        return this.currentCount(this.clock.now());
      case REG_TIMER_DIVIDE:
        return this.dcr;
      default:
        return null;
    }
  }

  /**
   * Write a register. Returns false where x2APIC would raise #GP (or, in xAPIC mode, where the
   * offset is reserved); read-only registers are silently ignored in xAPIC mode.
   */
  private writeRegister(off: number, val: number, x2: boolean): boolean {
    val >>>= 0;
    if (off >= REG_LVT_TIMER && off <= REG_LVT_ERROR && (off & 0xf) === 0) {
      this.writeLvt((off - REG_LVT_TIMER) >> 4, val);
      return true;
    }
    if (off >= REG_ISR && off < REG_IRR + 0x80) return !x2; // ISR/TMR/IRR read-only
    switch (off) {
      case REG_ID:
        if (x2) return false;
        this.xapicId = val >>> 24;
        return true;
      case REG_VERSION:
      case REG_PPR:
      case REG_TIMER_CURRENT:
        return !x2;
      case REG_APR:
      case REG_RRD:
      case REG_DFR:
      case REG_ICR_HI:
        if (x2) return false;
        if (off === REG_DFR) this.dfr = (val | 0x0fffffff) >>> 0;
        if (off === REG_ICR_HI) this.icrHi = val & 0xff000000;
        return true;
      case REG_TPR:
        this.tpr = val & 0xff;
        return true;
      case REG_EOI:
        if (x2 && val !== 0) return false;
        this.eoi();
        return true;
      case REG_LDR:
        if (x2) return false;
        this.ldr = val & 0xff000000;
        return true;
      case REG_SVR:
        this.svr = val & 0x3ff;
        if (!this.softwareEnabled) for (let i = 0; i < LVT_COUNT; i++) this.lvt[i] |= LVT_MASKED;
        return true;
      case REG_ESR:
        if (x2 && val !== 0) return false;
        this.esr = this.esrPending;
        this.esrPending = 0;
        return true;
      case REG_ICR_LO:
        // xAPIC only (the x2APIC ICR is one 64-bit MSR, handled in writeMsr).
        this.icrLo = val & 0x000ccfff;
        this.sendIpi(this.icrLo, this.icrHi >>> 24);
        return true;
      case REG_TIMER_INITIAL:
        if (this.timerMode() !== TIMER_TSC_DEADLINE) this.startTimer(val);
        return true;
      case REG_TIMER_DIVIDE:
        this.setDivide(val);
        return true;
      default: // includes SELF_IPI, which only exists as an MSR (handled in writeMsr)
        return false;
    }
  }

  private writeLvt(index: number, val: number): void {
    let v = val & LVT_WRITABLE[index];
    if (!this.softwareEnabled) v |= LVT_MASKED;
    if (index === LVT_TIMER) {
      const oldMode = this.timerMode();
      const newMode = (v >>> 17) & 3;
      const wasDeadline = oldMode === TIMER_TSC_DEADLINE;
      const isDeadline = newMode === TIMER_TSC_DEADLINE;
      this.lvt[index] = v;
      if (wasDeadline !== isDeadline) {
        this.initialCount = 0;
        this.armed = false;
        this.nextFire = Number.POSITIVE_INFINITY;
        this.tscDeadline = 0;
      }
      return;
    }
    // Keep the read-only remote-IRR / delivery-status bits as they were.
    this.lvt[index] = (v | (this.lvt[index] & ~LVT_WRITABLE[index] & ~LVT_MASKED)) >>> 0;
  }

  // ---------------------------------------------------------------- xAPIC MMIO

  mmioRead(offset: number, size: 1 | 2 | 4 | 8): number {
    if (!this.hwEnabled || this.x2) return size >= 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
    const off = offset & 0xff0;
    const byte = offset & 0xf;
    let reg = this.readRegister(off, false);
    if (reg === null) {
      this.signalError(ESR_ILLEGAL_REGISTER);
      reg = 0;
    }
    if (byte >= 4) return 0;
    const shifted = reg >>> (8 * byte);
    return size === 1 ? shifted & 0xff : size === 2 ? shifted & 0xffff : shifted >>> 0;
  }

  mmioWrite(offset: number, size: 1 | 2 | 4 | 8, value: number, _valueHi: number): void {
    if (!this.hwEnabled || this.x2) return;
    if (size < 4 || (offset & 0xf) !== 0) return;
    if (!this.writeRegister(offset & 0xff0, value, false)) this.signalError(ESR_ILLEGAL_REGISTER);
    this.onWrite?.();
  }

  // ---------------------------------------------------------------- MSRs

  /** True for the MSR indices this device implements. */
  handlesMsr(index: number): boolean {
    return (
      index === MSR_IA32_APIC_BASE ||
      index === MSR_IA32_TSC_DEADLINE ||
      (index >= MSR_X2APIC_FIRST && index <= MSR_X2APIC_LAST)
    );
  }

  /** RDMSR: [low, high] halves, or null where the CPU must raise #GP(0). */
  readMsr(index: number): [number, number] | null {
    if (index === MSR_IA32_APIC_BASE) {
      const flags =
        (this.bspFlag ? APIC_BASE_BSP : 0) | (this.x2 ? APIC_BASE_EXTD : 0) | (this.hwEnabled ? APIC_BASE_EN : 0);
      return [((this.baseAddr % TWO32) | flags) >>> 0, Math.floor(this.baseAddr / TWO32)];
    }
    if (index === MSR_IA32_TSC_DEADLINE) {
      if (this.timerMode() !== TIMER_TSC_DEADLINE) return [0, 0];
      return [(this.tscDeadline % TWO32) >>> 0, Math.floor(this.tscDeadline / TWO32) >>> 0];
    }
    if (index < MSR_X2APIC_FIRST || index > MSR_X2APIC_LAST || !this.x2) return null;
    const off = (index - MSR_X2APIC_FIRST) << 4;
    if (off === REG_ICR_LO) return [this.icrLo, this.icrHi];
    const v = this.readRegister(off, true);
    return v === null ? null : [v >>> 0, 0];
  }

  /** WRMSR: false where the CPU must raise #GP(0). */
  writeMsr(index: number, lo: number, hi: number): boolean {
    const ok = this.writeMsrInner(index, lo, hi);
    if (ok) this.onWrite?.();
    return ok;
  }

  private writeMsrInner(index: number, lo: number, hi: number): boolean {
    lo >>>= 0;
    hi >>>= 0;
    if (index === MSR_IA32_APIC_BASE) return this.writeApicBase(lo, hi);
    if (index === MSR_IA32_TSC_DEADLINE) {
      this.writeTscDeadline(hi * TWO32 + lo);
      return true;
    }
    if (index < MSR_X2APIC_FIRST || index > MSR_X2APIC_LAST || !this.x2) return false;
    const off = (index - MSR_X2APIC_FIRST) << 4;
    if (off === REG_ICR_LO) {
      this.icrLo = lo & 0x000ccfff;
      this.icrHi = hi;
      this.sendIpi(this.icrLo, hi);
      return true;
    }
    if (hi !== 0) return false; // bits 63:32 are reserved in every other x2APIC register
    if (off === REG_SELF_IPI) {
      if ((lo & ~0xff) !== 0) return false;
      this.sendIpi((1 << 18) | lo, 0); // fixed, edge, self shorthand
      return true;
    }
    return this.writeRegister(off, lo, true);
  }

  private writeApicBase(lo: number, hi: number): boolean {
    // Reserved: bits 0-7, 9, and bits >= MAXPHYADDR.
    if ((lo & 0x2ff) !== 0) return false;
    const hiBits = this.maxPhysAddrBits - 32;
    if (hiBits < 32 && hi >>> hiBits !== 0) return false;
    const en = (lo & APIC_BASE_EN) !== 0;
    const extd = (lo & APIC_BASE_EXTD) !== 0;
    if (extd && !en) return false; // invalid state
    if (this.x2 && en && !extd) return false; // x2APIC -> xAPIC is illegal
    if (!this.hwEnabled && en && extd) return false; // disabled -> x2APIC is illegal
    if (this.hwEnabled && !en) this.resetRegisters(); // hardware disable loses the APIC's state
    this.hwEnabled = en;
    this.x2 = extd;
    this.bspFlag = (lo & APIC_BASE_BSP) !== 0;
    this.baseAddr = hi * TWO32 + ((lo & 0xfffff000) >>> 0);
    return true;
  }
}
