/**
 * VM-exit conditions of nestlab's VMX hardware, and the controls that cause or suppress them,
 * driven through VmxHost (the interface L0 uses) with tiny 64-bit guests (tests/helpers/vmx.ts).
 * Numbers are the SDM's: exit reasons (appendix C), qualifications (27.2.1), interruption
 * information (24.9.2).
 */
import { describe, expect, it } from "vitest";
import { RUN_BUDGET, RUN_EXIT } from "../../src/cpu/vmx/host.js";
import * as V from "../../src/x86/vmx.js";
import * as C from "../../src/x86/vmx-controls.js";
import { HAVE_AS } from "../helpers/asm.js";
import { CODE, DATA, GUEST_CR0, GUEST_CR4, STACK_TOP, stub, VmxBed } from "../helpers/vmx.js";

const INTR_UD = C.INTR_INFO_VALID | C.INTR_TYPE_HW_EXCEPTION | 6; // 0x80000306
const INTR_PF = C.INTR_INFO_VALID | C.INTR_TYPE_HW_EXCEPTION | C.INTR_INFO_DELIVER_CODE | 14; // 0x80000b0e

describe.skipIf(!HAVE_AS)("VMX exits: unconditional instructions", () => {
  it("CPUID always exits (reason 10) with its instruction length; RIP stays at the CPUID", () => {
    const b = new VmxBed();
    b.load("nop\nnop\ncpuid\nvmcall\n");
    const e = b.runToExit();
    expect(e.reason).toBe(V.EXIT_CPUID);
    expect(b.host.vmread(V.VMCS_EXIT_REASON)).toBe(10);
    expect(b.host.vmread(V.VMCS_EXIT_INSTRUCTION_LENGTH)).toBe(2);
    expect(b.host.vmreadNumber(V.VMCS_EXIT_QUALIFICATION)).toBe(0);
    expect(b.rip()).toBe(CODE + 2);
    // The hypervisor emulates and skips it: the guest continues at the next instruction.
    b.skip();
    expect(b.runToExit().reason).toBe(V.EXIT_VMCALL);
    expect(b.rip()).toBe(CODE + 4);
  });

  it("VMCALL exits (reason 18), instruction length 3", () => {
    const b = new VmxBed();
    b.load("vmcall\n");
    expect(b.runToExit().reason).toBe(18);
    expect(b.host.vmread(V.VMCS_EXIT_INSTRUCTION_LENGTH)).toBe(3);
    expect(b.rip()).toBe(CODE);
  });

  it("a guest triple fault is exit reason 2, not a shutdown of the CPU", () => {
    const b = new VmxBed();
    b.host.vmwrite(V.VMCS_GUEST_IDTR_LIMIT, 0); // every delivery faults: #UD → #GP → #DF → triple fault
    b.load("nop\nud2\n");
    const r = b.run();
    expect(r).toBe(RUN_EXIT);
    expect(b.exit.reason).toBe(V.EXIT_TRIPLE_FAULT);
    expect(b.cpu.stopReason).toBeNull();
    expect(b.cpu.nonRoot).toBe(false);
    expect(b.rip()).toBe(CODE + 1);
  });
});

describe.skipIf(!HAVE_AS)("VMX exits: HLT", () => {
  it("HLT exits (reason 12, length 1) only with HLT exiting", () => {
    const b = new VmxBed();
    b.setControls({ proc: C.CPU_HLT_EXITING });
    b.load("nop\nhlt\n");
    expect(b.runToExit().reason).toBe(V.EXIT_HLT);
    expect(b.host.vmread(V.VMCS_EXIT_INSTRUCTION_LENGTH)).toBe(1);
    expect(b.rip()).toBe(CODE + 1);
  });

  it("without HLT exiting the guest halts: RUN_BUDGET, and a later exit saves activity state HLT", () => {
    const b = new VmxBed();
    b.load("nop\nhlt\nvmcall\n");
    expect(b.run()).toBe(RUN_BUDGET);
    expect(b.cpu.halted).toBe(true);
    expect(b.run()).toBe(RUN_BUDGET); // still halted: nothing wakes it
    expect(b.cpu.ripLo).toBe(CODE + 2);
    // With the VMX-preemption timer armed, the halted guest leaves at the deadline (the timer
    // counts down in HLT state, SDM 25.5.1) and the exit saves activity state HLT.
    const b2 = new VmxBed();
    b2.setControls({ pin: C.PIN_PREEMPTION_TIMER });
    b2.host.vmwrite(V.VMCS_PREEMPTION_TIMER_VALUE, 10);
    b2.load("nop\nhlt\nvmcall\n");
    const t0 = b2.host.cycles();
    expect(b2.run()).toBe(RUN_EXIT);
    expect(b2.exit.reason).toBe(V.EXIT_PREEMPTION_TIMER);
    expect(b2.host.cycles() - t0).toBe(10 * 32);
    expect(b2.host.vmread(V.VMCS_GUEST_ACTIVITY_STATE)).toBe(C.ACTIVITY_HLT);
    expect(b2.rip()).toBe(CODE + 2);
    // Re-entering in the active state resumes after the HLT.
    b2.host.vmwrite(V.VMCS_GUEST_ACTIVITY_STATE, C.ACTIVITY_ACTIVE);
    b2.setControls({});
    expect(b2.runToExit().reason).toBe(V.EXIT_VMCALL);
  });
});

