/**
 * VMX for guest software on the bare CPU (SDM vol. 3, chapters 23–31): a hypervisor written in
 * assembly does VMXON, builds a VMCS for a tiny L2 under EPT, VMLAUNCHes, handles a CPUID exit
 * (VMRESUME past it) and a HLT exit, and VMXOFFs. Error numbers are table 31-1's.
 */
import { describe, expect, it } from "vitest";
import { type Cpu, STOP_HALT } from "../../src/cpu/cpu.js";
import * as V from "../../src/x86/vmx.js";
import { HAVE_AS } from "../helpers/asm.js";
import {
  PTRS,
  runVmx,
  SHADOW_VMCS,
  VMCS_A,
  VMCS_B,
  VMREAD_BITMAP,
  VMWRITE_BITMAP,
  vmxCpu,
} from "../helpers/guest-vmx.js";
import { KCODE } from "../helpers/sys.js";

const R13 = 13;
const R14 = 14;
const R15 = 15;

/** The program reached its final HLT (R15 = 0x600d), not `fail` (R15 = 0xbad) or a fault's stub. */
function ranToEnd(c: Cpu, stop: number): boolean {
  return stop === STOP_HALT && c.lo[R15] === 0x600d;
}

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
    expect(ranToEnd(c, runVmx(c))).toBe(true);
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
    // Instructions by level: L2 retired "mov eax, 0" and "mov r14d" (CPUID and HLT exited).
    const byLevel: Record<number, number> = {};
    for (const l of c.ledger.lines())
      if (l.category === "guest" && l.reason === "instructions") byLevel[l.level] = (byLevel[l.level] ?? 0) + l.count;
    expect(byLevel).toEqual({ 0: c.icount - 2, 1: 2 });
  });
});

const RES = 0x20e000;
/** Store RFLAGS' status flags and the VM-instruction error (-1 when unreadable) in result slot n. */
const RESULT = `
.macro RESULT n
  pushfq
  pop rax
  and eax, 0x8d5
  mov [${RES} + \\n * 16], rax
  mov rbx, -1
  mov eax, 0x4400
  vmread rbx, rax
  mov [${RES} + 8 + \\n * 16], rbx
.endm
`;
const CF = 1;
const ZF = 0x40;

/** Result slot n: [status flags, VM-instruction error]. */
function result(c: Cpu, n: number): [number, number] {
  return [c.mem.read(RES + n * 16, 4), c.mem.read(RES + 8 + n * 16, 4)];
}

const ORDERS = `${RESULT}
  ENABLE_VMX
  mov eax, 0x4402
  vmread rbx, rax
  RESULT 0
  vmxon [${PTRS}]
  RESULT 1
  LOAD_VMCS_A
  vmxon [${PTRS}]
  RESULT 2
  vmresume
  RESULT 3
  vmptrld [${PTRS}]
  RESULT 4
  vmclear [${PTRS}]
  RESULT 5
  mov dword ptr [${VMCS_B}], 0x1234
  vmptrld [${PTRS + 16}]
  RESULT 6
  mov qword ptr [${PTRS + 32}], ${VMCS_A + 8}
  vmptrld [${PTRS + 32}]
  RESULT 7
  mov eax, 0x2032
  vmread rbx, rax
  RESULT 8
  mov eax, 0x4402
  vmwrite rax, rbx
  RESULT 9
  vmcall
  RESULT 10
  vmptrst [${PTRS + 40}]
  RESULT 11
  mov eax, 3
  invept rax, [${PTRS + 48}]
  RESULT 12
  mov qword ptr [${PTRS + 48}], 0
  mov eax, 1
  invvpid rax, [${PTRS + 48}]
  RESULT 13
  mov eax, 2
  invvpid rax, [${PTRS + 48}]
  RESULT 14
  mov r15, 0x600d
  hlt
`;

