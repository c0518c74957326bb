/**
 * Hyper-V's enlightened VMCS on L0's side (`nvmx-evmcs`: nested-vmx/evmcs.ts, hyperv.ts): the
 * CPUID leaves an L1 sees, the synthetic MSRs (VP assist page bits), the capability MSRs without
 * the VMX-preemption timer, and the clean-field rule of the TLFS — L0 copies from the eVMCS only
 * the groups whose hv_clean_fields bit L1 cleared, so a change L1 makes to a field of a group it
 * left clean is not seen by L0 (exactly what the TLFS allows L0 to do).
 */
import { describe, expect, it } from "vitest";
import { loadProfile } from "../../src/cost/profile.js";
import { Cpu } from "../../src/cpu/cpu.js";
import { VmxHost } from "../../src/cpu/vmx/host.js";
import { L0Hypervisor } from "../../src/hypervisors/l0/l0.js";
import { EnlightenedVmcs, enlightenedVmentry, isClean } from "../../src/hypervisors/l0/nested-vmx/evmcs.js";
import { EVMCS_FIELDS } from "../../src/hypervisors/l0/nested-vmx/evmcs-layout.js";
import { NestedVmxEngine } from "../../src/hypervisors/l0/nested-vmx/index.js";
import { Vmcs12Cache } from "../../src/hypervisors/l0/nested-vmx/vmcs12.js";
import { DEFAULT_TUNABLES } from "../../src/machine/tunables.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import * as H from "../../src/x86/hyperv.js";
import * as MSR from "../../src/x86/msr.js";
import * as V from "../../src/x86/vmx.js";
import * as C from "../../src/x86/vmx-controls.js";

const MIB = 1024 * 1024;
const EVMCS = 0x300000;
const VP_ASSIST = 0x301000;

function bed(evmcs = true) {
  const profile = loadProfile();
  const cpu = new Cpu(new PhysicalMemory(DEFAULT_TUNABLES.l0Reserved + 16 * MIB));
  const l0 = new L0Hypervisor(new VmxHost(cpu), profile);
  cpu.setCostModel(profile.cycles, l0.ledger, 0);
  const engine = new NestedVmxEngine(l0, { shadowVmcs: false, evmcs });
  const vm = l0.createVm({ memory: 16 * MIB });
  engine.enable(vm);
  const vcpu = l0.createVcpu(vm);
  return { l0, vm, vcpu, engine };
}

const offset = (field: number) => (EVMCS_FIELDS.find(([f]) => f === field) as readonly number[])[1];