describe.skipIf(!HAVE_AS)("VMX exits: port I/O", () => {
  it("unconditional I/O exiting: reason 30, qualification size/direction/port/immediate", () => {
    const b = new VmxBed();
    b.setControls({ proc: C.CPU_UNCOND_IO_EXITING });
    b.load("out 0x80, al\nmov dx, 0x3f8\nin eax, dx\nout dx, ax\nmov rcx, 1\nmov rsi, 0x200000\nrep outsb\n");
    let e = b.runToExit();
    expect(e.reason).toBe(V.EXIT_IO_INSTRUCTION);
    expect(b.host.vmread(V.VMCS_EXIT_QUALIFICATION)).toBe((0x80 << 16) | C.IO_QUAL_IMM); // 1 byte, OUT, imm8
    expect(b.host.vmread(V.VMCS_EXIT_INSTRUCTION_LENGTH)).toBe(2);
    b.skip();
    e = b.runToExit();
    expect(e.reason).toBe(30);
    expect(b.host.vmread(V.VMCS_EXIT_QUALIFICATION)).toBe((0x3f8 << 16) | C.IO_QUAL_IN | 3); // 4 bytes, IN, DX
    expect(b.host.vmread(V.VMCS_EXIT_INSTRUCTION_LENGTH)).toBe(1);
    b.skip();
    b.runToExit();
    expect(b.host.vmread(V.VMCS_EXIT_QUALIFICATION)).toBe((0x3f8 << 16) | 1); // 2 bytes, OUT, DX
    expect(b.host.vmread(V.VMCS_EXIT_INSTRUCTION_LENGTH)).toBe(2);
    b.skip();
    b.runToExit();
    expect(b.host.vmread(V.VMCS_EXIT_QUALIFICATION)).toBe((0x3f8 << 16) | C.IO_QUAL_STRING | C.IO_QUAL_REP);
  });

  it("without I/O exiting controls, port I/O does not exit", () => {
    const b = new VmxBed();
    b.load("out 0x80, al\nmov dx, 0x3f8\nin al, dx\ncpuid\n");
    expect(b.runToExit().reason).toBe(V.EXIT_CPUID);
    expect(b.rip()).toBe(CODE + 7);
  });

  it("I/O bitmaps: a port whose bit is clear does not exit (even with unconditional exiting); any set bit of the access does", () => {
    const b = new VmxBed();
    const a = b.hostPage();
    const bb = b.hostPage();
    b.setBit(a, 0x80);
    b.setBit(bb, 0x9000 - 0x8000);
    b.host.vmwrite(V.VMCS_IO_BITMAP_A, a);
    b.host.vmwrite(V.VMCS_IO_BITMAP_B, bb);
    b.setControls({ proc: C.CPU_USE_IO_BITMAPS | C.CPU_UNCOND_IO_EXITING });
    b.load(
      "mov al, 1\nout 0x70, al\nmov dx, 0x9000\nin al, dx\nmov dx, 0x7e\nout dx, eax\nmov dx, 0x7c\nout dx, ax\ncpuid\n",
    );
    let e = b.runToExit();
    expect(e.reason).toBe(V.EXIT_IO_INSTRUCTION); // port 0x70 passed; 0x9000 (bitmap B) exits
    expect(b.host.vmread(V.VMCS_EXIT_QUALIFICATION)).toBe((0x9000 << 16) | C.IO_QUAL_IN);
    expect(b.rip()).toBe(CODE + 8);
    b.skip();
    e = b.runToExit();
    // A 4-byte access to 0x7e covers 0x7e..0x81: 0x80's bit makes it exit.
    expect(e.reason).toBe(30);
    expect(b.host.vmread(V.VMCS_EXIT_QUALIFICATION)).toBe((0x7e << 16) | 3);
    b.skip();
    // 0x7c..0x7d: both bits clear, no exit; the next exit is the CPUID.
    expect(b.runToExit().reason).toBe(V.EXIT_CPUID);
  });
});

