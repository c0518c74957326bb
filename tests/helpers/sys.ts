/**
 * A 64-bit "system" test machine: GDT with kernel and user segments and a 64-bit TSS, an IDT
 * whose 256 vectors point to HLT stubs, user-accessible identity paging with 4 KiB pages for
 * the data region, and helpers to read exception frames. Tests for system instructions and
 * exception delivery build on it.
 */
import type { Cpu } from "../../src/cpu/cpu.js";
import { STOP_HALT } from "../../src/cpu/cpu.js";
import type { InterruptController, IoBus } from "../../src/cpu/ports.js";
import { loadTaskRegister, setSegment } from "../../src/cpu/segments.js";
import { hasErrorCode } from "../../src/x86/exceptions.js";
import { asm } from "./asm.js";
import { CODE_BASE, DATA_BASE, makeCpu64, STACK_TOP } from "./machine.js";

export { CODE_BASE, DATA_BASE, STACK_TOP };
export const GDT = 0x8000;
export const TSS = 0x9000;
export const IDT = 0xa000;
export const PT_DATA = 0xc000; // page table for DATA_BASE .. DATA_BASE + 2 MiB (4 KiB pages)
export const STUBS = 0x20000;
export const RSP0 = 0x70000;
export const IST1 = 0x60000;
export const USER_STACK = 0x50000;

export const KCODE = 0x08;
export const KDATA = 0x10;
export const UCODE32 = 0x1b;
export const UDATA = 0x23;
export const UCODE64 = 0x2b;
export const TSS_SEL = 0x30;
export const KCODE32 = 0x40;
export const KDATA_NP = 0x48; // a data segment that is not present
export const KCODE_NR = 0x50; // execute-only code (not readable)
/** STAR as Linux sets it: SYSCALL CS 0x08, SYSRET base 0x18 (CS 0x2b / 0x1b, SS 0x23). */
export const STAR_HI = (0x18 << 16) | 0x08;

function desc(c: Cpu, sel: number, lo: number, hi: number): void {
  c.mem.write64(GDT + (sel & ~7), lo | 0, hi | 0);
}

/** Point IDT vector `v` at `handler` (a linear address). */
export function setGate(
  c: Cpu,
  v: number,
  handler: number,
  opts: { dpl?: number; ist?: number; type?: number; present?: boolean; sel?: number } = {},
): void {
  const { dpl = 0, ist = 0, type = 0xe, present = true, sel = KCODE } = opts;
  const w0 = (handler & 0xffff) | (sel << 16);
  const w1 = (handler & 0xffff0000) | (present ? 0x8000 : 0) | (dpl << 13) | (type << 8) | ist;
  c.mem.write64(IDT + v * 16, w0 | 0, w1 | 0);
  c.mem.write64(IDT + v * 16 + 8, Math.floor(handler / 2 ** 32), 0);
}

/** Address of the HLT stub of vector v. */
export function stub(v: number): number {
  return STUBS + v * 16;
}

/** Build the system environment on a CPU from makeCpu64(). */
export function setupSys(c: Cpu): void {
  const m = c.mem;
  // Paging structures first: nothing has been translated yet, so no cached entry is stale.
  // Paging: make everything user-accessible (U at every level), and map the data region with
  // 4 KiB pages so tests can change single pages.
  const pml4 = c.cr3Lo & ~0xfff;
  m.write(pml4, 4, m.read(pml4, 4) | 4);
  const pdpt = m.read(pml4, 4) & ~0xfff;
  for (let g = 0; g < 4; g++) m.write(pdpt + g * 8, 4, m.read(pdpt + g * 8, 4) | 4);
  const pd0 = m.read(pdpt, 4) & ~0xfff;
  for (let e = 0; e < 512; e++) m.write(pd0 + e * 8, 4, m.read(pd0 + e * 8, 4) | 4);
  for (let e = 0; e < 512; e++) m.write64(PT_DATA + e * 8, (DATA_BASE + e * 4096) | 7, 0);
  m.write64(pd0 + (DATA_BASE >>> 21) * 8, PT_DATA | 7, 0);
  // GDT.
  desc(c, 0, 0, 0);
  desc(c, KCODE, 0x0000ffff, 0x00af9b00);
  desc(c, KDATA, 0x0000ffff, 0x00cf9300);
  desc(c, UCODE32, 0x0000ffff, 0x00cffb00);
  desc(c, UDATA, 0x0000ffff, 0x00cff300);
  desc(c, UCODE64, 0x0000ffff, 0x00affb00);
  // 64-bit TSS descriptor (16 bytes): limit 0x67, base TSS, type 9, present.
  desc(c, TSS_SEL, ((TSS & 0xffff) << 16) | 0x67, ((TSS >>> 16) & 0xff) | 0x8900 | (TSS & 0xff000000));
  m.write64(GDT + TSS_SEL + 8, 0, 0);
  desc(c, KCODE32, 0x0000ffff, 0x00cf9b00);
  desc(c, KDATA_NP, 0x0000ffff, 0x00cf1300);
  desc(c, KCODE_NR, 0x0000ffff, 0x00af9900);
  c.gdtrBaseLo = GDT;
  c.gdtrBaseHi = 0;
  c.gdtrLimit = 0x57;
  setSegment(c, 1, KCODE, 0, 0, 0xffffffff, 0xa09b);
  for (const s of [0, 2, 3]) setSegment(c, s, KDATA, 0, 0, 0xffffffff, 0xc093);
  // TSS: RSP0 at 4, IST1 at 36, I/O map base beyond the limit.
  m.write64(TSS + 4, RSP0, 0);
  m.write64(TSS + 36, IST1, 0);
  m.write(TSS + 102, 2, 0x68);
  loadTaskRegister(c, TSS_SEL);
  // IDT: every vector → a HLT stub, 64-bit interrupt gate, DPL 0.
  for (let v = 0; v < 256; v++) {
    m.write8(stub(v), 0xf4); // hlt
    m.write8(stub(v) + 1, 0xeb); // jmp $-3 (back to hlt)
    m.write8(stub(v) + 2, 0xfd);
    setGate(c, v, stub(v));
  }
  c.idtrBaseLo = IDT;
  c.idtrBaseHi = 0;
  c.idtrLimit = 256 * 16 - 1;
  c.mmu.flushAll();
  c.flushTlb();
  c.lo[4] = STACK_TOP;
}

