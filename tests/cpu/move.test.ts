import { describe, expect, it } from "vitest";
import { HAVE_AS } from "../helpers/asm.js";
import { DATA_BASE, STACK_TOP } from "../helpers/machine.js";
import { mask, RAX, RBP, RBX, RCX, RDI, RDX, RSI, RSP, reg, runRegs } from "../helpers/x86ref.js";

const D = BigInt(DATA_BASE);
const SP = BigInt(STACK_TOP);

describe.skipIf(!HAVE_AS)("mov/movzx/movsx", () => {
  it("movzx and movsx from registers (including AH) and memory", () => {
    const c = runRegs(
      "movzx eax, bl\nmovzx rcx, bx\nmovsx rdx, bl\nmovsx si, bh\nmovsxd rdi, ebx\nmovzx r8d, byte ptr [rbp]\nmovsx r9, word ptr [rbp]",
      {
        [RAX]: 0xffff_ffff_ffff_80ffn,
        [RBX]: 0x1234_5678_9abc_de80n,
        [RSI]: 0xaaaa_aaaa_aaaa_aaaan,
        [RBP]: D,
      },
      0,
      (c) => c.mem.write(DATA_BASE, 2, 0x8081),
    );
    expect(reg(c, RAX)).toBe(0x80n);
    expect(reg(c, RCX)).toBe(0xde80n);
    expect(reg(c, RDX)).toBe(mask(64) - 0x7fn);
    expect(reg(c, RSI)).toBe(0xaaaa_aaaa_aaaa_ffden);
    expect(reg(c, RDI)).toBe(mask(64) - 0x6543_217fn);
    expect(reg(c, 8)).toBe(0x81n);
    expect(reg(c, 9)).toBe(mask(64) - 0x7f7en);
    const h = runRegs("movsx ecx, ah\nmovzx edx, bh", { [RAX]: 0x80ffn, [RBX]: 0x7f00n, [RCX]: mask(64) });
    expect(reg(h, RCX)).toBe(0xffff_ff80n);
    expect(reg(h, RDX)).toBe(0x7fn);
  });
  it("8/16-bit moves merge, 32-bit moves zero-extend, moffs and imm64 forms", () => {
    const c = runRegs(
      `mov al, 0x11\nmov bx, 0x2222\nmov ecx, 0x33\nmov r9, rax\nmov rax, 0x1122334455667788\n.byte 0x48, 0xa3\n.quad ${DATA_BASE}\n.byte 0xa1\n.quad ${DATA_BASE + 4}\nmov byte ptr [rbp+8], -1\nmov dword ptr [rbp+12], -2\nmov rsi, qword ptr [rbp+8]`,
      { [RAX]: mask(64), [RBX]: mask(64), [RCX]: mask(64), [RBP]: D },
    );
    expect(reg(c, 9)).toBe(0xffff_ffff_ffff_ff11n);
    expect(reg(c, RAX)).toBe(0x1122_3344n);
    expect(reg(c, RBX)).toBe(0xffff_ffff_ffff_2222n);
    expect(reg(c, RCX)).toBe(0x33n);
    expect(c.mem.read(DATA_BASE, 4)).toBe(0x5566_7788);
    expect(reg(c, RSI)).toBe(0xffff_fffe_0000_00ffn);
  });
  it("lea: 64-bit, 32-bit operand, 32-bit address size wraps, 16-bit destination", () => {
    const c = runRegs(
      "lea rax, [rbx+rcx*8-8]\nlea edx, [rbx+rcx*2+5]\nlea rsi, [ebx+ecx*8]\nlea di, [rbx+1]\nlea r8, [rip]",
      { [RBX]: 0x1_ffff_fff0n, [RCX]: 4n, [RDI]: 0xaaaa_0000n },
    );
    expect(reg(c, RAX)).toBe(0x2_0000_0008n);
    expect(reg(c, RDX)).toBe(0xffff_fffdn); // 0x1fffffff0 + 13 truncated to 32 bits
    expect(reg(c, RSI)).toBe(0x10n); // 32-bit address arithmetic wraps
    expect(reg(c, RDI)).toBe(0xaaaa_fff1n);
    expect(reg(c, 8) > 0x100000n).toBe(true);
  });
  it("xchg forms: 64/32/8-bit, with memory, 90+r, and 87 C0 zero-extends while 90 does not", () => {
    let c = runRegs("xchg rax, rbx\nxchg ecx, edx\nxchg ah, bl\nxchg [rbp], rsi\nxchg r8d, eax", {
      [RAX]: 0x1111_1111_1111_1111n,
      [RBX]: 0x2222_2222_2222_2222n,
      [RCX]: 0x3333_3333_3333_3333n,
      [RDX]: 0x4444_4444_4444_4444n,
      [RSI]: 0x5555n,
      [RBP]: D,
      8: 0x8888_8888_8888_8888n,
    });
    expect(reg(c, RAX)).toBe(0x8888_8888n);
    expect(reg(c, 8)).toBe(0x2222_1122n);
    expect(reg(c, RBX)).toBe(0x1111_1111_1111_1122n);
    expect(reg(c, RCX)).toBe(0x4444_4444n);
    expect(reg(c, RDX)).toBe(0x3333_3333n);
    expect(reg(c, RSI)).toBe(0n);
    expect(c.mem.read(DATA_BASE, 4)).toBe(0x5555);
    c = runRegs("nop\n.byte 0x87, 0xc0", { [RAX]: 0xffff_ffff_0000_0001n });
    expect(reg(c, RAX)).toBe(1n);
    c = runRegs("nop", { [RAX]: 0xffff_ffff_0000_0001n });
    expect(reg(c, RAX)).toBe(0xffff_ffff_0000_0001n);
  });
  it("cbw/cwde/cdqe and cwd/cdq/cqo", () => {
    let c = runRegs("cbw", { [RAX]: 0xffff_0080n });
    expect(reg(c, RAX)).toBe(0xffff_ff80n);
    c = runRegs("cwde", { [RAX]: 0xffff_ffff_0000_8000n });
    expect(reg(c, RAX)).toBe(0xffff_8000n);
    c = runRegs("cdqe", { [RAX]: 0x8000_0000n });
    expect(reg(c, RAX)).toBe(0xffff_ffff_8000_0000n);
    c = runRegs("cwd\ncdq", { [RAX]: 0x8000_8000n, [RDX]: 0x1234_0000_0000n });
    expect(reg(c, RDX)).toBe(0xffff_ffffn);
    c = runRegs("cqo", { [RAX]: 1n << 63n });
    expect(reg(c, RDX)).toBe(mask(64));
  });
});

