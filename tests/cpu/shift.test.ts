import { describe, expect, it } from "vitest";
import { HAVE_AS } from "../helpers/asm.js";
import { DATA_BASE } from "../helpers/machine.js";
import {
  AF,
  CF,
  mask,
  OF,
  PF,
  RAX,
  RBX,
  RCX,
  Rng,
  RSI,
  reg,
  runRegs,
  SF,
  STATUS,
  sx,
  szp,
  ZF,
  zx,
} from "../helpers/x86ref.js";

/** Reference model of group 2, bit by bit. Returns the result and flags (null flags = unchanged). */
function model(
  op: string,
  w: number,
  v0: bigint,
  count: number,
  cfIn: number,
): { r: bigint; cf: number; of: number } | null {
  const masked = count & (w === 64 ? 63 : 31);
  if (masked === 0) return null;
  const W = BigInt(w);
  const msb = (x: bigint) => Number((x >> (W - 1n)) & 1n);
  let v = zx(v0, w);
  let cf = cfIn;
  switch (op) {
    case "shl":
    case "sal":
      for (let k = 0; k < masked; k++) {
        cf = msb(v);
        v = (v << 1n) & mask(w);
      }
      return { r: v, cf, of: msb(v) ^ cf };
    case "shr":
      for (let k = 0; k < masked; k++) {
        cf = Number(v & 1n);
        v >>= 1n;
      }
      return { r: v, cf, of: msb(zx(v0, w)) };
    case "sar":
      for (let k = 0; k < masked; k++) {
        cf = Number(v & 1n);
        v = (v >> 1n) | (BigInt(msb(v)) << (W - 1n));
      }
      return { r: v, cf, of: 0 };
    case "rol":
      for (let k = 0; k < masked; k++) v = ((v << 1n) | BigInt(msb(v))) & mask(w);
      cf = Number(v & 1n);
      return { r: v, cf, of: msb(v) ^ cf };
    case "ror":
      for (let k = 0; k < masked; k++) v = (v >> 1n) | ((v & 1n) << (W - 1n));
      cf = msb(v);
      return { r: v, cf, of: cf ^ Number((v >> (W - 2n)) & 1n) };
    case "rcl": {
      const t = w === 8 ? masked % 9 : w === 16 ? masked % 17 : masked;
      for (let k = 0; k < t; k++) {
        const n = msb(v);
        v = ((v << 1n) | BigInt(cf)) & mask(w);
        cf = n;
      }
      return { r: v, cf, of: msb(v) ^ cf };
    }
    default: {
      const t = w === 8 ? masked % 9 : w === 16 ? masked % 17 : masked;
      for (let k = 0; k < t; k++) {
        const n = Number(v & 1n);
        v = (v >> 1n) | (BigInt(cf) << (W - 1n));
        cf = n;
      }
      return { r: v, cf, of: msb(v) ^ Number((v >> (W - 2n)) & 1n) };
    }
  }
}

const REGS: Record<number, string> = { 8: "bl", 16: "bx", 32: "ebx", 64: "rbx" };
const OPS = ["rol", "ror", "rcl", "rcr", "shl", "sal", "shr", "sar"];

function put(old: bigint, v: bigint, bits: number): bigint {
  if (bits >= 32) return zx(v, bits);
  return (old & ~mask(bits)) | zx(v, bits);
}

