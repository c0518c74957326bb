/**
 * Canonical-address checks on descriptor-table loads (SDM vol. 2 LGDT/LIDT, LLDT, LTR; KVM's
 * emulator checks the same): a non-canonical GDTR/IDTR base is #GP(0); a non-canonical LDT or
 * TSS descriptor base is #GP(selector). LA57 is not advertised and CR4.LA57 is reserved, since
 * the canonical checks are 48-bit (src/cpu/canonical.ts).
 */
import { describe, expect, it } from "vitest";
import { cr4Allowed } from "../../src/cpu/control-regs.js";
import type { Cpu } from "../../src/cpu/cpu.js";
import { CR4_LA57 } from "../../src/x86/control.js";
import { F7C_LA57 } from "../../src/x86/cpuid.js";
import { GP } from "../../src/x86/exceptions.js";
import { HAVE_AS } from "../helpers/asm.js";
import { DATA_BASE, expectHalt, fault, frame, GDT, runSys, sysCpu } from "../helpers/sys.js";

const LDT_SEL = 0x58;
const TSS2_SEL = 0x68;

/** Add a 16-byte system descriptor (type 2 LDT or 9 TSS) with a 64-bit base at `sel`. */
function sysDesc(c: Cpu, sel: number, type: number, baseLo: number, baseHi: number): void {
  c.mem.write64(
    GDT + sel,
    ((baseLo & 0xffff) << 16) | 0x67,
    ((baseLo >>> 16) & 0xff) | ((0x80 | type) << 8) | (baseLo & 0xff000000),
  );
  c.mem.write64(GDT + sel + 8, baseHi, 0);
  c.gdtrLimit = 0x77;
}

/** LGDT/LIDT from a pseudo-descriptor at DATA_BASE with base hi:0. */
function loadTable(insn: string, baseHi: number): string {
  return `
    mov word ptr [${DATA_BASE}], 0xfff
    mov dword ptr [${DATA_BASE + 2}], 0x1000
    mov dword ptr [${DATA_BASE + 6}], ${baseHi}
    ${insn} [${DATA_BASE}]`;
}

describe.skipIf(!HAVE_AS)("canonical checks on descriptor-table loads", () => {
  it("LGDT and LIDT with a non-canonical base are #GP(0) and change nothing", () => {
    for (const insn of ["lgdt", "lidt"]) {
      const { c, f } = fault(loadTable(insn, 0x8000));
      expect(f).toMatchObject({ vector: GP, errorCode: 0 });
      expect(c.gdtrBaseLo).toBe(GDT);
      expect(c.idtrBaseHi).toBe(0);
    }
  });

  it("LGDT accepts a canonical upper-half base", () => {
    const c = sysCpu(`${loadTable("lgdt", 0xffff8000)}\nhlt`);
    c.run(10);
    expect(c.gdtrBaseHi >>> 0).toBe(0xffff8000);
    expect(c.gdtrBaseLo).toBe(0x1000);
    expect(c.gdtrLimit).toBe(0xfff);
  });

  it("LLDT of an LDT descriptor with a non-canonical base is #GP(selector); a canonical one loads", () => {
    const bad = fault(`mov ax, ${LDT_SEL}\nlldt ax`, (c) => sysDesc(c, LDT_SEL, 2, 0x1000, 0x10000));
    expect(bad.f).toMatchObject({ vector: GP, errorCode: LDT_SEL });
    expect(bad.c.ldtrSel).toBe(0);
    const ok = sysCpu(`mov ax, ${LDT_SEL}\nlldt ax`, (c) => sysDesc(c, LDT_SEL, 2, 0x1000, 0xffffffff - 0x7fff));
    expectHalt(ok, runSys(ok));
    expect(frame(ok).vector).toBe(-1);
    expect(ok.ldtrSel).toBe(LDT_SEL);
    expect(ok.ldtrBaseHi >>> 0).toBe(0xffff8000);
  });

  it("LTR of a TSS descriptor with a non-canonical base is #GP(selector)", () => {
    const { f } = fault(`mov ax, ${TSS2_SEL}\nltr ax`, (c) => sysDesc(c, TSS2_SEL, 9, 0x1000, 0x8000));
    expect(f).toMatchObject({ vector: GP, errorCode: TSS2_SEL });
  });

  it("LA57 is not advertised, and CR4.LA57 stays reserved even for a model that sets it", () => {
    const c = sysCpu("nop");
    const q = new Int32Array(4);
    c.model.query(7, 0, q);
    expect(q[2] & F7C_LA57).toBe(0);
    c.model.set(7, 0, [q[0], q[1], q[2] | F7C_LA57, q[3]]);
    expect(cr4Allowed(c) & CR4_LA57).toBe(0);
  });
});
