/**
 * The `vm` stack: the guest kernel as a single-level VM under L0 (KVM-style, EPT, in-kernel
 * irqchip, QEMU-like userspace devices). The host machine is just a CPU with VMX and RAM: every
 * device the guest sees is L0's model.
 */

import { loadProfile } from "../cost/profile.js";
import { Cpu } from "../cpu/cpu.js";
import { jitOptions } from "../cpu/jit/options.js";
import { VmxHost } from "../cpu/vmx/host.js";
import { loadBootState } from "../hypervisors/l0/guest-boot.js";
import { L0Hypervisor, type Vcpu } from "../hypervisors/l0/l0.js";
import { defaultProtocol, loadImage } from "../machine/boot.js";
import { eptLeafBytes, l0Policy, tunables } from "../machine/tunables.js";
import { PhysicalMemory } from "../mmu/phys.js";
import { bindTrace, cpuCounters, hypervisorRunResult } from "./results.js";
import type { Stack, StackRunOptions, StackRunResult } from "./stack.js";
import { watchRun } from "./watchdog.js";

/** Prepare a guest the way QEMU does before KVM_RUN: load the image and set the vCPU's entry state. */
export function loadGuest(l0: L0Hypervisor, vcpu: Vcpu, opts: StackRunOptions): "multiboot" | "direct64" {
  const protocol = opts.protocol ?? defaultProtocol(opts.image);
  loadBootState(l0, vcpu, loadImage(protocol, opts.image, opts.cmdline, opts.memory, opts.modules).state);
  return protocol;
}

export const vmStack: Stack = {
  name: "vm",
  description: "the guest kernel as a VM under L0 (KVM-like, EPT, QEMU-like device models)",
  run(opts: StackRunOptions): StackRunResult {
    const profile = loadProfile(opts.profile);
    const t = tunables(opts.tunables);
    const policy = l0Policy(opts.l0);
    // Room to align guest RAM's backing to the largest EPT01 leaf (as THP needs).
    const hostMem = new PhysicalMemory(t.l0Reserved + eptLeafBytes(policy) + Math.ceil(opts.memory / 4096) * 4096);
    const cpu = new Cpu(hostMem);
    if (opts.jit !== undefined) cpu.setJit(jitOptions(opts.jit));
    const l0 = new L0Hypervisor(new VmxHost(cpu), profile, t, policy);
    cpu.setCostModel(profile.cycles, l0.ledger, 0);
    cpu.useDataCache(profile.caches); // L0 in root operation; its VM's VMCS says level 1
    // Bound before the VM is made, so the set-up charges (its host pages) are on the timeline too.
    if (opts.trace) bindTrace(opts.trace, cpu, l0.ledger, l0);
    let serial = "";
    const decoder = new TextDecoder();
    const vm = l0.createVm({
      memory: opts.memory,
      serialInput: opts.serialInput,
      onSerial: (b) => {
        const s = decoder.decode(new Uint8Array([b]), { stream: true });
        serial += s;
        opts.onSerial?.(s);
      },
    });
    const vcpu = l0.createVcpu(vm);
    const protocol = loadGuest(l0, vcpu, opts);
    const t0 = performance.now();
    const stop = watchRun(cpu, opts.maxCycles, () => l0.runVcpu(vcpu, opts.maxInstructions));
    const wallSeconds = (performance.now() - t0) / 1000;
    opts.trace?.finish();
    const counters = cpuCounters(cpu);
    const exits = Object.entries(l0.exitCounts()).map(([reason, count]) => ({ level: 0, reason, count }));
    for (const e of exits) counters[`exits.L0.${e.reason}`] = e.count;
    counters["l0.ept01.leaves"] = vm.ept01.leaves;
    counters["l0.ept01.tables"] = vm.ept01.tables;
    counters["l0.unassigned_accesses"] = vm.unassignedAccesses;
    return hypervisorRunResult("vm", protocol, cpu, l0, stop, serial, counters, exits, wallSeconds);
  },
};
