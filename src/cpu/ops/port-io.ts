/**
 * Port I/O: IN, OUT, INS, OUTS (SDM vol. 1 chapter 18; vol. 2 for each), with REP for the string
 * forms. Not modelled: the TSS I/O permission bitmap (CPL > IOPL is always #GP(0)).
 */
import { ACC_USER, ACC_WRITE } from "../../mmu/walker.js";
import { GP } from "../../x86/exceptions.js";
import { DF } from "../../x86/flags.js";
import * as CH from "../charges.js";
import type { Cpu } from "../cpu.js";
import { ioAccess } from "../debug.js";
import type { Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";
import { elementLinear, elementLinearHi } from "./string.js";
import { iopl } from "./system-common.js";

/**
 * I/O privilege (SDM vol. 1, 18.5): CPL > IOPL is #GP(0). The TSS I/O permission bitmap is not
 * consulted (it would be, on hardware, before faulting): user-mode port access is always denied.
 */
function ioCheck(c: Cpu): void {
  if (c.cpl > iopl(c)) c.raise(GP, 0);
}

function ioSize(i: Insn): 1 | 2 | 4 {
  return i.size === 1 ? 1 : i.size === 2 ? 2 : 4;
}

/** IN AL/AX/EAX, imm8 (E4, E5) or DX (EC, ED). */
function inPort(c: Cpu, i: Insn): void {
  ioCheck(c);
  const sz = ioSize(i);
  const port = i.op === 1 ? c.lo[2] & 0xffff : i.imm & 0xff;
  if (c.nonRoot) c.vmxUnit.checkIo(i, port, sz, true, false);
  c.chargeEvent(CH.CHARGE_IO);
  c.setReg(0, sz, c.io.portIn(port, sz), 0);
  if (c.debug.ioMask !== 0) ioAccess(c, port, sz);
}

/** OUT imm8 (E6, E7) or DX (EE, EF), AL/AX/EAX. */
function outPort(c: Cpu, i: Insn): void {
  ioCheck(c);
  const sz = ioSize(i);
  const port = i.op === 1 ? c.lo[2] & 0xffff : i.imm & 0xff;
  if (c.nonRoot) c.vmxUnit.checkIo(i, port, sz, false, false);
  c.chargeEvent(CH.CHARGE_IO);
  const v = c.lo[0];
  c.io.portOut(port, sz, sz === 1 ? v & 0xff : sz === 2 ? v & 0xffff : v >>> 0);
  if (c.debug.ioMask !== 0) ioAccess(c, port, sz);
}

/** Add a signed step to an index register at the address size (32-bit writes zero-extend). */
function stepReg(c: Cpu, r: number, step: number, a8: boolean): void {
  const lo = c.lo[r];
  const n = (lo + step) | 0;
  if (a8) {
    if (step > 0 && n >>> 0 < lo >>> 0) c.hi[r] = (c.hi[r] + 1) | 0;
    else if (step < 0 && n >>> 0 > lo >>> 0) c.hi[r] = (c.hi[r] - 1) | 0;
    c.lo[r] = n;
  } else c.set32(r, n);
}

/** Decrement the count register at the address size; returns true when it reached zero. */
function decCount(c: Cpu, a8: boolean): boolean {
  const lo = c.lo[1];
  if (a8) {
    if (lo === 0) c.hi[1] = (c.hi[1] - 1) | 0;
    c.lo[1] = (lo - 1) | 0;
    return (c.lo[1] | c.hi[1]) === 0;
  }
  c.set32(1, lo - 1);
  return c.lo[1] === 0;
}

/**
 * INS/OUTS (6C-6F), optionally REP: one element per iteration with registers updated after each,
 * so a fault mid-string restarts correctly. INS probes the destination before reading the port.
 */
function insOuts(c: Cpu, i: Insn): void {
  ioCheck(c);
  const sz = ioSize(i);
  const a8 = i.asize === 8;
  const port = c.lo[2] & 0xffff;
  const step = (c.flagsBase & DF) !== 0 ? -sz : sz;
  const isIn = i.op === 0;
  const r = isIn ? 7 : 6; // RDI (ES:) for INS, RSI (seg:, overridable) for OUTS
  const seg = isIn ? 0 : i.seg;
  if (c.nonRoot) {
    const gla = elementLinear(c, r, seg, a8);
    c.vmxUnit.checkIo(i, port, sz, isIn, true, gla, elementLinearHi());
  }
  c.chargeEvent(CH.CHARGE_IO);
  if (i.rep !== 0 && (a8 ? (c.lo[1] | c.hi[1]) === 0 : c.lo[1] === 0)) return;
  for (;;) {
    const lo = elementLinear(c, r, seg, a8);
    const hi = elementLinearHi();
    c.eaStack = false;
    if (isIn) {
      c.translate(lo, hi, ACC_WRITE | (c.cpl === 3 ? ACC_USER : 0));
      const v = c.io.portIn(port, sz);
      c.writeMem(lo, hi, sz, v, 0);
    } else {
      const v = c.readMem(lo, hi, sz);
      c.io.portOut(port, sz, sz === 4 ? v >>> 0 : v);
    }
    if (c.debug.ioMask !== 0) ioAccess(c, port, sz);
    stepReg(c, r, step, a8);
    if (i.rep === 0 || decCount(c, a8)) return;
  }
}

export const PORT_IO_OPS: readonly OpDef[] = [
  { name: "in", map: 0, code: 0xe4, modrm: false, size: "b", imm: "ib", op: 0, exec: inPort },
  { name: "in", map: 0, code: 0xe5, modrm: false, size: "v", imm: "ib", op: 0, exec: inPort },
  { name: "out", map: 0, code: 0xe6, modrm: false, size: "b", imm: "ib", op: 0, exec: outPort },
  { name: "out", map: 0, code: 0xe7, modrm: false, size: "v", imm: "ib", op: 0, exec: outPort },
  { name: "in", map: 0, code: 0xec, modrm: false, size: "b", op: 1, exec: inPort },
  { name: "in", map: 0, code: 0xed, modrm: false, size: "v", op: 1, exec: inPort },
  { name: "out", map: 0, code: 0xee, modrm: false, size: "b", op: 1, exec: outPort },
  { name: "out", map: 0, code: 0xef, modrm: false, size: "v", op: 1, exec: outPort },
  { name: "insb", map: 0, code: 0x6c, modrm: false, size: "b", op: 0, exec: insOuts },
  { name: "ins", map: 0, code: 0x6d, modrm: false, size: "v", op: 0, exec: insOuts },
  { name: "outsb", map: 0, code: 0x6e, modrm: false, size: "b", op: 1, exec: insOuts },
  { name: "outs", map: 0, code: 0x6f, modrm: false, size: "v", op: 1, exec: insOuts },
];