function check(op: string, w: number, v: bigint, count: number, form: "cl" | "imm" | "one", initFlags: number) {
  const operand = REGS[w];
  const src =
    form === "cl" ? `${op} ${operand}, cl` : form === "imm" ? `${op} ${operand}, ${count}` : `${op} ${operand}, 1`;
  const n = form === "one" ? 1 : count;
  const c = runRegs(src, { [RBX]: v, [RCX]: BigInt(n) | 0xff00n }, initFlags);
  const e = model(op, w, v, n, initFlags & 1);
  const ctx = `${src} v=${v.toString(16)} count=${n}`;
  const f = c.getFlags();
  if (e === null) {
    expect(reg(c, RBX), ctx).toBe(w === 32 ? zx(v, 32) : v);
    expect(f & STATUS, ctx).toBe(initFlags & STATUS);
    return;
  }
  expect(reg(c, RBX), ctx).toBe(put(v, e.r, w));
  expect(f & CF, ctx).toBe(e.cf);
  expect((f & OF) >> 11, ctx).toBe(e.of);
  if (op === "rol" || op === "ror" || op === "rcl" || op === "rcr") {
    expect(f & (SF | ZF | PF | AF), ctx).toBe(initFlags & (SF | ZF | PF | AF));
  } else {
    expect(f & (SF | ZF | PF), ctx).toBe(szp(e.r, w));
  }
}

describe.skipIf(!HAVE_AS)("group 2 shifts and rotates", () => {
  const rng = new Rng(4242n);
  for (const op of OPS) {
    for (const w of [8, 16, 32, 64]) {
      it(`${op} ${w}-bit by CL over all counts 0..${w === 64 ? 65 : 33}`, () => {
        const values = [rng.value() | 1n, rng.value() | (1n << 63n), 0n, mask(64), 0x8000_0000_8000_8080n];
        for (const v of values) {
          for (let count = 0; count <= (w === 64 ? 65 : 33); count++) {
            check(op, w, v, count, "cl", count % 2 === 0 ? STATUS : 0x0);
          }
        }
      });
      it(`${op} ${w}-bit by 1 and by imm8`, () => {
        for (let k = 0; k < 6; k++) {
          const v = rng.value();
          check(op, w, v, 1, "one", k % 2 ? STATUS : CF);
          check(op, w, v, 1 + Number(rng.next() % 70n), "imm", k % 2 ? 0 : STATUS);
        }
        check(op, w, 0x1234n, 0, "imm", STATUS);
      });
    }
  }

  it("group 2 /6 (the SAL alias) behaves as SHL, by 1, by CL and by imm8", () => {
    // d1 f3: /6 ebx, 1; 48 d3 f6: /6 rsi, cl; c0 f2 03: /6 dl, 3
    const c = runRegs(".byte 0xd1, 0xf3\n.byte 0x48, 0xd3, 0xf6\n.byte 0xc0, 0xf2, 0x03", {
      [RBX]: 0xffff_ffff_c000_0001n,
      [RSI]: 0x0f00_0000_0000_0001n,
      [RCX]: 8n,
      2: 0x1_23n,
    });
    expect(reg(c, RBX)).toBe(0x8000_0002n);
    expect(reg(c, RSI)).toBe(0x0000_0000_0000_0100n);
    expect(reg(c, 2)).toBe(0x1_18n);
    expect(c.flagSet(CF)).toBe(true); // bit 5 of 0x23 shifted out last
  });

  it("shifts high-byte registers without REX and low-byte registers with REX", () => {
    let c = runRegs("shl ah, 3\nrol bh, 4", { [RAX]: 0x1122_3344_5566_1177n, [RBX]: 0xabcdn });
    expect(reg(c, RAX)).toBe(0x1122_3344_5566_8877n);
    expect(reg(c, RBX)).toBe(0xbacdn);
    c = runRegs("shr sil, 1\nsar r9b, 7", { [RSI]: 0xff03n, 9: 0x1280n });
    expect(reg(c, RSI)).toBe(0xff01n);
    expect(c.flagSet(CF)).toBe(false);
    expect(reg(c, 9)).toBe(0x12ffn);
  });

  it("a 32-bit shift by 0 still zero-extends the register; a memory operand is unchanged", () => {
    const c = runRegs("shl ebx, cl\nmov qword ptr [rsi], rdx\nshl qword ptr [rsi], cl\nmov rdi, [rsi]", {
      [RBX]: 0xffff_ffff_0000_0001n,
      [RCX]: 0x40n,
      [RSI]: BigInt(DATA_BASE),
      2: 0x1234_5678_9abc_def0n,
    });
    expect(reg(c, RBX)).toBe(1n);
    expect(reg(c, 7)).toBe(0x1234_5678_9abc_def0n);
  });

  it("memory forms read-modify-write at every size", () => {
    const c = runRegs(
      "mov qword ptr [rsi], rbx\nshl byte ptr [rsi], 1\nror word ptr [rsi+2], 4\nsar dword ptr [rsi+4], cl\nmov rax, [rsi]\nrcl qword ptr [rsi], 1\nmov rdx, [rsi]",
      { [RSI]: BigInt(DATA_BASE), [RBX]: 0x8765_4321_1234_5681n, [RCX]: 8n },
      0,
    );
    expect(reg(c, RAX)).toBe(0xff87_6543_4123_5602n);
    expect(reg(c, 2)).toBe(zx(0xff87_6543_4123_5602n << 1n, 64));
    expect(c.flagSet(CF)).toBe(true);
  });
});