describe.skipIf(!HAVE_AS)("VMX for guest software: VMfail cases and error numbers (SDM table 31-1)", () => {
  const c = vmxCpu(ORDERS);
  const stop = runVmx(c);
  it("the program ran to its end", () => expect(ranToEnd(c, stop)).toBe(true));
  it("VMREAD without a current VMCS: VMfailInvalid (CF)", () => expect(result(c, 0)[0]).toBe(CF));
  it("VMXON in VMX root operation: VMfailInvalid without a current VMCS, error 15 with one", () => {
    expect(result(c, 1)[0]).toBe(CF);
    expect(result(c, 2)).toEqual([ZF, V.VMXERR_VMXON_IN_ROOT]);
  });
  it("VMRESUME of a clear VMCS: error 5", () => expect(result(c, 3)).toEqual([ZF, 5]));
  it("VMPTRLD of the VMXON region: error 10; VMCLEAR of it: error 3", () => {
    expect(result(c, 4)).toEqual([ZF, 10]);
    expect(result(c, 5)).toEqual([ZF, 3]);
  });
  it("VMPTRLD of a region with another revision: error 11; of an unaligned address: error 9", () => {
    expect(result(c, 6)).toEqual([ZF, 11]);
    expect(result(c, 7)).toEqual([ZF, 9]);
  });
  it("VMREAD of an unsupported field: error 12; VMWRITE of a read-only field: error 13", () => {
    expect(result(c, 8)).toEqual([ZF, 12]);
    expect(result(c, 9)).toEqual([ZF, 13]);
  });
  it("VMCALL in VMX root operation: error 1", () => expect(result(c, 10)).toEqual([ZF, 1]));
  it("VMPTRST stores the current-VMCS pointer and succeeds", () => {
    expect(result(c, 11)[0]).toBe(0);
    expect(c.mem.read(PTRS + 40, 4)).toBe(VMCS_A);
    expect(c.mem.read(PTRS + 44, 4)).toBe(0);
  });
  it("INVEPT of an unsupported type and INVVPID single-context of VPID 0: error 28; all-context succeeds", () => {
    expect(result(c, 12)).toEqual([ZF, 28]);
    expect(result(c, 13)).toEqual([ZF, 28]);
    expect(result(c, 14)[0]).toBe(0);
  });
});

const ENTRY = `${RESULT}
  ENABLE_VMX
  LOAD_VMCS_A
  BUILD_EPT
  CONTROLS 0x80000080, 2
  HOST_STATE handler
  GUEST_STATE l2
  /* 0: a pin control whose allowed-1 bit is 0 (process posted interrupts): error 7. */
  VR r8, 0x4000
  mov rdx, r8
  or edx, 0x80
  mov eax, 0x4000
  vmwrite rax, rdx
  vmlaunch
  RESULT 0
  VW 0x4000, r8
  /* 1: a null host CS selector: error 8. */
  VW 0x0c02, 0
  vmlaunch
  RESULT 1
  VW 0x0c02, ${KCODE}
  /* 2: guest RFLAGS bit 1 clear: VM-entry failure, reason 0x80000021, back at HOST_RIP. */
  VW 0x6820, 0
  lea r12, [rip + 3f]
  vmlaunch
  jmp fail
3:
  mov [${RES} + 32], rbx
  VW 0x6820, 2
  /* 3: a good entry; L2 halts (HLT exiting). */
  lea r12, [rip + 4f]
  vmlaunch
  jmp fail
4:
  mov [${RES} + 48], rbx
  /* 4: VMLAUNCH of the launched VMCS: error 4. */
  vmlaunch
  RESULT 4
  /* 5: VMCLEAR makes it launchable again. */
  vmclear [${PTRS + 8}]
  vmptrld [${PTRS + 8}]
  lea r12, [rip + 5f]
  vmlaunch
  jmp fail
5:
  mov [${RES} + 80], rbx
  mov r15, 0x600d
  hlt
handler:
  VR rbx, 0x4402
  jmp r12
l2:
  hlt
`;

