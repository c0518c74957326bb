/**
 * The narrow interfaces through which the CPU core reaches the rest of the machine.
 * The CPU never imports a device: the machine wires concrete objects to these.
 */

/** Port I/O space (IN/OUT/INS/OUTS). Sizes are 1, 2 or 4 bytes. */
export interface IoBus {
  /** Returns the value read, zero-extended to 32 bits (unsigned). Unclaimed ports read all-ones. */
  portIn(port: number, size: 1 | 2 | 4): number;
  portOut(port: number, size: 1 | 2 | 4, value: number): void;
}

/** The interrupt controller as the CPU sees it (PIC and/or local APIC behind it). */
export interface InterruptController {
  /** True when a maskable external interrupt is pending and deliverable (ignoring RFLAGS.IF). */
  hasPendingInterrupt(): boolean;
  /** Acknowledge the highest-priority pending interrupt and return its vector (INTA cycle). */
  acknowledgeInterrupt(): number;
  /** True when an NMI is pending (SDM vol. 3, 6.7.1); controllers without NMIs omit it. */
  hasPendingNmi?(): boolean;
  /** Take the pending NMI (it is edge-triggered: one delivery per request). */
  acknowledgeNmi?(): void;
}

/** MMIO device windows belong to physical memory (mmu/phys.ts); re-exported for the machine's wiring. */
export type { MmioHandler } from "../mmu/phys.js";

/** An I/O bus that claims nothing: every read returns all-ones, writes are dropped. */
export class NullIoBus implements IoBus {
  portIn(_port: number, size: 1 | 2 | 4): number {
    return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
  }
  portOut(_port: number, _size: 1 | 2 | 4, _value: number): void {}
}

/** The simulated clock, in TSC cycles. Nothing in nestlab reads wall time to drive a guest. */
export interface Clock {
  /** Current simulated time in cycles (an integer-valued double; exact below 2^53). */
  now(): number;
}

/** Guest-physical memory as DMA-capable devices see it (the machine's RAM, or an L2 view). */
export interface DmaMemory {
  readBytes(addr: number, length: number): Uint8Array;
  writeBytes(addr: number, bytes: Uint8Array): void;
}
