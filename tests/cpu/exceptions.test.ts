import { describe, expect, it } from "vitest";
import { Cpu, STOP_HALT, STOP_SHUTDOWN } from "../../src/cpu/cpu.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { EFER_NXE } from "../../src/x86/control.js";
import { BP, DE, DF_, GP, NP, PF_, SS_, TS, UD } from "../../src/x86/exceptions.js";
import { IF } from "../../src/x86/flags.js";
import { asm, HAVE_AS } from "../helpers/asm.js";
import { reg } from "../helpers/machine.js";
import {
  CODE_BASE,
  DATA_BASE,
  expectHalt,
  FakeIntc,
  fault,
  frame,
  IST1,
  KCODE,
  KDATA,
  RSP0,
  runSys,
  STACK_TOP,
  setGate,
  setPage,
  stub,
  sysCpu,
  TSS,
  toUser,
  UCODE64,
  UDATA,
  USER_STACK,
} from "../helpers/sys.js";

const PAGE = DATA_BASE + 0x5000;

describe.skipIf(!HAVE_AS)("exception frames in long mode", () => {
  it("#DE: no error code, RIP of the DIV, same-privilege frame (SS:RSP of the interrupted code)", () => {
    const { c, f } = fault("xor ecx, ecx\nmov eax, 1\ndiv ecx");
    expect(f).toMatchObject({ vector: DE, errorCode: -1, rip: CODE_BASE + 7, cs: KCODE, ss: KDATA, rsp: STACK_TOP });
    expect(f.frameRsp).toBe(STACK_TOP - 40);
    expect(c.cpl).toBe(0);
  });

  it("aligns RSP to 16 bytes before pushing the frame", () => {
    const { f } = fault("sub rsp, 8\nud2");
    expect(f.rsp).toBe(STACK_TOP - 8);
    expect(f.frameRsp).toBe(STACK_TOP - 16 - 40);
  });

  it("#BP from INT3 saves the following RIP; #UD saves the faulting RIP", () => {
    expect(fault("int3\nnop").f).toMatchObject({ vector: BP, rip: CODE_BASE + 1 });
    expect(fault("nop\n.byte 0x0f, 0xff").f).toMatchObject({ vector: UD, rip: CODE_BASE + 1 });
  });

  it("RFLAGS in the frame are the interrupted flags; the handler runs with IF and TF clear", () => {
    const { c, f } = fault("sti\nnop\nud2");
    expect(f.rflags & IF).toBe(IF);
    expect(c.flagSet(IF)).toBe(false);
  });

  it("a trap gate leaves IF set", () => {
    const { c } = fault("sti\nnop\nud2", (c) => setGate(c, UD, stub(UD), { type: 0xf }));
    expect(c.flagSet(IF)).toBe(true);
  });

  it("from CPL 3: stack switch to TSS.RSP0, SS becomes NULL, user SS:RSP and CS in the frame", () => {
    const { c, f } = fault(`${toUser(0x202)}\nmov rsp, ${USER_STACK - 0x18}\nud2`);
    expect(f).toMatchObject({ vector: UD, cs: UCODE64, ss: UDATA, rsp: USER_STACK - 0x18 });
    expect(f.frameRsp).toBe(RSP0 - 40);
    expect(f.rflags & IF).toBe(IF);
    expect(c.segSel[2]).toBe(0);
    expect(c.segSel[1]).toBe(KCODE);
  });

  it("IST: the gate's IST entry is used even without a privilege change", () => {
    const { f } = fault("ud2", (c) => setGate(c, UD, stub(UD), { ist: 1 }));
    expect(f.frameRsp).toBe(IST1 - 40);
    expect(f.rsp).toBe(STACK_TOP);
  });

  it("a TSS too short for the IST entry is #TS(TSS selector | EXT)", () => {
    const { f } = fault("ud2", (c) => {
      setGate(c, UD, stub(UD), { ist: 7 });
      c.trLimit = 0x40;
    });
    expect(f).toMatchObject({ vector: TS, errorCode: 0x30 | 1 });
  });

  it("a non-canonical data address is #GP(0); through RSP it is #SS(0)", () => {
    expect(fault("mov rax, 0x0000800000000000\nmov rbx, [rax]").f).toMatchObject({ vector: GP, errorCode: 0 });
    const ss = fault("mov rsp, 0x0000800000000008\npush rax", (c) => setGate(c, SS_, stub(SS_), { ist: 1 }));
    expect(ss.f).toMatchObject({ vector: SS_, errorCode: 0, rip: CODE_BASE + 10, rsp: 0x800000000008 });
    expect(fault("mov rax, 0x0000800000000000\njmp rax").f).toMatchObject({
      vector: GP,
      errorCode: 0,
      rip: CODE_BASE + 10,
    });
  });
});

