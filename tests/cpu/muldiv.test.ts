import { describe, expect, it } from "vitest";
import { HAVE_AS } from "../helpers/asm.js";
import { runTrap } from "../helpers/idt.js";
import { CODE_BASE, DATA_BASE, setReg } from "../helpers/machine.js";
import { CF, mask, OF, RAX, RBX, RDX, Rng, reg, sx, zx } from "../helpers/x86ref.js";

const SIZES = [8, 16, 32, 64] as const;
const SRC: Record<number, string> = { 8: "bl", 16: "bx", 32: "ebx", 64: "rbx" };

/** Write `v` into a 64-bit register image as an operand of `bits` would (32-bit zero-extends). */
function put(old: bigint, v: bigint, bits: number): bigint {
  if (bits === 32 || bits === 64) return zx(v, bits);
  return (old & ~mask(bits)) | zx(v, bits);
}

type Expect = { de: true } | { de: false; rax: bigint; rdx: bigint; cfof?: boolean };

function model(op: string, w: number, rax: bigint, rdx: bigint, rbx: bigint): Expect {
  const W = BigInt(w);
  if (op === "mul" || op === "imul") {
    const a = op === "mul" ? zx(rax, w) : sx(rax, w);
    const b = op === "mul" ? zx(rbx, w) : sx(rbx, w);
    const p = a * b;
    const ovf = op === "mul" ? p >> W !== 0n : p !== sx(p, w);
    const up = zx(p, 2 * w);
    if (w === 8) return { de: false, rax: put(rax, up, 16), rdx, cfof: ovf };
    return { de: false, rax: put(rax, up & mask(w), w), rdx: put(rdx, up >> W, w), cfof: ovf };
  }
  const signed = op === "idiv";
  let n: bigint;
  if (w === 8) n = signed ? sx(rax, 16) : zx(rax, 16);
  else {
    const u = (zx(rdx, w) << W) | zx(rax, w);
    n = signed ? sx(u, 2 * w) : u;
  }
  const d = signed ? sx(rbx, w) : zx(rbx, w);
  if (d === 0n) return { de: true };
  const q = n / d; // BigInt division truncates toward zero
  const r = n % d; // sign of the dividend
  if (signed ? q < -(1n << (W - 1n)) || q >= 1n << (W - 1n) : q >= 1n << W) return { de: true };
  if (w === 8) return { de: false, rax: put(rax, (zx(r, 8) << 8n) | zx(q, 8), 16), rdx };
  return { de: false, rax: put(rax, q, w), rdx: put(rdx, r, w) };
}

function check(op: string, w: number, rax: bigint, rdx: bigint, rbx: bigint, viaMem = false) {
  const src = viaMem ? `${["byte", "word", "dword", "qword"][Math.log2(w / 8)]} ptr [rsi]` : SRC[w];
  const { cpu, trap } = runTrap(`${op} ${src}`, (c) => {
    setReg(c, RAX, rax);
    setReg(c, RDX, rdx);
    setReg(c, RBX, rbx);
    setReg(c, 6, BigInt(DATA_BASE));
    c.mem.write64(DATA_BASE, Number(rbx & 0xffffffffn) | 0, Number((rbx >> 32n) & 0xffffffffn) | 0);
    c.setFlags(0x2);
  });
  const e = model(op, w, rax, rdx, rbx);
  const ctx = `${op} ${src} rax=${rax.toString(16)} rdx=${rdx.toString(16)} rbx=${rbx.toString(16)}`;
  if (e.de) {
    expect(trap.vector, ctx).toBe(0);
    expect(trap.rip, ctx).toBe(CODE_BASE);
    expect(reg(cpu, RAX), ctx).toBe(rax);
    expect(reg(cpu, RDX), ctx).toBe(rdx);
    return;
  }
  expect(trap.vector, ctx).toBe(-1);
  expect(reg(cpu, RAX), ctx).toBe(e.rax);
  expect(reg(cpu, RDX), ctx).toBe(e.rdx);
  if (e.cfof !== undefined) {
    expect(cpu.flagSet(CF), ctx).toBe(e.cfof);
    expect(cpu.flagSet(OF), ctx).toBe(e.cfof);
  }
}

