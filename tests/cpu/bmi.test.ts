/**
 * BMI1, BMI2 and ADX (src/cpu/ops/bmi.ts) and the VEX decoding they need, against a BigInt
 * reference written from the SDM's pseudo-code (vol. 2A/2B under each mnemonic), plus the #UD
 * cases of the VEX exception class (SDM vol. 2, 2.5.1) and VEX in 32-bit mode.
 */
import { describe, expect, it } from "vitest";
import { Cpu, STOP_HALT } from "../../src/cpu/cpu.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { UD } from "../../src/x86/exceptions.js";
import { asm, HAVE_AS } from "../helpers/asm.js";
import { runTrap } from "../helpers/idt.js";
import { CODE_BASE, DATA_BASE } from "../helpers/machine.js";
import { CF, mask, OF, RAX, RBX, RCX, RDX, Rng, reg, runRegs, SF, STATUS, setReg, ZF, zx } from "../helpers/x86ref.js";

const R = { 32: ["eax", "ebx", "ecx"], 64: ["rax", "rbx", "rcx"] } as const;

function sign(v: bigint, w: number): number {
  return (v >> BigInt(w - 1)) & 1n ? SF : 0;
}

/** The SDM's result and defined flags (value, mask of the flags it defines) for each operation. */
function ref(op: string, w: number, a: bigint, b: bigint): { r: bigint; flags: number; defined: number } {
  const W = BigInt(w);
  a = zx(a, w);
  b = zx(b, w);
  const zf = (r: bigint) => (r === 0n ? ZF : 0);
  switch (op) {
    case "andn": {
      const r = zx(~a & b, w); // andn dst, a(vvvv), b(r/m)
      return { r, flags: zf(r) | sign(r, w), defined: SF | ZF | CF | OF };
    }
    case "bextr": {
      // bextr dst, a(r/m), b(control)
      const start = b & 0xffn;
      const len = (b >> 8n) & 0xffn;
      let r = start < W ? a >> start : 0n;
      if (len < W) r &= mask(Number(len));
      return { r, flags: zf(r), defined: ZF | CF | OF };
    }
    case "blsi": {
      const r = zx(-a & a, w);
      return { r, flags: zf(r) | sign(r, w) | (a !== 0n ? CF : 0), defined: SF | ZF | CF | OF };
    }
    case "blsmsk": {
      const r = zx((a - 1n) ^ a, w);
      return { r, flags: sign(r, w) | (a === 0n ? CF : 0), defined: SF | ZF | CF | OF };
    }
    case "blsr": {
      const r = zx((a - 1n) & a, w);
      return { r, flags: zf(r) | sign(r, w) | (a === 0n ? CF : 0), defined: SF | ZF | CF | OF };
    }
    case "bzhi": {
      const n = b & 0xffn;
      const r = n < W ? a & mask(Number(n)) : a;
      return { r, flags: zf(r) | sign(r, w) | (n > W - 1n ? CF : 0), defined: SF | ZF | CF | OF };
    }
    case "pdep":
    case "pext": {
      // pdep/pext dst, a(vvvv source), b(r/m mask): the k-th set bit of the mask is bit i.
      let r = 0n;
      let k = 0n;
      for (let i = 0n; i < W; i++)
        if ((b >> i) & 1n) {
          const [from, to] = op === "pdep" ? [k, i] : [i, k];
          if ((a >> from) & 1n) r |= 1n << to;
          k++;
        }
      return { r, flags: 0, defined: 0 };
    }
    case "shlx":
      return { r: zx(a << (b & (W - 1n)), w), flags: 0, defined: 0 };
    case "shrx":
      return { r: a >> (b & (W - 1n)), flags: 0, defined: 0 };
    case "sarx": {
      const s = BigInt.asIntN(w, a) >> (b & (W - 1n));
      return { r: zx(s, w), flags: 0, defined: 0 };
    }
    case "rorx": {
      const n = b & (W - 1n);
      return { r: zx((a >> n) | (a << (W - n)), w), flags: 0, defined: 0 };
    }
  }
  throw new Error(op);
}

/** The assembler text for `op` at width w: destination RAX, operand a in RBX, b in RCX (or imm). */
function text(op: string, w: 32 | 64, b: bigint): string {
  const [d, x, y] = R[w];
  if (op === "blsi" || op === "blsmsk" || op === "blsr") return `${op} ${d}, ${x}`;
  if (op === "rorx") return `rorx ${d}, ${x}, ${Number(b & 0xffn)}`;
  if (op === "andn" || op === "pdep" || op === "pext") return `${op} ${d}, ${x}, ${y}`; // vvvv = a, r/m = b
  return `${op} ${d}, ${x}, ${y}`; // r/m = a, vvvv = b
}

