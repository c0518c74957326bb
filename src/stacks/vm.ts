/**
 * The `vm` stack: the guest kernel as a single-level VM under L0 (KVM-style, EPT, in-kernel
 * irqchip, QEMU-like userspace devices). The host machine is just a CPU with VMX and RAM: every
 * device the guest sees is L0's model.
 */

import { loadProfile } from "../cost/profile.js";
import { Cpu } from "../cpu/cpu.js";
import { jitOptions } from "../cpu/jit/options.js";
import { newGuestContext, VmxHost } from "../cpu/vmx/host.js";
import { L0Hypervisor, type Vcpu } from "../hypervisors/l0/l0.js";
import { bootDirect64, bootMultiboot, defaultProtocol } from "../machine/boot.js";
import { PhysicalMemory } from "../mmu/phys.js";
import { cpuCounters, hypervisorRunResult } from "./results.js";
import type { Stack, StackRunOptions, StackRunResult } from "./stack.js";

/** Host RAM L0 keeps for itself (EPT tables, bitmaps) in addition to guest RAM. */
export const L0_RESERVED = 64 * 1024 * 1024;

/**
 * Prepare a guest the way QEMU does before KVM_RUN: load the image into guest RAM and set the
 * vCPU's registers. The loader runs against a scratch machine of the guest's size; its pages are
 * copied into the memslot's host backing and its CPU state captured into the VMCS.
 */
export function loadGuest(l0: L0Hypervisor, vcpu: Vcpu, opts: StackRunOptions): "multiboot" | "direct64" {
  const scratch = new Cpu(new PhysicalMemory(opts.memory));
  const protocol = opts.protocol ?? defaultProtocol(opts.image);
  if (protocol === "direct64") bootDirect64(scratch, opts.image, opts.cmdline);
  else bootMultiboot(scratch, opts.image, opts.cmdline);
  const vm = vcpu.vm;
  scratch.mem.forEachPage((pfn, page) => {
    const hpa = vm.memslots.translate(pfn * 4096);
    if (hpa >= 0) l0.cpu.mem.writeBytes(hpa, new Uint8Array(page.buffer, 0, 4096));
  });
  scratch.vmxUnit.saveGuestState(vcpu.vmcs);
  const ctx = newGuestContext();
  new VmxHost(scratch).saveContext(ctx);
  vcpu.ctx.lo.set(ctx.lo);
  vcpu.ctx.hi.set(ctx.hi);
  return protocol;
}

export const vmStack: Stack = {
  name: "vm",
  description: "the guest kernel as a VM under L0 (KVM-like, EPT, QEMU-like device models)",
  run(opts: StackRunOptions): StackRunResult {
    const profile = loadProfile(opts.profile);
    const hostMem = new PhysicalMemory(L0_RESERVED + Math.ceil(opts.memory / 4096) * 4096);
    const cpu = new Cpu(hostMem);
    if (opts.jit !== undefined) cpu.setJit(jitOptions(opts.jit));
    const l0 = new L0Hypervisor(cpu, profile, 0x100000);
    cpu.setCostModel(profile.cycles, l0.ledger, 0, 1); // the guest runs in non-root operation: level 1
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
    const stop = l0.runVcpu(vcpu, opts.maxInstructions);
    const wallSeconds = (performance.now() - t0) / 1000;
    const counters = cpuCounters(cpu);
    for (const [k, v] of Object.entries(l0.exitCounts())) counters[`exits.L0.${k}`] = v;
    counters["l0.ept01.leaves"] = vm.ept01.leaves;
    counters["l0.ept01.tables"] = vm.ept01.tables;
    return hypervisorRunResult("vm", protocol, cpu, l0, stop, serial, counters, wallSeconds);
  },
};
