/**
 * The `npv` stack: nested virtualization through the nested paravirtual L0↔L1 ABI
 * (docs/npv-abi.md, docs/stacks/npv.md). The host machine is a CPU with VMX and RAM; L0 runs an
 * L1 VM and offers it the npv ABI (its NpvEngine); L1 is a hypervisor written in TypeScript
 * (src/hypervisors/l1/) that creates an L2 by hypercall, loads the guest kernel into it through
 * the direct 64-bit boot, and runs it until L2 writes its debug-exit port. The outcome and exit
 * status are L2's.
 */

import { loadProfile } from "../cost/profile.js";
import { Cpu } from "../cpu/cpu.js";
import { jitOptions } from "../cpu/jit/options.js";
import { VmxHost } from "../cpu/vmx/host.js";
import { MemoryBlockBackend } from "../devices/block-backend.js";
import { L0Hypervisor } from "../hypervisors/l0/l0.js";
import { NpvEngine } from "../hypervisors/l0/npv/engine.js";
import { L1Hypervisor, type MapMode } from "../hypervisors/l1/hypervisor.js";
import { l0Platform } from "../hypervisors/l1/platform.js";
import { defaultProtocol, RAM_HOLE_START } from "../machine/boot.js";
import { ImageError } from "../machine/elf.js";
import { eptLeafBytes, l0Policy, tunables } from "../machine/tunables.js";
import { PhysicalMemory } from "../mmu/phys.js";
import { bindTrace, cpuCounters, hypervisorRunResult } from "./results.js";
import { type Stack, StackOptionError, type StackRunOptions, type StackRunResult } from "./stack.js";
import { watchRun } from "./watchdog.js";

/** L2's disk (as the vm stack gives its guest). */
const DISK_BYTES = 8 * 1024 * 1024;

function mapModeOf(opts: StackRunOptions): MapMode {
  return opts.npvMap ?? "demand";
}

export const npvStack: Stack = {
  name: "npv",
  description:
    "the guest kernel as an L2 run by an L1 hypervisor through the nested paravirtual L0↔L1 ABI (L0 builds EPT02 from L1's map)",
  run(opts: StackRunOptions): StackRunResult {
    const protocol = opts.protocol ?? defaultProtocol(opts.image);
    if (protocol !== "direct64")
      throw new ImageError("an npv L2 must boot through the direct 64-bit entry (an ELF64 image)");
    const profile = loadProfile(opts.profile);
    const t = tunables(opts.tunables);
    const l2Memory = Math.ceil(opts.memory / 4096) * 4096;
    if (l2Memory + t.l1OwnMemory > RAM_HOLE_START) {
      throw new StackOptionError(
        `the npv stack runs an L2 of at most ${(RAM_HOLE_START - t.l1OwnMemory) / 1048576} MiB (L1's RAM must fit below its MMIO hole)`,
      );
    }
    const l1Memory = l2Memory + t.l1OwnMemory;
    const policy = l0Policy(opts.l0);
    // Room to align L1's RAM backing to the largest EPT01 leaf (as THP needs).
    const hostMem = new PhysicalMemory(t.l0Reserved + eptLeafBytes(policy) + l1Memory);
    const cpu = new Cpu(hostMem);
    if (opts.jit !== undefined) cpu.setJit(jitOptions(opts.jit));
    const l0 = new L0Hypervisor(new VmxHost(cpu), profile, t, policy);
    // L0 runs in root operation (level 0); each VMCS names the level of the code it runs.
    cpu.setCostModel(profile.cycles, l0.ledger, 0);
    cpu.useDataCache(profile.caches);
    if (opts.trace) bindTrace(opts.trace, cpu, l0.ledger, l0);
    const engine = new NpvEngine(l0);
    const l1vm = l0.createVm({ memory: l1Memory });
    engine.attach(l1vm);
    const disk = new MemoryBlockBackend(DISK_BYTES);
    const backendId = engine.assignBackend(l1vm, disk);
    const l1vcpu = l0.createVcpu(l1vm);
    let serial = "";
    const decoder = new TextDecoder();
    const l1 = new L1Hypervisor(l0Platform(l0, l1vcpu), {
      image: opts.image,
      cmdline: opts.cmdline,
      l2Memory,
      mapMode: mapModeOf(opts),
      pool: { base: t.l1OwnMemory, size: l1Memory - t.l1OwnMemory },
      scratch: t.l1Scratch,
      faultBatchPages: t.faultBatchPages,
      disk: { backendId, size: disk.size, readOnly: disk.readOnly },
      serialInput: opts.serialInput,
      onSerial: (b) => {
        const s = decoder.decode(new Uint8Array([b]), { stream: true });
        serial += s;
        opts.onSerial?.(s);
      },
      maxInstructions: opts.maxInstructions,
      instructionsRetired: () => l0.host.instructionsRetired(),
    });
    const t0 = performance.now();
    const stop = watchRun(cpu, opts.maxCycles, () => {
      l1.boot();
      return l1.run();
    });
    const wallSeconds = (performance.now() - t0) / 1000;
    opts.trace?.finish();

    const counters = cpuCounters(cpu);
    // Every exit L0 took — L2's (on the engine's run loop) and L1's own (its VMCALLs and CPUIDs) —
    // is a VM-exit transition L0 charged; the ledger counts them by basic exit reason.
    const transitions = l0.ledger
      .lines()
      .filter((l) => l.level === 0 && l.category === "transition")
      .sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1));
    const exits = [
      ...transitions.map((t) => ({ level: 0, reason: t.reason, count: t.count })),
      ...[...l1.forwarded].sort((a, b) => b[1] - a[1]).map(([reason, count]) => ({ level: 1, reason, count })),
    ];
    for (const e of exits) counters[`exits.L${e.level}.${e.reason}`] = e.count;
    for (const [k, v] of Object.entries(engine.stats())) counters[k] = v;
    counters["l1.map.mode_eager"] = mapModeOf(opts) === "eager" ? 1 : 0;
    counters["l1.map.boot_pages"] = l1.bootPages;
    counters["l1.map.demand_pages"] = l1.demandPages;
    counters["l1.map.mapped_pages"] = l1.map.mappedPages;
    counters["l1.map.extents"] = l1.map.extentCount;
    counters["l1.pool.pages_in_use"] = l1.pool.inUse;
    counters["l1.blk.mediated"] = l1.blkMediated ? 1 : 0;
    counters["l1.blk.notifies_seen"] = l1.devices.notifiesSeen;
    counters["l1.blk.isr_reads"] = l1.isrReads;
    counters["l0.ept01.leaves"] = l1vm.ept01.leaves;
    counters["l0.ept01.tables"] = l1vm.ept01.tables;
    return hypervisorRunResult("npv", protocol, cpu, l0, stop, serial, counters, exits, wallSeconds);
  },
};
