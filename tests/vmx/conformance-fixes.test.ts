/**
 * The CPU fixes the VMX conformance guest (guests/vmxtest) found, one unit test each, written
 * from the SDM (vol. 3C) like the guest's checks: a hypervisor in assembly launches a one-
 * instruction L2 and its exit handler stores the exit-information fields.
 */
import { describe, expect, it } from "vitest";
import type { Cpu } from "../../src/cpu/cpu.js";
import { HAVE_AS } from "../helpers/asm.js";
import { EPT_PML4, runVmx, VMCS_B, vmxCpu } from "../helpers/guest-vmx.js";

const RES = 0x20e000;

/** A hypervisor: VMX on, VMCS A for `l2` with extra proc controls `proc`, `setup`, VMLAUNCH. */
function program(proc: number, setup: string, l2: string): string {
  return `
  ENABLE_VMX
  LOAD_VMCS_A
  BUILD_EPT
  CONTROLS ${0x80000080 | proc}, 2
  HOST_STATE handler
  GUEST_STATE l2
  ${setup}
  vmlaunch
  jmp fail
handler:
  VR rbx, 0x4402
  mov [${RES}], rbx
  VR rbx, 0x6400
  mov [${RES + 8}], rbx
  VR rbx, 0x440c
  mov [${RES + 16}], rbx
  VR rbx, 0x640a
  mov [${RES + 24}], rbx
  VR rbx, 0x4404
  mov [${RES + 32}], rbx
  VR rbx, 0x2400
  mov [${RES + 40}], rbx
  mov r15, 0x600d
  hlt
l2:
  ${l2}
`;
}

interface Exit {
  reason: number;
  qual: number;
  len: number;
  gla: number;
  intrInfo: number;
  gpa: number;
  cpu: Cpu;
}

function run(proc: number, setup: string, l2: string): Exit {
  const c = vmxCpu(program(proc, setup, l2));
  runVmx(c);
  expect(c.lo[15]).toBe(0x600d); // the handler ran (not `fail`)
  const r = (o: number) => c.mem.read(RES + o, 4) >>> 0;
  return { reason: r(0), qual: r(8), len: r(16), gla: r(24), intrInfo: r(32), gpa: r(40), cpu: c };
}

describe.skipIf(!HAVE_AS)("VMX conformance fixes (SDM vol. 3C)", () => {
  it("interrupt-window exiting with RFLAGS.IF = 1 exits before L2's first instruction (26.7.5)", () => {
    const e = run(1 << 2, "VW 0x6820, 0x202", "hlt");
    expect(e.reason).toBe(7);
  });

  it("an INT3 exit through the exception bitmap reports instruction length 1 (27.2.4)", () => {
    const e = run(0, "VW 0x4004, 8", "int3");
    expect(e.reason).toBe(0);
    expect(e.intrInfo).toBe(0x80000603);
    expect(e.len).toBe(1);
  });

  it("an OUTS exit gives the linear address of its memory operand (27.2.1)", () => {
    const e = run(1 << 24, "", "mov dx, 0x3000\n  mov rsi, 0x12345\n  mov ecx, 1\n  rep outsb");
    expect(e.reason).toBe(30);
    expect(e.qual).toBe(0x30000030);
    expect(e.gla).toBe(0x12345);
  });

  it("CLTS exits when CR0.TS is owned and set in the read shadow; qualification type 2 (25.1.3)", () => {
    const e = run(0, "VW 0x6000, 8\n  VW 0x6004, 8", "clts");
    expect([e.reason, e.qual, e.len]).toEqual([28, 0x20, 2]);
  });

  it("LMSW exits when it would change an owned bit; qualification type 3 with the source (25.1.3)", () => {
    const e = run(0, "VW 0x6000, 8\n  VW 0x6004, 0", "mov eax, 9\n  lmsw ax");
    expect([e.reason, e.qual, e.len]).toEqual([28, 0x90030, 3]);
  });

  it("SMSW reads the CR0 read shadow in owned bits (25.3)", () => {
    const e = run(0, "VW 0x6000, 8\n  VW 0x6004, 8", `smsw rax\n  mov [${RES + 48}], rax\n  hlt`);
    expect(e.reason).toBe(12);
    expect(e.cpu.mem.read(RES + 48, 4) & 8).toBe(8);
    expect(e.cpu.cr0 & 8).toBe(0);
  });

  it("a bad VMCS link pointer fails entry with reason 33 | bit 31 and qualification 4 (26.8)", () => {
    const e = run(0, `mov dword ptr [${VMCS_B}], 0x1234\n  VW 0x2800, ${VMCS_B}`, "hlt");
    expect(e.reason).toBe(0x80000021);
    expect(e.qual).toBe(4);
  });

  it("injecting an external interrupt with RFLAGS.IF = 0 fails entry on guest state (26.3.1.4)", () => {
    const e = run(0, "VW 0x4016, 0x80000020", "hlt");
    expect(e.reason).toBe(0x80000021);
  });

  it("blocking by STI with the HLT activity state fails entry on guest state (26.3.1.5)", () => {
    const e = run(0, "VW 0x4824, 1\n  VW 0x4826, 1", "hlt");
    expect(e.reason).toBe(0x80000021);
    expect(e.qual).toBe(0);
  });

  it("EPT_VPID_CAP reports execute-only translations (bit 0), as the walker implements them (A.10)", () => {
    const setup = `mov ecx, 0x48c\n  rdmsr\n  mov [${RES + 56}], eax\n  mov qword ptr [${EPT_PML4 + 0x2000 + 16}], 0x4000b4`;
    const e = run(0, setup, "mov rax, [0x400008]\n  hlt");
    expect(e.cpu.mem.read(RES + 56, 4) & 1).toBe(1);
    // A read of an execute-only page: EPT violation, read access, executable (27.2.1, table 27-7).
    expect(e.reason).toBe(48);
    expect(e.qual & 0x1ff).toBe(0x1a1);
    expect(e.gpa).toBe(0x400008);
  });
});
