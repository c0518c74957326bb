/**
 * The resume flag (SDM vol. 3, 18.3.1.1): delivery of a fault-class exception pushes RFLAGS with
 * RF = 1; traps, software interrupts and external interrupts push RF as it is. RF loaded by IRET
 * lasts until the next instruction completes.
 */
import { describe, expect, it } from "vitest";
import { BP, DB, DF_, GP, PF_, UD } from "../../src/x86/exceptions.js";
import { RF } from "../../src/x86/flags.js";
import { HAVE_AS } from "../helpers/asm.js";
import {
  DATA_BASE,
  expectHalt,
  FakeIntc,
  fault,
  frame,
  iretToNext,
  runSys,
  setGate,
  setPage,
  stub,
  sysCpu,
} from "../helpers/sys.js";

describe.skipIf(!HAVE_AS)("resume flag", () => {
  it("faults push RF = 1: #GP, #PF, #UD", () => {
    const gp = fault("mov rax, 0x800000000000\nmov rax, [rax]").f;
    expect(gp.vector).toBe(GP);
    expect(gp.rflags & RF).toBe(RF);
    const pf = fault(`mov rax, [${DATA_BASE}]`, (c) => setPage(c, DATA_BASE, 0)).f;
    expect(pf.vector).toBe(PF_);
    expect(pf.rflags & RF).toBe(RF);
    const ud = fault("ud2").f;
    expect(ud.vector).toBe(UD);
    expect(ud.rflags & RF).toBe(RF);
  });

  it("traps and software interrupts push RF = 0: INT3, INT n, ICEBP", () => {
    const bp = fault("int3").f;
    expect(bp.vector).toBe(BP);
    expect(bp.rflags & RF).toBe(0);
    expect(fault("int 0x40").f.rflags & RF).toBe(0);
    const db = fault(".byte 0xf1").f;
    expect(db.vector).toBe(DB);
    expect(db.rflags & RF).toBe(0);
  });

  it("an abort (#DF) does not set RF", () => {
    // #GP whose gate is not present: #NP during #GP delivery, a double fault.
    const df = fault("mov rax, 0x800000000000\nmov rax, [rax]", (c) => setGate(c, GP, stub(GP), { present: false }));
    expect(df.f.vector).toBe(DF_);
    expect(df.f.rflags & RF).toBe(0);
  });

  it("an external interrupt pushes RF as it is: 1 right after an IRET that loaded it", () => {
    const intc = new FakeIntc();
    intc.pending.push(0x30);
    // IF = 0 until the IRET sets it (with RF): the interrupt arrives before the next instruction.
    const c = sysCpu(`${iretToNext(RF | 0x202)}\nnop\nnop`, (x) => {
      x.intc = intc;
    });
    expectHalt(c, runSys(c));
    const f = frame(c);
    expect(f.vector).toBe(0x30);
    expect(f.rflags & RF).toBe(RF);
  });

  it("RF from IRET is cleared once the next instruction completes", () => {
    const c = sysCpu(`${iretToNext(RF | 2)}\nnop\nint3`);
    expectHalt(c, runSys(c));
    const f = frame(c);
    expect(f.vector).toBe(BP);
    expect(f.rflags & RF).toBe(0);
    expect(c.flagsBase & RF).toBe(0);
  });

  it("an interrupt after the instruction that ran with RF pushes RF = 0", () => {
    const intc = new FakeIntc();
    const c = sysCpu(`${iretToNext(RF | 2)}\nnop\nsti\nnop\nnop`, (x) => {
      x.intc = intc;
    });
    intc.pending.push(0x31);
    expectHalt(c, runSys(c));
    const f = frame(c);
    expect(f.vector).toBe(0x31);
    expect(f.rflags & RF).toBe(0);
  });
});