describe.skipIf(!HAVE_AS)("VMX exits: RDMSR/WRMSR and the MSR bitmap", () => {
  const LSTAR = 0xc0000082;
  const SYSENTER_CS = 0x174;

  it("without MSR bitmaps every RDMSR (31) and WRMSR (32) exits", () => {
    const b = new VmxBed();
    b.load(`mov ecx, ${SYSENTER_CS}\nrdmsr\nwrmsr\n`);
    expect(b.runToExit().reason).toBe(V.EXIT_RDMSR);
    expect(b.host.vmread(V.VMCS_EXIT_INSTRUCTION_LENGTH)).toBe(2);
    b.skip();
    expect(b.runToExit().reason).toBe(V.EXIT_WRMSR);
  });

  it("bitmap halves: low/high MSR ranges, read vs write; MSRs outside both ranges always exit", () => {
    const b = new VmxBed();
    const bm = b.hostPage();
    b.setBit(bm + 0, SYSENTER_CS); // read-low: RDMSR 0x174 exits
    b.setBit(bm + 3072, LSTAR & 0x1fff); // write-high: WRMSR LSTAR exits
    b.host.vmwrite(V.VMCS_MSR_BITMAP, bm);
    b.setControls({ proc: C.CPU_USE_MSR_BITMAPS });
    b.load(
      [
        `mov ecx, ${SYSENTER_CS}`,
        "xor edx, edx",
        "mov eax, 0x10",
        "wrmsr", // write-low bit clear: executes natively
        "rdmsr", // read-low bit set: exits
        `mov ecx, ${LSTAR}`,
        "rdmsr", // read-high bit clear
        "mov eax, 0x4321",
        "wrmsr", // write-high bit set: exits
        "mov ecx, 0x40000000",
        "rdmsr", // outside both ranges: exits
      ].join("\n"),
    );
    let e = b.runToExit();
    expect(e.reason).toBe(V.EXIT_RDMSR);
    expect(b.cpu.lo[1]).toBe(SYSENTER_CS);
    expect(b.cpu.sysenterCs).toBe(0x10); // the WRMSR before it ran in the guest
    b.skip();
    e = b.runToExit();
    expect(e.reason).toBe(V.EXIT_WRMSR);
    expect(b.cpu.lo[1] >>> 0).toBe(LSTAR);
    expect(b.cpu.lstarLo).not.toBe(0x4321); // the write exited instead of happening
    b.skip();
    e = b.runToExit();
    expect(e.reason).toBe(V.EXIT_RDMSR);
    expect(b.cpu.lo[1]).toBe(0x40000000);
  });
});