describe.skipIf(!HAVE_AS)("VMX for guest software: VM-entry checks", () => {
  const c = vmxCpu(ENTRY);
  const stop = runVmx(c);
  it("the program ran to its end", () => expect(ranToEnd(c, stop)).toBe(true));
  it("a control the capability MSR does not allow fails with error 7, a bad host state with 8", () => {
    expect(result(c, 0)).toEqual([ZF, V.VMXERR_ENTRY_INVALID_CONTROLS]);
    expect(result(c, 1)).toEqual([ZF, V.VMXERR_ENTRY_INVALID_HOST_STATE]);
  });
  it("an invalid guest state is a VM-entry-failure exit (reason 33 | bit 31) to HOST_RIP", () => {
    expect(c.mem.read(RES + 32, 4) >>> 0).toBe(0x80000021);
  });
  it("a good entry runs L2 to its HLT exit; relaunching it is error 4 until VMCLEAR", () => {
    expect(c.mem.read(RES + 48, 4)).toBe(V.EXIT_HLT);
    expect(result(c, 4)).toEqual([ZF, V.VMXERR_VMLAUNCH_NONCLEAR]);
    expect(c.mem.read(RES + 80, 4)).toBe(V.EXIT_HLT);
    expect(c.vmxUnit.entries).toBe(2);
  });
});

const SHADOWING = `
  ENABLE_VMX
  /* The shadow VMCS: guest RIP field = 0xabc. */
  vmclear [${PTRS + 24}]
  jbe fail
  vmptrld [${PTRS + 24}]
  jbe fail
  VW 0x681e, 0xabc
  LOAD_VMCS_A
  BUILD_EPT
  CONTROLS 0x80000080, 0x4002
  HOST_STATE handler
  GUEST_STATE l2
  VW 0x2800, ${SHADOW_VMCS}
  VW 0x2026, ${VMREAD_BITMAP}
  VW 0x2028, ${VMWRITE_BITMAP}
  /* VMWRITE of guest RIP (0x681e: byte 0xd03, bit 6) exits; every other field is shadowed. */
  mov byte ptr [${VMWRITE_BITMAP + 0xd03}], 0x40
  vmlaunch
  jmp fail
handler:
  VR r8, 0x4402
  /* Back in the shadow VMCS: what L2's VMWRITE stored. */
  vmptrld [${PTRS + 24}]
  jbe fail
  VR r9, 0x6800
  /* VMLAUNCH with a shadow VMCS current: VMfailInvalid. */
  vmlaunch
  pushfq
  pop r10
  mov r15, 0x600d
  hlt
l2:
  mov eax, 0x681e
  vmread rbx, rax
  pushfq
  pop r12
  mov eax, 0x6800
  mov ecx, 0x77
  vmwrite rax, rcx
  mov eax, 0x681e
  vmwrite rax, rcx
  hlt
`;

describe.skipIf(!HAVE_AS)("VMX for guest software: VMCS shadowing", () => {
  it("L2's VMREAD/VMWRITE use the shadow VMCS without exits where the bitmaps allow, and exit where they do not", () => {
    const c = vmxCpu(SHADOWING);
    expect(ranToEnd(c, runVmx(c))).toBe(true);
    expect(c.lo[3]).toBe(0xabc); // RBX: VMREAD in L2 read the shadow's guest-RIP field
    expect(c.lo[12] & 0x8d5).toBe(0); // VMsucceed
    expect(c.lo[9]).toBe(0x77); // R9: L2's VMWRITE of guest CR0 landed in the shadow VMCS
    expect(c.lo[8]).toBe(V.EXIT_VMWRITE); // R8: the bitmapped VMWRITE exited
    expect(c.lo[10] & 0x8d5).toBe(1); // R10: VMLAUNCH of a current shadow VMCS failed invalid (CF)
    expect(c.vmxUnit.exitCounts[V.EXIT_VMREAD]).toBe(0);
    expect(c.vmxUnit.exitCounts[V.EXIT_VMWRITE]).toBe(1);
  });
});

