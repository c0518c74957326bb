/**
 * L0's nested-VMX engine, instruction by instruction: an L1 written in assembly runs as L0's
 * guest and executes VMXON, VMPTRLD, VMREAD, VMWRITE… for real; each exits to L0 (the CPU fills
 * the instruction information), L0 emulates it against the VMCS12 in L1's memory, and the L1
 * records RFLAGS after each so VMsucceed / VMfailInvalid / VMfailValid can be checked, with the
 * VM-instruction error numbers, and the exact exit counts.
 */
import { describe, expect, it } from "vitest";
import { cr4AllowedBy } from "../../src/cpu/cpuid.js";
import { handleExit } from "../../src/hypervisors/l0/core.js";
import { VMCS12_REVISION, vmxMsr } from "../../src/hypervisors/l0/nested-vmx/caps.js";
import { FeatureControl } from "../../src/hypervisors/l0/nested-vmx/feature-control.js";
import {
  FIELDS,
  VMCS12_FIELDS_OFFSET,
  VMCS12_LAUNCH_STATE_OFFSET,
} from "../../src/hypervisors/l0/nested-vmx/vmcs12.js";
import { HANDLED } from "../../src/hypervisors/l0/vcpu.js";
import { GP, UD } from "../../src/x86/exceptions.js";
import { CF, ZF } from "../../src/x86/flags.js";
import { RAX, RCX, RDX } from "../../src/x86/registers.js";
import * as V from "../../src/x86/vmx.js";
import { HAVE_AS } from "../helpers/asm.js";
import { ENABLE_VMX, nvmxBed, RESULTS, SET_CR_VMX, VMCS12_A, VMCS12_B } from "../helpers/nvmx.js";

const EXIT_DEBUG = `
  mov al, 0
  out 0xf4, al
`;

/** Offset of a field in the VMCS12 layout. */
function fieldAt(enc: number): number {
  const i = FIELDS.indexOf(enc);
  if (i < 0) throw new Error(`field 0x${enc.toString(16)} not in VMCS12`);
  return VMCS12_FIELDS_OFFSET + 8 * i;
}

