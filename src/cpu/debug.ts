/**
 * Debug facilities (SDM vol. 3, chapter 18 "Debug, branch profile, TSC and intel resource
 * director technology features", 18.2–18.3): DR0–DR3 instruction and data breakpoints under DR7,
 * DR6 status, TF single-step, general detect (DR7.GD), the resume flag's one-instruction
 * lifetime (18.3.1.1), and the MOV SS / POP SS blocking of debug traps (6.8.3).
 *
 * Cost model of the checks: nothing on the fast path. The loop calls `debugBoundary` only while
 * `Cpu.dbgActive` is set (an enabled instruction breakpoint, TF, RF, or a pending debug trap), via
 * the interrupt-check flag it already tests once per instruction. Data breakpoints are checked in
 * the memory path's slow path only: while one is enabled (`Cpu.dbgData`) the software TLB is not
 * filled, so every access takes that path (slower guest while it is being debugged, as expected).
 * I/O breakpoints (R/W = 10, only with CR4.DE; 18.2.4) are checked by IN/OUT/INS/OUTS while one
 * is enabled. Without CR4.DE, R/W = 10 is undefined; here such a breakpoint never fires.
 */
import { CR4_DE } from "../x86/control.js";
import { DB } from "../x86/exceptions.js";
import { RF, TF } from "../x86/flags.js";
import type { Cpu } from "./cpu.js";
import { deliverEvent } from "./interrupts.js";

/** DR6 status bits (18.2.3). */
export const DR6_BS = 1 << 14;
export const DR6_BD = 1 << 13;
/** DR7.GD (general detect enable, 18.2.4). */
export const DR7_GD = 1 << 13;

/** Per-CPU state of the boundary work. */
export class DebugState {
  /** icount at the boundary before the instruction that runs with RF = 1, or -1. */
  rfAt = -1;
  /** icount at the boundary before an instruction that started with TF = 1, or -1. */
  tfAt = -1;
  /** Debug-trap conditions (DR6 B0–B3, BS) met by the instruction that just ran, not yet delivered. */
  pending = 0;
  /** The last instruction loaded SS: debug traps wait one more instruction (6.8.3). */
  ssBlock = false;
  /** This boundary is the one right after MOV SS: no instruction-breakpoint check either. */
  bpBlocked = false;
  /** Enabled instruction breakpoints (bit n: DRn, R/W = 00). */
  execMask = 0;
  /** Enabled data breakpoints that fire on writes (R/W = 01 or 11) and on reads (R/W = 11). */
  writeMask = 0;
  readMask = 0;
  /** Enabled I/O breakpoints (R/W = 10 with CR4.DE). */
  ioMask = 0;

  /** Forget boundary state (VM entry and exit: the other side's pending events are not ours). */
  reset(): void {
    this.rfAt = -1;
    this.tfAt = -1;
    this.pending = 0;
    this.ssBlock = false;
  }
}

/** Breakpoint length from DR7.LENn (00: 1, 01: 2, 10: 8, 11: 4 bytes). */
function bpLength(dr7: number, n: number): number {
  const len = (dr7 >>> (18 + 4 * n)) & 3;
  return len === 0 ? 1 : len === 1 ? 2 : len === 2 ? 8 : 4;
}

/**
 * Recompute the enabled breakpoints from DR7 (after MOV DR7, VM entry/exit, a context switch)
 * and whether the loop has boundary work. Flushes the software TLB when data breakpoints are
 * armed or disarmed (fills are suppressed while they are armed).
 */
