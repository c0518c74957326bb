import { describe, expect, it } from "vitest";
import { type Cpu, STOP_HALT } from "../../src/cpu/cpu.js";
import type { Insn } from "../../src/cpu/insn.js";
import { HARMLESS_MSRS } from "../../src/cpu/msr.js";
import { CR4_PGE, CR4_TSD, EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE } from "../../src/x86/control.js";
import { GP, UD } from "../../src/x86/exceptions.js";
import { IF } from "../../src/x86/flags.js";
import { MSR_IA32_MISC_ENABLE } from "../../src/x86/msr.js";
import { VMXI_INVEPT, VMXI_VMCALL, VMXI_VMLAUNCH, VMXI_VMREAD, VMXI_VMXON } from "../../src/x86/vmx.js";
import { asm, HAVE_AS } from "../helpers/asm.js";
import { reg } from "../helpers/machine.js";
import {
  CODE_BASE,
  DATA_BASE,
  expectHalt,
  FakeIntc,
  fault,
  frame,
  GDT,
  KCODE,
  KCODE32,
  KDATA,
  RecordingIoBus,
  RSP0,
  runSys,
  STAR_HI,
  setGate,
  stub,
  sysCpu,
  TSS_SEL,
  toUser,
  UCODE64,
  UDATA,
  USER_STACK,
} from "../helpers/sys.js";

/** Run to the final HLT of the code (not a stub). */
function finish(source: string, setup?: Parameters<typeof sysCpu>[1]) {
  const c = sysCpu(source, setup);
  expectHalt(c, runSys(c));
  const f = frame(c);
  if (f.vector >= 0) throw new Error(`unexpected vector ${f.vector} error ${f.errorCode} at ${f.rip.toString(16)}`);
  return c;
}

describe.skipIf(!HAVE_AS)("control registers", () => {
  it("reads CR0/CR3/CR4 as 64-bit values and writes CR4.PGE (flushing the TLB)", () => {
    const c = finish(`
      mov rax, cr0
      mov rbx, cr3
      mov rcx, cr4
      or rcx, ${CR4_PGE}
      mov cr4, rcx
      mov rdx, cr4`);
    expect(reg(c, 0) & 0x80000001n).toBe(0x80000001n);
    expect(reg(c, 3)).toBe(BigInt(c.cr3Lo));
    expect(Number(reg(c, 2)) & CR4_PGE).toBe(CR4_PGE);
    expect(c.cr4 & CR4_PGE).toBe(CR4_PGE);
  });

  it("flushes the software TLB on a CR3 write", () => {
    const c = sysCpu("mov rax, cr3\nmov cr3, rax");
    const before = c.counters.tlbFlushes;
    expectHalt(c, runSys(c));
    expect(c.counters.tlbFlushes).toBeGreaterThan(before);
  });

  it("raises #GP for reserved CR4 bits (VMXE without VMX in CPUID) and for clearing PAE in long mode", () => {
    expect(fault("mov rax, cr4\nbts rax, 13\nmov cr4, rax").f).toMatchObject({ vector: GP, errorCode: 0 });
    expect(fault("mov rax, cr4\nbtr rax, 5\nmov cr4, rax").f).toMatchObject({ vector: GP, errorCode: 0 });
  });

  it("raises #GP for clearing CR0.PG in 64-bit mode and for CR3 bits above MAXPHYADDR", () => {
    expect(fault("mov rax, cr0\nbtr rax, 31\nmov cr0, rax").f).toMatchObject({ vector: GP, errorCode: 0 });
    expect(fault("mov rax, cr3\nbts rax, 50\nmov cr3, rax").f).toMatchObject({ vector: GP, errorCode: 0 });
  });

  it("raises #GP for CR0.NW without CD and ignores reserved low CR0 bits", () => {
    expect(fault("mov rax, cr0\nbtr rax, 30\nbts rax, 29\nmov cr0, rax").f.vector).toBe(GP);
    const c = finish("mov rax, cr0\nbts rax, 7\nmov cr0, rax\nmov rbx, cr0");
    expect(Number(reg(c, 3)) & 0x80).toBe(0);
  });

  it("CR8 holds the TPR (bits 3:0); higher bits are #GP; CR1 and CR5 are #UD", () => {
    const c = finish("mov eax, 9\nmov cr8, rax\nmov rbx, cr8");
    expect(reg(c, 3)).toBe(9n);
    expect(fault("mov eax, 16\nmov cr8, rax").f.vector).toBe(GP);
    expect(fault(".byte 0x0f, 0x20, 0xc8").f.vector).toBe(UD); // mov rax, cr1
    expect(fault(".byte 0x0f, 0x22, 0xe8").f.vector).toBe(UD); // mov cr5, rax
  });

  it("ignores the mod field of MOV CR (always a register operand)", () => {
    const c = finish(".byte 0x0f, 0x20, 0x18"); // mod=00 reg=3 rm=0: mov rax, cr3
    expect(reg(c, 0)).toBe(BigInt(c.cr3Lo));
  });

  it("CLTS clears CR0.TS; SMSW stores CR0; LMSW cannot clear PE", () => {
    const c = finish(`
      mov rax, cr0
      bts rax, 3
      mov cr0, rax
      clts
      mov rbx, cr0
      smsw ecx
      mov eax, 0
      lmsw ax
      mov rdx, cr0`);
    expect(Number(reg(c, 3)) & 8).toBe(0);
    expect(Number(reg(c, 1)) >>> 0).toBe(c.cr0 >>> 0);
    expect(Number(reg(c, 2)) & 1).toBe(1);
  });

  it("debug registers: DR0 64-bit, DR6/DR7 fixed bits, DR4/DR5 alias DR6/DR7", () => {
    const c = finish(`
      mov rax, 0x123456789a
      mov dr0, rax
      mov rbx, dr0
      mov eax, 0x1
      mov dr7, rax
      mov rcx, dr7
      mov rdx, dr6
      mov rsi, dr5`);
    expect(reg(c, 3)).toBe(0x123456789an);
    expect(reg(c, 1)).toBe(0x401n);
    expect(reg(c, 2)).toBe(0xffff0ff0n);
    expect(reg(c, 6)).toBe(0x401n);
  });

  it("privileged register access at CPL 3 is #GP(0)", () => {
    for (const insn of ["mov rax, cr0", "mov cr3, rax", "mov rax, dr7", "clts", "hlt", "wbinvd", "invlpg [rax]"]) {
      const { f } = fault(`${toUser()}\n${insn}`);
      expect(f, insn).toMatchObject({ vector: GP, errorCode: 0, cs: UCODE64, ss: UDATA });
    }
  });
});

