/**
 * The `vm` stack: the guest kernel as a single-level VM under L0 (KVM-style, EPT, in-kernel
 * irqchip, QEMU-like userspace devices). The host machine is just a CPU with VMX and RAM: every
 * device the guest sees is L0's model.
 */

import { loadBootState } from "../hypervisors/l0/guest-boot.js";
import type { L0Hypervisor, Vcpu } from "../hypervisors/l0/l0.js";
import { defaultProtocol, loadImage } from "../machine/boot.js";
import { l0Machine } from "./l0-machine.js";
import { cpuCounters, hypervisorRunResult } from "./results.js";
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
    // L0's VM's VMCS says level 1. Guest RAM's backing is aligned to the largest EPT01 leaf.
    const { cpu, l0 } = l0Machine(opts, Math.ceil(opts.memory / 4096) * 4096);
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