/** Reference SHLD/SHRD for counts 1..w. */
function dmodel(op: string, w: number, d0: bigint, s0: bigint, count: number) {
  const W = BigInt(w);
  const d = zx(d0, w);
  const s = zx(s0, w);
  const c = BigInt(count);
  let r: bigint;
  let cf: bigint;
  if (op === "shld") {
    r = zx((((d << W) | s) << c) >> W, w);
    cf = (d >> (W - c)) & 1n;
  } else {
    r = zx(((s << W) | d) >> c, w);
    cf = (d >> (c - 1n)) & 1n;
  }
  const of = Number(((r ^ d) >> (W - 1n)) & 1n);
  return { r, cf: Number(cf), of };
}

describe.skipIf(!HAVE_AS)("shld/shrd", () => {
  const rng = new Rng(99n);
  for (const op of ["shld", "shrd"]) {
    for (const w of [16, 32, 64]) {
      it(`${op} ${w}-bit by CL and imm8`, () => {
        const dst = { 16: "ax", 32: "eax", 64: "rax" }[w];
        const src = { 16: "bx", 32: "ebx", 64: "rbx" }[w];
        for (let k = 0; k < 4; k++) {
          const d = rng.value();
          const s = rng.value();
          for (let count = 0; count <= (w === 64 ? 64 : 32); count++) {
            if (w === 16 && (count & 31) > 16) continue; // undefined result
            const useImm = count % 3 === 0;
            const text = useImm ? `${op} ${dst}, ${src}, ${count}` : `${op} ${dst}, ${src}, cl`;
            const c = runRegs(text, { [RAX]: d, [RBX]: s, [RCX]: BigInt(count) }, STATUS);
            const ctx = `${text} d=${d.toString(16)} s=${s.toString(16)} count=${count}`;
            const masked = count & (w === 64 ? 63 : 31);
            if (masked === 0) {
              expect(reg(c, RAX), ctx).toBe(w === 32 ? zx(d, 32) : d);
              expect(c.getFlags() & STATUS, ctx).toBe(STATUS);
              continue;
            }
            const e = dmodel(op, w, d, s, masked);
            expect(reg(c, RAX), ctx).toBe(put(d, e.r, w));
            expect(reg(c, RBX), ctx).toBe(s);
            const f = c.getFlags();
            expect(f & CF, ctx).toBe(e.cf);
            expect((f & OF) >> 11, ctx).toBe(e.of);
            expect(f & (SF | ZF | PF), ctx).toBe(szp(e.r, w));
          }
        }
      });
    }
  }
  it("shld with a memory destination", () => {
    const c = runRegs("mov [rsi], rax\nshld qword ptr [rsi], rbx, 8\nmov rdx, [rsi]", {
      [RSI]: BigInt(DATA_BASE),
      [RAX]: 0x0102_0304_0506_0708n,
      [RBX]: 0xaabb_ccdd_eeff_1122n,
    });
    expect(reg(c, 2)).toBe(0x0203_0405_0607_08aan);
    void sx;
  });
});
