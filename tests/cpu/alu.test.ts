import { describe, expect, it } from "vitest";
import { CF, OF, SF, ZF } from "../../src/x86/flags.js";
import { HAVE_AS } from "../helpers/asm.js";
import { reg, run64 } from "../helpers/machine.js";

describe.skipIf(!HAVE_AS)("alu", () => {
  it("adds 64-bit with carry out of the low half", () => {
    const c = run64("mov rax, 0xffffffff\nmov rbx, 1\nadd rax, rbx");
    expect(reg(c, 0)).toBe(0x100000000n);
    expect(c.flagSet(CF)).toBe(false);
    expect(c.flagSet(ZF)).toBe(false);
  });
  it("sets CF and ZF on 64-bit wraparound", () => {
    const c = run64("mov rax, -1\nadd rax, 1");
    expect(reg(c, 0)).toBe(0n);
    expect(c.flagSet(CF)).toBe(true);
    expect(c.flagSet(ZF)).toBe(true);
  });
  it("sets OF on signed overflow of 32-bit add and zero-extends", () => {
    const c = run64("mov rax, -1\nmov eax, 0x7fffffff\nadd eax, 1");
    expect(reg(c, 0)).toBe(0x80000000n);
    expect(c.flagSet(OF)).toBe(true);
    expect(c.flagSet(SF)).toBe(true);
  });
  it("writes AH without REX and SPL with REX", () => {
    const c = run64("mov rax, 0\nmov ah, 0x12\nmov rsp, 0x1000\nmov spl, 0x34");
    expect(reg(c, 0)).toBe(0x1200n);
    expect(reg(c, 4)).toBe(0x1034n);
  });
});
