import { describe, expect, it } from "vitest";
import { REP_CAP } from "../../src/cpu/ops/string.js";
import { HAVE_AS } from "../helpers/asm.js";
import { runTrap } from "../helpers/idt.js";
import { CODE_BASE, DATA_BASE, setReg } from "../helpers/machine.js";
import { CF, mask, RAX, RCX, RDI, RSI, reg, runRegs, STATUS, ZF, zx } from "../helpers/x86ref.js";

const SRC = DATA_BASE;
const DST = DATA_BASE + 0x10000;

function fill(c: { mem: { write8(a: number, v: number): void } }, addr: number, bytes: number[]): void {
  for (let k = 0; k < bytes.length; k++) c.mem.write8(addr + k, bytes[k]);
}
function bytesAt(c: { mem: { read8(a: number): number } }, addr: number, n: number): number[] {
  return Array.from({ length: n }, (_, k) => c.mem.read8(addr + k));
}
const pattern = (n: number, seed = 1) => Array.from({ length: n }, (_, k) => (k * 7 + seed) & 0xff);

describe.skipIf(!HAVE_AS)("string instructions", () => {
  it("rep movsb copies forward and leaves RSI/RDI past the data, RCX = 0", () => {
    const data = pattern(100);
    const c = runRegs("rep movsb", { [RSI]: BigInt(SRC), [RDI]: BigInt(DST), [RCX]: 100n }, 0, (cpu) =>
      fill(cpu, SRC, data),
    );
    expect(bytesAt(c, DST, 100)).toEqual(data);
    expect(reg(c, RSI)).toBe(BigInt(SRC + 100));
    expect(reg(c, RDI)).toBe(BigInt(DST + 100));
    expect(reg(c, RCX)).toBe(0n);
  });

  it("std; rep movsb copies backwards (overlapping memmove upwards)", () => {
    const data = pattern(64);
    const c = runRegs(
      "std\nrep movsb\ncld",
      { [RSI]: BigInt(SRC + 63), [RDI]: BigInt(SRC + 8 + 63), [RCX]: 64n },
      0,
      (cpu) => fill(cpu, SRC, data),
    );
    expect(bytesAt(c, SRC + 8, 64)).toEqual(data);
    expect(reg(c, RSI)).toBe(BigInt(SRC - 1));
    expect(reg(c, RDI)).toBe(BigInt(SRC + 7));
  });

  it("movsw/movsd/movsq with DF=1 step by the element size", () => {
    const c = runRegs("std\nmovsw\nmovsd\nmovsq", { [RSI]: BigInt(SRC + 64), [RDI]: BigInt(DST + 64) }, 0, (cpu) =>
      fill(cpu, SRC, pattern(80)),
    );
    expect(reg(c, RSI)).toBe(BigInt(SRC + 64 - 14));
    expect(reg(c, RDI)).toBe(BigInt(DST + 64 - 14));
    expect(bytesAt(c, DST + 64, 2)).toEqual(pattern(80).slice(64, 66));
    expect(bytesAt(c, DST + 62, 4)).toEqual(pattern(80).slice(62, 66));
    expect(bytesAt(c, DST + 58, 8)).toEqual(pattern(80).slice(58, 66));
  });

  it("rep stosq fills qwords; rep stosd zero-extends nothing but writes EAX", () => {
    const c = runRegs("rep stosq\nmov rdi, rbx\nmov ecx, 3\nrep stosd", {
      [RAX]: 0x1122_3344_5566_7788n,
      [RDI]: BigInt(DST),
      [RCX]: 1000n,
      3: BigInt(SRC),
    });
    for (const k of [0, 1, 500, 999]) expect(c.mem.read(DST + k * 8 + 4, 4) >>> 0).toBe(0x1122_3344);
    expect(c.mem.read(DST + 8000, 4)).toBe(0);
    expect(c.mem.read(SRC + 8, 4) >>> 0).toBe(0x5566_7788);
    expect(c.mem.read(SRC + 12, 4)).toBe(0);
    expect(reg(c, RDI)).toBe(BigInt(SRC + 12));
  });

  it("a REP longer than the per-call cap resumes and completes (one icount per handler call)", () => {
    const n = 2 * REP_CAP + 1808;
    const c = runRegs("rep stosb", { [RAX]: 0xa5n, [RDI]: BigInt(DST), [RCX]: BigInt(n) });
    expect(c.mem.read8(DST)).toBe(0xa5);
    expect(c.mem.read8(DST + n - 1)).toBe(0xa5);
    expect(c.mem.read8(DST + n)).toBe(0);
    expect(reg(c, RCX)).toBe(0n);
    expect(reg(c, RDI)).toBe(BigInt(DST + n));
    expect(c.icount).toBe(4); // three calls of rep stosb + hlt
  });

  it("REP with RCX = 0 does nothing and keeps the flags", () => {
    const c = runRegs("repe cmpsb\nrep movsq", { [RSI]: BigInt(SRC), [RDI]: BigInt(DST), [RCX]: 0n }, STATUS);
    expect(c.getFlags() & STATUS).toBe(STATUS);
    expect(reg(c, RSI)).toBe(BigInt(SRC));
    expect(reg(c, RDI)).toBe(BigInt(DST));
  });

  it("repe cmpsb stops after the first mismatch with flags of that comparison", () => {
    const a = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const b = [1, 2, 3, 4, 5, 0x80, 7, 8, 9, 10];
    const c = runRegs("repe cmpsb", { [RSI]: BigInt(SRC), [RDI]: BigInt(DST), [RCX]: 10n }, 0, (cpu) => {
      fill(cpu, SRC, a);
      fill(cpu, DST, b);
    });
    expect(reg(c, RCX)).toBe(4n);
    expect(reg(c, RSI)).toBe(BigInt(SRC + 6));
    expect(reg(c, RDI)).toBe(BigInt(DST + 6));
    expect(c.flagSet(ZF)).toBe(false);
    expect(c.flagSet(CF)).toBe(true); // 6 < 0x80 unsigned
  });

  it("repe cmpsq over equal buffers runs to the end with ZF = 1", () => {
    const c = runRegs("repe cmpsq", { [RSI]: BigInt(SRC), [RDI]: BigInt(DST), [RCX]: 5n }, 0, (cpu) => {
      fill(cpu, SRC, pattern(40));
      fill(cpu, DST, pattern(40));
    });
    expect(reg(c, RCX)).toBe(0n);
    expect(c.flagSet(ZF)).toBe(true);
  });

  it("repne scasb finds a terminator (strlen idiom)", () => {
    const s = [...Buffer.from("hello, world"), 0];
    const c = runRegs("xor eax, eax\nmov rcx, -1\nrepne scasb\nnot rcx\ndec rcx", { [RDI]: BigInt(SRC) }, 0, (cpu) =>
      fill(cpu, SRC, s),
    );
    expect(reg(c, RCX)).toBe(12n);
    expect(reg(c, RDI)).toBe(BigInt(SRC + 13));
    expect(c.flagSet(ZF)).toBe(false); // from dec
  });

  it("scasd/scasq compare the accumulator with [rdi]", () => {
    const c = runRegs(
      "scasq\nsetz r8b\nscasd\nsetb r9b",
      { [RAX]: 0x0706_0504_0302_0100n, [RDI]: BigInt(SRC) },
      0,
      (cpu) => fill(cpu, SRC, [0, 1, 2, 3, 4, 5, 6, 7, 0xff, 0xff, 0xff, 0xff]),
    );
    expect(reg(c, 8)).toBe(1n);
    expect(reg(c, 9)).toBe(1n); // 0x03020100 < 0xffffffff
    expect(reg(c, RDI)).toBe(BigInt(SRC + 12));
  });

  it("lods loads the accumulator (32-bit zero-extends, 8-bit merges)", () => {
    const c = runRegs(
      "lodsd\nmov rbx, rax\nmov rax, -1\nlodsb\nrep lodsw",
      { [RAX]: mask(64), [RSI]: BigInt(SRC), [RCX]: 2n },
      0,
      (cpu) => fill(cpu, SRC, [1, 2, 3, 4, 5, 6, 7, 8, 9]),
    );
    expect(reg(c, 3)).toBe(0x0403_0201n);
    expect(reg(c, RAX)).toBe(0xffff_ffff_ffff_0908n);
    expect(reg(c, RSI)).toBe(BigInt(SRC + 9));
  });

  it("a 32-bit address size (67h) uses ESI/EDI/ECX and zero-extends them", () => {
    const c = runRegs(
      "addr32 rep movsb",
      { [RSI]: 0xffff_0000_0000_0000n | BigInt(SRC), [RDI]: 0x1_0000_0000n | BigInt(DST), [RCX]: 0xdead_0000_0003n },
      0,
      (cpu) => fill(cpu, SRC, [9, 8, 7]),
    );
    expect(bytesAt(c, DST, 3)).toEqual([9, 8, 7]);
    expect(reg(c, RSI)).toBe(BigInt(SRC + 3));
    expect(reg(c, RDI)).toBe(BigInt(DST + 3));
    expect(reg(c, RCX)).toBe(0n);
  });

  it("an FS override applies the FS base to the source only", () => {
    const c = runRegs("movs byte ptr es:[rdi], byte ptr fs:[rsi]", { [RSI]: 0x10n, [RDI]: BigInt(DST) }, 0, (cpu) => {
      cpu.segBaseLo[4] = SRC;
      fill(cpu, SRC + 0x10, [0x5a]);
    });
    expect(c.mem.read8(DST)).toBe(0x5a);
    expect(reg(c, RSI)).toBe(0x11n);
  });

  it("a page fault in the middle of rep movsb leaves RCX/RSI/RDI at the faulting element", () => {
    const { cpu, trap } = runTrap("rep movsb", (c) => {
      c.mem.write64(0x3000 + 2 * 8, 0, 0); // 2 MiB page 0x400000..0x5fffff not present
      setReg(c, RSI, BigInt(SRC));
      setReg(c, RDI, 0x3ffff8n);
      setReg(c, RCX, 16n);
      fill(c, SRC, pattern(16));
    });
    expect(trap.vector).toBe(14);
    expect(trap.errorCode).toBe(2); // write to a not-present page, supervisor
    expect(trap.rip).toBe(CODE_BASE);
    expect(cpu.cr2Lo).toBe(0x400000);
    expect(reg(cpu, RCX)).toBe(8n);
    expect(reg(cpu, RSI)).toBe(BigInt(SRC + 8));
    expect(reg(cpu, RDI)).toBe(0x400000n);
    expect(bytesAt(cpu, 0x3ffff8, 8)).toEqual(pattern(16).slice(0, 8));
  });

  it("a page fault on the source of cmpsq leaves flags and registers unchanged", () => {
    const { cpu, trap } = runTrap("repe cmpsq", (c) => {
      c.mem.write64(0x3000 + 2 * 8, 0, 0);
      setReg(c, RSI, 0x400000n);
      setReg(c, RDI, BigInt(DST));
      setReg(c, RCX, 3n);
      c.setFlags(2 | CF);
    });
    expect(trap.vector).toBe(14);
    expect(trap.errorCode).toBe(0);
    expect(trap.rflags & STATUS).toBe(CF);
    expect(reg(cpu, RCX)).toBe(3n);
    void zx;
  });
});
