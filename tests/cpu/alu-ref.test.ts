import { describe, expect, it } from "vitest";
import { HAVE_AS } from "../helpers/asm.js";
import { runTrap } from "../helpers/idt.js";
import { CODE_BASE, DATA_BASE, setReg } from "../helpers/machine.js";
import { AF, CF, mask, OF, RAX, RBX, Rng, RSI, reg, runRegs, STATUS, sx, szp, zx } from "../helpers/x86ref.js";

const REG = { 8: ["al", "bl"], 16: ["ax", "bx"], 32: ["eax", "ebx"], 64: ["rax", "rbx"] } as const;
const PTR = { 8: "byte", 16: "word", 32: "dword", 64: "qword" } as const;

function put(old: bigint, v: bigint, bits: number): bigint {
  if (bits >= 32) return zx(v, bits);
  return (old & ~mask(bits)) | zx(v, bits);
}

/** Reference two-operand ALU: result and all six status flags. */
function ref(op: string, w: number, a0: bigint, b0: bigint, cfIn: number): { r: bigint; f: number } {
  const a = zx(a0, w);
  const b = zx(b0, w);
  let r: bigint;
  let cf = 0;
  let of = 0;
  let af = 0;
  switch (op) {
    case "add":
    case "adc": {
      const c = op === "adc" ? BigInt(cfIn) : 0n;
      const full = a + b + c;
      r = zx(full, w);
      cf = full >> BigInt(w) ? 1 : 0;
      of = sx(a, w) + sx(b, w) + c !== sx(r, w) ? 1 : 0;
      af = Number(((a ^ b ^ r) >> 4n) & 1n);
      break;
    }
    case "sub":
    case "sbb":
    case "cmp": {
      const c = op === "sbb" ? BigInt(cfIn) : 0n;
      const full = a - b - c;
      r = zx(full, w);
      cf = full < 0n ? 1 : 0;
      of = sx(a, w) - sx(b, w) - c !== sx(r, w) ? 1 : 0;
      af = Number(((a ^ b ^ r) >> 4n) & 1n);
      break;
    }
    case "and":
    case "test":
      r = a & b;
      break;
    case "or":
      r = a | b;
      break;
    default:
      r = a ^ b;
  }
  return { r, f: (cf * CF) | (of ? OF : 0) | (af ? AF : 0) | szp(r, w) };
}

describe.skipIf(!HAVE_AS)("alu against a reference model", () => {
  const rng = new Rng(31337n);
  for (const op of ["add", "adc", "sub", "sbb", "and", "or", "xor", "cmp", "test"]) {
    for (const w of [8, 16, 32, 64] as const) {
      it(`${op} ${w}-bit: reg,reg / reg,mem / mem,reg / reg,imm`, () => {
        const [d, s] = REG[w];
        for (let k = 0; k < 16; k++) {
          const a = rng.value();
          let b = rng.value();
          const cfIn = k & 1;
          const imm = w === 8 ? sx(b, 8) : sx(b, 32);
          const forms = [
            [`${op} ${d}, ${s}`, b],
            [
              `mov [rsi], rbx\n${op === "test" ? `test ${PTR[w]} ptr [rsi], ${d}` : `${op} ${d}, ${PTR[w]} ptr [rsi]`}`,
              b,
            ],
            [`mov [rsi], rax\n${op} ${PTR[w]} ptr [rsi], ${s}\nmov rax, [rsi]`, b],
            [`${op} ${d}, ${imm}`, imm],
          ] as const;
          for (const [text, bv] of forms) {
            if (text.endsWith(`${op} ${d}, ${imm}`) && w === 64 && (imm < -(1n << 31n) || imm >= 1n << 31n)) continue;
            b = bv;
            const c = runRegs(text, { [RAX]: a, [RBX]: b, [RSI]: BigInt(DATA_BASE) }, cfIn ? CF : 0);
            const e = ref(op, w, a, b, cfIn);
            const ctx = `${text} a=${a.toString(16)} b=${b.toString(16)} cf=${cfIn}`;
            const writes = op !== "cmp" && op !== "test";
            const memDst = text.includes("mov rax, [rsi]");
            const merged = w === 64 ? e.r : (a & ~mask(w)) | e.r;
            expect(reg(c, RAX), ctx).toBe(writes ? (memDst ? merged : put(a, e.r, w)) : a);
            expect(c.getFlags() & STATUS, ctx).toBe(e.f);
          }
        }
      });
    }
  }

  it("inc/dec keep CF; neg sets CF for a nonzero source; not changes no flags", () => {
    let c = runRegs("stc\ninc rax", { [RAX]: 0x7fff_ffff_ffff_ffffn });
    expect(reg(c, RAX)).toBe(1n << 63n);
    expect(c.getFlags() & (CF | OF)).toBe(CF | OF);
    c = runRegs("clc\ndec al", { [RAX]: 0x100n });
    expect(reg(c, RAX)).toBe(0x1ffn);
    expect(c.getFlags() & (CF | AF)).toBe(AF);
    c = runRegs("neg ebx", { [RBX]: 0xffff_ffff_8000_0000n });
    expect(reg(c, RBX)).toBe(0x8000_0000n);
    expect(c.getFlags() & (CF | OF)).toBe(CF | OF);
    c = runRegs("neg bx", { [RBX]: 0xffff_0000n });
    expect(c.getFlags() & CF).toBe(0);
    c = runRegs("not word ptr [rsi]\nmov ax, [rsi]", { [RSI]: BigInt(DATA_BASE), [RAX]: 0n }, STATUS);
    expect(reg(c, RAX)).toBe(0xffffn);
    expect(c.getFlags() & STATUS).toBe(STATUS);
  });

  it("adc/sbb chains propagate carries across 128-bit arithmetic", () => {
    const c = runRegs("add rax, -1\nadc rbx, 0\nsub rcx, 1\nsbb rdx, 0", {
      [RAX]: 1n,
      [RBX]: 0xffn,
      1: 0n,
      2: 0x100n,
    });
    expect(reg(c, RAX)).toBe(0n);
    expect(reg(c, RBX)).toBe(0x100n);
    expect(reg(c, 1)).toBe(mask(64));
    expect(reg(c, 2)).toBe(0xffn);
  });

  it("adc/sbb to a read-only page fault precisely: memory and the pushed CF are the originals", () => {
    for (const text of ["adc qword ptr [rsi], rbx", "sbb dword ptr [rsi], 1"]) {
      const { cpu, trap } = runTrap(`stc\n${text}`, (c) => {
        c.mem.write64(0x3000 + 2 * 8, 0x400000 | 0x81, 0); // 2 MiB page at 0x400000: present, read-only
        c.mem.write64(0x400000, 5, 0);
        setReg(c, RSI, 0x400000n);
        setReg(c, RBX, 1n);
      });
      expect(trap.vector, text).toBe(14);
      expect(trap.errorCode, text).toBe(3); // present, write
      expect(trap.rip, text).toBe(CODE_BASE + 1);
      expect(trap.rflags & CF, text).toBe(CF);
      expect(cpu.mem.read(0x400000, 4), text).toBe(5);
    }
  });
});
