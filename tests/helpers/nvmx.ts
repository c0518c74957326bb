/**
 * A test bed for L0's nested-VMX engine: host machine, L0, one L1 VM the engine offers VMX to,
 * and an L1 written in assembly (linked at physical 0x100000 and entered in 64-bit mode by the
 * direct boot, identity-mapped) run as L0's guest. Data pages for the L1: `L1_DATA` up.
 */
import { loadProfile } from "../../src/cost/profile.js";
import { Cpu } from "../../src/cpu/cpu.js";
import { VmxHost } from "../../src/cpu/vmx/host.js";
import { L0Hypervisor } from "../../src/hypervisors/l0/l0.js";
import { NestedVmxEngine, type NestedVmxOptions } from "../../src/hypervisors/l0/nested-vmx/index.js";
import { DEFAULT_TUNABLES, eptLeafBytes, type L0Policy, l0Policy } from "../../src/machine/tunables.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { loadGuest } from "../../src/stacks/vm.js";
import { asm } from "./asm.js";
import { elf64At1M } from "./elf.js";

const MIB = 1024 * 1024;
export const L1_MEMORY = 16 * MIB;
/** L1 physical pages the tests use: VMXON region, two VMCS12s, scratch results. */
export const L1_DATA = 0x300000;
export const VMXON_REGION = L1_DATA;
export const VMCS12_A = L1_DATA + 0x1000;
export const VMCS12_B = L1_DATA + 0x2000;
export const RESULTS = L1_DATA + 0x3000;

/** L0 + one VM with nested VMX enabled (unless `offerVmx` is false) + its vCPU, loaded with `source`. */
export function nvmxBed(
  source: string,
  offerVmx = true,
  options: NestedVmxOptions = { shadowVmcs: false },
  policy: Partial<L0Policy> = {},
) {
  const profile = loadProfile();
  const p = l0Policy(policy);
  const cpu = new Cpu(new PhysicalMemory(DEFAULT_TUNABLES.l0Reserved + eptLeafBytes(p) + L1_MEMORY));
  const l0 = new L0Hypervisor(new VmxHost(cpu), profile, { ...DEFAULT_TUNABLES }, p);
  cpu.setCostModel(profile.cycles, l0.ledger, 0);
  const engine = new NestedVmxEngine(l0, options);
  const vm = l0.createVm({ memory: L1_MEMORY });
  if (offerVmx) engine.enable(vm);
  const vcpu = l0.createVcpu(vm);
  loadGuest(l0, vcpu, { image: elf64At1M(asm(source)), cmdline: "", memory: L1_MEMORY, maxInstructions: 100_000 });
  const run = (budget = 100_000) => l0.runVcpu(vcpu, budget);
  const r32 = (gpa: number) => vm.memory.read32(gpa);
  return { l0, vm, vcpu, engine, run, r32 };
}

/** CR0.NE (VMX operation needs it, IA32_VMX_CR0_FIXED0) and CR4.VMXE. */
export const SET_CR_VMX = `
  mov rax, cr0
  or eax, 0x20
  mov cr0, rax
  mov rax, cr4
  or eax, 0x2000
  mov cr4, rax
`;

/**
 * L1 prologue: lock IA32_FEATURE_CONTROL with "VMXON outside SMX" (0 at reset, as the firmware or
 * kernel of a real L1 does: one WRMSR exit), then SET_CR_VMX.
 */
export const ENABLE_VMX = `
  mov ecx, 0x3a
  mov eax, 5
  xor edx, edx
  wrmsr
${SET_CR_VMX}`;