/**
 * Set the flags of the 4 KiB page at `addr` in the data region (P=1, RW=2, US=4; nx sets bit 63)
 * and drop cached translations of it (as INVLPG would).
 */
export function setPage(c: Cpu, addr: number, flags: number, nx = false): void {
  const e = (addr - DATA_BASE) >>> 12;
  c.mem.write64(PT_DATA + e * 8, (DATA_BASE + e * 4096) | flags, nx ? 1 << 31 : 0);
  c.mmu.invlpg(addr, 0);
}

/** Load 64-bit code at CODE_BASE on a fresh system machine; `setup` runs before the first instruction. */
export function sysCpu(source: string, setup?: (c: Cpu) => void): Cpu {
  const c = makeCpu64();
  setupSys(c);
  c.mem.writeBytes(CODE_BASE, asm(`${source}\nhlt\n`, 64));
  c.ripLo = CODE_BASE;
  c.ripHi = 0;
  setup?.(c);
  return c;
}

/** Run until HLT (in the code or in a stub); returns the stop code. */
export function runSys(c: Cpu, budget = 100_000): number {
  return c.run(budget);
}

/** Address of `label` (a global symbol in the source) is not available: use offsets from CODE_BASE instead. */
export function codeAddr(offset: number): number {
  return CODE_BASE + offset;
}

export interface Frame {
  /** Vector of the stub the CPU halted in, or -1 if it halted elsewhere. */
  vector: number;
  errorCode: number;
  rip: number;
  cs: number;
  rflags: number;
  rsp: number;
  ss: number;
  /** RSP at the frame (after delivery). */
  frameRsp: number;
}

function q(c: Cpu, a: number): number {
  return c.mem.read(a, 4) + c.mem.read(a + 4, 4) * 2 ** 32;
}

/** Decode the exception frame after a run stopped in a stub. */
export function frame(c: Cpu, withError?: boolean): Frame {
  const rip = c.ripLo >>> 0;
  const vector = rip > STUBS && rip <= STUBS + 256 * 16 ? (rip - 1 - STUBS) >>> 4 : -1;
  let sp = c.lo[4] >>> 0;
  const frameRsp = sp;
  let errorCode = -1;
  if (withError ?? (vector >= 0 && hasErrorCode(vector))) {
    errorCode = q(c, sp);
    sp += 8;
  }
  return {
    vector,
    errorCode,
    rip: q(c, sp),
    cs: q(c, sp + 8),
    rflags: q(c, sp + 16),
    rsp: q(c, sp + 24),
    ss: q(c, sp + 32),
    frameRsp,
  };
}

/** Expect the run to have stopped in a stub; returns the frame. */
export function expectHalt(c: Cpu, stop: number): void {
  if (stop !== STOP_HALT) {
    throw new Error(`did not halt: stop ${stop} rip ${(c.ripLo >>> 0).toString(16)} ${c.stopReason?.reason ?? ""}`);
  }
}

/** An IoBus that records writes and answers reads from a table. */
export class RecordingIoBus implements IoBus {
  readonly writes: [number, number, number][] = [];
  readonly reads: [number, number][] = [];
  constructor(private readonly answers: Record<number, number> = {}) {}
  portIn(port: number, size: 1 | 2 | 4): number {
    this.reads.push([port, size]);
    const v = this.answers[port] ?? 0xffffffff;
    return size === 1 ? v & 0xff : size === 2 ? v & 0xffff : v >>> 0;
  }
  portOut(port: number, size: 1 | 2 | 4, value: number): void {
    this.writes.push([port, size, value >>> 0]);
  }
}

/** An interrupt controller with a queue of pending vectors. */
export class FakeIntc implements InterruptController {
  readonly pending: number[] = [];
  acks = 0;
  hasPendingInterrupt(): boolean {
    return this.pending.length > 0;
  }
  acknowledgeInterrupt(): number {
    this.acks++;
    return this.pending.shift() as number;
  }
}

/** Code that drops to CPL 3 (64-bit) at label `user` with RSP = USER_STACK and RFLAGS = `flags`. */
export function toUser(flags = 0x2): string {
  return `
    push ${UDATA}
    push ${USER_STACK}
    push ${flags}
    push ${UCODE64}
    lea rax, [rip + user]
    push rax
    iretq
  user:`;
}

/** Code that IRETQs to the label `next` right after it, at CPL 0 on the same stack, with RFLAGS = `flags`. */
export function iretToNext(flags = 0x2): string {
  return `
    mov rax, rsp
    push ${KDATA}
    push rax
    push ${flags}
    push ${KCODE}
    lea rax, [rip + next]
    push rax
    iretq
  next:`;
}

/** Run and return the frame of the exception the code ended in. */
export function fault(source: string, setup?: Parameters<typeof sysCpu>[1]) {
  const c = sysCpu(source, setup);
  expectHalt(c, runSys(c));
  return { c, f: frame(c) };
}
