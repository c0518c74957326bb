/**
 * VMX for guest software on the bare CPU (SDM vol. 3, chapters 23–31): a hypervisor written in
 * assembly does VMXON, builds a VMCS for a tiny L2 under EPT, VMLAUNCHes, handles a CPUID exit
 * (VMRESUME past it) and a HLT exit, and VMXOFFs. Error numbers are table 31-1's.
 */
import { describe, expect, it } from "vitest";
import { STOP_HALT } from "../../src/cpu/cpu.js";
import * as V from "../../src/x86/vmx.js";
import { HAVE_AS } from "../helpers/asm.js";
import { runVmx, VMCS_A, vmxCpu } from "../helpers/guest-vmx.js";

const R13 = 13;
const R14 = 14;
const R15 = 15;

const HYPERVISOR = `
  ENABLE_VMX
  LOAD_VMCS_A
  BUILD_EPT
  CONTROLS 0x80000080, 2
  HOST_STATE exit_handler
  GUEST_STATE l2
  xor r13, r13
  vmlaunch
  jmp fail
exit_handler:
  VR rbx, 0x4402
  cmp ebx, 10
  jne 2f
  inc r13
  VR rcx, 0x681e
  VR rdx, 0x440c
  add rcx, rdx
  mov eax, 0x681e
  vmwrite rax, rcx
  vmresume
  jmp fail
2:
  cmp ebx, 12
  jne fail
  vmxoff
  jbe fail
  mov r15, 0x600d
  hlt
l2:
  mov eax, 0
  cpuid
  mov r14d, 0x1234
  hlt
`;

describe.skipIf(!HAVE_AS)("VMX for guest software: a hypervisor in assembly", () => {
  it("VMXON, VMLAUNCH an L2 under EPT, a CPUID exit, VMRESUME, a HLT exit, VMXOFF", () => {
    const c = vmxCpu(HYPERVISOR);
    expect(runVmx(c)).toBe(STOP_HALT);
    expect(c.lo[R15]).toBe(0x600d);
    expect(c.lo[R14]).toBe(0x1234); // L2 ran past its CPUID
    expect(c.lo[R13]).toBe(1); // one CPUID exit handled
    const u = c.vmxUnit;
    expect(u.exitCounts[V.EXIT_CPUID]).toBe(1);
    expect(u.exitCounts[V.EXIT_HLT]).toBe(1);
    expect(u.entries).toBe(2); // VMLAUNCH + VMRESUME
    expect(c.nonRoot).toBe(false);
    expect(u.software.inVmx).toBe(false);
    // VMXOFF wrote the cached VMCS back: launch state "launched" at offset 8 of the region.
    expect(c.mem.read(VMCS_A + 8, 4)).toBe(1);
  });
});
