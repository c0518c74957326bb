/**
 * The `vm` stack: the guest kernel as a single-level VM under L0 (KVM-style, EPT, in-kernel
 * irqchip, QEMU-like userspace devices). The host machine is just a CPU with VMX and RAM: every
 * device the guest sees is L0's model.
 */

import { loadBootState } from "../hypervisors/l0/guest-boot.js";
import type { L0Hypervisor, Vcpu } from "../hypervisors/l0/l0.js";
import { defaultProtocol, loadImage } from "../machine/boot.js";
import { exitsFrom, sortExits } from "../stats/run-stats.js";
import { l0Machine } from "./l0-machine.js";
import { cpuCounters, ept01Events, hypervisorRunResult } from "./results.js";
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
    // Every exit was taken by the VM's code (level 1) and handled by L0.
    const exits = sortExits(exitsFrom(l0.exits, 0), () => "first-seen");
    const events = [...ept01Events(vm), { family: "l0", name: "unassigned_accesses", count: vm.unassignedAccesses }];
    return hypervisorRunResult("vm", protocol, cpu, l0, stop, serial, cpuCounters(cpu), { exits, events }, wallSeconds);
  },
};
