/** What every stack reports the same way: CPU and MMU counters, and the run result of a hypervisor stack. */
import type { Cpu } from "../cpu/cpu.js";
import type { L0Hypervisor } from "../hypervisors/l0/l0.js";
import type { BootProtocol } from "../machine/boot.js";
import { parseGuestOutput } from "../machine/results.js";
import type { ExitCount, StackOutcome, StackRunResult } from "./stack.js";

/** The CPU's counters (cpu.*) and the MMU model's (mmu.*: TLB hits/misses per level, walks, references). */
export function cpuCounters(cpu: Cpu): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(cpu.counters)) out[`cpu.${k}`] = v;
  out["cpu.instructions"] = cpu.icount;
  out["cpu.cycles"] = cpu.cycles();
  for (const [k, v] of Object.entries(cpu.mmu.toJSON())) out[`mmu.${k}`] = v;
  return out;
}

/**
 * The result of a stack whose guest ran under L0: outcome, output, counters and the ledger (the
 * CPU attributed every retired instruction to its level at each VM entry and exit).
 */
export function hypervisorRunResult(
  stack: string,
  protocol: BootProtocol,
  cpu: Cpu,
  l0: L0Hypervisor,
  stop: StackOutcome,
  serial: string,
  counters: Record<string, number>,
  exits: ExitCount[],
  wallSeconds: number,
): StackRunResult {
  return {
    stack,
    protocol,
    outcome: stop,
    exitStatus: stop.kind === "debug-exit" ? (stop.status ?? null) : null,
    serial,
    guest: parseGuestOutput(serial),
    instructions: cpu.icount,
    cycles: cpu.cycles(),
    counters,
    exits,
    ledger: l0.ledger.lines(),
    wallSeconds,
  };
}