describe.skipIf(!HAVE_AS)("descriptor tables and segments", () => {
  it("SGDT/SIDT store limit and 64-bit base; LGDT/LIDT load them", () => {
    const c = finish(`
      sgdt [rip + buf]
      mov ax, [rip + buf]
      mov rbx, [rip + buf + 2]
      mov word ptr [rip + buf2], 0x1234
      mov rcx, 0xffff800012345000
      mov [rip + buf2 + 2], rcx
      lidt [rip + buf2]
      sidt [rip + buf3]
      mov dx, [rip + buf3]
      mov rsi, [rip + buf3 + 2]
      hlt
    buf: .fill 10, 1, 0
    buf2: .fill 10, 1, 0
    buf3: .fill 10, 1, 0`);
    expect(reg(c, 0) & 0xffffn).toBe(0x57n);
    expect(reg(c, 3)).toBe(BigInt(GDT));
    expect(reg(c, 2) & 0xffffn).toBe(0x1234n);
    expect(reg(c, 6)).toBe(0xffff800012345000n);
    expect(c.idtrLimit).toBe(0x1234);
  });

  it("LGDT at CPL 3 is #GP(0) but SGDT is allowed", () => {
    expect(fault(`${toUser()}\nlgdt [rsp]`).f).toMatchObject({ vector: GP, errorCode: 0 });
    const { f } = fault(`${toUser()}\nsub rsp, 16\nsgdt [rsp]\nmov rax, [rsp + 2]\nint3`);
    expect(f.vector).toBe(GP); // int3 with a DPL-0 gate from CPL 3: #GP(3*8+2)
    expect(f.errorCode).toBe(3 * 8 + 2);
  });

  it("STR/SLDT read the task register and LDTR; LLDT with a null selector", () => {
    const c = finish("str eax\nxor ebx, ebx\nlldt bx\nsldt ecx\nmov rdx, -1\nstr dx");
    expect(reg(c, 0)).toBe(BigInt(TSS_SEL));
    expect(reg(c, 1)).toBe(0n);
    expect(reg(c, 2)).toBe(0xffffffffffff0000n | BigInt(TSS_SEL));
  });

  it("LTR on a busy TSS is #GP(selector)", () => {
    expect(fault(`mov ax, ${TSS_SEL}\nltr ax`).f).toMatchObject({ vector: GP, errorCode: TSS_SEL });
  });

  it("MOV to/from segment registers, PUSH/POP FS/GS", () => {
    const c = finish(`
      mov ax, ${KDATA}
      mov fs, ax
      mov gs, ax
      mov rbx, -1
      mov bx, fs
      mov ecx, 0
      mov ecx, gs
      push fs
      pop rdx
      xor eax, eax
      push rax
      pop gs`);
    expect(reg(c, 3)).toBe(0xffffffffffff0000n | BigInt(KDATA));
    expect(reg(c, 1)).toBe(BigInt(KDATA));
    expect(reg(c, 2)).toBe(BigInt(KDATA));
    expect(c.segSel[5]).toBe(0);
  });

  it("segment loads check type, privilege and presence", () => {
    // CS cannot be loaded with MOV.
    expect(fault(".byte 0x8e, 0xc8").f.vector).toBe(UD);
    // Not present data segment: #NP(selector).
    expect(fault("mov ax, 0x48\nmov ds, ax").f).toMatchObject({ vector: 11, errorCode: 0x48 });
    // Execute-only code into DS: #GP(selector).
    expect(fault("mov ax, 0x50\nmov ds, ax").f).toMatchObject({ vector: GP, errorCode: 0x50 });
    // SS with RPL != CPL: #GP(selector).
    expect(fault(`mov ax, ${UDATA}\nmov ss, ax`).f).toMatchObject({ vector: GP, errorCode: UDATA & ~3 });
    // Beyond the GDT limit.
    expect(fault("mov ax, 0x100\nmov es, ax").f).toMatchObject({ vector: GP, errorCode: 0x100 });
    // Kernel data from CPL 3: DPL < CPL.
    expect(fault(`${toUser()}\nmov ax, ${KDATA}\nmov ds, ax`).f).toMatchObject({ vector: GP, errorCode: KDATA });
  });

  it("LAR/LSL/VERR/VERW probe descriptors and report through ZF", () => {
    const c = finish(`
      mov ax, ${KCODE}
      lar ebx, ax
      setz r8b
      lsl ecx, ax
      mov dx, ${TSS_SEL}
      lsl esi, dx
      mov ax, 0x100
      lar edi, ax
      setz r9b
      mov ax, ${KCODE}
      verr ax
      setz r10b
      verw ax
      setz r11b
      mov ax, ${KDATA}
      verw ax
      setz r12b`);
    expect(reg(c, 8) & 0xffn).toBe(1n);
    expect(reg(c, 3)).toBe(0x00af9b00n & 0x00f0ff00n);
    expect(reg(c, 1)).toBe(0xffffffffn);
    expect(reg(c, 6)).toBe(0x67n);
    expect(reg(c, 9) & 0xffn).toBe(0n);
    expect(reg(c, 10) & 0xffn).toBe(1n);
    expect(reg(c, 11) & 0xffn).toBe(0n);
    expect(reg(c, 12) & 0xffn).toBe(1n);
  });

  it("far JMP/CALL m16:64 and far RET at the same privilege level", () => {
    const c = finish(`
      lea rax, [rip + target]
      mov [rip + ptr], rax
      mov word ptr [rip + ptr + 8], ${KCODE}
      rex.w call fword ptr [rip + ptr]
      mov ebx, 7
      hlt
    target:
      mov ecx, 5
      rex.w retf
    ptr: .fill 10, 1, 0`);
    expect(reg(c, 1)).toBe(5n);
    expect(reg(c, 3)).toBe(7n);
    expect(c.segSel[1]).toBe(KCODE);
  });

  it("far JMP to a 32-bit code segment enters compatibility mode; a far JMP back returns to 64-bit", () => {
    const c = sysCpu(`
      lea rax, [rip + compat]
      mov [rip + ptr], eax
      mov word ptr [rip + ptr + 4], ${KCODE32}
      lea rax, [rip + back]
      mov [rip + ptr64], eax
      mov word ptr [rip + ptr64 + 4], ${KCODE}
      lea rsi, [rip + ptr64]
      jmp fword ptr [rip + ptr]
    compat:
      .byte 0x40           # in compatibility mode: INC EAX
      .byte 0xff, 0x2e     # jmp far [esi]
    back:
      mov ebx, 1
      hlt
    ptr: .fill 6, 1, 0
    ptr64: .fill 6, 1, 0`);
    c.lo[0] = 0;
    expectHalt(c, runSys(c));
    expect(frame(c).vector).toBe(-1);
    expect(c.mode64).toBe(true);
    expect(reg(c, 3)).toBe(1n);
  });

  it("far JMP to a non-code segment or a null selector is #GP", () => {
    expect(
      fault(`mov word ptr [rsp - 8 + 4], ${KDATA}\nmov dword ptr [rsp - 8], 0\njmp fword ptr [rsp - 8]`).f,
    ).toMatchObject({
      vector: GP,
      errorCode: KDATA,
    });
    expect(fault("mov word ptr [rsp - 8 + 4], 0\nmov dword ptr [rsp - 8], 0\njmp fword ptr [rsp - 8]").f).toMatchObject(
      {
        vector: GP,
        errorCode: 0,
      },
    );
  });

  it("far JMP in IA-32e mode to a code segment with both L and D set is #GP(selector)", () => {
    // SDM vol. 2, JMP: "If the code segment descriptor has both L and D bits set" → #GP(selector)
    // when EFER.LMA = 1. Selector 0x50 rewritten as a readable DPL-0 code segment with L = D = 1.
    const src = "mov word ptr [rsp - 8 + 4], 0x50\nmov dword ptr [rsp - 8], 0\njmp fword ptr [rsp - 8]";
    const ld = (c: Cpu) => c.mem.write64(GDT + 0x50, 0x0000ffff, 0x00ef9b00);
    expect(fault(src, ld).f).toMatchObject({ vector: GP, errorCode: 0x50 });
    // The same descriptor with D clear (a 64-bit code segment) is a valid target.
    const ok = (c: Cpu) => c.mem.write64(GDT + 0x50, 0x0000ffff, 0x00af9b00);
    const { c, f } = fault(
      `lea rax, [rip + t]\nmov [rsp - 8], eax\nmov word ptr [rsp - 8 + 4], 0x50\njmp fword ptr [rsp - 8]\nt: hlt`,
      ok,
    );
    expect(f.vector).toBe(-1);
    expect(c.segSel[1]).toBe(0x50);
  });

  it("far RET to CPL 3 pops SS:RSP", () => {
    const c = sysCpu(`
      push ${UDATA}
      push ${USER_STACK}
      push ${UCODE64}
      lea rax, [rip + user]
      push rax
      rex.w retf
    user:
      hlt`);
    expectHalt(c, runSys(c));
    const f = frame(c);
    expect(f).toMatchObject({ vector: GP, cs: UCODE64, ss: UDATA, rsp: USER_STACK });
    expect(c.cpl).toBe(0);
  });
});