describe.skipIf(!HAVE_AS)("VMX exits: control registers", () => {
  it("MOV to CR0 exits only when a host-owned bit differs from the read shadow; reads see the shadow", () => {
    const b = new VmxBed();
    // CR0.TS is host-owned; the guest believes it is 1, it is really 0.
    b.setControls({ cr0Mask: 0x8, cr0Shadow: 0x8 });
    b.load(
      [
        "mov rax, cr0", // shadowed read: TS = 1
        "mov rbx, rax",
        "xor rbx, 2", // flip MP (guest-owned)
        "mov cr0, rbx", // TS matches the shadow: no exit; MP changes, TS stays host's
        "and rbx, ~8",
        "mov cr0, rbx", // TS differs from the shadow: exit
      ].join("\n"),
    );
    const e = b.runToExit();
    expect(e.reason).toBe(V.EXIT_CR_ACCESS);
    expect(b.gpr(0)).toBe((GUEST_CR0 | 8) >>> 0);
    // Qualification: CR number 0, access type 0 (MOV to CR), GPR 3 (RBX) in bits 11:8.
    expect(b.host.vmread(V.VMCS_EXIT_QUALIFICATION)).toBe(0x300);
    expect(b.host.vmread(V.VMCS_EXIT_INSTRUCTION_LENGTH)).toBe(3);
    // The MOV that did not exit changed the guest-owned bit and left the host-owned one alone.
    expect(b.host.vmread(V.VMCS_GUEST_CR0) >>> 0).toBe((GUEST_CR0 ^ 2) >>> 0);
  });

  it("MOV to CR4: host-owned PGE hidden on reads, preserved on writes, exit on a differing write (qualification CR 4, GPR)", () => {
    const b = new VmxBed();
    b.host.vmwrite(V.VMCS_GUEST_CR4, GUEST_CR4 | 0x80); // PGE really on
    b.setControls({ cr4Mask: 0x80, cr4Shadow: 0 });
    b.load(
      [
        "mov rcx, cr4", // reads PAE only
        "mov rdx, rcx",
        "or rcx, 0x100", // PCE, guest-owned
        "mov cr4, rcx", // no exit
        "or rcx, 0x80",
        "mov cr4, rcx", // PGE differs from the shadow (0): exit
      ].join("\n"),
    );
    b.runToExit();
    expect(b.exit.reason).toBe(28);
    expect(b.gpr(2)).toBe(GUEST_CR4);
    expect(b.host.vmread(V.VMCS_EXIT_QUALIFICATION)).toBe(4 | (1 << 8));
    expect(b.host.vmread(V.VMCS_GUEST_CR4)).toBe(GUEST_CR4 | 0x80 | 0x100);
  });

  it("CR3 load exiting and CR3 store exiting", () => {
    const b = new VmxBed();
    b.load("mov rcx, cr3\nmov cr3, rcx\nmov rdx, cr3\ncpuid\n");
    expect(b.runToExit().reason).toBe(V.EXIT_CPUID); // neither control: no exit
    const c = new VmxBed();
    c.setControls({ proc: C.CPU_CR3_LOAD_EXITING });
    c.load("mov rcx, cr3\nmov cr3, rcx\nmov rdx, cr3\ncpuid\n");
    expect(c.runToExit().reason).toBe(V.EXIT_CR_ACCESS);
    expect(c.host.vmread(V.VMCS_EXIT_QUALIFICATION)).toBe(3 | (1 << 8)); // MOV to CR3 from RCX
    expect(c.rip()).toBe(CODE + 3);
    const d = new VmxBed();
    d.setControls({ proc: C.CPU_CR3_STORE_EXITING });
    d.load("mov rdx, cr3\n");
    expect(d.runToExit().reason).toBe(V.EXIT_CR_ACCESS);
    expect(d.host.vmread(V.VMCS_EXIT_QUALIFICATION)).toBe(3 | (C.CR_ACCESS_TYPE_MOV_FROM_CR << 4) | (2 << 8));
  });
});

