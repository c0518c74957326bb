/**
 * Near control flow and condition-code users: Jcc, JMP, CALL, RET (near), LOOP/LOOPcc/JrCXZ,
 * SETcc, CMOVcc. Far transfers live in far.ts. SDM vol. 2.
 */
import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";

function jcc(c: Cpu, i: Insn): void {
  if (c.cond(i.op)) c.jumpRel(i.imm, i.size);
}

function jmpRel(c: Cpu, i: Insn): void {
  c.jumpRel(i.imm, i.size);
}

function callRel(c: Cpu, i: Insn): void {
  c.push(i.size, c.ripLo, c.ripHi);
  c.jumpRel(i.imm, i.size);
}

/** JMP Ev (FF /4). */
function jmpRm(c: Cpu, i: Insn): void {
  const t = c.readRm(i);
  if (i.size === 8) c.jump(t, c.vHi);
  else c.jump(i.size === 2 ? t & 0xffff : t, 0);
}

/**
 * CALL Ev (FF /2): read the target before pushing (the push may overwrite it). A non-canonical
 * target faults #GP(0) at the CALL after the push, with RSP restored but the return address left
 * below it: Intel's order (SDM vol. 2A CALL pseudo-code pushes before the RIP load that checks);
 * AMD checks first and writes nothing (tools/difftest/vendor.ts "call-noncanonical-push").
 */
function callRm(c: Cpu, i: Insn): void {
  const t = c.readRm(i);
  const th = c.vHi;
  const saveLo = c.lo[4];
  const saveHi = c.hi[4];
  c.push(i.size, c.ripLo, c.ripHi);
  try {
    if (i.size === 8) c.jump(t, th);
    else c.jump(i.size === 2 ? t & 0xffff : t, 0);
  } catch (e) {
    c.lo[4] = saveLo;
    c.hi[4] = saveHi;
    throw e;
  }
}

/** RET / RET imm16 (C3, C2). */
function ret(c: Cpu, i: Insn): void {
  const saveLo = c.lo[4];
  const saveHi = c.hi[4];
  const t = c.pop(i.size);
  const th = c.vHi;
  try {
    if (i.size === 8) c.jump(t, th);
    else c.jump(i.size === 2 ? t & 0xffff : t, 0);
  } catch (e) {
    c.lo[4] = saveLo;
    c.hi[4] = saveHi;
    throw e;
  }
  if (i.imm !== 0) {
    const n = (c.lo[4] + i.imm) | 0;
    if (c.mode64 && n >>> 0 < c.lo[4] >>> 0) c.hi[4] = (c.hi[4] + 1) | 0;
    c.lo[4] = n;
  }
}

/** LOOP/LOOPE/LOOPNE (E2, E1, E0): count register by address size, flags untouched. */
function loop(c: Cpu, i: Insn): void {
  let lo = c.lo[1];
  let hi = c.hi[1];
  if (i.asize === 8) {
    if (lo === 0) hi = (hi - 1) | 0;
    lo = (lo - 1) | 0;
    c.lo[1] = lo;
    c.hi[1] = hi;
  } else {
    lo = (lo - 1) | 0;
    c.set32(1, lo);
    hi = 0;
  }
  let take = (lo | hi) !== 0;
  if (i.op === 1) take = take && c.getZF() !== 0;
  else if (i.op === 2) take = take && c.getZF() === 0;
  if (take) c.jumpRel(i.imm, i.size);
}

/** JrCXZ (E3). */
function jrcxz(c: Cpu, i: Insn): void {
  const zero = i.asize === 8 ? (c.lo[1] | c.hi[1]) === 0 : c.lo[1] === 0;
  if (zero) c.jumpRel(i.imm, i.size);
}

function setcc(c: Cpu, i: Insn): void {
  c.storeRm(i, c.cond(i.op) ? 1 : 0, 0);
}

/** CMOVcc: the source is always read (it may fault); a 32-bit destination is zero-extended even if not moved. */
function cmov(c: Cpu, i: Insn): void {
  const v = c.readRm(i);
  const vh = c.vHi;
  if (c.cond(i.op)) c.setReg(i.reg, i.size, v, vh);
  else if (i.size === 4) c.hi[i.reg] = 0;
}

const table: OpDef[] = [
  { name: "jmp", map: 0, code: 0xeb, modrm: false, size: "f64", imm: "rel8", exec: jmpRel },
  { name: "jmp", map: 0, code: 0xe9, modrm: false, size: "f64", imm: "relz", exec: jmpRel },
  { name: "call", map: 0, code: 0xe8, modrm: false, size: "f64", imm: "relz", exec: callRel },
  { name: "jmp", map: 0, code: 0xff, ext: 4, modrm: true, size: "f64", exec: jmpRm },
  { name: "call", map: 0, code: 0xff, ext: 2, modrm: true, size: "f64", exec: callRm },
  { name: "ret", map: 0, code: 0xc3, modrm: false, size: "f64", exec: ret },
  { name: "ret", map: 0, code: 0xc2, modrm: false, size: "f64", imm: "iw", exec: ret },
  { name: "loopne", map: 0, code: 0xe0, modrm: false, size: "f64", imm: "rel8", op: 2, exec: loop },
  { name: "loope", map: 0, code: 0xe1, modrm: false, size: "f64", imm: "rel8", op: 1, exec: loop },
  { name: "loop", map: 0, code: 0xe2, modrm: false, size: "f64", imm: "rel8", op: 0, exec: loop },
  { name: "jrcxz", map: 0, code: 0xe3, modrm: false, size: "f64", imm: "rel8", exec: jrcxz },
];
const CC = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];
for (let cc = 0; cc < 16; cc++) {
  table.push(
    { name: `j${CC[cc]}`, map: 0, code: 0x70 + cc, modrm: false, size: "f64", imm: "rel8", op: cc, exec: jcc },
    { name: `j${CC[cc]}`, map: 1, code: 0x80 + cc, modrm: false, size: "f64", imm: "relz", op: cc, exec: jcc },
    { name: `set${CC[cc]}`, map: 1, code: 0x90 + cc, modrm: true, size: "b", op: cc, exec: setcc },
    { name: `cmov${CC[cc]}`, map: 1, code: 0x40 + cc, modrm: true, size: "v", op: cc, exec: cmov },
  );
}

export const CONTROL_OPS: readonly OpDef[] = table;
export const CONDITION_NAMES = CC;
