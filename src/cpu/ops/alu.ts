/**
 * Two-operand arithmetic and logic: ADD OR ADC SBB AND SUB XOR CMP (in their ModRM.reg / opcode
 * order), TEST, INC, DEC, NEG, NOT. SDM vol. 2 for each; flags via the lazy-flag kinds.
 */
import type { Cpu } from "../cpu.js";
import { LF_ADC, LF_ADD, LF_DEC, LF_INC, LF_NONE, LF_SBB, LF_SUB } from "../flags.js";
import type { Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";

export const ALU_ADD = 0,
  ALU_OR = 1,
  ALU_ADC = 2,
  ALU_SBB = 3,
  ALU_AND = 4,
  ALU_SUB = 5,
  ALU_XOR = 6,
  ALU_CMP = 7;

/**
 * Compute `dst op src` at `size` and record lazy flags. Operands of size 1/2 are zero-extended,
 * size 4 is int32 in lo, size 8 uses both halves. Returns the low half; `c.vHi` the high half.
 */
export function alu(c: Cpu, op: number, size: number, dLo: number, dHi: number, sLo: number, sHi: number): number {
  let rLo: number;
  let rHi = 0;
  if (size !== 8) {
    dHi = 0;
    sHi = 0;
  }
  switch (op) {
    case ALU_ADD:
    case ALU_ADC: {
      const cin = op === ALU_ADC ? c.getCF() : 0;
      if (size === 8) {
        const t = (dLo >>> 0) + (sLo >>> 0) + cin;
        rLo = t | 0;
        rHi = (dHi + sHi + (t > 0xffffffff ? 1 : 0)) | 0;
      } else rLo = trunc(size, dLo + sLo + cin);
      c.setLazy(op === ALU_ADD ? LF_ADD : LF_ADC, size, rLo, rHi, dLo, dHi, sLo, sHi, cin);
      break;
    }
    case ALU_SUB:
    case ALU_SBB:
    case ALU_CMP: {
      const bin = op === ALU_SBB ? c.getCF() : 0;
      if (size === 8) {
        const t = (dLo >>> 0) - (sLo >>> 0) - bin;
        rLo = t | 0;
        rHi = (dHi - sHi - (t < 0 ? 1 : 0)) | 0;
      } else rLo = trunc(size, dLo - sLo - bin);
      c.setLazy(op === ALU_SBB ? LF_SBB : LF_SUB, size, rLo, rHi, dLo, dHi, sLo, sHi, bin);
      break;
    }
    case ALU_OR:
      rLo = dLo | sLo;
      rHi = dHi | sHi;
      c.setLazyRes(size, rLo, rHi, 0);
      break;
    case ALU_AND:
      rLo = dLo & sLo;
      rHi = dHi & sHi;
      c.setLazyRes(size, rLo, rHi, 0);
      break;
    default:
      rLo = dLo ^ sLo;
      rHi = dHi ^ sHi;
      c.setLazyRes(size, rLo, rHi, 0);
      break;
  }
  c.vHi = rHi;
  return rLo;
}

/** Truncate an arithmetic result to `size` (1, 2 zero-extended; 4 as int32). */
export function trunc(size: number, v: number): number {
  return size === 1 ? v & 0xff : size === 2 ? v & 0xffff : v | 0;
}

// ---- Handlers ----

/** op Eb/Ev, Gb/Gv (00, 01, 08, …): destination is r/m. */
function aluRmReg(c: Cpu, i: Insn): void {
  const d = c.readRm(i);
  const dh = c.vHi;
  const s = c.getReg(i.reg, i.size);
  if (i.isMem && (i.op === ALU_ADC || i.op === ALU_SBB)) {
    carryToMem(c, i, d, dh, s, c.vHi);
    return;
  }
  const r = alu(c, i.op, i.size, d, dh, s, c.vHi);
  if (i.op !== ALU_CMP) c.writeRm(i, r, c.vHi);
}

/**
 * ADC/SBB with a memory destination: alu() records the new flags before the store, so if the
 * store faults the old flags are put back (faults are precise; the restarted ADC/SBB must read
 * the original CF, e.g. after a copy-on-write page fault).
 */
function carryToMem(c: Cpu, i: Insn, d: number, dh: number, s: number, sh: number): void {
  const f = c.getFlags();
  const r = alu(c, i.op, i.size, d, dh, s, sh);
  try {
    c.writeRm(i, r, c.vHi);
  } catch (e) {
    c.flagsBase = f;
    c.lfOp = LF_NONE;
    throw e;
  }
}

/** Fast path: 64/32-bit register-register forms (the most common in compiled code). */
function aluRegReg(c: Cpu, i: Insn): void {
  const size = i.size;
  if (size === 1 || size === 2) {
    aluRmReg(c, i);
    return;
  }
  const lo = c.lo;
  const hi = c.hi;
  const r = alu(c, i.op, size, lo[i.rm], hi[i.rm], lo[i.reg], hi[i.reg]);
  if (i.op !== ALU_CMP) {
    lo[i.rm] = r;
    hi[i.rm] = size === 8 ? c.vHi : 0;
  }
}

/** op Gb/Gv, Eb/Ev (02, 03, …): destination is the register. */
function aluRegRm(c: Cpu, i: Insn): void {
  const s = c.readRm(i);
  const sh = c.vHi;
  const d = c.getReg(i.reg, i.size);
  const r = alu(c, i.op, i.size, d, c.vHi, s, sh);
  if (i.op !== ALU_CMP) c.setReg(i.reg, i.size, r, c.vHi);
}

/** op AL/eAX, imm (04, 05, …). */
function aluAccImm(c: Cpu, i: Insn): void {
  const d = c.getReg(0, i.size);
  const r = alu(c, i.op, i.size, d, c.vHi, i.imm, i.immHi);
  if (i.op !== ALU_CMP) c.setReg(0, i.size, r, c.vHi);
}

/** Group 1: op Eb/Ev, imm (80, 81, 83). */
function aluRmImm(c: Cpu, i: Insn): void {
  const d = c.readRm(i);
  if (i.isMem && (i.op === ALU_ADC || i.op === ALU_SBB)) {
    carryToMem(c, i, d, c.vHi, i.imm, i.immHi);
    return;
  }
  const r = alu(c, i.op, i.size, d, c.vHi, i.imm, i.immHi);
  if (i.op !== ALU_CMP) c.writeRm(i, r, c.vHi);
}

function testRmReg(c: Cpu, i: Insn): void {
  const d = c.readRm(i);
  const dh = c.vHi;
  const s = c.getReg(i.reg, i.size);
  alu(c, ALU_AND, i.size, d, dh, s, c.vHi);
}

function testAccImm(c: Cpu, i: Insn): void {
  const d = c.getReg(0, i.size);
  alu(c, ALU_AND, i.size, d, c.vHi, i.imm, i.immHi);
}

function testRmImm(c: Cpu, i: Insn): void {
  const d = c.readRm(i);
  alu(c, ALU_AND, i.size, d, c.vHi, i.imm, i.immHi);
}

/** INC/DEC r/m: like ADD/SUB 1 but CF is preserved. */
function incDec(c: Cpu, i: Insn): void {
  const d = c.readRm(i);
  const dh = c.vHi;
  const cf = c.getCF();
  const size = i.size;
  let r: number;
  let rh = 0;
  if (i.op === 0) {
    if (size === 8) {
      r = (d + 1) | 0;
      rh = r === 0 ? (dh + 1) | 0 : dh;
    } else r = trunc(size, d + 1);
    c.setLazy(LF_INC, size, r, rh, d, size === 8 ? dh : 0, 1, 0, cf);
  } else {
    if (size === 8) {
      r = (d - 1) | 0;
      rh = d === 0 ? (dh - 1) | 0 : dh;
    } else r = trunc(size, d - 1);
    c.setLazy(LF_DEC, size, r, rh, d, size === 8 ? dh : 0, 1, 0, cf);
  }
  c.writeRm(i, r, rh);
}

function neg(c: Cpu, i: Insn): void {
  const d = c.readRm(i);
  const r = alu(c, ALU_SUB, i.size, 0, 0, d, c.vHi);
  c.writeRm(i, r, c.vHi);
}

function not(c: Cpu, i: Insn): void {
  const d = c.readRm(i);
  const size = i.size;
  c.writeRm(i, trunc(size, ~d), ~c.vHi);
}

// ---- Fast paths: 32/64-bit register destinations (the bulk of compiled code). Sizes 1 and 2
// fall back to the generic handlers. Each is written out so V8 sees constant ops and sizes.

function addRR(c: Cpu, i: Insn): void {
  if (i.size < 4) {
    aluRmReg(c, i);
    return;
  }
  addTo(c, i.rm, i.size, c.lo[i.reg], c.hi[i.reg], LF_ADD, true);
}
function addRI(c: Cpu, i: Insn): void {
  if (i.size < 4) {
    aluRmImm(c, i);
    return;
  }
  addTo(c, i.rm, i.size, i.imm, i.immHi, LF_ADD, true);
}
function subRR(c: Cpu, i: Insn): void {
  if (i.size < 4) {
    aluRmReg(c, i);
    return;
  }
  subFrom(c, i.rm, i.size, c.lo[i.reg], c.hi[i.reg], true);
}
function subRI(c: Cpu, i: Insn): void {
  if (i.size < 4) {
    aluRmImm(c, i);
    return;
  }
  subFrom(c, i.rm, i.size, i.imm, i.immHi, true);
}
function cmpRR(c: Cpu, i: Insn): void {
  if (i.size < 4) {
    aluRmReg(c, i);
    return;
  }
  subFrom(c, i.rm, i.size, c.lo[i.reg], c.hi[i.reg], false);
}
function cmpRI(c: Cpu, i: Insn): void {
  if (i.size < 4) {
    aluRmImm(c, i);
    return;
  }
  subFrom(c, i.rm, i.size, i.imm, i.immHi, false);
}
function andRR(c: Cpu, i: Insn): void {
  if (i.size < 4) {
    aluRmReg(c, i);
    return;
  }
  logicTo(c, i.rm, i.size, c.lo[i.rm] & c.lo[i.reg], c.hi[i.rm] & c.hi[i.reg], true);
}
function andRI(c: Cpu, i: Insn): void {
  if (i.size < 4) {
    aluRmImm(c, i);
    return;
  }
  logicTo(c, i.rm, i.size, c.lo[i.rm] & i.imm, c.hi[i.rm] & i.immHi, true);
}
function orRR(c: Cpu, i: Insn): void {
  if (i.size < 4) {
    aluRmReg(c, i);
    return;
  }
  logicTo(c, i.rm, i.size, c.lo[i.rm] | c.lo[i.reg], c.hi[i.rm] | c.hi[i.reg], true);
}
function orRI(c: Cpu, i: Insn): void {
  if (i.size < 4) {
    aluRmImm(c, i);
    return;
  }
  logicTo(c, i.rm, i.size, c.lo[i.rm] | i.imm, c.hi[i.rm] | i.immHi, true);
}
function xorRR(c: Cpu, i: Insn): void {
  if (i.size < 4) {
    aluRmReg(c, i);
    return;
  }
  logicTo(c, i.rm, i.size, c.lo[i.rm] ^ c.lo[i.reg], c.hi[i.rm] ^ c.hi[i.reg], true);
}
function xorRI(c: Cpu, i: Insn): void {
  if (i.size < 4) {
    aluRmImm(c, i);
    return;
  }
  logicTo(c, i.rm, i.size, c.lo[i.rm] ^ i.imm, c.hi[i.rm] ^ i.immHi, true);
}
function testRR(c: Cpu, i: Insn): void {
  if (i.size < 4) {
    testRmReg(c, i);
    return;
  }
  logicTo(c, i.rm, i.size, c.lo[i.rm] & c.lo[i.reg], c.hi[i.rm] & c.hi[i.reg], false);
}

function addTo(c: Cpu, r: number, size: number, sl: number, sh: number, kind: number, store: boolean): void {
  const dl = c.lo[r];
  if (size === 8) {
    const dh = c.hi[r];
    const t = (dl >>> 0) + (sl >>> 0);
    const rl = t | 0;
    const rh = (dh + sh + (t > 0xffffffff ? 1 : 0)) | 0;
    if (store) {
      c.lo[r] = rl;
      c.hi[r] = rh;
    }
    c.setLazy(kind, 8, rl, rh, dl, dh, sl, sh, 0);
  } else {
    const rl = (dl + sl) | 0;
    if (store) {
      c.lo[r] = rl;
      c.hi[r] = 0;
    }
    c.setLazy(kind, 4, rl, 0, dl, 0, sl, 0, 0);
  }
}

function subFrom(c: Cpu, r: number, size: number, sl: number, sh: number, store: boolean): void {
  const dl = c.lo[r];
  if (size === 8) {
    const dh = c.hi[r];
    const t = (dl >>> 0) - (sl >>> 0);
    const rl = t | 0;
    const rh = (dh - sh - (t < 0 ? 1 : 0)) | 0;
    if (store) {
      c.lo[r] = rl;
      c.hi[r] = rh;
    }
    c.setLazy(LF_SUB, 8, rl, rh, dl, dh, sl, sh, 0);
  } else {
    const rl = (dl - sl) | 0;
    if (store) {
      c.lo[r] = rl;
      c.hi[r] = 0;
    }
    c.setLazy(LF_SUB, 4, rl, 0, dl, 0, sl, 0, 0);
  }
}

function logicTo(c: Cpu, r: number, size: number, rl: number, rh: number, store: boolean): void {
  if (size !== 8) rh = 0;
  if (store) {
    c.lo[r] = rl;
    c.hi[r] = rh;
  }
  c.setLazyRes(size, rl, rh, 0);
}

/** INC/DEC of a 32/64-bit register. */
function incDecR(c: Cpu, i: Insn): void {
  if (i.size < 4 || i.isMem) {
    incDec(c, i);
    return;
  }
  const r = i.rm;
  const d = c.lo[r];
  const dh = i.size === 8 ? c.hi[r] : 0;
  const cf = c.getCF();
  let res: number;
  let rh = 0;
  if (i.op === 0) {
    res = (d + 1) | 0;
    if (i.size === 8) rh = res === 0 ? (dh + 1) | 0 : dh;
    c.setLazy(LF_INC, i.size, res, rh, d, dh, 1, 0, cf);
  } else {
    res = (d - 1) | 0;
    if (i.size === 8) rh = d === 0 ? (dh - 1) | 0 : dh;
    c.setLazy(LF_DEC, i.size, res, rh, d, dh, 1, 0, cf);
  }
  c.lo[r] = res;
  c.hi[r] = rh;
}

const FAST_RR = [addRR, orRR, null, null, andRR, subRR, xorRR, cmpRR];
const FAST_RI = [addRI, orRI, null, null, andRI, subRI, xorRI, cmpRI];

const table: OpDef[] = [];
const NAMES = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"];
for (let op = 0; op < 8; op++) {
  const base = op * 8;
  const name = NAMES[op];
  const lockable = op !== ALU_CMP;
  table.push(
    { name, map: 0, code: base + 0, modrm: true, size: "b", op, exec: aluRmReg, lockable },
    { name, map: 0, code: base + 1, modrm: true, size: "v", op, exec: aluRmReg, lockable, form: "mem" },
    { name, map: 0, code: base + 1, modrm: true, size: "v", op, exec: FAST_RR[op] ?? aluRegReg, form: "reg" },
    { name, map: 0, code: base + 2, modrm: true, size: "b", op, exec: aluRegRm },
    { name, map: 0, code: base + 3, modrm: true, size: "v", op, exec: aluRegRm },
    { name, map: 0, code: base + 4, modrm: false, size: "b", imm: "ib", op, exec: aluAccImm },
    { name, map: 0, code: base + 5, modrm: false, size: "v", imm: "iz", op, exec: aluAccImm },
    { name, map: 0, code: 0x80, ext: op, modrm: true, size: "b", imm: "ib", op, exec: aluRmImm, lockable },
    { name, map: 0, code: 0x81, ext: op, modrm: true, size: "v", imm: "iz", op, exec: aluRmImm, lockable, form: "mem" },
    {
      name,
      map: 0,
      code: 0x81,
      ext: op,
      modrm: true,
      size: "v",
      imm: "iz",
      op,
      exec: FAST_RI[op] ?? aluRmImm,
      form: "reg",
    },
    {
      name,
      map: 0,
      code: 0x82,
      ext: op,
      modrm: true,
      size: "b",
      imm: "ib",
      op,
      exec: aluRmImm,
      lockable,
      mode: "no64",
    },
    {
      name,
      map: 0,
      code: 0x83,
      ext: op,
      modrm: true,
      size: "v",
      imm: "ibs",
      op,
      exec: aluRmImm,
      lockable,
      form: "mem",
    },
    {
      name,
      map: 0,
      code: 0x83,
      ext: op,
      modrm: true,
      size: "v",
      imm: "ibs",
      op,
      exec: FAST_RI[op] ?? aluRmImm,
      form: "reg",
    },
  );
}
table.push(
  { name: "test", map: 0, code: 0x84, modrm: true, size: "b", exec: testRmReg },
  { name: "test", map: 0, code: 0x85, modrm: true, size: "v", exec: testRmReg, form: "mem" },
  { name: "test", map: 0, code: 0x85, modrm: true, size: "v", exec: testRR, form: "reg" },
  { name: "test", map: 0, code: 0xa8, modrm: false, size: "b", imm: "ib", exec: testAccImm },
  { name: "test", map: 0, code: 0xa9, modrm: false, size: "v", imm: "iz", exec: testAccImm },
  { name: "test", map: 0, code: 0xf6, ext: 0, modrm: true, size: "b", imm: "ib", exec: testRmImm },
  { name: "test", map: 0, code: 0xf6, ext: 1, modrm: true, size: "b", imm: "ib", exec: testRmImm },
  { name: "test", map: 0, code: 0xf7, ext: 0, modrm: true, size: "v", imm: "iz", exec: testRmImm },
  { name: "test", map: 0, code: 0xf7, ext: 1, modrm: true, size: "v", imm: "iz", exec: testRmImm },
  { name: "not", map: 0, code: 0xf6, ext: 2, modrm: true, size: "b", exec: not, lockable: true },
  { name: "not", map: 0, code: 0xf7, ext: 2, modrm: true, size: "v", exec: not, lockable: true },
  { name: "neg", map: 0, code: 0xf6, ext: 3, modrm: true, size: "b", exec: neg, lockable: true },
  { name: "neg", map: 0, code: 0xf7, ext: 3, modrm: true, size: "v", exec: neg, lockable: true },
  { name: "inc", map: 0, code: 0xfe, ext: 0, modrm: true, size: "b", op: 0, exec: incDec, lockable: true },
  { name: "dec", map: 0, code: 0xfe, ext: 1, modrm: true, size: "b", op: 1, exec: incDec, lockable: true },
  { name: "inc", map: 0, code: 0xff, ext: 0, modrm: true, size: "v", op: 0, exec: incDecR, lockable: true },
  { name: "dec", map: 0, code: 0xff, ext: 1, modrm: true, size: "v", op: 1, exec: incDecR, lockable: true },
  { name: "inc", map: 0, code: 0x40, plusReg: true, modrm: false, size: "v", op: 0, exec: incDec, mode: "no64" },
  { name: "dec", map: 0, code: 0x48, plusReg: true, modrm: false, size: "v", op: 1, exec: incDec, mode: "no64" },
);

export const ALU_OPS: readonly OpDef[] = table;
