/**
 * L0's Hyper-V hypercall interface (nested-vmx/hv-hypercall.ts) on its own, for what the VMX test
 * guest (64-bit) cannot reach: the convention of a caller outside 64-bit mode (input EDX:EAX,
 * input GPA EBX:ECX, result EDX:EAX), and that a zero guest OS ID leaves VMCALL to the VMX path.
 * The guest-driven checks are vmxtest's hyperv-flush group (tests/stacks/vmxtest-nvmx.test.ts).
 */
import { describe, expect, it } from "vitest";
import { loadProfile } from "../../src/cost/profile.js";
import { Cpu } from "../../src/cpu/cpu.js";
import { VmxHost } from "../../src/cpu/vmx/host.js";
import { L0Hypervisor } from "../../src/hypervisors/l0/l0.js";
import { NestedVmxEngine } from "../../src/hypervisors/l0/nested-vmx/index.js";
import { DEFAULT_TUNABLES } from "../../src/machine/tunables.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { UD } from "../../src/x86/exceptions.js";
import * as H from "../../src/x86/hyperv.js";
import { RAX, RBX, RCX, RDX } from "../../src/x86/registers.js";
import * as V from "../../src/x86/vmx.js";

const MIB = 1024 * 1024;
const INPUT = 0x200000;

/** An L1 vCPU in 32-bit protected mode at CPL 0 (EFER.LMA clear, CS.L clear), its VMCS current. */
function bed() {
  const profile = loadProfile();
  const cpu = new Cpu(new PhysicalMemory(DEFAULT_TUNABLES.l0Reserved + 16 * MIB));
  const l0 = new L0Hypervisor(new VmxHost(cpu), profile);
  cpu.setCostModel(profile.cycles, l0.ledger, 0);
  const engine = new NestedVmxEngine(l0, { shadowVmcs: false, evmcs: true });
  const vm = l0.createVm({ memory: 16 * MIB });
  engine.enable(vm);
  const vcpu = l0.createVcpu(vm);
  const h = l0.host;
  h.load(vcpu.vmcs);
  h.vmwrite(V.VMCS_GUEST_CR0, 0x11);
  h.vmwrite(V.VMCS_GUEST_IA32_EFER, 0);
  h.vmwrite(V.VMCS_GUEST_CS_AR, 0xc09b);
  h.vmwrite(V.VMCS_GUEST_SS_AR, 0xc093);
  h.vmwrite(V.VMCS_EXIT_INSTRUCTION_LENGTH, 3);
  h.vmwrite(V.VMCS_GUEST_RIP, 0x1000);
  return { l0, vm, vcpu, engine };
}

function call(b: ReturnType<typeof bed>, inputLo: number, inputHi: number, gpa: number, gpaHi = 0): [number, number] {
  const g = b.l0.host;
  g.gprLo[RAX] = inputLo;
  g.gprLo[RDX] = inputHi;
  g.gprLo[RCX] = gpa;
  g.gprLo[RBX] = gpaHi;
  expect(b.engine.guestHypercall(b.l0, b.vcpu)).not.toBe(-1);
  return [g.gprLo[RAX] >>> 0, g.gprLo[RDX] >>> 0];
}

describe("nvmx-evmcs: Hyper-V hypercalls from a 32-bit L1", () => {
  it("a zero guest OS ID: not a Hyper-V hypercall (VMCALL stays the VMX instruction)", () => {
    const b = bed();
    expect(b.engine.guestHypercall(b.l0, b.vcpu)).toBe(-1);
  });

  it("input in EDX:EAX and EBX:ECX, result in EDX:EAX; the VMCALL retires", () => {
    const b = bed();
    expect(b.engine.writeMsr(b.l0, b.vcpu, H.HV_MSR_GUEST_OS_ID, 1, 0)).toBe(true);
    b.vm.memory.write64(INPUT + 8, H.HV_FLUSH_ALL_PROCESSORS);
    // HvFlushVirtualAddressList, rep count 2 (EDX bits 11:0 = input bits 43:32).
    b.vm.memory.write64(INPUT + 24, 0x1000);
    b.vm.memory.write64(INPUT + 32, 0x2000);
    expect(call(b, H.HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST, 2, INPUT)).toEqual([H.HV_STATUS_SUCCESS, 2]);
    expect(b.l0.host.vmread(V.VMCS_GUEST_RIP)).toBe(0x1003);
    // Bit 31 of the input value is reserved (RSVD0 31:27): status 3, no reps.
    expect(call(b, H.HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE | 0x80000000, 0, INPUT)).toEqual([
      H.HV_STATUS_INVALID_HYPERCALL_INPUT,
      0,
    ]);
    // A hostile input GPA (2^64 - 8, beyond any RAM and beyond a double's integers): status 3.
    expect(call(b, H.HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE, 0, -8, -1)).toEqual([H.HV_STATUS_INVALID_HYPERCALL_INPUT, 0]);
    // A fast flush: reserved bits answer status 3 first (KVM's order); without them it is #UD
    // (no XMM input offered) and the VMCALL does not retire.
    expect(call(b, H.HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE | H.HV_HYPERCALL_FAST | 0x80000000, 0, 0)).toEqual([
      H.HV_STATUS_INVALID_HYPERCALL_INPUT,
      0,
    ]);
    const rip = b.l0.host.vmread(V.VMCS_GUEST_RIP);
    call(b, H.HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE | H.HV_HYPERCALL_FAST, 0, 0);
    expect(b.vcpu.pendingException).toBe(UD);
    expect(b.l0.host.vmread(V.VMCS_GUEST_RIP)).toBe(rip);
    const hv = b.engine.state(b.vcpu).hv;
    expect(hv?.counts.get("hypercalls.l1")).toBe(5);
    expect(hv?.counts.get("tlb_flushes")).toBe(1);
    expect(hv?.counts.get("failed")).toBe(3);
  });
});