describe.skipIf(!HAVE_AS)("VMX exits: the exception bitmap", () => {
  it("#UD in the bitmap exits with interruption information valid | type 3 | vector 6", () => {
    const b = new VmxBed();
    b.setControls({ exceptionBitmap: 1 << 6 });
    b.load("nop\nud2\n");
    const e = b.runToExit();
    expect(e.reason).toBe(V.EXIT_EXCEPTION_NMI);
    expect(b.host.vmread(V.VMCS_EXIT_INTR_INFO) >>> 0).toBe(INTR_UD >>> 0);
    expect(b.host.vmread(V.VMCS_EXIT_INTR_INFO) >>> 0).toBe(0x80000306);
    expect(b.rip()).toBe(CODE + 1);
    expect(b.rsp()).toBe(STACK_TOP); // nothing was pushed
  });

  it("an exception not in the bitmap is delivered through the guest IDT", () => {
    const b = new VmxBed();
    b.setControls({ exceptionBitmap: 1 << 13 });
    b.load("nop\nud2\n");
    const e = b.runToExit();
    expect(e.reason).toBe(V.EXIT_VMCALL); // the #UD stub's VMCALL
    expect(b.rip()).toBe(stub(6));
    const sp = b.rsp();
    expect(sp).toBe(STACK_TOP - 40);
    expect(b.read64(sp)).toBe(CODE + 1); // return RIP: the UD2
    expect(b.read64(sp + 8)).toBe(0x08);
  });

  /** A guest that writes, then reads, pages whose guest PTEs are not present. */
  function pfBed(bitmap: number, mask: number, match: number): VmxBed {
    const b = new VmxBed();
    b.setPte(DATA + 0x5000, 0);
    b.setControls({ exceptionBitmap: bitmap, pfecMask: mask, pfecMatch: match });
    b.load(`mov rax, ${DATA + 0x5008}\nmov [rax], rbx\nmov rcx, [rax]\n`);
    return b;
  }
  const W_FAULT = 2; // PFEC of a supervisor write to a not-present page
  const R_FAULT = 0; // … of a read

  it("#PF with bit 14 set exits when PFEC & mask == match (qualification = linear address)", () => {
    const b = pfBed(1 << 14, 0, 0);
    b.runToExit();
    expect(b.exit.reason).toBe(0);
    expect(b.host.vmread(V.VMCS_EXIT_INTR_INFO) >>> 0).toBe(INTR_PF >>> 0);
    expect(b.host.vmread(V.VMCS_EXIT_INTR_ERROR_CODE)).toBe(W_FAULT);
    expect(b.host.vmreadNumber(V.VMCS_EXIT_QUALIFICATION)).toBe(DATA + 0x5008);
    expect(b.rip()).toBe(CODE + 7); // the write (after the 7-byte MOV RAX, imm32)

    // mask W, match W: the write's #PF exits, the read's is delivered to the guest.
    const w = pfBed(1 << 14, 2, 2);
    w.runToExit();
    expect(w.exit.reason).toBe(0);
    expect(w.host.vmread(V.VMCS_EXIT_INTR_ERROR_CODE)).toBe(W_FAULT);
    w.skip(); // the hypervisor "handles" the write
    w.host.vmwrite(V.VMCS_GUEST_RIP, CODE + 10);
    w.runToExit();
    expect(w.exit.reason).toBe(V.EXIT_VMCALL);
    expect(w.rip()).toBe(stub(14));
    expect(w.read64(w.rsp())).toBe(R_FAULT);
  });

  it("#PF with bit 14 clear exits when PFEC & mask != match", () => {
    // mask W, match W, bit clear: a write fault (matches) goes to the guest…
    const b = pfBed(0, 2, 2);
    b.runToExit();
    expect(b.exit.reason).toBe(V.EXIT_VMCALL);
    expect(b.rip()).toBe(stub(14));
    expect(b.read64(b.rsp())).toBe(W_FAULT);
    // …and a read fault (does not match) exits.
    const r = pfBed(0, 2, 2);
    r.host.vmwrite(V.VMCS_GUEST_RIP, CODE + 10);
    r.cpu.lo[0] = DATA + 0x5008;
    r.runToExit();
    expect(r.exit.reason).toBe(V.EXIT_EXCEPTION_NMI);
    expect(r.host.vmread(V.VMCS_EXIT_INTR_INFO) >>> 0).toBe(INTR_PF >>> 0);
    expect(r.host.vmread(V.VMCS_EXIT_INTR_ERROR_CODE)).toBe(R_FAULT);
    // mask 0, match 0, bit clear: no #PF exits at all.
    const n = pfBed(0, 0, 0);
    n.runToExit();
    expect(n.exit.reason).toBe(V.EXIT_VMCALL);
    expect(n.rip()).toBe(stub(14));
  });
});