describe.skipIf(!HAVE_AS)("IRET and software interrupts", () => {
  it("IRETQ to CPL 3 loads CS, SS, RSP, RFLAGS and faults back through the TSS stack", () => {
    const c = sysCpu(`${toUser(0x202)}\n mov eax, 1\n hlt`);
    expectHalt(c, runSys(c));
    const f = frame(c);
    expect(f).toMatchObject({ vector: GP, errorCode: 0, cs: UCODE64, ss: UDATA, rsp: USER_STACK });
    expect(f.rflags & IF).toBe(IF);
    expect(f.frameRsp).toBe(RSP0 - 48);
    expect(c.segSel[2]).toBe(0); // SS = NULL with RPL = 0 after a privilege change
    expect(c.cpl).toBe(0);
  });

  it("IRETQ at CPL 3 cannot change IOPL or IF (CPL > IOPL)", () => {
    const c = sysCpu(`${toUser(0x2)}
      lea rax, [rip + next]
      push ${UDATA}
      push ${USER_STACK}
      push 0x3202
      push ${UCODE64}
      push rax
      iretq
    next:
      pushfq
      pop rbx
      hlt`);
    expectHalt(c, runSys(c));
    expect(frame(c).vector).toBe(GP);
    expect(Number(reg(c, 3)) & (IF | 0x3000)).toBe(0);
  });

  it("IRETQ to a kernel segment from CPL 3 is #GP(selector)", () => {
    const c = sysCpu(`${toUser()}
      push ${KDATA}
      push 0
      push 2
      push ${KCODE}
      push 0
      iretq`);
    expectHalt(c, runSys(c));
    expect(frame(c)).toMatchObject({ vector: GP, errorCode: KCODE });
  });

  it("INT n through a DPL-3 gate from user mode; INT n through a DPL-0 gate is #GP(vector*8+2)", () => {
    const c = sysCpu(`${toUser()}\n int 0x80\n nop`, (c) => setGate(c, 0x80, stub(0x80), { dpl: 3 }));
    expectHalt(c, runSys(c));
    const f = frame(c);
    expect(f.vector).toBe(0x80);
    expect(f.errorCode).toBe(-1);
    expect(f.cs).toBe(UCODE64);
    expect(f.rip).toBe(CODE_BASE + asm(toUser()).length + 2); // the return RIP follows INT
    const g = fault(`${toUser()}\n int 0x81`).f;
    expect(g).toMatchObject({ vector: GP, errorCode: 0x81 * 8 + 2 });
  });

  it("INT3 pushes the address after it; UD2 and INTO (64-bit) are #UD at the instruction", () => {
    const { f } = fault("nop\nint3");
    expect(f).toMatchObject({ vector: 3, rip: CODE_BASE + 2 });
    expect(fault("nop\nud2").f).toMatchObject({ vector: UD, rip: CODE_BASE + 1 });
    expect(fault(".byte 0xce").f).toMatchObject({ vector: UD, rip: CODE_BASE });
  });
});