const WIDTHS = `
  ENABLE_VMX
  LOAD_VMCS_A
  mov rax, 0x1122334455667788
  mov [${RES}], rax
  /* Memory-operand VMWRITEs of one 64-bit value into a field of each width. */
  mov eax, 0x0800
  vmwrite rax, [${RES}]
  mov eax, 0x4002
  vmwrite rax, [${RES}]
  mov eax, 0x2010
  vmwrite rax, [${RES}]
  mov eax, 0x6c16
  vmwrite rax, [${RES}]
  /* The "high" access of a 64-bit field writes bits 63:32 only. */
  mov eax, 0x201b
  mov ecx, 0xaabbccdd
  vmwrite rax, rcx
  /* Memory-operand VMREADs. */
  mov eax, 0x0800
  vmread [${RES} + 16], rax
  mov eax, 0x4002
  vmread [${RES} + 24], rax
  mov eax, 0x2010
  vmread [${RES} + 32], rax
  mov eax, 0x2011
  vmread [${RES} + 40], rax
  mov eax, 0x6c16
  vmread [${RES} + 48], rax
  mov eax, 0x201a
  vmread [${RES} + 56], rax
  /* A field encoding with bits 63:32 set is unsupported (error 12). */
  mov rax, 0x100000800
  vmread rbx, rax
  RESULT 4
  mov r15, 0x600d
  hlt
`;

describe.skipIf(!HAVE_AS)("VMX for guest software: VMREAD/VMWRITE of every field width, memory operands", () => {
  const c = vmxCpu(`${RESULT}\n${WIDTHS}`);
  const q = (o: number): string =>
    ((BigInt(c.mem.read(RES + o + 4, 4) >>> 0) << 32n) | BigInt(c.mem.read(RES + o, 4) >>> 0)).toString(16);
  it("the program ran to its end", () => expect(ranToEnd(c, runVmx(c))).toBe(true));
  it("16-bit and 32-bit fields keep the low bits, zero-extended on VMREAD", () => {
    expect(q(16)).toBe("7788");
    expect(q(24)).toBe("55667788");
  });
  it("64-bit fields: full and high accesses; natural-width fields hold 64 bits", () => {
    expect(q(32)).toBe("1122334455667788");
    expect(q(40)).toBe("11223344"); // high access of 0x2010
    expect(q(48)).toBe("1122334455667788");
    expect(q(56)).toBe("aabbccdd00000000"); // EPTP: only its high half written
  });
  it("an encoding with bits 63:32 set: error 12", () => expect(result(c, 4)).toEqual([ZF, 12]));
});

const EPT_VIOLATION = `
  ENABLE_VMX
  LOAD_VMCS_A
  BUILD_EPT
  CONTROLS 0x80000080, 2
  HOST_STATE handler
  GUEST_STATE l2
  vmlaunch
  jmp fail
handler:
  VR r8, 0x4402
  VR r9, 0x2400
  VR r10, 0x6400
  mov r15, 0x600d
  hlt
l2:
  mov rax, [0x900010]
  hlt
`;

describe.skipIf(!HAVE_AS)("VMX for guest software: EPT", () => {
  it("L2's read of a guest-physical address the EPT does not map is an EPT violation exit with its GPA", () => {
    const c = vmxCpu(EPT_VIOLATION);
    expect(ranToEnd(c, runVmx(c))).toBe(true);
    expect(c.lo[8]).toBe(V.EXIT_EPT_VIOLATION);
    expect(c.lo[9]).toBe(0x900010); // guest-physical address
    expect(c.lo[10] & 7).toBe(1); // qualification: a data read (table 27-7)
  });
});
