/**
 * The machine under every stack with an L0: a CPU with VMX and host RAM (L0's reserve, room to
 * align guest RAM's backing to the largest EPT01 leaf, and `guestRam`), and L0 on it in root
 * operation (level 0), with the run's cost profile, tunables and policy; a `--trace` recorder is
 * bound before any VM is made, so L0's set-up charges are on the timeline too.
 */
import { loadProfile } from "../cost/profile.js";
import { Cpu } from "../cpu/cpu.js";
import { jitOptions } from "../cpu/jit/options.js";
import { VmxHost } from "../cpu/vmx/host.js";
import { L0Hypervisor } from "../hypervisors/l0/l0.js";
import { eptLeafBytes, l0Policy, tunables } from "../machine/tunables.js";
import { PhysicalMemory } from "../mmu/phys.js";
import { bindTrace } from "./results.js";
import type { StackRunOptions } from "./stack.js";

export function l0Machine(opts: StackRunOptions, guestRam: number): { cpu: Cpu; l0: L0Hypervisor } {
  const profile = loadProfile(opts.profile);
  const t = tunables(opts.tunables);
  const policy = l0Policy(opts.l0);
  const cpu = new Cpu(new PhysicalMemory(t.l0Reserved + eptLeafBytes(policy) + guestRam));
  if (opts.jit !== undefined) cpu.setJit(jitOptions(opts.jit));
  const l0 = new L0Hypervisor(new VmxHost(cpu), profile, t, policy);
  // L0 runs in root operation (level 0); each VMCS names the level of the code it runs.
  cpu.setCostModel(profile.cycles, l0.ledger, 0);
  cpu.useDataCache(opts.cacheModel === false ? null : profile.caches); // L0 in root operation; the VMCS of each VM names its level
  if (opts.trace) bindTrace(opts.trace, cpu, l0.ledger, l0);
  return { cpu, l0 };
}