describe.skipIf(!HAVE_AS)("MSRs, CPUID, TSC", () => {
  it("EFER: LMA is read-only, reserved bits are #GP, LME cannot change with paging on", () => {
    const c = finish("mov ecx, 0xc0000080\nrdmsr\nmov ebx, eax\nbtr eax, 10\nwrmsr\nrdmsr");
    expect(Number(reg(c, 3))).toBe(EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE);
    expect(Number(reg(c, 0)) & EFER_LMA).toBe(EFER_LMA);
    expect(fault("mov ecx, 0xc0000080\nrdmsr\nbts eax, 12\nwrmsr").f.vector).toBe(GP);
    expect(fault("mov ecx, 0xc0000080\nrdmsr\nbtr eax, 8\nwrmsr").f.vector).toBe(GP);
  });

  it("base MSRs: FS/GS base feed addressing; non-canonical values are #GP", () => {
    const c = finish(`
      mov ecx, 0xc0000100
      mov eax, ${DATA_BASE}
      xor edx, edx
      wrmsr
      mov dword ptr [${DATA_BASE + 8}], 0x55
      mov ebx, fs:[8]
      mov ecx, 0xc0000102
      mov eax, 0x1000
      mov edx, 0xffff8000
      wrmsr
      rdmsr`);
    expect(reg(c, 3)).toBe(0x55n);
    expect(reg(c, 2)).toBe(0xffff8000n);
    expect(c.kernelGsBaseHi >>> 0).toBe(0xffff8000);
    expect(fault("mov ecx, 0xc0000082\nxor eax, eax\nmov edx, 0x8000\nwrmsr").f).toMatchObject({
      vector: GP,
      errorCode: 0,
    });
  });

  it("unknown MSRs are #GP(0); harmless MSRs keep their value; the MsrHandler is consulted", () => {
    expect(fault("mov ecx, 0x12345\nrdmsr").f).toMatchObject({ vector: GP, errorCode: 0 });
    expect(HARMLESS_MSRS).toContain(MSR_IA32_MISC_ENABLE);
    const c = finish(
      `
      mov ecx, 0x1a0
      rdmsr
      mov ebx, eax
      mov eax, 0x801
      wrmsr
      rdmsr
      mov esi, eax
      mov ecx, 0x830
      mov eax, 0x77
      wrmsr
      rdmsr`,
      (c) => {
        let stored = 0;
        c.msrHandler = {
          readMsr(i, out) {
            if (i !== 0x830) return false;
            out[0] = stored + 1;
            out[1] = 0;
            return true;
          },
          writeMsr(i, lo) {
            if (i !== 0x830) return false;
            stored = lo;
            return true;
          },
        };
      },
    );
    expect(reg(c, 3)).toBe(0x1801n);
    expect(reg(c, 6)).toBe(0x801n);
    expect(reg(c, 0)).toBe(0x78n);
  });

  it("RDMSR/WRMSR at CPL 3 are #GP(0)", () => {
    expect(fault(`${toUser()}\nmov ecx, 0xc0000080\nrdmsr`).f).toMatchObject({ vector: GP, cs: UCODE64 });
  });

  it("CPUID answers from the model: vendor, features, subleaf, out-of-range leaves", () => {
    const c = finish(`
      xor eax, eax
      cpuid
      mov [rip + buf], ebx
      mov [rip + buf + 4], edx
      mov [rip + buf + 8], ecx
      mov r8d, eax
      mov eax, 0x80000001
      cpuid
      mov r9d, edx
      mov eax, 7
      xor ecx, ecx
      cpuid
      mov r10d, ebx
      mov eax, 0x7fffffff
      cpuid
      mov r11d, eax
      hlt
    buf: .fill 12, 1, 0`);
    const s = Buffer.from(c.mem.readBytes(CODE_BASE, 0x200)).toString("latin1");
    expect(s).toContain("GenuineIntel");
    expect(reg(c, 8)).toBe(0xdn);
    expect(Number(reg(c, 9)) & (1 << 29)).not.toBe(0); // LM
    expect(Number(reg(c, 10)) & (1 << 7)).not.toBe(0); // SMEP
    // Above the maximum basic leaf: the highest basic leaf's answer (0xd: zeros here).
    expect(reg(c, 11)).toBe(0n);
  });

  it("RDTSC returns simulated cycles plus the offset (deterministic); WRMSR(TSC) sets the offset", () => {
    const c1 = finish("nop\nnop\nrdtsc");
    const c2 = finish("nop\nnop\nrdtsc");
    expect(reg(c1, 0)).toBe(reg(c2, 0));
    expect(Number(reg(c1, 0))).toBe(2 * c1.cyclesPerInsn);
    const c3 = finish("mov ecx, 0x10\nmov eax, 1000\nxor edx, edx\nwrmsr\nrdtsc\nmov ebx, eax", (c) => {
      c.cyclesPerInsn = 1;
    });
    // WRMSR is instruction 3 (the TSC reads 1000 at that point); RDTSC comes one instruction later.
    expect(reg(c3, 3)).toBe(1001n);
    const c4 = finish("mov ecx, 0xc0000103\nmov eax, 42\nxor edx, edx\nwrmsr\nrdtscp");
    expect(reg(c4, 1)).toBe(42n);
  });

  it("RDTSC at CPL 3 is #GP(0) only with CR4.TSD", () => {
    const ok = sysCpu(`${toUser()}\nrdtsc\nhlt`);
    expectHalt(ok, runSys(ok));
    const fo = frame(ok);
    expect(fo.vector).toBe(GP);
    expect(ok.mem.read(fo.rip, 1)).toBe(0xf4); // the HLT after RDTSC, not RDTSC
    const c = sysCpu(`mov rax, cr4\nor eax, ${CR4_TSD}\nmov cr4, rax\n${toUser()}\nrdtsc`);
    expectHalt(c, runSys(c));
    expect(frame(c)).toMatchObject({ vector: GP, errorCode: 0, cs: UCODE64 });
  });
});

