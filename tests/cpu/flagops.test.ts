import { describe, expect, it } from "vitest";
import type { Cpu } from "../../src/cpu/cpu.js";
import { AC, IF, IOPL, RF, VM } from "../../src/x86/flags.js";
import { HAVE_AS } from "../helpers/asm.js";
import { runTrap } from "../helpers/idt.js";
import { STACK_TOP, setReg } from "../helpers/machine.js";
import { AF, CF, DF, OF, PF, RAX, RBX, reg, runRegs, SF, STATUS, ZF } from "../helpers/x86ref.js";

describe.skipIf(!HAVE_AS)("flag instructions", () => {
  it("clc/stc/cmc change only CF", () => {
    let c = runRegs("stc", {}, ZF | SF | OF);
    expect(c.getFlags() & STATUS).toBe(ZF | SF | OF | CF);
    c = runRegs("cmp eax, 1\nclc", { [RAX]: 0n });
    expect(c.getFlags() & STATUS).toBe(SF | PF | AF); // 0 - 1 = -1: CF cleared, others kept
    c = runRegs("cmp eax, 1\ncmc", { [RAX]: 0n });
    expect(c.getFlags() & STATUS).toBe(SF | PF | AF);
    c = runRegs("xor eax, eax\ncmc", {});
    expect(c.getFlags() & STATUS).toBe(ZF | PF | CF);
  });
  it("cld/std set the direction flag", () => {
    expect(runRegs("std", {}).flagSet(DF)).toBe(true);
    expect(runRegs("std\ncld", {}).flagSet(DF)).toBe(false);
  });
  it("lahf stores SF:ZF:0:AF:0:PF:1:CF in AH; sahf loads them back and keeps OF", () => {
    let c = runRegs("cmp al, 1\nlahf", { [RAX]: 0xffff_0000n });
    expect((reg(c, RAX) >> 8n) & 0xffn).toBe(BigInt(SF | AF | PF | CF | 2));
    expect(reg(c, RAX) & ~0xff00n).toBe(0xffff_0000n);
    c = runRegs("sahf", { [RAX]: 0xff00n }, OF);
    expect(c.getFlags() & STATUS).toBe(SF | ZF | AF | PF | CF | OF);
    c = runRegs("sahf", { [RAX]: 0x0000n }, STATUS);
    expect(c.getFlags() & STATUS).toBe(OF);
  });
  it("pushfq/popfq round-trip flags; VM and RF are never pushed and RF is cleared by popf", () => {
    const c = runRegs("stc\nstd\npushfq\npop rax\npush rbx\npopfq\npushfq\npop rcx", {
      [RBX]: BigInt(ZF | OF | IF | RF | VM | AC | 0x3000),
    });
    expect(reg(c, RAX)).toBe(BigInt(CF | DF | 2));
    expect(c.getFlags()).toBe(ZF | OF | IF | AC | 0x3000 | 2);
    expect(reg(c, 1)).toBe(BigInt(ZF | OF | IF | AC | 0x3000 | 2));
    expect(reg(c, 4)).toBe(BigInt(STACK_TOP));
  });
  it("16-bit pushf/popf move a word and change only the low 16 flag bits", () => {
    const c = runRegs("pushfw\nmov rdx, rsp\npush bx\npopfw", { [RBX]: BigInt(CF | ZF) }, 0, (cpu) =>
      cpu.setFlags(2 | AC),
    );
    expect(reg(c, 2)).toBe(BigInt(STACK_TOP - 2));
    expect(reg(c, 4)).toBe(BigInt(STACK_TOP - 2));
    expect(c.getFlags()).toBe(CF | ZF | AC | 2);
  });
});

/** Drop to CPL 3 for the test: user-accessible identity mapping and a TSS with RSP0. */
function toUser(c: Cpu, flags: number): void {
  const orU = (a: number) => c.mem.write(a, 4, c.mem.read(a, 4) | 4);
  orU(0x1000);
  for (let g = 0; g < 4; g++) orU(0x2000 + g * 8);
  for (let e = 0; e < 512; e++) orU(0x3000 + e * 8);
  c.trBaseLo = 0x9000;
  c.mem.write(0x9004, 4, 0x70000);
  c.mem.write(0x9008, 4, 0);
  c.setFlags(flags | 2);
  c.setCpl(3);
  c.flushTlb();
}

describe.skipIf(!HAVE_AS)("popf privilege rules", () => {
  // The program ends with HLT, which faults (#GP) at CPL 3: the trap stub stops the run.
  const prog = "push rbx\npopfq\npushfq\npop rax";
  const value = BigInt(IF | 0x3000 | CF | DF);
  it("CPL 3 with IOPL 0: IF and IOPL are unchanged", () => {
    const { cpu, trap } = runTrap(prog, (c) => {
      setReg(c, RBX, value);
      toUser(c, 0);
    });
    expect(trap.vector).toBe(13);
    expect(reg(cpu, RAX)).toBe(BigInt(CF | DF | 2));
  });
  it("CPL 3 with IOPL 3: IF changes, IOPL does not", () => {
    const { cpu, trap } = runTrap(prog, (c) => {
      setReg(c, RBX, BigInt(CF));
      toUser(c, IOPL | IF);
    });
    expect(trap.vector).toBe(13);
    expect(reg(cpu, RAX)).toBe(BigInt(CF | IOPL | 2));
  });
  it("CPL 0: IF and IOPL both change", () => {
    const { cpu } = runTrap(prog, (c) => setReg(c, RBX, value));
    expect(reg(cpu, RAX)).toBe(value | 2n);
  });
});
