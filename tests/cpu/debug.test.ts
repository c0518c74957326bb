/**
 * Debug facilities (SDM vol. 3, 18.2–18.3; 6.8.3 for MOV SS): DR0–DR3 instruction breakpoints
 * (faults, RF suppresses one), data breakpoints (traps after the access, R/W and LEN rules),
 * DR6 status, TF single-step, general detect, MOV SS blocking, CR4.DE, #BP and ICEBP.
 */
import { describe, expect, it } from "vitest";
import type { Cpu } from "../../src/cpu/cpu.js";
import { asm, HAVE_AS } from "../helpers/asm.js";
import { reg } from "../helpers/machine.js";
import {
  CODE_BASE,
  DATA_BASE,
  expectHalt,
  FakeIntc,
  fault,
  frame,
  iretToNext,
  runSys,
  setGate,
  sysCpu,
  toUser,
  UCODE64,
} from "../helpers/sys.js";

const DB_HANDLER = CODE_BASE + 0x800;
const DB = 1;
const BP = 3;
const GP = 13;
const UD = 6;

/** Install a #DB handler (64-bit code) at DB_HANDLER. */
function dbHandler(c: Cpu, source: string): void {
  c.mem.writeBytes(DB_HANDLER, asm(source, 64));
  setGate(c, DB, DB_HANDLER);
}

/** Code setting DRn = address in RAX-free form and DR7 = dr7. */
function arm(n: number, addr: string, dr7: number): string {
  return `lea rax, ${addr}\nmov dr${n}, rax\nmov eax, ${dr7}\nmov dr7, rax`;
}

function dr6(c: Cpu): number {
  return c.drLo[6];
}

describe.skipIf(!HAVE_AS)("instruction breakpoints", () => {
  it("a breakpoint on an instruction is a #DB fault before it runs: RIP at it, RF = 0 pushed, DR6.B0", () => {
    const { c, f } = fault(`${arm(0, "[rip + target]", 0x1)}\nnop\ntarget: mov r11, 7\nnop`);
    expect(f.vector).toBe(DB);
    expect(c.mem.read(f.rip, 1)).toBe(0x49); // REX.WB of `mov r11, 7`
    expect(f.rflags & 0x10000).toBe(0);
    expect(reg(c, 11)).toBe(0n);
    expect(dr6(c) & 0xf).toBe(1);
  });

  it("a handler that sets RF in the frame resumes the instruction once; the next pass hits again", () => {
    const c = sysCpu(
      `${arm(2, "[rip + target]", 0x10)}
      mov ecx, 2
    target:
      inc r11
      dec ecx
      jnz target`,
      (x) => dbHandler(x, "inc r10\nor qword ptr [rsp + 16], 0x10000\niretq"),
    );
    expectHalt(c, runSys(c));
    expect(frame(c).vector).toBe(-1);
    expect(reg(c, 10)).toBe(2n);
    expect(reg(c, 11)).toBe(2n);
    expect(dr6(c) & 0xf).toBe(4);
  });

  it("a pending interrupt outranks a code breakpoint at the same boundary (SDM vol. 3, table 6-2)", () => {
    const intc = new FakeIntc();
    intc.pending.push(0x30);
    // IF = 0 until the IRET sets it; the breakpoint is on the IRET's target.
    const { c, f } = fault(`${arm(0, "[rip + next]", 0x1)}\n${iretToNext(0x202)}\nnop`, (x) => {
      x.intc = intc;
    });
    expect(f.vector).toBe(0x30);
    expect(f.rip).toBe(c.drLo[0] >>> 0);
    expect(dr6(c) & 0xf).toBe(0);
  });

  it("with DR7 enabling nothing there is no boundary work and no hit", () => {
    const c = sysCpu(`${arm(0, "[rip + target]", 0x0)}\ntarget: nop`);
    expectHalt(c, runSys(c));
    expect(frame(c).vector).toBe(-1);
    expect(c.dbgActive).toBe(false);
    expect(c.dbgData).toBe(false);
  });
});