describe("nvmx-evmcs: what L0 advertises", () => {
  it("CPUID 0x40000000–0x4000000A: Microsoft Hv, Hv#1, the VP assist privilege, flush and eVMCS recommended, version 1, the direct flush and the MSR bitmap", () => {
    const { vm } = bed();
    const q = (leaf: number) => {
      const o = new Int32Array(4);
      vm.cpuid.query(leaf, 0, o);
      return [...o].map((x) => x >>> 0);
    };
    const text = (r: number[]) =>
      r
        .slice(1)
        .map((x) => String.fromCharCode(x & 0xff, (x >>> 8) & 0xff, (x >>> 16) & 0xff, x >>> 24))
        .join("");
    expect(q(0x40000000)[0]).toBe(0x4000000a);
    expect(text(q(0x40000000))).toBe("Microsoft Hv");
    expect(q(0x40000001)).toEqual([0x31237648, 0, 0, 0]);
    // AccessIntrCtrlRegs (bit 4, covers HV_X64_MSR_VP_ASSIST_PAGE) and AccessHypercallMsrs (bit 5).
    expect(q(0x40000003)[0]).toBe(0x30);
    // Remote TLB flush (bit 2), sparse processor sets (bit 11), EnlightenedVmcsRecommended (bit 14);
    // EBX: spinlock retries never.
    expect(q(0x40000004)).toEqual([0x4804, 0xffffffff, 0, 0]);
    // eVMCS versions 1..1 (bits 7:0 and 15:8), the direct flush (bit 17) and the enlightened MSR
    // bitmap (bit 19); no nested guest-mapping flush (bit 18).
    expect(q(0x4000000a)).toEqual([0xa0101, 0, 0, 0]);
    // CPUID.1: still VMX and the hypervisor bit.
    expect((q(1)[2] >>> 5) & 1).toBe(1);
    expect(q(1)[2] >>> 31).toBe(1);
  });

  it("without the variant: KVM's signature, no Hyper-V MSRs (#GP)", () => {
    const { vm, engine, l0, vcpu } = bed(false);
    const o = new Int32Array(4);
    vm.cpuid.query(0x40000000, 0, o);
    expect(o[1]).toBe(0x4b4d564b); // "KVMK"
    expect(engine.readMsr(l0, vcpu, H.HV_MSR_VP_ASSIST_PAGE)).toBeNull();
    expect(engine.writeMsr(l0, vcpu, H.HV_MSR_VP_ASSIST_PAGE, VP_ASSIST | 1, 0)).toBe(false);
  });

  it("the VMX-preemption timer and its save control are not offered (the eVMCS has no timer value)", () => {
    const { engine, l0, vcpu } = bed();
    const plain = bed(false);
    const pin = engine.readMsr(l0, vcpu, MSR.MSR_IA32_VMX_TRUE_PINBASED_CTLS) as [number, number];
    const pin0 = plain.engine.readMsr(plain.l0, plain.vcpu, MSR.MSR_IA32_VMX_TRUE_PINBASED_CTLS) as [number, number];
    expect(pin0[1] & C.PIN_PREEMPTION_TIMER).toBe(C.PIN_PREEMPTION_TIMER);
    expect(pin[1]).toBe(pin0[1] & ~C.PIN_PREEMPTION_TIMER);
    const exit = engine.readMsr(l0, vcpu, MSR.MSR_IA32_VMX_TRUE_EXIT_CTLS) as [number, number];
    expect(exit[1] & C.EXIT_SAVE_PREEMPTION_TIMER).toBe(0);
  });
});

describe("nvmx-evmcs: the synthetic MSRs", () => {
  it("VP assist page: bit 0 enables, bits 63:12 are the GPA; a page outside RAM is #GP", () => {
    const { engine, l0, vcpu, vm } = bed();
    const s = engine.state(vcpu);
    expect(engine.readMsr(l0, vcpu, H.HV_MSR_VP_ASSIST_PAGE)).toEqual([0, 0]);
    expect(engine.writeMsr(l0, vcpu, H.HV_MSR_VP_ASSIST_PAGE, VP_ASSIST, 0)).toBe(true);
    expect(s.hv?.vpAssistGpa).toBe(-1); // written but not enabled
    expect(engine.writeMsr(l0, vcpu, H.HV_MSR_VP_ASSIST_PAGE, VP_ASSIST | 1, 0)).toBe(true);
    expect(s.hv?.vpAssistGpa).toBe(VP_ASSIST);
    expect(engine.readMsr(l0, vcpu, H.HV_MSR_VP_ASSIST_PAGE)).toEqual([VP_ASSIST | 1, 0]);
    expect(engine.writeMsr(l0, vcpu, H.HV_MSR_VP_ASSIST_PAGE, 0, 1)).toBe(true); // disabled: any GPA
    expect(s.hv?.vpAssistGpa).toBe(-1);
    expect(engine.writeMsr(l0, vcpu, H.HV_MSR_VP_ASSIST_PAGE, 1, 1)).toBe(false); // 4 GiB: not L1 RAM
    // enlighten_vmentry (offset 40) and current_nested_vmcs (offset 48) of the TLFS layout.
    engine.writeMsr(l0, vcpu, H.HV_MSR_VP_ASSIST_PAGE, VP_ASSIST | 1, 0);
    vm.memory.write64(VP_ASSIST + 48, EVMCS);
    expect(enlightenedVmentry(vm.memory, VP_ASSIST)).toBe(-1);
    vm.memory.write32(VP_ASSIST + 40, 1);
    expect(enlightenedVmentry(vm.memory, VP_ASSIST)).toBe(EVMCS);
  });

  it("the hypercall page needs a guest OS ID first (TLFS 3.13), then holds VMCALL; RET", () => {
    const { engine, l0, vcpu, vm } = bed();
    expect(engine.writeMsr(l0, vcpu, H.HV_MSR_HYPERCALL, 0x302001, 0)).toBe(false);
    expect(engine.writeMsr(l0, vcpu, H.HV_MSR_GUEST_OS_ID, 1, 0x81000000)).toBe(true);
    expect(engine.readMsr(l0, vcpu, H.HV_MSR_GUEST_OS_ID)).toEqual([1, 0x81000000 | 0]);
    expect(engine.writeMsr(l0, vcpu, H.HV_MSR_HYPERCALL, 0x302001, 0)).toBe(true);
    expect(vm.memory.read32(0x302000)).toBe(0xc3c1010f);
    expect(engine.writeMsr(l0, vcpu, 0x40000070, 0, 0)).toBe(false); // HV_X64_MSR_EOI: not offered
  });
});

