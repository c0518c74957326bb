/**
 * The nested-engine registry: what an engine claims reaches it through L0's one exit path
 * (hypercall ranges, VMX-instruction exits, writes to tracked pages), and nothing else does.
 * Exits are synthesized into the L1 vCPU's VMCS (as the npv test driver's VMCALLs are) and go
 * through `handleExit`, the path every exit takes.
 */
import { describe, expect, it } from "vitest";
import { loadProfile } from "../../src/cost/profile.js";
import { Cpu } from "../../src/cpu/cpu.js";
import { VmxHost } from "../../src/cpu/vmx/host.js";
import { handleExit } from "../../src/hypervisors/l0/core.js";
import type { NestedEngine } from "../../src/hypervisors/l0/engine.js";
import { L0Hypervisor } from "../../src/hypervisors/l0/l0.js";
import { NpvEngine } from "../../src/hypervisors/l0/npv/engine.js";
import { type GuestVcpu, HANDLED } from "../../src/hypervisors/l0/vcpu.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { UD } from "../../src/x86/exceptions.js";
import * as V from "../../src/x86/vmx.js";
import { EPT_QUAL_READ, EPT_QUAL_WRITE } from "../../src/x86/vmx-controls.js";

function bed() {
  const l0 = new L0Hypervisor(new VmxHost(new Cpu(new PhysicalMemory(80 * 1024 * 1024))), loadProfile());
  const vm = l0.createVm({ memory: 8 * 1024 * 1024 });
  const vcpu = l0.createVcpu(vm);
  l0.load(vcpu);
  return { l0, vm, vcpu };
}

class Recorder implements NestedEngine {
  readonly calls: string[] = [];
  constructor(readonly name: string) {}
  reflect(): number {
    this.calls.push("reflect");
    return -1;
  }
  handledInL0(): void {}
  hypercall(l0: L0Hypervisor, _v: GuestVcpu): boolean {
    this.calls.push(`hypercall ${l0.host.gprLo[0]}`);
    l0.host.gprLo[0] = 0;
    return true;
  }
  servesVmx(): boolean {
    return true;
  }
  vmxInstruction(_l0: L0Hypervisor, _v: GuestVcpu, reason: number): number {
    this.calls.push(`vmx ${reason}`);
    return HANDLED;
  }
  trackedWrite(_l0: L0Hypervisor, _v: GuestVcpu, gpa: number): number {
    this.calls.push(`tracked 0x${gpa.toString(16)}`);
    return HANDLED;
  }
}

describe("nested-engine registry", () => {
  it("npv registers itself with its hypercall range; an overlapping claim is refused", () => {
    const { l0 } = bed();
    const npv = new NpvEngine(l0);
    expect(l0.engines.forHypercall(0x100)).toBe(npv);
    expect(l0.engines.forHypercall(0x1ff)).toBe(npv);
    expect(l0.engines.forHypercall(0x200)).toBeNull();
    expect(() => l0.engines.register(new Recorder("x"), { hypercalls: { first: 0x180, last: 0x280 } })).toThrow(
      /overlap npv/,
    );
    expect(() => l0.engines.register(npv)).toThrow(/already registered/);
  });

  it("a claimed hypercall reaches its engine; an unclaimed one is answered -KVM_ENOSYS", () => {
    const { l0, vcpu } = bed();
    const e = new Recorder("rec");
    l0.engines.register(e, { hypercalls: { first: 0x300, last: 0x30f } });
    expect(l0.guestHypercall(vcpu, 0x305).status).toBe(0);
    expect(e.calls).toEqual(["hypercall 773"]);
    expect(l0.guestHypercall(vcpu, 0x310).status).toBe(-1000);
    expect(e.calls).toHaveLength(1);
    expect(l0.exitCounts().vmcall).toBe(2);
  });

  it("VMX-instruction exits go to the engine that serves VMX, else #UD", () => {
    const a = bed();
    a.l0.host.synthesizeExit(V.EXIT_VMXON, 4);
    expect(handleExit(a.l0, a.vcpu)).toBe(HANDLED);
    expect(a.vcpu.pendingException).toBe(UD);
    const b = bed();
    const e = new Recorder("nvmx");
    b.l0.engines.register(e);
    b.l0.host.synthesizeExit(V.EXIT_VMPTRLD, 4);
    expect(handleExit(b.l0, b.vcpu)).toBe(HANDLED);
    expect(e.calls).toEqual([`vmx ${V.EXIT_VMPTRLD}`]);
    expect(b.vcpu.pendingException).toBe(-1);
  });

  it("a tracked page is mapped without write permission; a write to it goes to the engine", () => {
    const { l0, vm, vcpu } = bed();
    const e = new Recorder("tracker");
    l0.engines.register(e);
    const eptExit = (gpa: number, qual: number): number => {
      l0.host.synthesizeExit(V.EXIT_EPT_VIOLATION, 0);
      l0.host.vmwrite(V.VMCS_GUEST_PHYSICAL_ADDRESS, gpa);
      l0.host.vmwrite(V.VMCS_EXIT_QUALIFICATION, qual);
      return handleExit(l0, vcpu);
    };
    // Mapped RWX on a first touch, then tracked: write permission goes at once.
    expect(eptExit(0x5000, EPT_QUAL_WRITE)).toBe(HANDLED);
    expect(vm.ept01.lookup(0x5000)?.perms).toBe(7);
    l0.engines.trackPage(l0, vm, 0x5010, e);
    expect(vm.ept01.lookup(0x5000)?.perms).toBe(5);
    expect(eptExit(0x5010, EPT_QUAL_WRITE)).toBe(HANDLED);
    expect(e.calls).toEqual(["tracked 0x5010"]);
    // Tracked before its first touch: a read maps it read/execute only.
    l0.engines.trackPage(l0, vm, 0x7000, e);
    expect(eptExit(0x7000, EPT_QUAL_READ)).toBe(HANDLED);
    expect(vm.ept01.lookup(0x7000)?.perms).toBe(5);
    expect(e.calls).toHaveLength(1);
    l0.engines.untrackPage(vm, 0x7000);
    expect(eptExit(0x7000, EPT_QUAL_WRITE)).toBe(HANDLED);
    expect(vm.ept01.lookup(0x7000)?.perms).toBe(7);
  });
});