describe.skipIf(!HAVE_AS)("interrupt flag, port I/O, interrupts", () => {
  it("IN/OUT with immediate and DX ports through the IoBus", () => {
    const io = new RecordingIoBus({ 96: 0xab, 496: 0x1234, 3324: 0xdeadbeef });
    const c = finish(
      `
      in al, 0x60
      mov ebx, eax
      mov dx, 0x1f0
      in ax, dx
      mov ecx, eax
      mov dx, 0xcfc
      mov rax, -1
      in eax, dx
      mov esi, 0x41
      mov eax, esi
      out 0xe9, al
      mov dx, 0x3f8
      mov eax, 0x11223344
      out dx, eax
      out dx, ax`,
      (c) => {
        c.io = io;
        c.lo[3] = 0;
      },
    );
    expect(reg(c, 3) & 0xffn).toBe(0xabn);
    expect(reg(c, 1) & 0xffffn).toBe(0x1234n);
    expect(io.writes).toEqual([
      [0xe9, 1, 0x41],
      [0x3f8, 4, 0x11223344],
      [0x3f8, 2, 0x3344],
    ]);
    expect(io.reads).toEqual([
      [0x60, 1],
      [0x1f0, 2],
      [0xcfc, 4],
    ]);
  });

  it("IN EAX zero-extends into RAX", () => {
    const c = finish("mov rax, -1\nmov dx, 0xcfc\nin eax, dx", (c) => {
      c.io = new RecordingIoBus({ 3324: 0x80000001 });
    });
    expect(reg(c, 0)).toBe(0x80000001n);
  });

  it("REP OUTSB and REP INSW move strings through a port", () => {
    const io = new RecordingIoBus({ 496: 0xbeef });
    const c = finish(
      `
      lea rsi, [rip + msg]
      mov ecx, 3
      mov dx, 0xe9
      rep outsb
      mov edi, ${DATA_BASE}
      mov ecx, 2
      mov dx, 0x1f0
      rep insw
      hlt
    msg: .ascii "abc"`,
      (c) => {
        c.io = io;
      },
    );
    expect(io.writes.map((w) => w[2])).toEqual([0x61, 0x62, 0x63]);
    expect(c.mem.read(DATA_BASE, 4) >>> 0).toBe(0xbeefbeef);
    expect(reg(c, 1)).toBe(0n);
    expect(reg(c, 7)).toBe(BigInt(DATA_BASE + 4));
  });

  it("port I/O and CLI/STI at CPL 3 depend on IOPL", () => {
    for (const insn of ["in al, 0x60", "out 0x80, al", "cli", "sti", "insb", "outsb"]) {
      expect(fault(`${toUser()}\n${insn}`).f, insn).toMatchObject({ vector: GP, errorCode: 0 });
    }
    const io = new RecordingIoBus();
    const c = sysCpu(`${toUser(0x3002)}\n mov al, 7\n out 0x80, al\n cli\n sti\n hlt`, (c) => {
      c.io = io;
    });
    expectHalt(c, runSys(c));
    expect(frame(c).vector).toBe(GP); // the HLT
    expect(io.writes).toEqual([[0x80, 1, 7]]);
  });

  it("delivers an external interrupt from the controller when IF=1, with the next RIP saved", () => {
    const intc = new FakeIntc();
    const c = sysCpu("sti\nnop\nnop\nnop", (c) => {
      c.intc = intc;
    });
    intc.pending.push(0x30);
    expectHalt(c, runSys(c));
    const f = frame(c);
    expect(f.vector).toBe(0x30);
    expect(f.errorCode).toBe(-1);
    // STI shadow: the NOP after STI runs before the interrupt.
    expect(f.rip).toBe(CODE_BASE + 2);
    expect(f.rflags & IF).toBe(IF);
    expect(c.flagSet(IF)).toBe(false);
    expect(intc.acks).toBe(1);
  });

  it("STI; HLT halts and the interrupt wakes the CPU after HLT", () => {
    const intc = new FakeIntc();
    const c = sysCpu("sti\nhlt\nmov eax, 1", (c) => {
      c.intc = intc;
      c.setFlags(c.getFlags() & ~IF);
    });
    expect(c.run(1000)).toBe(STOP_HALT);
    expect(c.ripLo).toBe(CODE_BASE + 2);
    intc.pending.push(0x41);
    c.notifyInterrupt();
    expectHalt(c, runSys(c));
    expect(frame(c)).toMatchObject({ vector: 0x41, rip: CODE_BASE + 2 });
  });

  it("does not deliver with IF=0; CLI blocks a pending interrupt", () => {
    const intc = new FakeIntc();
    intc.pending.push(0x30);
    const c = finish("cli\nnop\nmov eax, 5", (c) => {
      c.intc = intc;
    });
    expect(reg(c, 0)).toBe(5n);
    expect(intc.acks).toBe(0);
  });

  it("MOV SS blocks interrupts for one instruction", () => {
    const intc = new FakeIntc();
    const c = sysCpu(`sti\nnop\nmov ax, ${KDATA}\nmov ss, ax\nnop\nnop`, (c) => {
      c.intc = intc;
    });
    c.run(4); // sti, nop, mov ax, mov ss
    intc.pending.push(0x31);
    c.notifyInterrupt();
    expectHalt(c, runSys(c));
    // mov ax (4 bytes) at 2, mov ss (2) at 6, nop at 8: delivered after that NOP.
    expect(frame(c)).toMatchObject({ vector: 0x31, rip: CODE_BASE + 9 });
  });
});