describe("nvmx-evmcs: clean fields (TLFS: L0 may skip a group whose clean bit is set)", () => {
  function mapped() {
    const b = bed();
    const mem = b.vm.memory;
    mem.write32(EVMCS, H.EVMCS_VERSION);
    mem.write64(EVMCS + offset(V.VMCS_GUEST_CR3), 0x1000);
    mem.write64(EVMCS + offset(V.VMCS_GUEST_RIP), 0x2000);
    mem.write32(EVMCS + offset(V.VMCS_PROC_BASED_CONTROLS), 0x80);
    mem.write32(EVMCS + offset(V.VMCS_GUEST_CS_SELECTOR), 0xabcd0010); // a u16: the next field's bytes ignored
    const e = new EnlightenedVmcs();
    const c = new Vmcs12Cache();
    expect(e.map(b.l0, b.vcpu, mem, EVMCS, c)).toBe(true);
    return { ...b, mem, e, c };
  }

  it("a newly mapped eVMCS is copied whole whatever its clean bits say", () => {
    const { mem, e, c, l0 } = mapped();
    mem.write32(EVMCS + H.EVMCS_HV_CLEAN_FIELDS, 0xffff);
    e.toVmcs12(l0, mem, c);
    expect(c.getNumber(V.VMCS_GUEST_CR3)).toBe(0x1000);
    expect(c.getNumber(V.VMCS_GUEST_RIP)).toBe(0x2000);
    expect(c.get32(V.VMCS_PROC_BASED_CONTROLS)).toBe(0x80);
    expect(c.get32(V.VMCS_GUEST_CS_SELECTOR)).toBe(0x10);
    expect([e.counts.get("fields_copied_in"), e.counts.get("fields_skipped_clean")]).toEqual([EVMCS_FIELDS.length, 0]);
  });

  it("a change in a clean group is not seen; clearing the group's bit makes it seen; GUEST_RIP (no group) always is", () => {
    const { mem, e, c, l0 } = mapped();
    e.toVmcs12(l0, mem, c);
    e.markClean(mem);
    expect(mem.read32(EVMCS + H.EVMCS_HV_CLEAN_FIELDS)).toBe(0xffff);
    // L1 changes GUEST_CR3 (group CRDR) and GUEST_RIP with plain stores, clearing no bit.
    mem.write64(EVMCS + offset(V.VMCS_GUEST_CR3), 0x5000);
    mem.write64(EVMCS + offset(V.VMCS_GUEST_RIP), 0x6000);
    e.toVmcs12(l0, mem, c);
    expect(c.getNumber(V.VMCS_GUEST_CR3)).toBe(0x1000);
    expect(c.getNumber(V.VMCS_GUEST_RIP)).toBe(0x6000);
    // The fields without a group: GUEST_RIP, TPR threshold and the exit information are copied.
    const always = EVMCS_FIELDS.filter(([, , , g]) => g === H.CLEAN_NONE).length;
    expect(e.counts.get("fields_copied_in")).toBe(EVMCS_FIELDS.length + always);
    // Now L1 clears CRDR's bit (as its vmcs_write does): the group is copied, the rest skipped.
    mem.write32(EVMCS + H.EVMCS_HV_CLEAN_FIELDS, 0xffff & ~H.CLEAN_CRDR);
    e.toVmcs12(l0, mem, c);
    expect(c.getNumber(V.VMCS_GUEST_CR3)).toBe(0x5000);
    const crdr = EVMCS_FIELDS.filter(([, , , g]) => g === H.CLEAN_CRDR).length;
    expect(crdr).toBe(8);
    // ... and the fields without a TLFS group (KVM: ALL), dirty as soon as any bit is clear.
    const all = EVMCS_FIELDS.filter(([, , , g]) => g === H.CLEAN_ALL).length;
    expect(all).toBe(6);
    expect(e.counts.get("fields_copied_in")).toBe(EVMCS_FIELDS.length + 2 * always + crdr + all);
  });

  it("fields the TLFS gives no group (KVM: ALL) are clean only when every bit is", () => {
    expect(isClean(H.CLEAN_ALL, 0xffff)).toBe(true);
    expect(isClean(H.CLEAN_ALL, 0xffff & ~H.CLEAN_IO_BITMAP)).toBe(false);
    expect(isClean(H.CLEAN_NONE, 0xffff)).toBe(false);
    expect(isClean(H.CLEAN_CRDR, H.CLEAN_CRDR)).toBe(true);
  });

  it("the enlightened MSR bitmap: L0 skips the merge only with the enlightenment on and its group clean", () => {
    const { mem, e, c, l0 } = mapped();
    mem.write32(EVMCS + H.EVMCS_HV_ENLIGHTENMENTS_CONTROL, H.EVMCS_ENLIGHTEN_MSR_BITMAP);
    e.toVmcs12(l0, mem, c);
    expect(e.msrBitmapClean).toBe(false); // first copy: whole
    e.markClean(mem);
    e.toVmcs12(l0, mem, c);
    expect(e.msrBitmapClean).toBe(true);
    mem.write32(EVMCS + H.EVMCS_HV_CLEAN_FIELDS, 0xffff & ~H.CLEAN_MSR_BITMAP);
    e.toVmcs12(l0, mem, c);
    expect(e.msrBitmapClean).toBe(false);
    mem.write32(EVMCS + H.EVMCS_HV_CLEAN_FIELDS, 0xffff);
    mem.write32(EVMCS + H.EVMCS_HV_ENLIGHTENMENTS_CONTROL, 0);
    e.toVmcs12(l0, mem, c);
    expect(e.msrBitmapClean).toBe(false);
  });

  it("after a reflected exit L0 writes guest state and exit information into the eVMCS; after a VMfail only the error", () => {
    const { mem, e, c, l0 } = mapped();
    c.write(V.VMCS_EXIT_REASON, V.EXIT_CPUID, 0);
    c.write(V.VMCS_GUEST_RSP, 0x7000, 0);
    c.write(V.VMCS_HOST_RIP, 0x8000, 0); // host state: L1's own, never written back
    e.fromVmcs12(l0, mem, c, true);
    expect(mem.read32(EVMCS + offset(V.VMCS_EXIT_REASON))).toBe(V.EXIT_CPUID);
    expect(mem.read64(EVMCS + offset(V.VMCS_GUEST_RSP))).toBe(0x7000);
    expect(mem.read64(EVMCS + offset(V.VMCS_HOST_RIP))).toBe(0);
    const out = e.counts.get("fields_copied_out");
    c.write(V.VMCS_VM_INSTRUCTION_ERROR, V.VMXERR_ENTRY_INVALID_CONTROLS, 0);
    c.write(V.VMCS_EXIT_REASON, 0, 0);
    e.fromVmcs12(l0, mem, c, false);
    expect(mem.read32(EVMCS + offset(V.VMCS_VM_INSTRUCTION_ERROR))).toBe(V.VMXERR_ENTRY_INVALID_CONTROLS);
    expect(mem.read32(EVMCS + offset(V.VMCS_EXIT_REASON))).toBe(V.EXIT_CPUID);
    expect(e.counts.get("fields_copied_out") - out).toBe(1);
  });

  it("an eVMCS of another version, or outside RAM, is refused", () => {
    const { l0, vcpu, vm } = bed();
    const e = new EnlightenedVmcs();
    const c = new Vmcs12Cache();
    vm.memory.write32(EVMCS, 2);
    expect(e.map(l0, vcpu, vm.memory, EVMCS, c)).toBe(false);
    expect(e.map(l0, vcpu, vm.memory, 64 * MIB, c)).toBe(false);
    expect(e.gpa).toBe(-1);
  });
});