describe.skipIf(!HAVE_AS)("nested VMX offered to an L1", () => {
  it("CPUID shows VMX, CR4.VMXE lands in the shadow, FEATURE_CONTROL as L1 locked it, the capability MSRs from caps.ts", () => {
    const b = nvmxBed(`
      ${ENABLE_VMX}
      mov rax, cr4
      mov qword ptr [${RESULTS}], rax
      mov ecx, 0x3a
      rdmsr
      mov dword ptr [${RESULTS + 8}], eax
      mov ecx, 0x480
      rdmsr
      mov dword ptr [${RESULTS + 16}], eax
      mov dword ptr [${RESULTS + 20}], edx
      mov ecx, 0x48b
      rdmsr
      mov dword ptr [${RESULTS + 24}], eax
      mov dword ptr [${RESULTS + 28}], edx
      mov ecx, 0x489
      rdmsr
      mov dword ptr [${RESULTS + 32}], eax
      ${EXIT_DEBUG}
    `);
    const stop = b.run();
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.r32(RESULTS) & 0x2000).toBe(0x2000); // L1 reads CR4.VMXE set
    expect(b.l0.host.withVmcs(b.vcpu.vmcs, () => b.l0.host.vmread(V.VMCS_GUEST_CR4)) & 0x2000).toBe(0); // hardware CR4 without it
    expect(b.r32(RESULTS + 8)).toBe(5); // locked by ENABLE_VMX, VMX outside SMX
    expect(b.r32(RESULTS + 16)).toBe(VMCS12_REVISION);
    const cr4Fixed1 = new Int32Array(2);
    expect(vmxMsr(0x489, cr4AllowedBy(b.vm.cpuid), cr4Fixed1)).toBe(true);
    expect(b.r32(RESULTS + 32)).toBe(cr4Fixed1[0] >>> 0);
    expect(b.r32(RESULTS + 32) & 0x2000).toBe(0x2000);
    const basic = new Int32Array(2);
    expect(vmxMsr(0x480, 0, basic)).toBe(true);
    expect(b.r32(RESULTS + 20)).toBe(basic[1] >>> 0);
    const ctls2 = new Int32Array(2);
    expect(vmxMsr(0x48b, 0, ctls2)).toBe(true);
    expect([b.r32(RESULTS + 24), b.r32(RESULTS + 28)]).toEqual([ctls2[0] >>> 0, ctls2[1] >>> 0]);
    expect((b.r32(RESULTS + 28) & 0x2) !== 0).toBe(true); // EPT offered to L1
    // ENABLE_VMX's WRMSR locking IA32_FEATURE_CONTROL is the one WRMSR exit.
    expect(b.l0.exitCounts()).toEqual({
      wrmsr: 1,
      rdmsr: 4,
      cr_access: 1,
      ept_violation: expect.any(Number),
      io_instruction: 1,
    });
    expect(b.l0.guestCpuid(b.vcpu, 1)[2] & (1 << 5)).toBe(1 << 5);
  });

  it("IA32_FEATURE_CONTROL: 0 at reset, writable until locked, then #GP; VMXON #GP until locked with VMX outside SMX", () => {
    const b = nvmxBed(`${SET_CR_VMX}\n${EXIT_DEBUG}`);
    expect(b.run().kind).toBe("debug-exit");
    const h = b.l0.host;
    b.l0.load(b.vcpu);
    /** One synthesized exit of L1 (RCX, EDX:EAX as given): "GP" when L0 injected #GP(0), else EAX. */
    const exit = (reason: number, len: number, eax = 0, edx = 0): number | string => {
      h.gprLo[RCX] = 0x3a;
      h.gprLo[RAX] = eax;
      h.gprLo[RDX] = edx;
      h.synthesizeExit(reason, len);
      expect(handleExit(b.l0, b.vcpu)).toBe(HANDLED);
      const gp = b.vcpu.pendingException === GP && b.vcpu.pendingExceptionError === 0;
      b.vcpu.pendingException = -1;
      return gp ? "GP" : h.gprLo[RAX] >>> 0;
    };
    const [rd, wr, vmxon] = [V.EXIT_RDMSR, V.EXIT_WRMSR, V.EXIT_VMXON];
    expect(exit(rd, 2)).toBe(0); // reset value
    expect(exit(vmxon, 4)).toBe("GP"); // not locked (SDM 23.7; KVM handle_vmxon)
    expect(exit(wr, 2, 4)).toBe(4); // VMX outside SMX, unlocked: accepted
    expect(exit(rd, 2)).toBe(4);
    expect(exit(vmxon, 4)).toBe("GP"); // enabled but not locked
    expect(exit(wr, 2, 8)).toBe("GP"); // bit 3: not a bit KVM lets this L1 set
    expect(exit(wr, 2, 5, 1)).toBe("GP"); // bits 63:32 reserved
    expect(exit(wr, 2, 1)).toBe(1); // locked without VMX: accepted …
    expect(exit(wr, 2, 5)).toBe("GP"); // … and final until reset
    expect(exit(rd, 2)).toBe(1);
    expect(exit(vmxon, 4)).toBe("GP"); // locked, VMX disabled
    expect(b.engine.state(b.vcpu).vmxon).toBe(false);
    // A second vCPU state starts from reset; KVM lets bit 1 (VMXON inside SMX) be set with VMX.
    const fc = new FeatureControl();
    expect([fc.write(7, 0), fc.value, fc.allowsVmxon, fc.write(5, 0)]).toEqual([true, 7, true, false]);
    const c = b.l0.exitCounts();
    expect([c.rdmsr, c.wrmsr, c.vmxon]).toEqual([3, 5, 3]);
  });

  it("without the engine enabled for the VM, setting CR4.VMXE is refused with #GP and CPUID hides VMX", () => {
    const b = nvmxBed(`${SET_CR_VMX}\n${EXIT_DEBUG}`, false);
    const stop = b.run();
    // No IDT in this L1: the #GP escalates to a triple fault.
    expect(stop.kind, stop.message).toBe("triple-fault");
    expect(b.l0.exitCounts().cr_access).toBe(1);
    expect(b.l0.guestCpuid(b.vcpu, 1)[2] & (1 << 5)).toBe(0);
  });

  it("VMXON … VMXOFF: VMsucceed, VMfailInvalid and VMfailValid with their error numbers; VMCS12 in L1 memory", () => {
    const R = RESULTS;
    const b = nvmxBed(`
      ${ENABLE_VMX}
      mov ecx, 0x480
      rdmsr
      mov dword ptr [0x300000], eax
      mov dword ptr [${VMCS12_A}], eax
      mov dword ptr [${VMCS12_B}], eax
      mov dword ptr [${VMCS12_A + VMCS12_LAUNCH_STATE_OFFSET}], 1
      mov qword ptr [${R + 0x100}], 0x300000
      mov qword ptr [${R + 0x108}], ${VMCS12_A}
      mov qword ptr [${R + 0x110}], ${VMCS12_B}
      vmxon [${R + 0x100}]
      pushfq
      pop qword ptr [${R + 0x00}]
      vmxon [${R + 0x100}]
      pushfq
      pop qword ptr [${R + 0x08}]
      vmptrst [${R + 0x10}]
      mov ebx, 0x681e
      vmread rcx, rbx
      pushfq
      pop qword ptr [${R + 0x18}]
      mov esi, ${R + 0x100}
      mov edi, 1
      vmptrld [rsi + rdi * 8]
      pushfq
      pop qword ptr [${R + 0x20}]
      movabs rax, 0x12345678abcd
      vmwrite rbx, rax
      vmread rcx, rbx
      mov qword ptr [${R + 0x28}], rcx
      mov edx, 0x4402
      vmwrite rdx, rax
      pushfq
      pop qword ptr [${R + 0x30}]
      mov edx, 0x4400
      vmread [${R + 0x38}], rdx
      mov edx, 0x0002
      vmread rcx, rdx
      pushfq
      pop qword ptr [${R + 0x40}]
      vmptrst [rip + slot]
      mov rax, qword ptr [rip + slot]
      mov qword ptr [${R + 0x48}], rax
      mov qword ptr [${R + 0x50}], 0x55aa
      mov edx, 0x4004
      vmwrite rdx, [${R + 0x50}]
      mov edx, 0x201a
      movabs rax, 0x12345678a01e
      vmwrite rdx, rax
      mov edx, 0x201b
      vmread r8, rdx
      mov qword ptr [${R + 0x58}], r8
      mov qword ptr [${R + 0x60}], rsp
      mov esp, 0x681e
      vmread rax, rsp
      mov rsp, qword ptr [${R + 0x60}]
      mov qword ptr [${R + 0x68}], rax
      vmptrld [${R + 0x110}]
      vmclear [${R + 0x108}]
      vmxoff
      pushfq
      pop qword ptr [${R + 0x70}]
      ${EXIT_DEBUG}
    slot:
      .quad 0
    `);
    const stop = b.run();
    expect(stop.kind, stop.message).toBe("debug-exit");
    const flags = (off: number) => b.r32(RESULTS + off) & (CF | ZF);
    expect(flags(0x00)).toBe(0); // VMXON: VMsucceed
    expect(flags(0x08)).toBe(CF); // VMXON again, no current VMCS: VMfailInvalid
    expect([b.r32(R + 0x10), b.r32(R + 0x14)]).toEqual([0xffffffff, 0xffffffff]); // VMPTRST: none current
    expect(flags(0x18)).toBe(CF); // VMREAD without a current VMCS: VMfailInvalid
    expect(flags(0x20)).toBe(0); // VMPTRLD through base + index * 8
    expect([b.r32(R + 0x28), b.r32(R + 0x2c)]).toEqual([0x5678abcd, 0x1234]); // VMWRITE then VMREAD
    expect(flags(0x30)).toBe(ZF); // VMWRITE of a read-only field: VMfailValid …
    expect(b.r32(R + 0x38)).toBe(V.VMXERR_VMWRITE_READONLY); // … error 13, read to memory
    expect(flags(0x40)).toBe(ZF); // VMREAD of a field VMCS12 does not hold: error 12
    expect([b.r32(R + 0x48), b.r32(R + 0x4c)]).toEqual([VMCS12_A, 0]); // VMPTRST, RIP-relative
    expect([b.r32(R + 0x58), b.r32(R + 0x5c)]).toEqual([0x1234, 0]); // high access of a 64-bit field
    expect([b.r32(R + 0x68), b.r32(R + 0x6c)]).toEqual([0x5678abcd, 0x1234]); // field in RSP
    expect(flags(0x70)).toBe(0); // VMXOFF
    // VMCS12 A went back to L1 memory when B became current; VMCLEAR then cleared its launch state.
    expect([b.r32(VMCS12_A + fieldAt(V.VMCS_GUEST_RIP)), b.r32(VMCS12_A + fieldAt(V.VMCS_GUEST_RIP) + 4)]).toEqual([
      0x5678abcd, 0x1234,
    ]);
    expect(b.r32(VMCS12_A + fieldAt(V.VMCS_EXCEPTION_BITMAP))).toBe(0x55aa);
    expect(b.r32(VMCS12_A + fieldAt(V.VMCS_EPT_POINTER))).toBe(0x5678a01e);
    expect(b.r32(VMCS12_A + fieldAt(V.VMCS_VM_INSTRUCTION_ERROR))).toBe(V.VMXERR_UNSUPPORTED_FIELD);
    expect(b.r32(VMCS12_A + VMCS12_LAUNCH_STATE_OFFSET)).toBe(0);
    const s = b.engine.state(b.vcpu);
    expect(s.vmxon).toBe(false);
    expect(s.hasCurrent).toBe(false);
    const c = b.l0.exitCounts();
    expect([c.vmxon, c.vmptrld, c.vmptrst, c.vmread, c.vmwrite, c.vmclear, c.vmxoff]).toEqual([2, 2, 2, 6, 4, 1, 1]);
    const line = (r: string) => b.l0.ledger.lines().find((e) => e.reason === r)?.count;
    expect(line("nvmx_vmread")).toBe(6);
    expect(line("nvmx_vmcs12_load")).toBe(2);
    expect(line("nvmx_vmcs12_flush")).toBe(2); // A when B was loaded, B at VMXOFF
  });

  it("outside VMX operation a VMX instruction is #UD; at CPL 3 it is #GP(0)", () => {
    const b = nvmxBed(EXIT_DEBUG);
    const h = b.l0.host;
    b.l0.load(b.vcpu);
    const rip = h.vmread(V.VMCS_GUEST_RIP);
    h.synthesizeExit(V.EXIT_VMREAD, 3);
    expect(handleExit(b.l0, b.vcpu)).toBe(HANDLED);
    expect(b.vcpu.pendingException).toBe(UD);
    b.vcpu.pendingException = -1;
    b.engine.state(b.vcpu).vmxon = true;
    h.vmwrite(V.VMCS_GUEST_SS_AR, h.vmread(V.VMCS_GUEST_SS_AR) | (3 << 5));
    h.synthesizeExit(V.EXIT_VMPTRLD, 3);
    expect(handleExit(b.l0, b.vcpu)).toBe(HANDLED);
    expect([b.vcpu.pendingException, b.vcpu.pendingExceptionError]).toEqual([GP, 0]);
    // Neither retired: RIP did not move.
    expect(h.vmread(V.VMCS_GUEST_RIP)).toBe(rip);
    expect(b.engine.state(b.vcpu).emulated.get(V.EXIT_VMPTRLD)).toBe(1);
  });
});