describe.skipIf(!HAVE_AS)("TLB maintenance", () => {
  it("INVLPG drops a stale translation; without it the old mapping stays cached", () => {
    const c = finish(`
      mov dword ptr [${DATA_BASE}], 1
      mov dword ptr [${DATA_BASE + 0x1000}], 2
      mov eax, [${DATA_BASE}]
      # remap page 0 of the data region to page 1 (a read before INVLPG may see either mapping)
      mov dword ptr [0xc000], ${DATA_BASE + 0x1000 + 7}
      mov ebx, [${DATA_BASE}]
      mov rdx, ${DATA_BASE}
      invlpg [rdx]
      mov ecx, [${DATA_BASE}]`);
    expect(reg(c, 0)).toBe(1n);
    expect(reg(c, 1)).toBe(2n);
  });

  it("INVPCID types 0-3 flush; type 4 is #GP(0)", () => {
    const c = finish(`
      mov dword ptr [${DATA_BASE}], 1
      mov dword ptr [${DATA_BASE + 0x1000}], 2
      mov eax, [${DATA_BASE}]
      mov dword ptr [0xc000], ${DATA_BASE + 0x1000 + 7}
      mov qword ptr [rip + desc], 0
      mov qword ptr [rip + desc + 8], ${DATA_BASE}
      xor edx, edx
      invpcid rdx, [rip + desc]
      mov ebx, [${DATA_BASE}]
      mov edx, 2
      invpcid rdx, [rip + desc]
      hlt
    desc: .fill 16, 1, 0`);
    expect(reg(c, 3)).toBe(2n);
    expect(fault("mov edx, 4\ninvpcid rdx, [rsp - 16]").f).toMatchObject({ vector: GP, errorCode: 0 });
  });

  it("WBINVD, INVD, CLFLUSH and fences execute at CPL 0", () => {
    const c = finish(`wbinvd\ninvd\nclflush [${DATA_BASE}]\nlfence\nmfence\nsfence\nmov eax, 3`);
    expect(reg(c, 0)).toBe(3n);
  });
});

