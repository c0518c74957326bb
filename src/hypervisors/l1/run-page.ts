/**
 * The npv run page (docs/npv-abi.md §4 "Running"), read and written by L1 in its own memory. L0
 * fills it when RUN returns; L1 reads the exit, completes what it must (result registers, RIP)
 * and sets flag bit 0 so that L0 reloads the registers at the next RUN.
 */
import * as A from "../npv-abi.js";
import type { L1Memory } from "./platform.js";

export class RunPage {
  constructor(
    private readonly mem: L1Memory,
    /** L1 GPA of the page. */
    readonly gpa: number,
  ) {}

  get reason(): number {
    return this.mem.read32(this.gpa + A.NPV_RUN_EXIT_REASON);
  }
  get flags(): number {
    return this.mem.read32(this.gpa + A.NPV_RUN_FLAGS);
  }
  set flags(v: number) {
    this.mem.write32(this.gpa + A.NPV_RUN_FLAGS, v);
  }
  get rip(): number {
    return this.mem.read64(this.gpa + A.NPV_RUN_RIP);
  }
  get insnLen(): number {
    return this.mem.read32(this.gpa + A.NPV_RUN_INSN_LEN);
  }
  /** Low and high halves of GPR `r` (ModRM order). */
  gprLo(r: number): number {
    return this.mem.read32(this.gpa + A.NPV_RUN_GPRS + 8 * r) >>> 0;
  }
  gprHi(r: number): number {
    return this.mem.read32(this.gpa + A.NPV_RUN_GPRS + 8 * r + 4) >>> 0;
  }
  setGpr(r: number, lo: number, hi: number): void {
    this.mem.write32(this.gpa + A.NPV_RUN_GPRS + 8 * r, lo >>> 0);
    this.mem.write32(this.gpa + A.NPV_RUN_GPRS + 8 * r + 4, hi >>> 0);
    this.flags = this.flags | A.NPV_RUN_F_REGS_DIRTY;
  }
  /** Advance RIP past the exiting instruction (L1 completed it); marks the registers dirty. */
  advanceRip(): void {
    const lo = this.mem.read32(this.gpa + A.NPV_RUN_RIP) >>> 0;
    const hi = this.mem.read32(this.gpa + A.NPV_RUN_RIP + 4) >>> 0;
    const n = lo + this.insnLen;
    this.mem.write32(this.gpa + A.NPV_RUN_RIP, n >>> 0);
    if (n > 0xffffffff) this.mem.write32(this.gpa + A.NPV_RUN_RIP + 4, (hi + 1) >>> 0);
    this.flags = this.flags | A.NPV_RUN_F_REGS_DIRTY;
  }
  /** Exit-specific data at +0xC0. */
  data8(off: number): number {
    return this.mem.readBytes(this.gpa + A.NPV_RUN_DATA + off, 1)[0];
  }
  data16(off: number): number {
    const b = this.mem.readBytes(this.gpa + A.NPV_RUN_DATA + off, 2);
    return b[0] | (b[1] << 8);
  }
  data32(off: number): number {
    return this.mem.read32(this.gpa + A.NPV_RUN_DATA + off) >>> 0;
  }
  data64(off: number): number {
    return this.mem.read64(this.gpa + A.NPV_RUN_DATA + off);
  }
  setData32(off: number, v: number): void {
    this.mem.write32(this.gpa + A.NPV_RUN_DATA + off, v);
  }
  setData64(off: number, lo: number, hi: number): void {
    this.mem.write32(this.gpa + A.NPV_RUN_DATA + off, lo >>> 0);
    this.mem.write32(this.gpa + A.NPV_RUN_DATA + off + 4, hi >>> 0);
  }

  // ---- Decoded exits ----
  io(): { port: number; size: 1 | 2 | 4; isIn: boolean; value: number } {
    const size = this.data8(2);
    return {
      port: this.data16(0),
      size: (size === 2 || size === 4 ? size : 1) as 1 | 2 | 4,
      isIn: this.data8(3) === 1,
      value: this.data32(4),
    };
  }
  mmio(): { gpa: number; size: 1 | 2 | 4 | 8; isWrite: boolean; valueLo: number; valueHi: number } {
    const size = this.data8(8);
    return {
      gpa: this.data64(0),
      size: (size === 2 || size === 4 || size === 8 ? size : 1) as 1 | 2 | 4 | 8,
      isWrite: this.data8(9) !== 0,
      valueLo: this.data32(16),
      valueHi: this.data32(20),
    };
  }
  memoryFault(): { gpa: number; access: number } {
    return { gpa: this.data64(0), access: this.data32(8) };
  }
  msr(): { index: number; isWrite: boolean; value: number } {
    return { index: this.data32(0), isWrite: this.data8(4) !== 0, value: this.data64(8) };
  }
}
