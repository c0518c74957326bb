import { describe, expect, it } from "vitest";
import { HAVE_AS } from "../helpers/asm.js";
import { runTrap } from "../helpers/idt.js";
import { CODE_BASE, DATA_BASE, setReg } from "../helpers/machine.js";
import {
  CF,
  mask,
  OF,
  PF,
  RAX,
  RBX,
  RCX,
  RDI,
  RDX,
  Rng,
  RSI,
  reg,
  runRegs,
  SF,
  STATUS,
  ZF,
  zx,
} from "../helpers/x86ref.js";

const D = BigInt(DATA_BASE);

function put(old: bigint, v: bigint, bits: number): bigint {
  if (bits >= 32) return zx(v, bits);
  return (old & ~mask(bits)) | zx(v, bits);
}

function q(c: { mem: { read(a: number, s: 1 | 2 | 4): number } }, addr: number): bigint {
  return (BigInt(c.mem.read(addr + 4, 4) >>> 0) << 32n) | BigInt(c.mem.read(addr, 4) >>> 0);
}

describe.skipIf(!HAVE_AS)("bt/bts/btr/btc", () => {
  const rng = new Rng(5n);
  const REG = { 16: ["ax", "bx"], 32: ["eax", "ebx"], 64: ["rax", "rbx"] } as const;
  for (const op of ["bt", "bts", "btr", "btc"]) {
    for (const w of [16, 32, 64] as const) {
      it(`${op} ${w}-bit register forms (reg and imm8 offsets), ZF preserved`, () => {
        for (let k = 0; k < 12; k++) {
          const v = rng.value();
          const off = rng.next() & 0xffn;
          const [dst, src] = REG[w];
          for (const text of [`${op} ${dst}, ${src}`, `${op} ${dst}, ${Number(off)}`]) {
            const init = k % 2 ? ZF | SF : 0;
            const c = runRegs(text, { [RAX]: v, [RBX]: off | 0xabc00n }, init);
            const bit = off % BigInt(w);
            const old = (zx(v, w) >> bit) & 1n;
            let nv = zx(v, w);
            if (op === "bts") nv |= 1n << bit;
            if (op === "btr") nv &= ~(1n << bit);
            if (op === "btc") nv ^= 1n << bit;
            const ctx = `${text} v=${v.toString(16)} off=${off}`;
            expect(reg(c, RAX), ctx).toBe(op === "bt" ? v : put(v, nv, w));
            expect(c.getFlags() & CF, ctx).toBe(Number(old));
            expect(c.getFlags() & ZF, ctx).toBe(init & ZF);
          }
        }
      });
    }
  }

  it("memory forms address bit strings beyond the operand with signed register offsets", () => {
    const base = DATA_BASE + 0x10000;
    const c = runRegs(
      [
        "mov rax, 1000\nbts qword ptr [rdi], rax", // qword at +120, bit 40
        "mov rax, -1\nbts qword ptr [rdi], rax", // qword at -8, bit 63
        "mov eax, -33\nbts dword ptr [rdi], eax", // dword at -8, bit 31
        "mov ax, 0x8000\nbts word ptr [rdi], ax", // word at -4096, bit 0
        "mov rax, 0x800000\nbts qword ptr [rdi], rax", // +1 MiB, bit 0
        "mov eax, 0x41\nbtc dword ptr [rdi+4], eax\nsetc r8b", // dword at +12, bit 1
        "mov rax, 40\nbt qword ptr [rdi+120], rax\nsetc r9b",
        "mov rax, 1000\nbtr qword ptr [rdi], rax\nsetc r10b",
        "mov rax, 1000\nbt qword ptr [rdi], rax\nsetc r11b",
      ].join("\n"),
      { [RDI]: BigInt(base) },
    );
    expect(q(c, base + 120)).toBe(0n); // set then reset
    expect(q(c, base - 8)).toBe((1n << 63n) | (1n << 31n));
    expect(c.mem.read(base - 4096, 2)).toBe(1);
    expect(q(c, base + 0x100000)).toBe(1n);
    expect(c.mem.read(base + 12, 4)).toBe(2);
    expect(reg(c, 8)).toBe(0n);
    expect(reg(c, 9)).toBe(1n);
    expect(reg(c, 10)).toBe(1n);
    expect(reg(c, 11)).toBe(0n);
  });

  it("imm8 memory forms take the offset modulo the operand width", () => {
    const c = runRegs("bts dword ptr [rdi], 33\nbts word ptr [rdi+8], 17\nbt qword ptr [rdi], 1\nsetc al", {
      [RDI]: D,
    });
    expect(c.mem.read(DATA_BASE, 4)).toBe(2);
    expect(c.mem.read(DATA_BASE + 8, 4)).toBe(2);
    expect(reg(c, RAX) & 0xffn).toBe(1n);
  });

  it("accepts LOCK with a memory operand and raises #UD with a register operand", () => {
    let r = runTrap("lock bts qword ptr [rdi], 5", (c) => setReg(c, RDI, D));
    expect(r.trap.vector).toBe(-1);
    expect(r.cpu.mem.read(DATA_BASE, 4)).toBe(32);
    r = runTrap(".byte 0xf0, 0x48, 0x0f, 0xba, 0xef, 0x05"); // lock bts rdi, 5
    expect(r.trap.vector).toBe(6);
    expect(r.trap.rip).toBe(CODE_BASE);
  });
});

