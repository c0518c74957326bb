/**
 * Segment-register moves: MOV to/from Sreg, PUSH/POP Sreg (SDM vol. 2 MOV, PUSH, POP). Loading
 * SS blocks interrupts and debug traps for one instruction (SDM vol. 3, 6.8.3).
 */
import { UD } from "../../x86/exceptions.js";
import type { Cpu } from "../cpu.js";
import { movSsLoaded } from "../debug.js";
import type { Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";
import { loadDataSegment } from "../segments.js";

/** MOV r/m, Sreg (8C): a register gets the selector zero-extended; memory gets 16 bits. */
function movFromSreg(c: Cpu, i: Insn): void {
  if (i.reg > 5) c.raise(UD);
  const v = c.segSel[i.reg] & 0xffff;
  if (i.isMem) {
    c.ea(i);
    c.write16(c.eaLo, c.eaHi, v);
  } else c.setReg(i.rm, i.size, v, 0);
}

/** MOV Sreg, r/m16 (8E): CS is #UD; loading SS blocks interrupts for one instruction. */
function movToSreg(c: Cpu, i: Insn): void {
  const s = i.reg;
  if (s === 1 || s > 5) c.raise(UD);
  loadDataSegment(c, s, c.readRm(i) & 0xffff);
  if (s === 2) {
    c.intShadow = true;
    c.irqCheck = true;
    movSsLoaded(c); // debug traps wait too (SDM vol. 3, 6.8.3)
  }
}

/** PUSH Sreg (06/0E/16/1E, 0F A0/A8): the selector zero-extended to the operand size. */
function pushSreg(c: Cpu, i: Insn): void {
  c.push(i.size, c.segSel[i.op] & 0xffff, 0);
}

/** POP Sreg (07/17/1F, 0F A1/A9): RSP is restored if the segment load faults. */
function popSreg(c: Cpu, i: Insn): void {
  const saveLo = c.lo[4];
  const saveHi = c.hi[4];
  const v = c.pop(i.size) & 0xffff;
  try {
    loadDataSegment(c, i.op, v);
  } catch (e) {
    c.lo[4] = saveLo;
    c.hi[4] = saveHi;
    throw e;
  }
  if (i.op === 2) {
    c.intShadow = true;
    c.irqCheck = true;
    movSsLoaded(c);
  }
}

export const SEGMENT_REG_OPS: readonly OpDef[] = [
  { name: "mov", map: 0, code: 0x8c, modrm: true, size: "v", exec: movFromSreg },
  { name: "mov", map: 0, code: 0x8e, modrm: true, size: "w", exec: movToSreg },
  { name: "push", map: 0, code: 0x06, modrm: false, size: "d64", op: 0, mode: "no64", exec: pushSreg },
  { name: "pop", map: 0, code: 0x07, modrm: false, size: "d64", op: 0, mode: "no64", exec: popSreg },
  { name: "push", map: 0, code: 0x0e, modrm: false, size: "d64", op: 1, mode: "no64", exec: pushSreg },
  { name: "push", map: 0, code: 0x16, modrm: false, size: "d64", op: 2, mode: "no64", exec: pushSreg },
  { name: "pop", map: 0, code: 0x17, modrm: false, size: "d64", op: 2, mode: "no64", exec: popSreg },
  { name: "push", map: 0, code: 0x1e, modrm: false, size: "d64", op: 3, mode: "no64", exec: pushSreg },
  { name: "pop", map: 0, code: 0x1f, modrm: false, size: "d64", op: 3, mode: "no64", exec: popSreg },
  { name: "push", map: 1, code: 0xa0, modrm: false, size: "d64", op: 4, exec: pushSreg },
  { name: "pop", map: 1, code: 0xa1, modrm: false, size: "d64", op: 4, exec: popSreg },
  { name: "push", map: 1, code: 0xa8, modrm: false, size: "d64", op: 5, exec: pushSreg },
  { name: "pop", map: 1, code: 0xa9, modrm: false, size: "d64", op: 5, exec: popSreg },
];