describe.skipIf(!HAVE_AS)("data breakpoints", () => {
  // DR1 on DATA_BASE + 8, 4 bytes (LEN1 = 11): R/W1 = 01 write-only, 11 read/write.
  const write4 = 0x4 | (0x1 << 20) | (0x3 << 22);
  const rw4 = 0x4 | (0x3 << 20) | (0x3 << 22);

  it("a write breakpoint traps after the store: RIP is the next instruction, the store is done, DR6.B1", () => {
    const { c, f } = fault(`mov eax, ${DATA_BASE + 8}\nmov dr1, rax\nmov eax, ${write4}\nmov dr7, rax
      mov dword ptr [${DATA_BASE + 8}], 5
      mov ebx, 1`);
    expect(f.vector).toBe(DB);
    expect(c.mem.read(f.rip, 1)).toBe(0xbb); // `mov ebx, 1` has not run yet
    expect(c.mem.read(DATA_BASE + 8, 4)).toBe(5);
    expect(dr6(c) & 0xf).toBe(2);
  });

  it("overlap counts (a 2-byte store into the 4-byte range); reads do not trigger a write breakpoint", () => {
    const { f } = fault(`mov eax, ${DATA_BASE + 8}\nmov dr1, rax\nmov eax, ${write4}\nmov dr7, rax
      mov word ptr [${DATA_BASE + 10}], 5
      nop`);
    expect(f.vector).toBe(DB);
    const c = sysCpu(`mov eax, ${DATA_BASE + 8}\nmov dr1, rax\nmov eax, ${write4}\nmov dr7, rax
      mov eax, [${DATA_BASE + 8}]
      mov word ptr [${DATA_BASE + 12}], 5`);
    expectHalt(c, runSys(c));
    expect(frame(c).vector).toBe(-1);
  });

  it("a read/write breakpoint traps on a read", () => {
    const { c, f } = fault(`mov eax, ${DATA_BASE + 8}\nmov dr1, rax\nmov eax, ${rw4}\nmov dr7, rax
      mov rax, [${DATA_BASE + 4}]
      mov ebx, 1`);
    expect(f.vector).toBe(DB);
    expect(c.mem.read(f.rip, 1)).toBe(0xbb);
  });

  it("disarming restores the fast path (the software TLB fills again)", () => {
    const c =
      sysCpu(`mov eax, ${DATA_BASE + 8}\nmov dr1, rax\nmov eax, ${write4}\nmov dr7, rax\nxor eax, eax\nmov dr7, rax
      mov dword ptr [${DATA_BASE + 64}], 5`);
    expectHalt(c, runSys(c));
    expect(c.dbgData).toBe(false);
    expect(c.counters.tlbFills).toBeGreaterThan(0);
  });
});

describe.skipIf(!HAVE_AS)("single-step, MOV SS blocking, general detect", () => {
  /** A #DB handler that records each trap's RIP at [RDI] and returns (TF stays set in the frame). */
  const record = "mov r8, [rsp]\nmov [rdi], r8\nadd rdi, 8\niretq";

  it("TF set by POPF traps after the following instruction with DR6.BS; MOV SS holds the trap one more", () => {
    const c = sysCpu(
      `lea rdi, [${DATA_BASE}]
      lea r12, [rip + l2]
      lea r13, [rip + l4]
      lea r14, [rip + l5]
      mov ax, ss
      pushfq
      or qword ptr [rsp], 0x100
      popfq
    l1: nop
    l2: mov ss, ax
    l3: nop
    l4: nop
    l5: nop
      pushfq
      and qword ptr [rsp], -0x101
      popfq
      nop`,
      (x) => dbHandler(x, record),
    );
    expectHalt(c, runSys(c));
    expect(frame(c).vector).toBe(-1);
    const rips = [0, 1, 2].map((k) => c.mem.read(DATA_BASE + 8 * k, 4));
    // After l1; none after MOV SS (blocked): the trap after l3 covers both; then after l4.
    expect(rips).toEqual([Number(reg(c, 12)), Number(reg(c, 13)), Number(reg(c, 14))]);
    expect(dr6(c) & 0x4000).toBe(0x4000);
    expect(c.flagsBase & 0x100).toBe(0);
  });

  it("INT3 and faults are not single-stepped; the handler starts with TF = 0", () => {
    const c = sysCpu(
      `pushfq
      or qword ptr [rsp], 0x100
      popfq
      int3`,
      (x) => dbHandler(x, "inc r10\niretq"),
    );
    expectHalt(c, runSys(c));
    const f = frame(c);
    expect(f.vector).toBe(BP);
    expect(f.rflags & 0x100).toBe(0x100); // the frame keeps TF
    expect(c.flagsBase & 0x100).toBe(0);
    expect(reg(c, 10)).toBe(0n);
  });

  it("general detect: a MOV DR with DR7.GD is a #DB fault with DR6.BD, and GD is cleared", () => {
    const { c, f } = fault(`mov eax, 0x2400\nmov dr7, rax\nmov dr0, rax`);
    expect(f.vector).toBe(DB);
    expect(c.mem.read(f.rip, 2)).toBe(0x230f); // at the MOV DR0
    expect(dr6(c) & 0x2000).toBe(0x2000);
    expect(c.drLo[7] & 0x2000).toBe(0);
  });
});