describe.skipIf(!HAVE_AS)("SYSCALL/SYSRET and SWAPGS", () => {
  it("round trip: user SYSCALL → kernel SWAPGS, reads per-CPU data, SWAPGS, SYSRETQ", () => {
    const c = sysCpu(
      `
      # STAR, LSTAR, SFMASK, KERNEL_GS_BASE
      mov ecx, 0xc0000081
      xor eax, eax
      mov edx, ${STAR_HI}
      wrmsr
      mov ecx, 0xc0000082
      lea rax, [rip + entry]
      mov rdx, rax
      shr rdx, 32
      wrmsr
      mov ecx, 0xc0000084
      mov eax, 0x47700
      xor edx, edx
      wrmsr
      mov ecx, 0xc0000102
      mov eax, ${DATA_BASE}
      xor edx, edx
      wrmsr
      mov dword ptr [${DATA_BASE}], 0xcafe
      ${toUser(0x202)}
      mov r12, rsp
      mov eax, 1
      syscall
      # back in user mode
      mov r13, rcx
      mov r14, r11
      mov eax, 2
      syscall
    entry:
      swapgs
      mov r15d, gs:[0]
      mov rbx, rcx
      mov rbp, r11
      mov r9, cs
      mov r10, ss
      pushfq
      pop rdi
      cmp eax, 2
      je done
      swapgs
      sysretq
    done:
      hlt`,
    );
    expectHalt(c, runSys(c));
    expect(frame(c).vector).toBe(-1);
    expect(reg(c, 15)).toBe(0xcafen); // GS base was KERNEL_GS_BASE
    expect(reg(c, 9)).toBe(BigInt(KCODE));
    expect(reg(c, 10)).toBe(BigInt(KDATA));
    expect(Number(reg(c, 7)) & IF).toBe(0); // masked by SFMASK
    expect(Number(reg(c, 5)) & IF).toBe(IF); // R11 = user RFLAGS
    expect(reg(c, 12)).toBe(BigInt(USER_STACK));
    // After SYSRETQ: user CS/SS, and RCX/R11 as SYSCALL left them.
    expect(Number(reg(c, 14)) & IF).toBe(IF);
    expect(c.segSel[1]).toBe(KCODE);
    expect(c.cpl).toBe(0);
    expect(c.segBaseLo[5]).toBe(DATA_BASE); // second entry's SWAPGS left the kernel GS in place
  });

  it("SYSRET loads user CS/SS from STAR[63:48]; non-canonical RCX is #GP(0)", () => {
    const c = sysCpu(
      `
      mov ecx, 0xc0000081
      xor eax, eax
      mov edx, ${STAR_HI}
      wrmsr
      lea rcx, [rip + user]
      mov r11d, 0x2
      sysretq
    user:
      hlt`,
    );
    expectHalt(c, runSys(c));
    expect(frame(c)).toMatchObject({ vector: GP, cs: UCODE64, ss: UDATA });
    expect(fault("mov rcx, 0x0000800000000000\nsysretq").f).toMatchObject({ vector: GP, errorCode: 0, cs: KCODE });
  });

  it("SYSCALL is #UD with EFER.SCE=0; SWAPGS and SYSRET are #GP at CPL 3", () => {
    expect(fault("mov ecx, 0xc0000080\nrdmsr\nbtr eax, 0\nwrmsr\nsyscall").f.vector).toBe(UD);
    expect(fault(`${toUser()}\nswapgs`).f).toMatchObject({ vector: GP, errorCode: 0 });
  });
});