describe.skipIf(!HAVE_AS)("bsf/bsr/tzcnt/lzcnt/popcnt", () => {
  it("bsf/bsr find the lowest/highest set bit", () => {
    const c = runRegs("bsf rax, rbx\nbsr rcx, rbx\nbsf edx, esi\nbsr di, si", {
      [RBX]: 0x0010_0000_0000_0800n,
      [RSI]: 0x8000_0000_0040_8000n,
      [RDI]: 0xffff_ffffn,
    });
    expect(reg(c, RAX)).toBe(11n);
    expect(reg(c, RCX)).toBe(52n);
    expect(reg(c, RDX)).toBe(15n);
    expect(reg(c, RDI)).toBe(0xffff_000fn);
    expect(c.flagSet(ZF)).toBe(false);
  });
  it("bsf/bsr with a zero source set ZF and keep the destination (a 32-bit one loses its upper half)", () => {
    const c = runRegs("bsf rax, rbx\nsetz r8b\nbsr ecx, ebx\nsetz r9b\nbsf dx, bx\nsetz r10b", {
      [RAX]: 0x1234_5678_9abc_def0n,
      [RCX]: 0x1111_2222_3333_4444n,
      [RDX]: 0x5555n,
      [RBX]: 0n,
    });
    expect(reg(c, RAX)).toBe(0x1234_5678_9abc_def0n);
    expect(reg(c, RCX)).toBe(0x3333_4444n);
    expect(reg(c, RDX)).toBe(0x5555n);
    expect(reg(c, 8)).toBe(1n);
    expect(reg(c, 9)).toBe(1n);
    expect(reg(c, 10)).toBe(1n);
  });
  it("tzcnt/lzcnt count zeros; CF = source zero, ZF = result zero", () => {
    const cases: [string, bigint, bigint, boolean, boolean][] = [
      ["tzcnt rax, rbx", 0n, 64n, true, false],
      ["tzcnt rax, rbx", 1n, 0n, false, true],
      ["tzcnt rax, rbx", 1n << 40n, 40n, false, false],
      ["tzcnt eax, ebx", 0xffff_ffff_0000_0000n, 32n, true, false],
      ["tzcnt ax, bx", 0x10000n, 16n, true, false],
      ["lzcnt rax, rbx", 0n, 64n, true, false],
      ["lzcnt rax, rbx", 1n << 63n, 0n, false, true],
      ["lzcnt rax, rbx", 0xffffn, 48n, false, false],
      ["lzcnt eax, ebx", 1n, 31n, false, false],
      ["lzcnt ax, bx", 0x00f0n, 8n, false, false],
      ["lzcnt ax, bx", 0n, 16n, true, false],
    ];
    for (const [text, src, res, cf, zf] of cases) {
      const c = runRegs(text, { [RAX]: 0xaaaa_aaaa_aaaa_0000n, [RBX]: src });
      const expected = text.includes(" ax") ? 0xaaaa_aaaa_aaaa_0000n | res : res;
      expect(reg(c, RAX), text).toBe(expected);
      expect(c.flagSet(CF), text).toBe(cf);
      expect(c.flagSet(ZF), text).toBe(zf);
    }
  });
  it("popcnt counts bits and clears every flag but ZF", () => {
    for (const [text, src, n] of [
      ["popcnt rax, rbx", 0xffff_0000_f0f0_0001n, 25n],
      ["popcnt eax, ebx", 0xffff_ffff_0000_0007n, 3n],
      ["popcnt ax, bx", 0xffff_0003n, 2n],
      ["popcnt rax, rbx", 0n, 0n],
    ] as [string, bigint, bigint][]) {
      const c = runRegs(text, { [RAX]: 0n, [RBX]: src }, STATUS);
      expect(reg(c, RAX), text).toBe(n);
      expect(c.getFlags() & STATUS, text).toBe(src === 0n ? ZF : 0);
    }
  });
});