describe.skipIf(!HAVE_AS)("VMX exits: interrupt window and the preemption timer", () => {
  it("interrupt-window exiting (7) fires after STI once the STI shadow has passed", () => {
    const b = new VmxBed();
    b.setControls({ proc: C.CPU_INTR_WINDOW_EXITING });
    b.load("nop\nsti\nnop\nnop\ncpuid\n");
    expect(b.runToExit().reason).toBe(V.EXIT_INTERRUPT_WINDOW);
    expect(b.rip()).toBe(CODE + 3); // STI, then one more instruction, then the window
    expect(b.host.vmread(V.VMCS_EXIT_INSTRUCTION_LENGTH)).toBe(0);
    expect(b.host.vmread(V.VMCS_GUEST_RFLAGS) & 0x200).toBe(0x200);
    // Entering with IF = 1 exits before the first instruction; with IF = 0 it never does.
    const c = new VmxBed();
    c.setControls({ proc: C.CPU_INTR_WINDOW_EXITING });
    c.host.vmwrite(V.VMCS_GUEST_RFLAGS, 0x202);
    c.load("nop\ncpuid\n");
    expect(c.runToExit().reason).toBe(7);
    expect(c.rip()).toBe(CODE);
    const d = new VmxBed();
    d.setControls({ proc: C.CPU_INTR_WINDOW_EXITING });
    d.load("nop\ncpuid\n");
    expect(d.runToExit().reason).toBe(V.EXIT_CPUID);
  });

  it("the VMX-preemption timer exits (52) after value × 32 cycles, and saves 0", () => {
    const b = new VmxBed();
    b.setControls({ pin: C.PIN_PREEMPTION_TIMER });
    b.host.vmwrite(V.VMCS_PREEMPTION_TIMER_VALUE, 100);
    b.load("l: jmp l\n");
    const t0 = b.host.cycles();
    expect(b.run(1000)).toBe(RUN_BUDGET); // 1000 cycles in: not yet
    expect(b.host.cycles() - t0).toBe(1000);
    expect(b.run(1_000_000)).toBe(RUN_EXIT);
    expect(b.exit.reason).toBe(V.EXIT_PREEMPTION_TIMER);
    expect(b.host.cycles() - t0).toBe(3200);
    expect(b.host.vmread(V.VMCS_PREEMPTION_TIMER_VALUE)).toBe(0);
    expect(b.rip()).toBe(CODE);
    // Without the control the guest runs on.
    const c = new VmxBed();
    c.host.vmwrite(V.VMCS_PREEMPTION_TIMER_VALUE, 1);
    c.load("l: jmp l\n");
    expect(c.run(10_000)).toBe(RUN_BUDGET);
  });
});