describe.skipIf(!HAVE_AS)("SYSENTER/SYSEXIT and INT1", () => {
  it("SYSEXIT (REX.W) to CPL 3 and SYSENTER back to the MSR-defined entry", () => {
    const c = sysCpu(`
      mov ecx, 0x174
      mov eax, ${KCODE}
      xor edx, edx
      wrmsr
      mov ecx, 0x175
      mov eax, 0x44000
      wrmsr
      mov ecx, 0x176
      lea rax, [rip + entry]
      mov rdx, rax
      shr rdx, 32
      wrmsr
      lea rdx, [rip + user]
      mov ecx, ${USER_STACK}
      .byte 0x48, 0x0f, 0x35   # sysexitq
    user:
      mov r8, cs
      mov r9, rsp
      sysenter
    entry:
      mov r10, cs
      mov r11, ss
      hlt`);
    expectHalt(c, runSys(c));
    expect(frame(c).vector).toBe(-1);
    expect(reg(c, 8)).toBe(BigInt(UCODE64));
    expect(reg(c, 9)).toBe(BigInt(USER_STACK));
    expect(reg(c, 10)).toBe(BigInt(KCODE));
    expect(reg(c, 11)).toBe(BigInt(KDATA));
    expect(reg(c, 4)).toBe(0x44000n);
    expect(c.cpl).toBe(0);
  });

  it("SYSENTER with IA32_SYSENTER_CS = 0 is #GP(0)", () => {
    expect(fault("sysenter").f).toMatchObject({ vector: GP, errorCode: 0 });
  });

  it("INT1 (ICEBP) delivers #DB as a trap without the gate DPL check", () => {
    const { f } = fault(`${toUser()}
.byte 0xf1
nop`);
    expect(f).toMatchObject({ vector: 1, cs: UCODE64, rip: CODE_BASE + asm(toUser()).length + 1 });
  });
});

describe.skipIf(!HAVE_AS)("VMX instruction decoding", () => {
  const forms: [string, number][] = [
    ["vmcall", VMXI_VMCALL],
    ["vmlaunch", VMXI_VMLAUNCH],
    ["vmxon [rsp - 8]", VMXI_VMXON],
    ["vmread rax, rbx", VMXI_VMREAD],
    ["invept rax, [rsp - 16]", VMXI_INVEPT],
  ];
  it("raises #UD without a VMX implementation", () => {
    for (const [src] of forms) expect(fault(src).f.vector, src).toBe(UD);
  });
  it("hands each instruction to Cpu.vmx with a distinct op", () => {
    for (const [src, op] of forms) {
      const seen: number[] = [];
      const c = finish(src, (c) => {
        c.vmx = { vmxInstruction: (_c, i: Insn) => void seen.push(i.op) };
      });
      expect(seen, src).toEqual([op]);
      expect(c.cpl).toBe(0);
    }
  });
});