/** Values biased to the edges these instructions care about (counts, indexes, masks). */
function operandB(rng: Rng, op: string, w: number): bigint {
  const k = Number(rng.next() % 4n);
  if (op === "bextr" && k < 2)
    return BigInt(Number(rng.next() % 80n)) | (BigInt(Number(rng.next() % 80n)) << 8n) | (rng.next() & ~0xffffn);
  if (op === "bzhi" && k < 2) return BigInt(Number(rng.next() % 80n)) | (rng.next() & ~0xffn);
  if ((op === "pdep" || op === "pext") && k === 0) return [0n, mask(w), mask(w) ^ 1n, 1n << BigInt(w - 1)][k];
  return rng.value();
}

describe.skipIf(!HAVE_AS)("BMI1/BMI2 against the SDM pseudo-code", () => {
  const OPS = ["andn", "bextr", "blsi", "blsmsk", "blsr", "bzhi", "pdep", "pext", "shlx", "shrx", "sarx", "rorx"];
  for (const op of OPS) {
    for (const w of [32, 64] as const) {
      it(`${op} ${w}-bit: result, defined flags, untouched flags, 32-bit zero extension`, () => {
        const rng = new Rng(BigInt(w * 1000 + OPS.indexOf(op) + 1));
        for (let k = 0; k < 40; k++) {
          const a = rng.value();
          const b = operandB(rng, op, w);
          const init = Number(rng.next() & BigInt(STATUS));
          const t = text(op, w, b);
          const c = runRegs(t, { [RAX]: 0xdead_beef_dead_beefn, [RBX]: a, [RCX]: b }, init);
          const want = ref(op, w, a, b);
          const ctx = `${t} a=${a.toString(16)} b=${b.toString(16)}`;
          expect(reg(c, RAX), ctx).toBe(want.r);
          const f = c.getFlags() & STATUS;
          expect(f & want.defined, ctx).toBe(want.flags);
          if (want.defined === 0) expect(f, `${ctx}: flags untouched`).toBe(init);
        }
      });
    }
  }

  it("edge cases: BEXTR start/length at or past the width, BZHI index past the width sets CF", () => {
    const run = (t: string, a: bigint, b: bigint) => runRegs(t, { [RBX]: a, [RCX]: b });
    const v = 0x8123_4567_89ab_cdefn;
    expect(reg(run("bextr rax, rbx, rcx", v, 0x40_40n), RAX)).toBe(0n); // start 64
    expect(reg(run("bextr rax, rbx, rcx", v, 0xff_00n), RAX)).toBe(v); // length 255 from 0
    expect(reg(run("bextr rax, rbx, rcx", v, 0x00_04n), RAX)).toBe(0n); // length 0
    expect(reg(run("bextr eax, ebx, ecx", v, 0x20_1cn), RAX)).toBe(0x8n); // 32-bit: bits 31:28
    expect(reg(run("bextr eax, ebx, ecx", v, 0x00_20n), RAX)).toBe(0n); // 32-bit: start 32
    let c = run("bzhi rax, rbx, rcx", v, 0x40n);
    expect([reg(c, RAX), c.getFlags() & (CF | SF)]).toEqual([v, CF | SF]); // index 64: copy, CF = 1
    c = run("bzhi rax, rbx, rcx", v, 0x13fn);
    expect([reg(c, RAX), c.getFlags() & (CF | SF)]).toEqual([v & mask(63), 0]); // only bits 7:0 count
    c = run("bzhi eax, ebx, ecx", v, 0x20n);
    expect([reg(c, RAX), c.getFlags() & CF]).toEqual([zx(v, 32), CF]);
    c = run("bzhi eax, ebx, ecx", v, 0n);
    expect([reg(c, RAX), c.getFlags() & (CF | ZF)]).toEqual([0n, ZF]);
  });

  it("PDEP/PEXT with full masks copy the source; SHLX/SARX/RORX mask the count", () => {
    const v = 0xfedc_ba98_7654_3210n;
    const run = (t: string, a: bigint, b: bigint) => reg(runRegs(t, { [RBX]: a, [RCX]: b }), RAX);
    expect(run("pdep rax, rbx, rcx", v, mask(64))).toBe(v);
    expect(run("pext rax, rbx, rcx", v, mask(64))).toBe(v);
    expect(run("pdep eax, ebx, ecx", v, mask(64))).toBe(zx(v, 32));
    expect(run("pext rax, rbx, rcx", v, 0xffff_0000_0000_0000n)).toBe(0xfedcn);
    expect(run("pdep rax, rbx, rcx", 0b101n, 0x8000_0001_0000_0001n)).toBe(0x8000_0000_0000_0001n);
    expect(run("shlx rax, rbx, rcx", 1n, 65n)).toBe(2n);
    expect(run("shlx eax, ebx, ecx", 1n, 33n)).toBe(2n);
    expect(run("sarx rax, rbx, rcx", 1n << 63n, 127n)).toBe(mask(64));
    expect(run("shrx eax, ebx, ecx", v, 36n)).toBe(0x0765_4321n);
    expect(run("rorx rax, rbx, 68", v, 0n)).toBe(0x0fed_cba9_8765_4321n);
    expect(run("rorx eax, ebx, 36", v, 0n)).toBe(0x0765_4321n);
  });

  it("MULX: unsigned RDX × r/m, low half to vvvv, high to reg (high wins when equal); flags untouched", () => {
    const rng = new Rng(77n);
    for (let k = 0; k < 30; k++) {
      const a = rng.value();
      const b = rng.value();
      const init = Number(rng.next() & BigInt(STATUS));
      for (const w of [32, 64] as const) {
        const t = w === 64 ? "mulx rax, rbx, rcx" : "mulx eax, ebx, ecx";
        const c = runRegs(t, { [RDX]: a, [RCX]: b }, init);
        const p = zx(a, w) * zx(b, w);
        expect(reg(c, RBX), t).toBe(zx(p, w));
        expect(reg(c, RAX), t).toBe(p >> BigInt(w));
        expect(c.getFlags() & STATUS).toBe(init);
        const same = runRegs(w === 64 ? "mulx rax, rax, rcx" : "mulx eax, eax, ecx", { [RDX]: a, [RCX]: b });
        expect(reg(same, RAX)).toBe(p >> BigInt(w));
      }
    }
  });

  it("memory source operands (r/m from memory)", () => {
    const c = runRegs(
      `mov rsi, ${DATA_BASE}
       mov qword ptr [rsi], rbx
       andn rax, rcx, [rsi]
       bzhi rdx, [rsi], rcx
       mulx r9, r8, [rsi]`,
      { [RBX]: 0xff00_ff00_1234_5678n, [RCX]: 0x0f0f_0f0f_0000_ff24n },
    );
    expect(reg(c, RAX)).toBe(0xf000_f000_1234_0058n);
    expect(reg(c, RDX)).toBe(0x1234_5678n); // bits 35:0
    expect(reg(c, 8)).toBe(zx(0x1234_5678n * 0xff00_ff00_1234_5678n, 64));
    expect(reg(c, 9)).toBe((0x1234_5678n * 0xff00_ff00_1234_5678n) >> 64n);
  });
});