describe.skipIf(!HAVE_AS)("mul/imul/div/idiv (group 3)", () => {
  for (const op of ["mul", "imul", "div", "idiv"]) {
    for (const w of SIZES) {
      it(`${op} ${w}-bit matches the reference on edge and random values`, () => {
        const rng = new Rng(BigInt(w * 1000 + op.length * 7 + op.charCodeAt(0)));
        for (let k = 0; k < 40; k++) {
          const rax = rng.value();
          let rdx = rng.value();
          const rbx = rng.value();
          if ((op === "div" || op === "idiv") && k % 4 !== 3) {
            // Mostly keep the quotient in range so the division itself is exercised.
            const d = zx(rbx, w);
            if (op === "div" && d !== 0n) rdx = (rdx & ~mask(w)) | (zx(rdx, w) % d);
            if (op === "idiv") rdx = (rdx & ~mask(w)) | zx(sx(rax, w) < 0n ? -1n : 0n, w);
          }
          check(op, w, rax, rdx, rbx);
        }
      });
    }
  }

  it("64-bit DIV exercises small, medium and large divisors with a nonzero high half", () => {
    const divisors = [
      3n,
      10n,
      0x1fffffn,
      0x200001n,
      0x1234567890n,
      0x1fffffffffn,
      0x2000000000n,
      1n << 63n,
      mask(64),
      0xdeadbeefcafebaben,
    ];
    for (const d of divisors) {
      for (const hi of [0n, 1n, d - 1n, d >> 1n]) {
        for (const lo of [0n, 1n, mask(64), 0x0123456789abcdefn]) check("div", 64, lo, hi < d ? hi : 0n, d);
      }
    }
  });

  it("64-bit IDIV handles sign combinations and exact -2^63 quotient", () => {
    const min = 1n << 63n;
    check("idiv", 64, zx(-7n, 64), mask(64), 2n); // -7 / 2 = -3 r -1
    check("idiv", 64, 7n, 0n, zx(-2n, 64)); // 7 / -2 = -3 r 1
    check("idiv", 64, zx(-7n, 64), mask(64), zx(-2n, 64)); // 3 r -1
    check("idiv", 64, min, mask(64), 1n); // -2^63 / 1 = -2^63
    check("idiv", 64, 0n, zx(-1n, 64), 2n); // -2^64 / 2 = -2^63 (fits)
    check("idiv", 64, 0n, 1n, 2n); // 2^64 / 2 = 2^63 (#DE)
    check("idiv", 64, 0n, zx(-1n, 64), zx(-2n, 64)); // -2^64 / -2 = 2^63 (#DE)
  });

  it("raises #DE for division by zero and quotient overflow at every size", () => {
    for (const w of SIZES) {
      check("div", w, 5n, 0n, 0n);
      check("idiv", w, 5n, 0n, 0n);
      check("div", w, 0n, mask(w), 1n); // high part ≥ divisor
    }
    // INT_MIN / -1.
    check("idiv", 8, 0xff80n, 0n, 0xffn);
    check("idiv", 16, 0x8000n, 0xffffn, 0xffffn);
    check("idiv", 32, 0x80000000n, 0xffffffffn, 0xffffffffn);
    check("idiv", 64, 1n << 63n, mask(64), mask(64));
    // -128 is a valid 8-bit quotient.
    check("idiv", 8, zx(-256n, 16), 0n, 2n);
  });

  it("reads the source operand from memory", () => {
    for (const w of SIZES) {
      check("mul", w, 0x123456789abcdef0n, 0n, 0xfedcba9876543210n, true);
      check("div", w, 0x123456789abcdef0n, 3n, 0xfedcba9876543210n, true);
    }
  });

  it("8-bit forms use AX and leave the rest of RAX and RDX alone", () => {
    check("mul", 8, 0xaaaa_bbbb_cccc_ddffn, 0x1111n, 0xffn);
    check("div", 8, 0xaaaa_bbbb_cccc_0105n, 0x1111n, 0x10n);
  });
});

describe.skipIf(!HAVE_AS)("imul two- and three-operand forms", () => {
  const rng = new Rng(77n);
  const cases: [string, number, (a: bigint, b: bigint) => bigint][] = [
    ["imul rax, rbx", 64, (a, b) => sx(a, 64) * sx(b, 64)],
    ["imul eax, ebx", 32, (a, b) => sx(a, 32) * sx(b, 32)],
    ["imul ax, bx", 16, (a, b) => sx(a, 16) * sx(b, 16)],
    ["imul rax, rbx, 0x12345678", 64, (_a, b) => sx(b, 64) * 0x12345678n],
    ["imul rax, rbx, -0x789", 64, (_a, b) => sx(b, 64) * -0x789n],
    ["imul eax, ebx, -5", 32, (_a, b) => sx(b, 32) * -5n],
    ["imul ax, bx, 0x7fff", 16, (_a, b) => sx(b, 16) * 0x7fffn],
    ["imul ax, bx, -3", 16, (_a, b) => sx(b, 16) * -3n],
  ];
  for (const [src, w, f] of cases) {
    it(`${src}`, () => {
      for (let k = 0; k < 30; k++) {
        const a = rng.value();
        const b = rng.value();
        const { cpu, trap } = runTrap(src, (c) => {
          setReg(c, RAX, a);
          setReg(c, RBX, b);
        });
        expect(trap.vector).toBe(-1);
        const p = f(a, b);
        const ctx = `${src} a=${a.toString(16)} b=${b.toString(16)}`;
        expect(reg(cpu, RAX), ctx).toBe(put(a, p, w));
        const ovf = p !== sx(p, w);
        expect(cpu.flagSet(CF), ctx).toBe(ovf);
        expect(cpu.flagSet(OF), ctx).toBe(ovf);
      }
    });
  }
  it("imul with a memory source and a high register destination", () => {
    const { cpu } = runTrap("mov qword ptr [rsi], -3\nmov r9, 0x100000001\nimul r9, qword ptr [rsi]", (c) =>
      setReg(c, 6, BigInt(DATA_BASE)),
    );
    expect(reg(cpu, 9)).toBe(zx(-0x300000003n, 64));
    expect(cpu.flagSet(CF)).toBe(false);
  });
});