describe.skipIf(!HAVE_AS)("push/pop/enter/leave", () => {
  it("push/pop registers, immediates (sign-extended), memory, 16-bit", () => {
    const c = runRegs(
      "push rbx\npush -5\npush 0x7fffffff\npush qword ptr [rbp]\npush r12w\npop cx\npop rdx\npop rsi\npop rdi\npop qword ptr [rbp+8]",
      { [RBX]: 0x1122_3344_5566_7788n, [RBP]: D, 12: 0xabcdn, [RCX]: mask(64) },
      0,
      (cpu) => cpu.mem.write64(DATA_BASE, 0x0bad_f00d, 0x1),
    );
    expect(reg(c, RCX)).toBe(0xffff_ffff_ffff_abcdn);
    expect(reg(c, RDX)).toBe(0x1_0bad_f00dn);
    expect(reg(c, RSI)).toBe(0x7fff_ffffn);
    expect(reg(c, RDI)).toBe(mask(64) - 4n);
    expect(c.mem.read(DATA_BASE + 8, 4)).toBe(0x5566_7788);
    expect(reg(c, RSP)).toBe(SP);
  });
  it("push rsp pushes the old value; pop rsp loads the popped value", () => {
    const c = runRegs("push rsp\npop rax\npush 0x1000\npop rsp", {});
    expect(reg(c, RAX)).toBe(SP);
    expect(reg(c, RSP)).toBe(0x1000n);
  });
  it("pop [rsp+8] uses RSP after the increment", () => {
    const c = runRegs("push 1\npush 2\npush 3\npop qword ptr [rsp+8]\npop rax\npop rbx", {});
    expect(reg(c, RAX)).toBe(2n);
    expect(reg(c, RBX)).toBe(3n);
  });
  it("enter/leave build and tear down frames (nesting level 0 and 2)", () => {
    let c = runRegs("enter 32, 0\nmov rax, rsp\nmov rbx, rbp\nleave", { [RBP]: 0x1234n });
    expect(reg(c, RAX)).toBe(SP - 8n - 32n);
    expect(reg(c, RBX)).toBe(SP - 8n);
    expect(reg(c, RBP)).toBe(0x1234n);
    expect(reg(c, RSP)).toBe(SP);
    c = runRegs(
      "enter 16, 2\nmov rax, rsp\nmov rbx, rbp\nmov rcx, [rsp+16]\nmov rdx, [rsp+24]",
      { [RBP]: SP - 0x100n },
      0,
      (cpu) => cpu.mem.write64(STACK_TOP - 0x108, 0xfeed, 0),
    );
    // Frame: old RBP, copy of [old RBP - 8], new frame pointer, then 16 bytes.
    expect(reg(c, RBX)).toBe(SP - 8n);
    expect(reg(c, RAX)).toBe(SP - 24n - 16n);
    expect(reg(c, RDX)).toBe(0xfeedn);
    expect(reg(c, RCX)).toBe(SP - 8n);
  });
});