describe.skipIf(!HAVE_AS)("ADX: ADCX/ADOX", () => {
  it("add with carry through CF (ADCX) or OF (ADOX) only, leaving the other flags; 32-bit forms zero-extend", () => {
    const rng = new Rng(31n);
    for (let k = 0; k < 40; k++) {
      const a = rng.value();
      const b = rng.value();
      const init = Number(rng.next() & BigInt(STATUS));
      for (const [op, bit] of [
        ["adcx", CF],
        ["adox", OF],
      ] as const) {
        for (const w of [32, 64] as const) {
          const t = `${op} ${R[w][0]}, ${R[w][1]}`;
          const c = runRegs(t, { [RAX]: a, [RBX]: b }, init);
          const sum = zx(a, w) + zx(b, w) + ((init & bit) !== 0 ? 1n : 0n);
          const ctx = `${t} ${a.toString(16)} ${b.toString(16)} ${init}`;
          expect(reg(c, RAX), ctx).toBe(zx(sum, w));
          expect(c.getFlags() & STATUS, ctx).toBe((init & ~bit) | (sum >> BigInt(w) ? bit : 0));
        }
      }
    }
  });

  it("memory sources; the 66 of ADCX is its mandatory prefix, not an operand-size override", () => {
    const c = runRegs(
      `mov rsi, ${DATA_BASE}
       mov qword ptr [rsi], rbx
       stc
       adcx rax, [rsi]
       adox ecx, [rsi]`,
      { [RAX]: 1n, [RBX]: mask(64), [RCX]: 0x1_0000_0002n },
      OF,
    );
    expect(reg(c, RAX)).toBe(1n); // 1 + 2^64-1 + CF → 1, carry out
    expect(reg(c, RCX)).toBe(2n); // 32-bit: 2 + 0xffffffff + OF → 2, zero-extended
    expect(c.getFlags() & (CF | OF)).toBe(CF | OF);
  });

  it("two interleaved carry chains (the use ADX is made for)", () => {
    // [r8:r9] + [r10:r11] through CF, [r12:r13] + [r14:r15] through OF.
    const c = runRegs(
      `xor eax, eax
       adcx r8, r10
       adox r12, r14
       adcx r9, r11
       adox r13, r15`,
      {
        8: mask(64),
        9: 1n,
        10: 1n,
        11: 2n,
        12: 1n << 63n,
        13: 5n,
        14: 1n << 63n,
        15: 6n,
      },
    );
    expect([reg(c, 8), reg(c, 9), reg(c, 12), reg(c, 13)]).toEqual([0n, 4n, 0n, 12n]);
  });
});

