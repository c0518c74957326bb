/** What every stack reports the same way: CPU and MMU counters, and the run result of a hypervisor stack. */
import type { CostLedger, LedgerLine } from "../cost/ledger.js";
import type { Cpu } from "../cpu/cpu.js";
import type { L0Hypervisor } from "../hypervisors/l0/l0.js";
import type { Vm } from "../hypervisors/l0/vm.js";
import type { BootProtocol } from "../machine/boot.js";
import { parseGuestOutput } from "../machine/results.js";
import { MC } from "../mmu/counters.js";
import { type EventCount, type ExitCount, flatCounters } from "../stats/run-stats.js";
import type { TimelineRecorder } from "../trace/timeline.js";
import type { StackOutcome, StackRunResult } from "./stack.js";

/** The CPU's counters (cpu.*) and the MMU model's (mmu.*: TLB hits/misses per level, walks, references). */
export function cpuCounters(cpu: Cpu): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(cpu.counters)) out[`cpu.${k}`] = v;
  out["cpu.instructions"] = cpu.icount;
  out["cpu.cycles"] = cpu.cycles();
  for (const [k, v] of Object.entries(cpu.mmu.toJSON())) out[`mmu.${k}`] = v;
  const dc = cpu.mmu.dataCache;
  if (dc !== null) {
    // Data-cache model: walk references and the data accesses that reached it (not MRU-filtered).
    const where = ["l1d", "l2", "llc", "dram"];
    for (let k = 0; k < 4; k++) {
      out[`dcache.walk_${where[k]}`] = dc.walkFound[k];
      out[`dcache.data_${where[k]}`] = dc.dataFound[k];
    }
  }
  return out;
}

/** Cycles and executed instructions by level (`level1.cycles`, `level2.instructions`, …) from a ledger. */
export function levelCounters(lines: readonly LedgerLine[], into: Record<string, number>): void {
  for (const l of lines) {
    into[`level${l.level}.cycles`] = (into[`level${l.level}.cycles`] ?? 0) + l.cycles;
    if (l.category === "guest" && l.reason === "instructions") into[`level${l.level}.instructions`] = l.count;
  }
}

/**
 * Give `run --trace`'s recorder the machine's simulated clock and its counter tracks (cumulative
 * TLB misses and page-walk references, sampled at exits), and hear every charge of `ledger`.
 * With an L0, also its run/exit core's events.
 */
export function bindTrace(trace: TimelineRecorder, cpu: Cpu, ledger: CostLedger, l0?: L0Hypervisor): void {
  trace.bind({
    clock: () => cpu.cycles(),
    counters: {
      "TLB misses": () => {
        const c = cpu.mmu.stats();
        return { stlb: c[MC.stlb_misses], itlb: c[MC.itlb_misses], dtlb: c[MC.dtlb_misses] };
      },
      "walk references": () => {
        const c = cpu.mmu.stats();
        return { guest: c[MC.walk_refs] - c[MC.ept_refs], ept: c[MC.ept_refs] };
      },
    },
  });
  if (l0 !== undefined) l0.attachTrace(trace);
  else ledger.observer = trace;
}

/** The EPT01 of an L0 VM, as events (family "l0.ept01": leaves, tables). */
export function ept01Events(vm: Vm): EventCount[] {
  return [
    { family: "l0.ept01", name: "leaves", count: vm.ept01.leaves },
    { family: "l0.ept01", name: "tables", count: vm.ept01.tables },
  ];
}

/** What a stack reports besides its machine counters: exits and events (structured). */
export interface RunStats {
  exits: ExitCount[];
  events: EventCount[];
}

/**
 * The result of a stack whose guest ran under L0: outcome, output, counters and the ledger (the
 * CPU attributed every retired instruction to its level at each VM entry and exit). `base` holds
 * the machine's counters (cpu, mmu, per level); the flat map adds the exits and events to it.
 */
export function hypervisorRunResult(
  stack: string,
  protocol: BootProtocol,
  cpu: Cpu,
  l0: L0Hypervisor,
  stop: StackOutcome,
  serial: string,
  base: Record<string, number>,
  stats: RunStats,
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
    counters: flatCounters(base, stats.exits, stats.events),
    exits: stats.exits,
    events: stats.events,
    ledger: l0.ledger.lines(),
    wallSeconds,
  };
}
