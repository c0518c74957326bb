import { describe, expect, it } from "vitest";
import { HAVE_AS } from "../helpers/asm.js";
import { DATA_BASE, STACK_TOP } from "../helpers/machine.js";
import { mask, RAX, RBX, RCX, RDI, RDX, RSP, reg, runRegs, sx } from "../helpers/x86ref.js";

const CC = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];

/** Expected truth of each condition after `cmp a, b` (64-bit). */
function conds(a: bigint, b: bigint): boolean[] {
  const r = BigInt.asUintN(64, a - b);
  const of = sx(a, 64) - sx(b, 64) !== sx(r, 64);
  const cf = BigInt.asUintN(64, a) < BigInt.asUintN(64, b);
  const zf = r === 0n;
  const s = r >> 63n === 1n;
  let bits = Number(r & 0xffn);
  let n = 0;
  while (bits) {
    n += bits & 1;
    bits >>= 1;
  }
  const p = n % 2 === 0;
  const base = [of, cf, zf, cf || zf, s, p, s !== of, zf || s !== of];
  return CC.map((_, k) => (k & 1 ? !base[k >> 1] : base[k >> 1]));
}

describe.skipIf(!HAVE_AS)("conditions: jcc, setcc, cmovcc", () => {
  // One program evaluates all 16 conditions three ways after cmp rax, rbx.
  const lines: string[] = ["cmp rax, rbx"];
  CC.forEach((cc, k) => {
    lines.push(`set${cc} byte ptr [rdi+${k}]`);
    lines.push(`j${cc} 1f\nmov byte ptr [rdi+${16 + k}], 0\njmp 2f\n1: mov byte ptr [rdi+${16 + k}], 1\n2:`);
    lines.push(`mov rdx, -1\nmov ecx, 1\ncmov${cc} edx, ecx\nmov [rdi+${32 + 8 * k}], rdx`);
  });
  const prog = lines.join("\n");
  const pairs: [bigint, bigint][] = [
    [0n, 0n],
    [1n, 2n],
    [2n, 1n],
    [mask(64), 1n],
    [1n << 63n, 1n],
    [(1n << 63n) - 1n, mask(64)],
    [0x80n, 0x7fn],
    [5n, 0x8000_0000_0000_0005n],
  ];
  for (const [a, b] of pairs) {
    it(`after cmp ${a.toString(16)}, ${b.toString(16)}`, () => {
      const c = runRegs(prog, { [RAX]: a, [RBX]: b, [RDI]: BigInt(DATA_BASE) });
      const want = conds(a, b);
      CC.forEach((cc, k) => {
        expect(c.mem.read8(DATA_BASE + k), `set${cc}`).toBe(want[k] ? 1 : 0);
        expect(c.mem.read8(DATA_BASE + 16 + k), `j${cc}`).toBe(want[k] ? 1 : 0);
        // cmov with a 32-bit destination zero-extends even when the condition is false.
        expect(c.mem.read(DATA_BASE + 32 + 8 * k, 4) >>> 0, `cmov${cc}`).toBe(want[k] ? 1 : 0xffff_ffff);
        expect(c.mem.read(DATA_BASE + 36 + 8 * k, 4), `cmov${cc} high`).toBe(0);
      });
    });
  }
  it("cmov always reads its memory source; a 64-bit false cmov leaves the destination", () => {
    const c = runRegs(
      "xor eax, eax\ncmovnz rbx, [rdi]\ncmovz rcx, [rdi]",
      { [RBX]: mask(64), [RDI]: BigInt(DATA_BASE) },
      0,
      (cpu) => cpu.mem.write64(DATA_BASE, 7, 0),
    );
    expect(reg(c, RBX)).toBe(mask(64));
    expect(reg(c, RCX)).toBe(7n);
  });
});

describe.skipIf(!HAVE_AS)("loops, calls, jumps", () => {
  it("loop counts RCX down; loope/loopne stop on ZF", () => {
    let c = runRegs("xor eax, eax\nmov ecx, 10\n1: add eax, 3\nloop 1b", {});
    expect(reg(c, RAX)).toBe(30n);
    expect(reg(c, RCX)).toBe(0n);
    c = runRegs("mov ecx, 10\nxor eax, eax\n1: inc eax\ncmp eax, 4\nloopne 1b", {});
    expect(reg(c, RAX)).toBe(4n);
    expect(reg(c, RCX)).toBe(6n);
    c = runRegs("mov ecx, 10\nxor eax, eax\n1: inc eax\ncmp eax, 1\nloope 1b", {});
    expect(reg(c, RAX)).toBe(2n);
    expect(reg(c, RCX)).toBe(8n);
  });
  it("loop with a 32-bit address size uses ECX (and zero-extends it)", () => {
    const c = runRegs("xor eax, eax\n1: inc eax\naddr32 loop 1b", { [RCX]: 0x1_0000_0003n });
    expect(reg(c, RAX)).toBe(3n);
    expect(reg(c, RCX)).toBe(0n);
  });
  it("loop with RCX = 0 wraps to 2^64 - 1 (runs once here and exits via a guard)", () => {
    const c = runRegs("xor eax, eax\n1: inc eax\ncmp eax, 5\nje 2f\nloop 1b\n2:", { [RCX]: 0n });
    expect(reg(c, RAX)).toBe(5n);
    expect(reg(c, RCX)).toBe(mask(64) - 3n);
  });
  it("jrcxz/jecxz", () => {
    const c = runRegs(
      "xor eax, eax\njrcxz 1f\nmov eax, 1\n1: mov ecx, 0\nmov rbx, 0x100000000\nor rcx, rbx\njecxz 2f\nmov edx, 1\n2:",
      {},
    );
    expect(reg(c, RAX)).toBe(0n);
    expect(reg(c, RDX)).toBe(0n);
  });
  it("call/ret (direct, register, memory, ret imm16) keep the stack balanced", () => {
    const c = runRegs(
      [
        "lea rbx, [rip+f2]",
        "mov [rdi], rbx",
        "call f1",
        "call rbx",
        "call qword ptr [rdi]",
        "push 7",
        "call f3",
        "jmp done",
        "f1: inc eax\nret",
        "f2: add eax, 10\nret",
        "f3: mov rdx, [rsp+8]\nret 8",
        "done:",
      ].join("\n"),
      { [RAX]: 0n, [RDI]: BigInt(DATA_BASE) },
    );
    expect(reg(c, RAX)).toBe(21n);
    expect(reg(c, RDX)).toBe(7n);
    expect(reg(c, RSP)).toBe(BigInt(STACK_TOP));
  });
  it("jmp through a register and a table", () => {
    const c = runRegs(
      "lea rax, [rip+t]\nmov [rdi+8], rax\njmp qword ptr [rdi+8]\nmov ecx, 1\nt: lea rbx, [rip+u]\njmp rbx\nmov ecx, 2\nu: nop",
      {
        [RDI]: BigInt(DATA_BASE),
        [RCX]: 0n,
      },
    );
    expect(reg(c, RCX)).toBe(0n);
  });
});