describe.skipIf(!HAVE_AS)("VEX decoding: #UD cases (SDM vol. 2, 2.3 and 2.5.1)", () => {
  const shlx = ".byte 0xc4, 0xe2, 0x71, 0xf7, 0xc3"; // shlx eax, ebx, ecx
  const cases: [string, string][] = [
    ["VEX.L = 1", ".byte 0xc4, 0xe2, 0x75, 0xf7, 0xc3"],
    ["66 before VEX", `.byte 0x66\n${shlx}`],
    ["F3 before VEX", `.byte 0xf3\n${shlx}`],
    ["F2 before VEX", `.byte 0xf2\n${shlx}`],
    ["REX before VEX", `.byte 0x41\n${shlx}`],
    ["LOCK before VEX", `.byte 0xf0\n${shlx}`],
    ["RORX with vvvv ≠ 1111b", ".byte 0xc4, 0xe3, 0x73, 0xf0, 0xc3, 0x05"],
    ["reserved VEX.mmmmm 0", ".byte 0xc4, 0xe0, 0x71, 0xf7, 0xc3"],
    ["reserved VEX.mmmmm 4", ".byte 0xc4, 0xe4, 0x71, 0xf7, 0xc3"],
    ["ANDN with pp = 66", ".byte 0xc4, 0xe2, 0x71, 0xf2, 0xc3"],
    ["BLS group /0 (unassigned)", ".byte 0xc4, 0xe2, 0x78, 0xf3, 0xc3"],
    ["VZEROUPPER (AVX is not implemented)", ".byte 0xc5, 0xf8, 0x77"],
    ["MOVBE with a register operand", ".byte 0x0f, 0x38, 0xf0, 0xc3"],
    ["ADCX/ADOX without 66/F3 (0F 38 F6)", ".byte 0x0f, 0x38, 0xf6, 0xc3"],
  ];
  for (const [what, src] of cases) {
    it(`${what}: #UD at the instruction`, () => {
      const { trap } = runTrap(`nop\n${src}`);
      expect(trap.vector).toBe(UD);
      expect(trap.rip).toBe(CODE_BASE + 1);
    });
  }

  it("the valid encodings around them execute (control)", () => {
    const { cpu, trap } = runTrap(shlx, (c) => {
      setReg(c, RBX, 3n);
      setReg(c, RCX, 4n);
    });
    expect(trap.vector).toBe(-1);
    expect(reg(cpu, RAX)).toBe(48n);
  });
});

describe.skipIf(!HAVE_AS)("VEX in 32-bit protected mode", () => {
  function run32(source: string, regs: Record<number, number>): Cpu {
    const c = new Cpu(new PhysicalMemory(4 * 1024 * 1024));
    c.mem.writeBytes(CODE_BASE, asm(`${source}\nhlt\n`, 32));
    c.ripLo = CODE_BASE;
    for (const [r, v] of Object.entries(regs)) c.lo[Number(r)] = v;
    expect(c.run(100)).toBe(STOP_HALT);
    return c;
  }
  it("C4/C5 with the top bits of the next byte set are VEX; VEX.W and vvvv[3] are ignored", () => {
    let c = run32("shlx eax, ebx, ecx\nmulx esi, edi, ebx\nrorx edx, ebx, 4", { 3: 0x12345678, 1: 4, 2: 0x10 });
    expect(c.lo[0] >>> 0).toBe(0x23456780);
    expect([c.lo[6], c.lo[7]]).toEqual([1, 0x23456780]);
    expect(c.lo[2] >>> 0).toBe(0x81234567);
    // shlx eax, ebx, ecx with VEX.W = 1 and vvvv = 1001b (ecx with bit 3 set): still shlx eax, ebx, ecx.
    c = run32(".byte 0xc4, 0xe2, 0xb1, 0xf7, 0xc3", { 3: 0x10, 1: 4 });
    expect(c.lo[0]).toBe(0x100);
    expect(c.mode64).toBe(false);
  });
});