describe.skipIf(!HAVE_AS)("VMX: event injection at VM entry", () => {
  it("an injected external interrupt is delivered through the guest IDT", () => {
    const b = new VmxBed();
    b.host.vmwrite(V.VMCS_GUEST_RFLAGS, 0x202);
    b.host.vmwrite(V.VMCS_ENTRY_INTR_INFO, C.INTR_INFO_VALID | C.INTR_TYPE_EXT_INTR | 0x40);
    b.load("nop\n");
    expect(b.runToExit().reason).toBe(V.EXIT_VMCALL);
    expect(b.rip()).toBe(stub(0x40));
    const sp = b.rsp();
    expect(sp).toBe(STACK_TOP - 40);
    expect(b.read64(sp)).toBe(CODE); // interrupted RIP
    expect(b.read64(sp + 8)).toBe(0x08);
    expect(b.read64(sp + 16)).toBe(0x202);
    expect(b.read64(sp + 24)).toBe(STACK_TOP);
    expect(b.host.vmread(V.VMCS_GUEST_RFLAGS) & 0x200).toBe(0); // interrupt gate cleared IF
    expect(b.host.vmread(V.VMCS_ENTRY_INTR_INFO) & C.INTR_INFO_VALID).toBe(0); // consumed
    expect(b.host.vmread(V.VMCS_IDT_VECTORING_INFO)).toBe(0);
  });

  it("an injected exception does not consult the exception bitmap; error codes and software-event lengths apply", () => {
    const b = new VmxBed();
    b.setControls({ exceptionBitmap: 0xffffffff });
    b.host.vmwrite(V.VMCS_ENTRY_INTR_INFO, INTR_UD);
    b.load("nop\n");
    expect(b.runToExit().reason).toBe(V.EXIT_VMCALL);
    expect(b.rip()).toBe(stub(6));
    expect(b.read64(b.rsp())).toBe(CODE);

    const g = new VmxBed();
    g.setControls({ exceptionBitmap: 1 << 13 });
    g.host.vmwrite(
      V.VMCS_ENTRY_INTR_INFO,
      C.INTR_INFO_VALID | C.INTR_TYPE_HW_EXCEPTION | C.INTR_INFO_DELIVER_CODE | 13,
    );
    g.host.vmwrite(V.VMCS_ENTRY_EXCEPTION_ERROR_CODE, 0x1234);
    g.load("nop\n");
    expect(g.runToExit().reason).toBe(V.EXIT_VMCALL);
    expect(g.rip()).toBe(stub(13));
    expect(g.read64(g.rsp())).toBe(0x1234);
    expect(g.read64(g.rsp() + 8)).toBe(CODE);

    // A software interrupt (type 4) returns past the instruction: RIP + entry instruction length.
    const s = new VmxBed();
    s.host.vmwrite(V.VMCS_ENTRY_INTR_INFO, C.INTR_INFO_VALID | C.INTR_TYPE_SW_INTR | 0x80);
    s.host.vmwrite(V.VMCS_ENTRY_INSTRUCTION_LENGTH, 2);
    s.load("nop\n");
    expect(s.runToExit().reason).toBe(V.EXIT_VMCALL);
    expect(s.rip()).toBe(stub(0x80));
    expect(s.read64(s.rsp())).toBe(CODE + 2);
  });

  it("an EPT violation while delivering the guest's own exception reports it too (with its error code)", () => {
    for (const [src, vector, err, at] of [
      ["nop\nud2\n", 6, -1, CODE + 1],
      ["mov rax, 0x8000000000000000\nmov rbx, [rax]\n", 13, 0, CODE + 10], // non-canonical: #GP(0)
    ] as const) {
      const b = new VmxBed();
      const stackPage = STACK_TOP - 0x1000;
      b.ept.unmap(stackPage);
      b.load(src);
      b.runToExit();
      expect(b.exit.reason).toBe(V.EXIT_EPT_VIOLATION);
      const info = C.INTR_INFO_VALID | C.INTR_TYPE_HW_EXCEPTION | vector | (err >= 0 ? C.INTR_INFO_DELIVER_CODE : 0);
      expect(b.host.vmread(V.VMCS_IDT_VECTORING_INFO) >>> 0).toBe(info >>> 0);
      if (err >= 0) expect(b.host.vmread(V.VMCS_IDT_VECTORING_ERROR_CODE)).toBe(err);
      expect(b.rip()).toBe(at);
      // Map the page and re-inject what the vectoring information says, as L0 does.
      b.ept.map(stackPage, b.hpa(stackPage), 7);
      b.host.vmwrite(V.VMCS_ENTRY_INTR_INFO, b.host.vmread(V.VMCS_IDT_VECTORING_INFO));
      b.host.vmwrite(V.VMCS_ENTRY_EXCEPTION_ERROR_CODE, b.host.vmread(V.VMCS_IDT_VECTORING_ERROR_CODE));
      expect(b.runToExit().reason).toBe(V.EXIT_VMCALL);
      expect(b.rip()).toBe(stub(vector));
      expect(b.read64(b.rsp() + (err >= 0 ? 8 : 0))).toBe(at);
      if (err >= 0) expect(b.read64(b.rsp())).toBe(err);
    }
  });

  it("an EPT violation while delivering an injected event reports it in the IDT-vectoring information", () => {
    const b = new VmxBed();
    const stackPage = STACK_TOP - 0x1000;
    b.ept.unmap(stackPage);
    const info = C.INTR_INFO_VALID | C.INTR_TYPE_EXT_INTR | 0x40;
    b.host.vmwrite(V.VMCS_GUEST_RFLAGS, 0x202);
    b.host.vmwrite(V.VMCS_ENTRY_INTR_INFO, info);
    b.load("nop\n");
    expect(b.run()).toBe(RUN_EXIT);
    expect(b.exit.reason).toBe(V.EXIT_EPT_VIOLATION);
    expect(b.host.vmread(V.VMCS_IDT_VECTORING_INFO) >>> 0).toBe(info >>> 0);
    expect(b.host.vmreadNumber(V.VMCS_GUEST_PHYSICAL_ADDRESS)).toBe(STACK_TOP - 8);
    // A write, GLA valid, the translation of the linear address; the page is not present.
    expect(b.host.vmread(V.VMCS_EXIT_QUALIFICATION)).toBe(
      C.EPT_QUAL_WRITE | C.EPT_QUAL_GLA_VALID | C.EPT_QUAL_TRANSLATION,
    );
    expect(b.rip()).toBe(CODE);
    expect(b.rsp()).toBe(STACK_TOP);
    // The hypervisor maps the page and re-injects the event: now it is delivered.
    b.ept.map(stackPage, b.hpa(stackPage), 7);
    b.host.vmwrite(V.VMCS_ENTRY_INTR_INFO, b.host.vmread(V.VMCS_IDT_VECTORING_INFO));
    expect(b.runToExit().reason).toBe(V.EXIT_VMCALL);
    expect(b.rip()).toBe(stub(0x40));
    expect(b.host.vmread(V.VMCS_IDT_VECTORING_INFO)).toBe(0);
  });
});