export function updateDebugState(c: Cpu): void {
  const d = c.debug;
  const dr7 = c.drLo[7];
  let exec = 0;
  let write = 0;
  let read = 0;
  let io = 0;
  for (let n = 0; n < 4; n++) {
    if (((dr7 >>> (2 * n)) & 3) === 0) continue; // neither Ln nor Gn
    const rw = (dr7 >>> (16 + 4 * n)) & 3;
    if (rw === 0) exec |= 1 << n;
    else if (rw === 2) io |= (c.cr4 & CR4_DE) !== 0 ? 1 << n : 0;
    else if (rw === 1) write |= 1 << n;
    else if (rw === 3) {
      write |= 1 << n;
      read |= 1 << n;
    }
  }
  d.execMask = exec;
  d.writeMask = write;
  d.readMask = read;
  d.ioMask = io;
  const data = (write | read) !== 0;
  if (data !== c.dbgData) {
    c.dbgData = data;
    c.flushTlb();
  }
  updateDebugActive(c);
}

/** Whether the loop must call debugBoundary at the next instruction boundary. */
export function updateDebugActive(c: Cpu): void {
  const d = c.debug;
  const active = d.execMask !== 0 || d.pending !== 0 || d.tfAt >= 0 || d.ssBlock || (c.flagsBase & (RF | TF)) !== 0;
  c.dbgActive = active;
  if (active) c.irqCheck = true;
}

/**
 * Debug traps met but not yet delivered, as the VMCS's pending-debug-exceptions field holds them
 * (B0-B3 and BS: 24.4.2; DR6's bit positions): saved at a VM exit so they stay with the guest.
 */
export function pendingDebugTraps(c: Cpu): number {
  const d = c.debug;
  const ss = d.tfAt >= 0 && d.tfAt !== c.icount ? DR6_BS : 0; // the TF instruction completed
  return (d.pending | ss) & (0xf | DR6_BS);
}

/** VM entry: traps the pending-debug-exceptions field names are delivered at the first boundary (26.7.3). */
export function loadPendingDebugTraps(c: Cpu, bits: number): void {
  const b = bits & (0xf | DR6_BS);
  if (b === 0) return;
  c.debug.pending |= b;
  updateDebugActive(c);
}

/** RFLAGS was loaded with RF or TF set (IRET, POPF, VM entry): boundary work from the next boundary. */
export function debugFlagsLoaded(c: Cpu): void {
  if ((c.flagsBase & RF) !== 0) c.debug.rfAt = -1;
  c.dbgActive = true;
  c.irqCheck = true;
}

/** MOV SS / POP SS completed: debug traps are held until after the next instruction (6.8.3). */
export function movSsLoaded(c: Cpu): void {
  c.debug.ssBlock = true;
  c.dbgActive = true;
  c.irqCheck = true;
}

/**
 * An event was delivered: the instruction it interrupted (or that faulted) did not complete, so
 * it has no single-step or data-breakpoint trap; the handler starts with TF = 0.
 */
export function debugEventDelivered(c: Cpu): void {
  c.debug.tfAt = -1;
  c.debug.pending = 0;
}

/** Record DR6 for a #DB: new B0–B3 hits replace the old ones; BS and BD accumulate (18.2.3). */
function setDr6(c: Cpu, bits: number): void {
  const hits = bits & 0xf;
  let dr6 = c.drLo[6];
  if (hits !== 0) dr6 = (dr6 & ~0xf) | hits;
  c.drLo[6] = dr6 | (bits & (DR6_BS | DR6_BD));
}

/**
 * At an instruction boundary while dbgActive, before interrupts are checked (debug traps of the
 * previous instruction outrank NMIs and external interrupts, SDM vol. 3, table 6-2). Delivers a
 * pending debug trap (single-step, data breakpoint), ages RF and arms single-step for the next
 * instruction. Returns whether the loop must call again at the next boundary; the loop then
 * calls `instructionBreakpoints` once interrupts have been checked.
 */
