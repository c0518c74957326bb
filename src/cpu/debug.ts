/**
 * Debug-related work done at instruction boundaries, off the fast path: the resume flag's
 * one-instruction lifetime (SDM vol. 3, 18.3.1.1). The loop calls `debugBoundary` only while
 * `Cpu.dbgActive` is set, through the interrupt-check flag it already tests once per
 * instruction; a CPU with nothing to do here pays nothing.
 */
import { RF } from "../x86/flags.js";
import type { Cpu } from "./cpu.js";

/** Per-CPU state of the boundary work. */
export class DebugState {
  /** icount at the boundary before the instruction that runs with RF = 1, or -1. */
  rfAt = -1;
}

/** Re-evaluate whether the loop must call debugBoundary (after RFLAGS or DR7 changes). */
export function updateDebugActive(c: Cpu): void {
  const active = (c.flagsBase & RF) !== 0;
  c.dbgActive = active;
  if (active) c.irqCheck = true;
}

/**
 * Called at an instruction boundary (before interrupts are checked) while dbgActive. RF set
 * by IRET (or by a VM entry) suppresses instruction breakpoints for one instruction and is
 * cleared once that instruction completes (SDM vol. 3, 18.3.1.1). Returns whether the loop
 * must call again at the next boundary.
 */
export function debugBoundary(c: Cpu): boolean {
  const d = c.debug;
  const now = c.icount;
  if ((c.flagsBase & RF) !== 0) {
    if (d.rfAt < 0 || d.rfAt === now) d.rfAt = now;
    else {
      c.flagsBase &= ~RF; // the instruction that ran with RF = 1 has completed
      d.rfAt = -1;
    }
  } else d.rfAt = -1;
  updateDebugActive(c);
  return c.dbgActive;
}

/** RFLAGS was loaded with RF = 1 (IRET, VM entry): RF lives until the next instruction completes. */
export function rfLoaded(c: Cpu): void {
  c.debug.rfAt = -1;
  c.dbgActive = true;
  c.irqCheck = true;
}