describe.skipIf(!HAVE_AS)("CR4.DE, #BP and ICEBP", () => {
  it("DR4 is #UD with CR4.DE and an alias of DR6 without it", () => {
    expect(fault("mov rax, cr4\nbts rax, 3\nmov cr4, rax\nmov rax, dr4").f.vector).toBe(UD);
    const c = sysCpu("mov rax, dr4");
    expectHalt(c, runSys(c));
    expect(Number(reg(c, 0)) >>> 0).toBe(0xffff0ff0);
  });

  it("an I/O breakpoint (R/W = 10) needs CR4.DE and traps after the OUT", () => {
    const io = 0x1 | (0x2 << 16); // DR0, R/W 10, 1 byte
    const src = (
      de: boolean,
    ) => `${de ? "mov rax, cr4\nbts rax, 3\nmov cr4, rax\n" : ""}mov eax, 0x80\nmov dr0, rax\nmov eax, ${io}\nmov dr7, rax
      out 0x80, al
      mov ebx, 1`;
    const { c, f } = fault(src(true));
    expect(f.vector).toBe(DB);
    expect(c.mem.read(f.rip, 1)).toBe(0xbb);
    expect(dr6(c) & 0xf).toBe(1);
    const off = sysCpu(src(false));
    expectHalt(off, runSys(off));
    expect(frame(off).vector).toBe(-1);
  });

  it("INT3 delivers #BP with RIP after it; ICEBP delivers #DB from CPL 3 past a DPL-0 gate, INT 1 does not", () => {
    const bp = fault("int3\nnop");
    expect(bp.f.vector).toBe(BP);
    expect(bp.f.rip).toBe(CODE_BASE + 1);
    const ice = fault(`${toUser()}\n.byte 0xf1\nnop`);
    expect(ice.f).toMatchObject({ vector: DB, cs: UCODE64 });
    expect(ice.c.mem.read(ice.f.rip - 1, 1)).toBe(0xf1);
    expect(fault(`${toUser()}\nint 1`).f.vector).toBe(GP);
  });
});

describe.skipIf(!HAVE_AS)("single-step with the block compiler on", () => {
  it("a hot loop compiled before TF is set is still stepped one instruction at a time", () => {
    // The loop runs 100 times untraced (compiled at threshold 1), then 3 times with TF set:
    // each traced iteration (dec, jnz) traps twice; the handler counts traps in R9.
    const c = sysCpu(
      `xor r9d, r9d
      mov ecx, 100
    warm: dec ecx
      jnz warm
      pushfq
      or qword ptr [rsp], 0x100
      popfq
      mov ecx, 3
    hot: dec ecx
      jnz hot
      pushfq
      and qword ptr [rsp], -0x101
      popfq
      nop`,
      (x) => {
        x.setJit({ enabled: true, threshold: 1, maxInstructions: 1 << 18, warmup: 0 });
        dbHandler(x, "inc r9\niretq");
      },
    );
    expectHalt(c, runSys(c));
    // Traps after: mov ecx,3; 3 × (dec, jnz); pushfq; and; popfq (TF cleared by it, no trap after).
    expect(Number(reg(c, 9))).toBe(1 + 3 * 2 + 2 + 1);
  });
});