describe.skipIf(!HAVE_AS)("bswap/movbe", () => {
  it("bswap 32 and 64 bits, including r8-r15", () => {
    const c = runRegs("bswap eax\nbswap rbx\nbswap r12", {
      [RAX]: 0xffff_ffff_1122_3344n,
      [RBX]: 0x0102_0304_0506_0708n,
      12: 0x8899_aabb_ccdd_eeffn,
    });
    expect(reg(c, RAX)).toBe(0x4433_2211n);
    expect(reg(c, RBX)).toBe(0x0807_0605_0403_0201n);
    expect(reg(c, 12)).toBe(0xffee_ddcc_bbaa_9988n);
  });
  it("movbe loads and stores byte-reversed", () => {
    const c = runRegs(
      "movbe [rdi], rbx\nmovbe [rdi+8], ebx\nmovbe [rdi+12], bx\nmovbe rax, [rdi]\nmovbe ecx, [rdi+8]\nmov rdx, -1\nmovbe dx, [rdi+12]",
      { [RDI]: D, [RBX]: 0x0102_0304_0506_0708n },
    );
    expect(q(c, DATA_BASE)).toBe(0x0807_0605_0403_0201n);
    expect(c.mem.read(DATA_BASE + 8, 4) >>> 0).toBe(0x0807_0605);
    expect(c.mem.read(DATA_BASE + 12, 2)).toBe(0x0807);
    expect(reg(c, RAX)).toBe(0x0102_0304_0506_0708n);
    expect(reg(c, RCX)).toBe(0x0506_0708n);
    expect(reg(c, RDX)).toBe(0xffff_ffff_ffff_0708n);
  });
});

describe.skipIf(!HAVE_AS)("cmpxchg/xadd", () => {
  it("cmpxchg with a register destination: success stores the source, failure loads the accumulator", () => {
    let c = runRegs("cmpxchg ecx, ebx", { [RAX]: 0xdead_0000_0005n, [RCX]: 0xffff_0000_0005n, [RBX]: 0x77n });
    expect(reg(c, RCX)).toBe(0x77n);
    expect(reg(c, RAX)).toBe(0xdead_0000_0005n); // accumulator untouched on success
    expect(c.flagSet(ZF)).toBe(true);
    c = runRegs("cmpxchg ecx, ebx", { [RAX]: 0xdead_0000_0006n, [RCX]: 0xffff_0000_0005n, [RBX]: 0x77n });
    expect(reg(c, RCX)).toBe(0xffff_0000_0005n); // register destination untouched on failure
    expect(reg(c, RAX)).toBe(5n);
    expect(c.flagSet(ZF)).toBe(false);
    expect(c.flagSet(CF)).toBe(false); // 6 - 5
    c = runRegs("cmpxchg bh, cl", { [RAX]: 0x1100n, [RBX]: 0x2200n, [RCX]: 0x33n });
    expect(reg(c, RAX)).toBe(0x1122n);
    expect(c.flagSet(CF)).toBe(true); // 0x00 - 0x22 borrows
    expect(c.flagSet(SF)).toBe(true);
  });
  it("lock cmpxchg on memory (64-bit, success and failure)", () => {
    const c = runRegs(
      "mov qword ptr [rdi], rdx\nlock cmpxchg [rdi], rbx\nsetz r8b\nmov r10, [rdi]\nlock cmpxchg [rdi], rcx\nsetz r9b\nmov r11, [rdi]",
      { [RDI]: D, [RDX]: 0x1234_5678_9abc_def0n, [RAX]: 0x1234_5678_9abc_def0n, [RBX]: 0x42n, [RCX]: 0x43n },
    );
    expect(reg(c, 8)).toBe(1n);
    expect(reg(c, 10)).toBe(0x42n);
    expect(reg(c, 9)).toBe(0n);
    expect(reg(c, RAX)).toBe(0x42n);
    expect(reg(c, 11)).toBe(0x42n);
  });
  it("xadd exchanges and adds, with ADD flags", () => {
    let c = runRegs("lock xadd [rdi], ebx\nmov ecx, [rdi]", { [RDI]: D, [RBX]: 0xffff_ffffn }, 0, (cpu) =>
      cpu.mem.write(DATA_BASE, 4, 1),
    );
    expect(reg(c, RCX)).toBe(0n);
    expect(reg(c, RBX)).toBe(1n);
    expect(c.flagSet(CF)).toBe(true);
    expect(c.flagSet(ZF)).toBe(true);
    c = runRegs("xadd rax, rax", { [RAX]: 0x4000_0000_0000_0000n });
    expect(reg(c, RAX)).toBe(0x8000_0000_0000_0000n);
    expect(c.flagSet(OF)).toBe(true);
    c = runRegs("xadd al, ah", { [RAX]: 0xff_7fn });
    expect(reg(c, RAX)).toBe(0x7f_7en);
    expect(c.flagSet(CF)).toBe(true);
    expect(c.getFlags() & PF).toBe(PF); // 0x7e: six bits set
  });
});

