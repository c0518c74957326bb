import { CostLedger } from "../cost/ledger.js";
import { loadProfile } from "../cost/profile.js";
import { CpuModel } from "../cpu/cpuid.js";
import { bootDirect64, bootMultiboot, defaultProtocol } from "../machine/boot.js";
import { Machine } from "../machine/machine.js";
import { parseGuestOutput } from "../machine/results.js";
import { tunables } from "../machine/tunables.js";
import { bindTrace, cpuCounters } from "./results.js";
import type { Stack, StackRunOptions, StackRunResult } from "./stack.js";
import { watchRun } from "./watchdog.js";

/** Collect a machine's counters under flat dotted names. */
export function machineCounters(m: Machine): Record<string, number> {
  const out = cpuCounters(m.cpu);
  out["mem.pagesTouched"] = m.mem.allocatedPages();
  return out;
}

/** The guest on the bare emulated machine: no hypervisor at all. */
export const nativeStack: Stack = {
  name: "native",
  description: "the guest kernel on the bare machine (no hypervisor)",
  run(opts: StackRunOptions): StackRunResult {
    let serial = "";
    const decoder = new TextDecoder();
    const m = new Machine({
      memory: opts.memory,
      slice: tunables(opts.tunables).machineSlice,
      jit: opts.jit,
      cpuModel: new CpuModel({ vmx: opts.cpuVmx === true }),
      serialInput: opts.serialInput,
      onSerial: (b) => {
        const s = decoder.decode(new Uint8Array([b]), { stream: true });
        serial += s;
        opts.onSerial?.(s);
      },
    });
    const profile = loadProfile(opts.profile);
    const ledger = new CostLedger();
    m.cpu.setCostModel(profile.cycles, ledger, 0, 1);
    if (opts.trace) bindTrace(opts.trace, m.cpu, ledger);
    const protocol = opts.protocol ?? defaultProtocol(opts.image);
    if (protocol === "direct64") bootDirect64(m.cpu, opts.image, opts.cmdline);
    else bootMultiboot(m.cpu, opts.image, opts.cmdline, opts.modules);
    const t0 = performance.now();
    const outcome = watchRun(m.cpu, opts.maxCycles, () => m.run(opts.maxInstructions));
    const wallSeconds = (performance.now() - t0) / 1000;
    const idle = m.idleCycles;
    if (idle > 0) ledger.addMany(ledger.id(m.cpu.levelRoot, "idle", "hlt"), idle, 1);
    opts.trace?.finish();
    return {
      stack: "native",
      protocol,
      outcome,
      exitStatus: m.exitStatus,
      serial,
      guest: parseGuestOutput(serial),
      instructions: m.cpu.icount,
      cycles: m.cpu.cycles(),
      counters: machineCounters(m),
      exits: [],
      ledger: ledger.lines(),
      wallSeconds,
    };
  },
};
