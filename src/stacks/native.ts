import { CostLedger } from "../cost/ledger.js";
import { loadProfile } from "../cost/profile.js";
import { CpuModel } from "../cpu/cpuid.js";
import { type BootProtocol, bootDirect64, bootMultiboot, defaultProtocol } from "../machine/boot.js";
import { Machine } from "../machine/machine.js";
import { parseGuestOutput } from "../machine/results.js";
import { tunables } from "../machine/tunables.js";
import { flatCounters } from "../stats/run-stats.js";
import { bindTrace, cpuCounters, type RunStats } from "./results.js";
import type { Stack, StackRunOptions, StackRunResult } from "./stack.js";
import { watchRun } from "./watchdog.js";

/** Collect a machine's counters under flat dotted names. */
export function machineCounters(m: Machine): Record<string, number> {
  const out = cpuCounters(m.cpu);
  out["mem.pagesTouched"] = m.mem.allocatedPages();
  return out;
}

/** A bare machine for a stack: serial output collected, the cost model bound with `levelRoot`. */
export interface BareMachine {
  m: Machine;
  ledger: CostLedger;
  serial(): string;
  /** Run to the end: the stack's result, with the machine's counters (`base`), exits and events. */
  run(
    stack: string,
    protocol: BootProtocol,
    report: (m: Machine) => RunStats & { base: Record<string, number> },
  ): StackRunResult;
}

export function bareMachine(
  opts: StackRunOptions,
  memory: number,
  levelRoot: number,
  cpuModel?: CpuModel,
): BareMachine {
  let serial = "";
  const decoder = new TextDecoder();
  const m = new Machine({
    memory,
    cpuModel,
    slice: tunables(opts.tunables).machineSlice,
    jit: opts.jit,
    serialInput: opts.serialInput,
    onSerial: (b) => {
      const s = decoder.decode(new Uint8Array([b]), { stream: true });
      serial += s;
      opts.onSerial?.(s);
    },
  });
  const profile = loadProfile(opts.profile);
  const ledger = new CostLedger();
  m.cpu.setCostModel(profile.cycles, ledger, levelRoot, levelRoot + 1);
  m.cpu.useDataCache(opts.cacheModel === false ? null : profile.caches);
  if (opts.trace) bindTrace(opts.trace, m.cpu, ledger);
  return {
    m,
    ledger,
    serial: () => serial,
    run(stack, protocol, report) {
      const t0 = performance.now();
      const outcome = watchRun(m.cpu, opts.maxCycles, () => m.run(opts.maxInstructions));
      const wallSeconds = (performance.now() - t0) / 1000;
      const idle = m.idleCycles;
      if (idle > 0) ledger.addMany(ledger.id(m.cpu.levelRoot, "idle", "hlt"), idle, 1);
      opts.trace?.finish();
      const { base, exits, events } = report(m);
      return {
        stack,
        protocol,
        outcome,
        exitStatus: m.exitStatus,
        serial,
        guest: parseGuestOutput(serial),
        instructions: m.cpu.icount,
        cycles: m.cpu.cycles(),
        counters: flatCounters(base, exits, events),
        exits,
        events,
        ledger: ledger.lines(),
        wallSeconds,
      };
    },
  };
}

/** The guest on the bare emulated machine: no hypervisor at all. */
export const nativeStack: Stack = {
  name: "native",
  description: "the guest kernel on the bare machine (no hypervisor)",
  run(opts: StackRunOptions): StackRunResult {
    const bm = bareMachine(opts, opts.memory, 0, new CpuModel({ vmx: opts.cpuVmx === true }));
    const m = bm.m;
    const protocol = opts.protocol ?? defaultProtocol(opts.image);
    if (protocol === "direct64") bootDirect64(m.cpu, opts.image, opts.cmdline);
    else bootMultiboot(m.cpu, opts.image, opts.cmdline, opts.modules);
    return bm.run("native", protocol, () => ({ base: machineCounters(m), exits: [], events: [] }));
  },
};