describe.skipIf(!HAVE_AS)("cmpxchg8b/cmpxchg16b", () => {
  it("cmpxchg8b success and failure", () => {
    const setup = (eq: boolean) => ({
      [RDI]: D,
      [RAX]: 0xffff_ffff_1111_1111n,
      [RDX]: eq ? 0x2222_2222n : 0x2222_2223n,
      [RBX]: 0x3333_3333n,
      [RCX]: 0x4444_4444n,
    });
    const pre = (cpu: { mem: { write64(a: number, lo: number, hi: number): void } }) =>
      cpu.mem.write64(DATA_BASE, 0x1111_1111, 0x2222_2222);
    let c = runRegs("lock cmpxchg8b [rdi]", setup(true), CF, pre);
    expect(q(c, DATA_BASE)).toBe(0x4444_4444_3333_3333n);
    expect(c.getFlags() & (ZF | CF)).toBe(ZF | CF);
    expect(reg(c, RAX)).toBe(0xffff_ffff_1111_1111n);
    c = runRegs("cmpxchg8b [rdi]", setup(false), ZF | CF, pre);
    expect(q(c, DATA_BASE)).toBe(0x2222_2222_1111_1111n);
    expect(c.getFlags() & (ZF | CF)).toBe(CF);
    expect(reg(c, RAX)).toBe(0x1111_1111n);
    expect(reg(c, RDX)).toBe(0x2222_2222n);
  });
  it("cmpxchg16b success, failure and #GP(0) on a misaligned operand", () => {
    const regs = {
      [RDI]: D,
      [RAX]: 0x0102_0304_0506_0708n,
      [RDX]: 0x1112_1314_1516_1718n,
      [RBX]: 0xa1a2_a3a4_a5a6_a7a8n,
      [RCX]: 0xb1b2_b3b4_b5b6_b7b8n,
    };
    const pre = (cpu: { mem: { write64(a: number, lo: number, hi: number): void } }) => {
      cpu.mem.write64(DATA_BASE, 0x0506_0708, 0x0102_0304);
      cpu.mem.write64(DATA_BASE + 8, 0x1516_1718, 0x1112_1314);
    };
    let c = runRegs("lock cmpxchg16b [rdi]", regs, 0, pre);
    expect(q(c, DATA_BASE)).toBe(0xa1a2_a3a4_a5a6_a7a8n);
    expect(q(c, DATA_BASE + 8)).toBe(0xb1b2_b3b4_b5b6_b7b8n);
    expect(c.flagSet(ZF)).toBe(true);
    c = runRegs("cmpxchg16b [rdi]", { ...regs, [RDX]: 0n }, ZF, pre);
    expect(c.flagSet(ZF)).toBe(false);
    expect(reg(c, RAX)).toBe(0x0102_0304_0506_0708n);
    expect(reg(c, RDX)).toBe(0x1112_1314_1516_1718n);
    expect(q(c, DATA_BASE + 8)).toBe(0x1112_1314_1516_1718n);
    const r = runTrap("cmpxchg16b [rdi]", (cpu) => {
      setReg(cpu, RDI, D + 8n);
      setReg(cpu, RAX, 5n);
    });
    expect(r.trap.vector).toBe(13);
    expect(r.trap.errorCode).toBe(0);
    expect(r.trap.rip).toBe(CODE_BASE);
    expect(reg(r.cpu, RAX)).toBe(5n);
  });
  it("cmpxchg8b with a register operand is #UD", () => {
    const r = runTrap(".byte 0x0f, 0xc7, 0xc8"); // 0F C7 /1 with mod = 3
    expect(r.trap.vector).toBe(6);
    void RSI;
  });
});
