/**
 * The same guest code on the bare machine (`native`) and as a VM under L0 (`vm`) gives the same
 * architectural results (issue 13 §3, the corners L0 must virtualize faithfully). Each guest is a
 * few instructions in 64-bit mode (direct64 boot: the first 4 GiB identity-mapped) that fold
 * what they observed into the debug-exit status, so both stacks must exit with the same value.
 */
import { describe, expect, it } from "vitest";
import { nativeStack } from "../../src/stacks/native.js";
import type { StackRunResult } from "../../src/stacks/stack.js";
import { vmStack } from "../../src/stacks/vm.js";
import { eventCount, exitCount } from "../../src/stats/run-stats.js";
import { asm, HAVE_AS } from "../helpers/asm.js";
import { elf64 } from "../helpers/elf.js";

function both(source: string): { native: StackRunResult; vm: StackRunResult } {
  const image = elf64(asm(source, 64));
  const opts = { image, cmdline: "", memory: 64 * 1024 * 1024, maxInstructions: 1_000_000 };
  return { native: nativeStack.run(opts), vm: vmStack.run(opts) };
}

/**
 * Load an IDT (labels `idt`, `idtr`: IDT_DATA) whose gate `vector` is a 64-bit interrupt gate to
 * label `handler` (SDM vol. 3, 6.14.1); the other gates are not present.
 */
function idtWithGate(vector: number, handler: string): string {
  const at = `rdi + ${vector}*16`;
  return [
    "lea rdi, [rip + idt]",
    `lea rbx, [rip + ${handler}]`,
    "mov ax, cs",
    `mov [${at}], bx\nmov [${at} + 2], ax\nmov word ptr [${at} + 4], 0x8e00`,
    `shr rbx, 16\nmov [${at} + 6], bx\nshr rbx, 16\nmov [${at} + 8], ebx`,
    "mov [rip + idtr + 2], rdi\nlidt [rip + idtr]",
  ].join("\n");
}

const IDT_DATA = ".align 16\nidtr: .word 256*16-1\n.quad 0\n.align 16\nidt: .fill 256*16, 1, 0";

/** After a CMP: set bit `bit` of ESI when the operands were equal. */
function setIfEqual(bit: number): string {
  return `jne 1f\nor esi, ${bit}\n1:`;
}

/** Both stacks reached the debug-exit port with ESI = `esi`. */
function expectStatus(r: { native: StackRunResult; vm: StackRunResult }, esi: number): void {
  for (const s of [r.native, r.vm]) {
    expect(s.outcome.kind, `${s.stack}: ${s.outcome.message}`).toBe("debug-exit");
    expect(s.exitStatus, s.stack).toBe((esi << 1) | 1);
  }
}

/** Exit through isa-debug-exit with the status in ESI. */
const EXIT = "mov eax, esi\nout 0xf4, al\nhlt\n";