describe.skipIf(!HAVE_AS)("#PF error codes and CR2", () => {
  it("not present, supervisor read: error 0", () => {
    const { c, f } = fault(`mov eax, [${PAGE + 0x10}]`, (c) => setPage(c, PAGE, 0));
    expect(f).toMatchObject({ vector: PF_, errorCode: 0, rip: CODE_BASE });
    expect(c.cr2Lo).toBe(PAGE + 0x10);
  });

  it("not present, write: error 2", () => {
    const { c, f } = fault(`mov dword ptr [${PAGE + 4}], 1`, (c) => setPage(c, PAGE, 0));
    expect(f).toMatchObject({ vector: PF_, errorCode: 2 });
    expect(c.cr2Lo).toBe(PAGE + 4);
  });

  it("supervisor write to a read-only page with CR0.WP: error 3", () => {
    const { f } = fault(`mov dword ptr [${PAGE}], 1`, (c) => setPage(c, PAGE, 1 | 4));
    expect(f).toMatchObject({ vector: PF_, errorCode: 3 });
  });

  it("user read of a supervisor page: error 5; user write to a read-only user page: error 7", () => {
    const r = fault(`${toUser()}\nmov eax, [${PAGE}]`, (c) => setPage(c, PAGE, 1 | 2));
    expect(r.f).toMatchObject({ vector: PF_, errorCode: 5, cs: UCODE64 });
    const w = fault(`${toUser()}\nmov dword ptr [${PAGE}], 1`, (c) => setPage(c, PAGE, 1 | 4));
    expect(w.f).toMatchObject({ vector: PF_, errorCode: 7 });
    expect(w.c.cr2Lo).toBe(PAGE);
  });

  it("instruction fetch from an NX page: error 0x11, CR2 = the target", () => {
    const { c, f } = fault(`mov rax, ${PAGE}\njmp rax`, (c) => {
      setPage(c, PAGE, 1 | 2 | 4, true);
      c.mem.write8(PAGE, 0x90);
    });
    expect(c.efer & EFER_NXE).toBe(EFER_NXE);
    expect(f).toMatchObject({ vector: PF_, errorCode: 0x11, rip: PAGE });
    expect(c.cr2Lo).toBe(PAGE);
  });

  it("a 64-bit store straddling into a non-present page faults without writing the first page", () => {
    const { c, f } = fault(`mov rax, -1\nmov [${PAGE - 4}], rax`, (c) => setPage(c, PAGE, 0));
    expect(f).toMatchObject({ vector: PF_, errorCode: 2 });
    expect(c.cr2Lo).toBe(PAGE);
    expect(c.mem.read(PAGE - 4, 4)).toBe(0);
  });

  it("a fault leaves registers as before the instruction (POP into a faulting destination)", () => {
    const { c, f } = fault(`push 7\nmov rbx, rsp\npop qword ptr [${PAGE}]`, (c) => setPage(c, PAGE, 0));
    expect(f.vector).toBe(PF_);
    expect(f.rsp).toBe(Number(reg(c, 3)));
  });
});