export function debugBoundary(c: Cpu): boolean {
  const d = c.debug;
  const now = c.icount;
  c.startLo = c.ripLo;
  c.startHi = c.ripHi;
  if (d.tfAt >= 0 && d.tfAt !== now) {
    d.pending |= DR6_BS; // the instruction that started with TF = 1 has completed
    d.tfAt = -1;
  }
  const blocked = d.ssBlock;
  d.ssBlock = false;
  if (d.pending !== 0 && !blocked) {
    setDr6(c, d.pending);
    d.pending = 0;
    c.halted = false;
    deliverEvent(c, DB, -1, false, 0); // a trap: RIP is the next instruction
  }
  // RF: set for one instruction, cleared once it completes.
  if ((c.flagsBase & RF) !== 0) {
    if (d.rfAt < 0 || d.rfAt === now) d.rfAt = now;
    else {
      c.flagsBase &= ~RF;
      d.rfAt = -1;
    }
  } else d.rfAt = -1;
  if ((c.flagsBase & TF) !== 0 && d.tfAt < 0) d.tfAt = now;
  d.bpBlocked = blocked;
  updateDebugActive(c);
  return c.dbgActive;
}

/**
 * After NMIs and interrupts had their turn (they outrank code breakpoints, table 6-2): an
 * enabled instruction breakpoint on the linear address of the next instruction is a #DB fault
 * before it executes, unless RF is set or MOV SS blocks it (18.3.1.1).
 */
export function instructionBreakpoints(c: Cpu): void {
  const d = c.debug;
  if (d.execMask === 0 || (c.flagsBase & RF) !== 0 || d.bpBlocked) return;
  c.startLo = c.ripLo;
  c.startHi = c.ripHi;
  // Linear RIP: CS.base is 0 in 64-bit mode; otherwise add it (32-bit).
  const lo = c.mode64 ? c.ripLo : (c.ripLo + c.segBaseLo[1]) | 0;
  const hi = c.mode64 ? c.ripHi : 0;
  let hits = 0;
  for (let n = 0; n < 4; n++) {
    if ((d.execMask & (1 << n)) !== 0 && c.drLo[n] === lo && c.drHi[n] === hi) hits |= 1 << n;
  }
  if (hits === 0) return;
  setDr6(c, hits);
  c.halted = false;
  deliverEvent(c, DB, -1, false, 0); // a fault: RIP is the breakpointed instruction
}

/**
 * A data access in the memory path's slow path while data breakpoints are armed: record the
 * breakpoints [lo, lo+size) overlaps; the #DB trap is delivered after the instruction (18.3.1.2).
 */
export function dataAccess(c: Cpu, lo: number, hi: number, size: number, write: boolean): void {
  const d = c.debug;
  const mask = write ? d.writeMask : d.readMask;
  if (mask === 0) return;
  const a = lo >>> 0;
  for (let n = 0; n < 4; n++) {
    if ((mask & (1 << n)) === 0 || c.drHi[n] !== hi) continue;
    const len = bpLength(c.drLo[7], n);
    const bp = (c.drLo[n] >>> 0) - ((c.drLo[n] >>> 0) % len); // the low bits are ignored (aligned)
    if (a < bp + len && bp < a + size) d.pending |= 1 << n;
  }
  if (d.pending !== 0) {
    c.dbgActive = true;
    c.irqCheck = true;
  }
}

/** An I/O instruction accessed ports [port, port+size) while I/O breakpoints are armed: a trap (18.3.1.2). */
export function ioAccess(c: Cpu, port: number, size: number): void {
  const d = c.debug;
  for (let n = 0; n < 4; n++) {
    if ((d.ioMask & (1 << n)) === 0) continue;
    const len = bpLength(c.drLo[7], n);
    const bp = (c.drLo[n] & 0xffff) - ((c.drLo[n] & 0xffff) % len);
    if (port < bp + len && bp < port + size) d.pending |= 1 << n;
  }
  if (d.pending !== 0) {
    c.dbgActive = true;
    c.irqCheck = true;
  }
}

/** MOV to/from DRn with DR7.GD set: #DB fault with DR6.BD, and GD cleared for the handler (18.2.4). */
export function checkGeneralDetect(c: Cpu): void {
  if ((c.drLo[7] & DR7_GD) === 0) return;
  c.drLo[7] &= ~DR7_GD;
  setDr6(c, DR6_BD);
  c.raise(DB);
}