describe.skipIf(!HAVE_AS)("native and vm: identical architectural results", () => {
  it("guest-physical addresses with neither RAM nor a device read all ones; writes are dropped", () => {
    // 0xd0000000: above the 64 MiB of RAM, below the devices at 0xfeb00000 and up.
    const r = both(
      [
        "mov edi, 0xd0000000",
        "xor esi, esi",
        "mov rax, [rdi]",
        `cmp rax, -1\n${setIfEqual(1)}`,
        "mov qword ptr [rdi], 0x1234",
        "mov rbx, [rdi]",
        `cmp rbx, -1\n${setIfEqual(2)}`,
        "mov ecx, [rdi + 0x10]",
        `cmp ecx, -1\n${setIfEqual(4)}`,
        "movzx edx, byte ptr [rdi + 0x21]",
        `cmp edx, 0xff\n${setIfEqual(8)}`,
        EXIT,
      ].join("\n"),
    );
    expectStatus(r, 15);
    // L0 counted each access (a first EPT violation, then MMIO-marker misconfigurations).
    expect(eventCount(r.vm.events, "l0", "unassigned_accesses")).toBe(5);
    expect(exitCount(r.vm.exits, 0, "ept_violation")).toBeGreaterThanOrEqual(1);
  });

  it("CR8 is the local APIC's TPR[7:4]: MOV to CR8 shows in the TPR register and back", () => {
    const r = both(
      [
        "xor esi, esi",
        "mov eax, 5\nmov cr8, rax",
        "mov edi, 0xfee00080", // the local APIC's TPR (xAPIC MMIO)
        "mov ecx, [rdi]",
        `cmp ecx, 0x50\n${setIfEqual(1)}`,
        "mov dword ptr [rdi], 0x70",
        "mov rdx, cr8",
        `cmp rdx, 7\n${setIfEqual(2)}`,
        "xor eax, eax\nmov cr8, rax\nmov ecx, [rdi]",
        "test ecx, ecx\njnz 1f\nor esi, 4\n1:",
        EXIT,
      ].join("\n"),
    );
    expectStatus(r, 7);
    expect(exitCount(r.vm.exits, 0, "cr_access")).toBe(3); // two MOVs to CR8, one from
  });

  it("MSRs follow the same rules: unknown #GP, CPUID-enumerated ones #GP when not enumerated, reserved bits #GP", () => {
    // R15 counts #GPs since the last reset, R11 all of them, R12 those with RF set (the handler skips the 2-byte RDMSR/WRMSR). Each check sets a bit of ESI
    // when the outcome is the architectural one for what CPUID says.
    const r = both(
      [
        idtWithGate(13, "gp_handler"),
        "xor esi, esi\nxor r15d, r15d\nxor r12d, r12d\nxor r11d, r11d",
        // 1: an MSR no CPU has.
        "mov ecx, 0x12345678\nrdmsr",
        `cmp r15, 1\n${setIfEqual(1)}`,
        // 2: IA32_SPEC_CTRL (0x48) exists iff CPUID.7.0:EDX[26] (IBRS) or [31] (SSBD).
        "mov eax, 7\nxor ecx, ecx\ncpuid\nmov r14d, edx\nmov r13d, ebx",
        "xor r15d, r15d\nmov ecx, 0x48\nrdmsr",
        "xor eax, eax\ntest r14d, 0x84000000\nsetz al", // 1 when not enumerated
        `cmp rax, r15\n${setIfEqual(2)}`,
        // 3: IA32_TSC_ADJUST (0x3b) exists iff CPUID.7.0:EBX[1].
        "xor r15d, r15d\nmov ecx, 0x3b\nrdmsr",
        "xor eax, eax\ntest r13d, 2\nsetz al",
        `cmp rax, r15\n${setIfEqual(4)}`,
        // 4: IA32_PRED_CMD (0x49) is write-only: a read always faults.
        "xor r15d, r15d\nmov ecx, 0x49\nrdmsr",
        `cmp r15, 1\n${setIfEqual(8)}`,
        // 5: EFER with a reserved bit (bit 2).
        "xor r15d, r15d\nmov ecx, 0xc0000080\nrdmsr\nor eax, 4\nwrmsr",
        `cmp r15, 1\n${setIfEqual(16)}`,
        // 6: IA32_APIC_BASE with a reserved bit (bit 0), intercepted by L0 under vm.
        "xor r15d, r15d\nmov ecx, 0x1b\nrdmsr\nor eax, 1\nwrmsr",
        `cmp r15, 1\n${setIfEqual(32)}`,
        // 7: every #GP (a fault) was delivered with RF set in the pushed RFLAGS (SDM vol. 3, 18.3.1.1),
        // also when L0 injected it (the APIC-base write above), as KVM sets RF before injecting a fault.
        `cmp r12, r11\n${setIfEqual(64)}`,
        EXIT,
        "gp_handler:",
        "inc r15\ninc r11\nbt qword ptr [rsp + 24], 16\nadc r12, 0\nadd rsp, 8\nadd qword ptr [rsp], 2\niretq",
        IDT_DATA,
      ].join("\n"),
    );
    expectStatus(r, 127);
  });

  it("TF single-step traps after every instruction, also one L0 emulates (CPUID) and across VM exits", () => {
    // The #DB handler counts in R15, checks DR6.BS (R12 counts those with it) and records the RIP
    // of each trap in a table, so the two runs must agree on every step.
    const r = both(
      [
        idtWithGate(1, "db_handler"),
        "xor esi, esi\nxor r15d, r15d\nxor r12d, r12d",
        "lea r13, [rip + steps]",
        "pushfq\nor qword ptr [rsp], 0x100\npopfq", // TF on: traps from the instruction after POPF
        "xor eax, eax",
        "cpuid", // exits under vm; L0 emulates and skips it
        "nop",
        "out 0x80, al", // exits too (port I/O)
        "pushfq\nand qword ptr [rsp], ~0x100\npopfq", // the POPF clearing TF still traps
        // ESI bit 0: 7 traps (after XOR, CPUID, NOP, OUT, PUSHFQ, AND, POPFQ); bit 1: all had
        // DR6.BS; bits 6:2: a hash of the trap RIPs (relative to the handler's address).
        `cmp r15, 7\n${setIfEqual(1)}`,
        `cmp r15, r12\n${setIfEqual(2)}`,
        "xor eax, eax\nxor edx, edx\nlea rbx, [rip + db_handler]",
        "2: cmp rdx, r15\njae 3f\nmov rcx, [r13 + rdx*8]\nsub rcx, rbx\nadd rax, rcx\nimul rax, rax, 31\ninc rdx\njmp 2b",
        "3: and eax, 0x1f\nshl eax, 2\nor esi, eax",
        EXIT,
        "db_handler:",
        "mov rax, dr6\nbt rax, 14\nadc r12, 0",
        "mov rax, [rsp]\nmov [r13 + r15*8], rax\ninc r15",
        "iretq",
        IDT_DATA,
        "steps: .fill 64, 8, 0",
      ].join("\n"),
    );
    expect(r.native.outcome.kind, r.native.outcome.message).toBe("debug-exit");
    expect(r.vm.outcome.kind, r.vm.outcome.message).toBe("debug-exit");
    expect((r.native.exitStatus ?? 0) & 7).toBe(7); // exit status = (ESI << 1) | 1: bits 0 and 1 set
    expect(r.vm.exitStatus).toBe(r.native.exitStatus);
    expect(exitCount(r.vm.exits, 0, "cpuid")).toBe(1);
  });
});