describe.skipIf(!HAVE_AS)("faults during delivery: #NP, #DF, triple fault", () => {
  it("INT n to a not-present gate: #NP(vector*8 + IDT)", () => {
    const { f } = fault("int 0x40", (c) => setGate(c, 0x40, stub(0x40), { present: false }));
    expect(f).toMatchObject({ vector: NP, errorCode: 0x40 * 8 + 2, rip: CODE_BASE });
  });

  it("an exception through a not-present gate: #NP with EXT set", () => {
    const { f } = fault("ud2", (c) => setGate(c, UD, stub(UD), { present: false }));
    expect(f).toMatchObject({ vector: NP, errorCode: UD * 8 + 3, rip: CODE_BASE });
  });

  it("#GP whose gate is not present → #NP during #GP delivery → #DF(0)", () => {
    const { f } = fault("mov rax, 0x0000800000000000\nmov rbx, [rax]", (c) =>
      setGate(c, GP, stub(GP), { present: false }),
    );
    expect(f).toMatchObject({ vector: DF_, errorCode: 0, rip: CODE_BASE + 10 });
  });

  it("#PF during #PF delivery (unmapped kernel stack) → #DF, delivered on its IST stack", () => {
    const { c, f } = fault(`mov rsp, ${PAGE + 0x100}\nmov eax, [${PAGE + 0x1000}]`, (c) => {
      setPage(c, PAGE, 0);
      setPage(c, PAGE + 0x1000, 0);
      setGate(c, DF_, stub(DF_), { ist: 1 });
    });
    expect(f).toMatchObject({ vector: DF_, errorCode: 0 });
    expect(f.frameRsp).toBe(IST1 - 48);
    expect(c.cr2Lo).toBe(PAGE + 0xf8); // the stack push faulted last
  });

  it("#GP followed by #PF during its delivery is a plain #PF (not #DF)", () => {
    const { c, f } = fault(`mov rsp, ${PAGE + 0x100}\nmov rax, 0x0000800000000000\nmov rbx, [rax]`, (c) => {
      setPage(c, PAGE, 0);
      setGate(c, PF_, stub(PF_), { ist: 1 });
    });
    expect(f).toMatchObject({ vector: PF_, errorCode: 2 });
    expect(c.cr2Lo).toBe(PAGE + 0xf8);
  });

  it("an IDT limit excluding the vector: #GP(vector*8 + IDT [+ EXT])", () => {
    // INT n beyond the limit: EXT = 0.
    const a = fault("int 0x20", (c) => {
      c.idtrLimit = 14 * 16 - 1;
    });
    expect(a.f).toMatchObject({ vector: GP, errorCode: 0x20 * 8 + 2, rip: CODE_BASE });
    // #UD beyond the limit, then #GP beyond it, then #DF beyond it: triple fault.
    const c = sysCpu(".byte 0x0f, 0xff", (c) => {
      c.idtrLimit = 6 * 16 - 1;
    });
    expect(c.run(1000)).toBe(STOP_SHUTDOWN);
    expect(c.stopReason?.reason).toMatch(/triple fault: #GP\(0x43\) while delivering #DF/);
  });

  it("triple fault: #DF gate not present → STOP_SHUTDOWN with a readable reason, no JS exception", () => {
    const c = sysCpu("ud2", (c) => {
      setGate(c, UD, stub(UD), { present: false });
      setGate(c, NP, stub(NP), { present: false });
      setGate(c, DF_, stub(DF_), { present: false });
    });
    expect(c.run(1000)).toBe(STOP_SHUTDOWN);
    expect(c.stopReason?.reason).toMatch(/triple fault/);
    expect(c.stopReason?.reason).toMatch(/#NP/);
    expect(c.stopReason?.ripLo).toBe(CODE_BASE);
  });

  it("triple fault raised inside INT n stops the run too", () => {
    const c = sysCpu("int 0x50\nmov eax, 1", (c) => {
      setGate(c, 0x50, stub(0x50), { present: false });
      setGate(c, NP, stub(NP), { present: false });
      setGate(c, DF_, stub(DF_), { present: false });
    });
    expect(c.run(1000)).toBe(STOP_SHUTDOWN);
    expect(reg(c, 0)).not.toBe(1n);
  });

  it("a gate whose code segment is not 64-bit is #GP(selector | EXT)", () => {
    const { f } = fault("ud2", (c) => setGate(c, UD, stub(UD), { sel: KDATA }));
    expect(f).toMatchObject({ vector: GP, errorCode: KDATA | 1 });
  });

  it("INT3 from CPL 3 through a DPL-0 gate is #GP(3*8+2); with DPL 3 it is delivered", () => {
    expect(fault(`${toUser()}\nint3`).f).toMatchObject({ vector: GP, errorCode: 3 * 8 + 2 });
    const { f } = fault(`${toUser()}\nint3`, (c) => setGate(c, BP, stub(BP), { dpl: 3 }));
    expect(f).toMatchObject({ vector: BP, cs: UCODE64, ss: UDATA });
  });

  it("external interrupt delivery uses the TSS stack from CPL 3", () => {
    const intc = new FakeIntc();
    const c = sysCpu(`${toUser(0x202)}\nnop\njmp user`, (c) => {
      c.intc = intc;
    });
    c.run(20);
    intc.pending.push(0x20);
    c.notifyInterrupt();
    expectHalt(c, runSys(c));
    const f = frame(c);
    expect(f).toMatchObject({ vector: 0x20, errorCode: -1, cs: UCODE64, ss: UDATA, rsp: USER_STACK });
    expect(f.frameRsp).toBe(RSP0 - 40);
  });
});

describe.skipIf(!HAVE_AS)("32-bit protected mode", () => {
  /** A CPU at reset (32-bit protected mode, flat, paging off) with 32-bit code at 0x100000. */
  function cpu32(source: string): Cpu {
    const c = new Cpu(new PhysicalMemory(4 * 1024 * 1024));
    c.mem.writeBytes(CODE_BASE, asm(`${source}\nhlt\n`, 32));
    c.ripLo = CODE_BASE;
    return c;
  }
  const IDT32 = 0x3000;
  const GDT32 = 0x2000;
  const setup32 = `
    mov esp, 0x80000
    mov dword ptr [${GDT32}], 0
    mov dword ptr [${GDT32 + 4}], 0
    mov dword ptr [${GDT32 + 8}], 0x0000ffff
    mov dword ptr [${GDT32 + 12}], 0x00cf9b00
    mov dword ptr [${GDT32 + 16}], 0x0000ffff
    mov dword ptr [${GDT32 + 20}], 0x00cf9300
    mov word ptr [0x1000], 23
    mov dword ptr [0x1002], ${GDT32}
    lgdt [0x1000]
    mov word ptr [0x1010], 0x7ff
    mov dword ptr [0x1012], ${IDT32}
    lidt [0x1010]
    # gates for #UD (6), #GP (13), 0x30 → handler at 0x5000 (hlt), 32-bit interrupt gates
    mov dword ptr [${IDT32 + 6 * 8}], 0x00085000
    mov dword ptr [${IDT32 + 6 * 8 + 4}], 0x00008e00
    mov dword ptr [${IDT32 + 13 * 8}], 0x00085000
    mov dword ptr [${IDT32 + 13 * 8 + 4}], 0x00008e00
    mov dword ptr [${IDT32 + 0x30 * 8}], 0x00085000
    mov dword ptr [${IDT32 + 0x30 * 8 + 4}], 0x0000ee00
    mov byte ptr [0x5000], 0xf4
    .byte 0xea
    .long 0x100000 + reload
    .word 0x08
  reload:
    mov ax, 0x10
    mov ds, ax
    mov ss, ax
  `;

  it("decodes 32-bit code: INC/DEC short forms, 32-bit moffs, far JMP ptr16:32", () => {
    const c = cpu32(`${setup32}
      mov eax, 5
      .byte 0x40          # inc eax
      .byte 0x4b          # dec ebx
      mov [0x6000], eax   # A3 moffs32
      mov ecx, [0x6000]`);
    c.lo[3] = 1;
    expect(c.run(1000)).toBe(STOP_HALT);
    expect(c.mode64).toBe(false);
    expect(c.lo[0]).toBe(6);
    expect(c.lo[3]).toBe(0);
    expect(c.lo[1]).toBe(6);
    expect(c.segSel[1]).toBe(0x08);
  });

  it("delivers #UD through a 32-bit interrupt gate: EIP, CS, EFLAGS frame", () => {
    const c = cpu32(`${setup32}\n nop\n ud2`);
    expect(c.run(1000)).toBe(STOP_HALT);
    expect(c.ripLo).toBe(0x5001);
    const esp = c.lo[4] >>> 0;
    expect(esp).toBe(0x80000 - 12);
    const eip = c.mem.read(esp, 4);
    expect(c.mem.read(eip, 2)).toBe(0x0b0f); // UD2 at the saved EIP
    expect(c.mem.read(esp + 4, 4)).toBe(0x08);
    expect(c.mem.read(esp + 8, 4) & 2).toBe(2);
  });

  it("a 32-bit handler returns with IRETD (same privilege)", () => {
    const c = cpu32(`${setup32}
      mov dword ptr [0x5100], 0x02240483   # add dword ptr [esp], 2
      mov byte ptr [0x5104], 0xcf          # iretd
      mov word ptr [${IDT32 + 6 * 8}], 0x5100
      mov esi, esp
      ud2
      mov ebx, 7`);
    expect(c.run(1000)).toBe(STOP_HALT);
    expect(c.lo[3]).toBe(7);
    expect(c.lo[4]).toBe(c.lo[6]);
    expect(c.ripLo >>> 0).toBeGreaterThan(CODE_BASE);
  });

  it("INT n in 32-bit mode saves the next EIP; #GP pushes an error code", () => {
    const c = cpu32(`${setup32}\n int 0x30`);
    expect(c.run(1000)).toBe(STOP_HALT);
    const esp = c.lo[4] >>> 0;
    expect(c.mem.read(c.mem.read(esp, 4) - 2, 1)).toBe(0xcd);
    const g = cpu32(`${setup32}\n mov ax, 0x18\n mov ds, ax`);
    expect(g.run(1000)).toBe(STOP_HALT);
    expect(g.mem.read(g.lo[4] >>> 0, 4)).toBe(0x18); // error code: the bad selector
  });

  it("boot stub: PAE + LME + PG → compatibility mode → far jump to 64-bit code", () => {
    const pml4 = 0x10000;
    const c = cpu32(`${setup32}
      mov dword ptr [0x2018], 0x0000ffff
      mov dword ptr [0x201c], 0x00af9b00   # 0x18: 64-bit code
      mov word ptr [0x1000], 31
      lgdt [0x1000]
      mov dword ptr [${pml4}], ${pml4 + 0x1003}
      mov dword ptr [${pml4 + 0x1000}], ${pml4 + 0x2003}
      mov dword ptr [${pml4 + 0x2000}], 0x83
      mov dword ptr [${pml4 + 0x2008}], 0x200083
      mov eax, cr4
      or eax, 0x20
      mov cr4, eax
      mov eax, ${pml4}
      mov cr3, eax
      mov ecx, 0xc0000080
      rdmsr
      or eax, 0x100
      wrmsr
      mov eax, cr0
      or eax, 0x80000000
      mov cr0, eax
      mov ecx, 0xc0000080
      rdmsr
      mov esi, eax
      .byte 0xea
      .long 0x100000 + long
      .word 0x18
    long:
      .byte 0x48, 0xc7, 0xc3, 0xff, 0xff, 0xff, 0xff  # mov rbx, -1 (64-bit only)
    `);
    expect(c.run(10_000)).toBe(STOP_HALT);
    expect(c.lo[6]).toBe(0x500); // EFER in compatibility mode: LME | LMA
    expect(c.mode64).toBe(true);
    expect(reg(c, 3)).toBe(0xffffffffffffffffn);
  });

  it("setting PG with LME but without PAE is #GP(0)", () => {
    const c = cpu32(`${setup32}
      mov ecx, 0xc0000080
      rdmsr
      or eax, 0x100
      wrmsr
      mov eax, cr0
      or eax, 0x80000000
      mov cr0, eax`);
    expect(c.run(10_000)).toBe(STOP_HALT);
    expect(c.ripLo).toBe(0x5001);
    expect(c.mem.read(c.lo[4] >>> 0, 4)).toBe(0); // #GP(0)
  });
  void TSS;
});
