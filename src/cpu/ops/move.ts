/**
 * Data movement: MOV (all integer forms), MOVZX, MOVSX, MOVSXD, LEA, XCHG, PUSH/POP (register,
 * memory, immediate), ENTER/LEAVE, CBW/CWDE/CDQE, CWD/CDQ/CQO, NOP forms, PAUSE. SDM vol. 2.
 */
import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";

/** MOV Eb/Ev, Gb/Gv (88, 89). */
function movRmReg(c: Cpu, i: Insn): void {
  const v = c.getReg(i.reg, i.size);
  c.storeRm(i, v, c.vHi);
}

/** MOV Gb/Gv, Eb/Ev (8A, 8B). */
function movRegRm(c: Cpu, i: Insn): void {
  const v = c.readRm(i);
  c.setReg(i.reg, i.size, v, c.vHi);
}

/** Fast path: MOV r64, r/m64 and r32, r/m32 from memory. */
function movRegMem(c: Cpu, i: Insn): void {
  c.ea(i);
  if (i.size === 8) {
    const v = c.read64(c.eaLo, c.eaHi);
    c.lo[i.reg] = v;
    c.hi[i.reg] = c.vHi;
  } else if (i.size === 4) {
    c.lo[i.reg] = c.read32(c.eaLo, c.eaHi);
    c.hi[i.reg] = 0;
  } else c.set16(i.reg, c.read16(c.eaLo, c.eaHi));
}

/** Fast path: MOV r/m64, r64 to memory. */
function movMemReg(c: Cpu, i: Insn): void {
  c.ea(i);
  if (i.size === 8) c.write64(c.eaLo, c.eaHi, c.lo[i.reg], c.hi[i.reg]);
  else if (i.size === 4) c.write32(c.eaLo, c.eaHi, c.lo[i.reg]);
  else c.write16(c.eaLo, c.eaHi, c.lo[i.reg]);
}

function movRegReg(c: Cpu, i: Insn): void {
  if (i.size === 8) {
    c.lo[i.rm] = c.lo[i.reg];
    c.hi[i.rm] = c.hi[i.reg];
  } else if (i.size === 4) {
    c.lo[i.rm] = c.lo[i.reg];
    c.hi[i.rm] = 0;
  } else c.set16(i.rm, c.lo[i.reg]);
}

/** MOV Eb/Ev, imm (C6 /0, C7 /0) and MOV r, imm (B0+r, B8+r). */
function movRmImm(c: Cpu, i: Insn): void {
  c.storeRm(i, i.imm, i.immHi);
}

/** MOV AL/eAX, moffs (A0, A1) and moffs, AL/eAX (A2, A3). */
function movAccMoffs(c: Cpu, i: Insn): void {
  c.ea(i);
  const v = c.readMem(c.eaLo, c.eaHi, i.size);
  c.setReg(0, i.size, v, c.vHi);
}

function movMoffsAcc(c: Cpu, i: Insn): void {
  c.ea(i);
  const v = c.getReg(0, i.size);
  c.writeMem(c.eaLo, c.eaHi, i.size, v, c.vHi);
}

/** MOVZX Gv, Eb/Ew (0F B6, 0F B7). */
function movzx(c: Cpu, i: Insn): void {
  const src = i.op; // 1 or 2: source width
  let v: number;
  if (i.isMem) {
    c.ea(i);
    v = src === 1 ? c.read8(c.eaLo, c.eaHi) : c.read16(c.eaLo, c.eaHi);
  } else v = src === 1 ? c.get8(i.rm) : c.lo[i.rm] & 0xffff;
  c.setReg(i.reg, i.size, v, 0);
}

/** MOVSX Gv, Eb/Ew (0F BE, 0F BF) and MOVSXD Gv, Ed (63). */
function movsx(c: Cpu, i: Insn): void {
  const src = i.op === 4 && i.size === 2 ? 2 : i.op; // 1, 2 or 4 (MOVSXD r16 reads r/m16: SDM vol. 2B; AMD reads 4 bytes, tools/difftest/vendor.ts)
  let v: number;
  if (i.isMem) {
    c.ea(i);
    v = src === 1 ? c.read8(c.eaLo, c.eaHi) : src === 2 ? c.read16(c.eaLo, c.eaHi) : c.read32(c.eaLo, c.eaHi);
  } else v = src === 1 ? c.get8(i.rm) : src === 2 ? c.lo[i.rm] & 0xffff : c.lo[i.rm];
  if (src === 1) v = (v << 24) >> 24;
  else if (src === 2) v = (v << 16) >> 16;
  c.setReg(i.reg, i.size, i.size === 2 ? v & 0xffff : v, v >> 31);
}

/** LEA Gv, M: the effective address without the segment base. */
function lea(c: Cpu, i: Insn): void {
  const seg = i.seg;
  i.seg = 3; // DS has base 0 in every mode we model; FS/GS overrides do not apply to LEA
  c.ea(i);
  i.seg = seg;
  c.setReg(i.reg, i.size, i.size === 2 ? c.eaLo & 0xffff : c.eaLo, c.eaHi);
}

/** XCHG Eb/Ev, Gb/Gv (86, 87): always atomic, LOCK implied. */
function xchg(c: Cpu, i: Insn): void {
  const a = c.readRm(i);
  const ah = c.vHi;
  const b = c.getReg(i.reg, i.size);
  c.writeRm(i, b, c.vHi);
  c.setReg(i.reg, i.size, a, ah);
}

/** XCHG rAX, r (90+r). */
function xchgAcc(c: Cpu, i: Insn): void {
  const a = c.getReg(0, i.size);
  const ah = c.vHi;
  const b = c.getReg(i.reg, i.size);
  c.setReg(0, i.size, b, c.vHi);
  c.setReg(i.reg, i.size, a, ah);
}

function nop(_c: Cpu, _i: Insn): void {}

/** 90+r: XCHG rAX, r; plain 90 (rAX with itself) is NOP. */
function nop90(c: Cpu, i: Insn): void {
  if (i.reg !== 0) xchgAcc(c, i);
}

function pushReg(c: Cpu, i: Insn): void {
  c.push(i.size, c.lo[i.reg], c.hi[i.reg]);
}

function popReg(c: Cpu, i: Insn): void {
  const v = c.pop(i.size);
  c.setReg(i.reg, i.size, v, c.vHi);
}

function pushImm(c: Cpu, i: Insn): void {
  c.push(i.size, i.imm, i.size === 8 ? i.immHi : 0);
}

/** PUSH Ev (FF /6). */
function pushRm(c: Cpu, i: Insn): void {
  const v = c.readRm(i);
  c.push(i.size, v, c.vHi);
}

/** POP Ev (8F /0): RSP is incremented before the destination address is computed. */
function popRm(c: Cpu, i: Insn): void {
  const saveLo = c.lo[4];
  const saveHi = c.hi[4];
  const v = c.pop(i.size);
  const vh = c.vHi;
  try {
    c.storeRm(i, v, vh);
  } catch (e) {
    c.lo[4] = saveLo;
    c.hi[4] = saveHi;
    throw e;
  }
}

/** LEAVE: RSP = RBP; POP RBP. */
function leave(c: Cpu, i: Insn): void {
  const saveLo = c.lo[4];
  const saveHi = c.hi[4];
  c.lo[4] = c.lo[5];
  c.hi[4] = c.mode64 ? c.hi[5] : 0;
  try {
    const v = c.pop(i.size);
    c.setReg(5, i.size, v, c.vHi);
  } catch (e) {
    c.lo[4] = saveLo;
    c.hi[4] = saveHi;
    throw e;
  }
}

/** ENTER imm16, imm8 (nesting levels > 0 copy frame pointers, SDM vol. 2 ENTER). */
function enter(c: Cpu, i: Insn): void {
  const size = i.size;
  const level = i.imm2 & 31;
  const saveLo = c.lo[4];
  const saveHi = c.hi[4];
  try {
    c.push(size, c.lo[5], c.hi[5]);
    const frameLo = c.lo[4];
    const frameHi = c.hi[4];
    let bpLo = c.lo[5];
    let bpHi = c.hi[5];
    for (let k = 1; k < level; k++) {
      const n = (bpLo - size) | 0;
      if (n >>> 0 > bpLo >>> 0) bpHi = (bpHi - 1) | 0;
      bpLo = n;
      c.eaStack = true;
      const v = c.readMem(bpLo, c.mode64 ? bpHi : 0, size);
      c.push(size, v, c.vHi);
    }
    if (level > 0) c.push(size, frameLo, frameHi);
    c.setReg(5, size, frameLo, frameHi);
    const n = (c.lo[4] - i.imm) | 0;
    if (c.mode64 && n >>> 0 > c.lo[4] >>> 0) c.hi[4] = (c.hi[4] - 1) | 0;
    c.lo[4] = n;
  } catch (e) {
    c.lo[4] = saveLo;
    c.hi[4] = saveHi;
    throw e;
  }
}

/** CBW/CWDE/CDQE (98). */
function cbw(c: Cpu, i: Insn): void {
  const a = c.lo[0];
  if (i.size === 2) c.set16(0, ((a << 24) >> 24) & 0xffff);
  else if (i.size === 4) c.set32(0, (a << 16) >> 16);
  else c.set64(0, a, a >> 31);
}

/** CWD/CDQ/CQO (99). */
function cwd(c: Cpu, i: Insn): void {
  if (i.size === 2) c.set16(2, (c.lo[0] << 16) >> 31);
  else if (i.size === 4) c.set32(2, c.lo[0] >> 31);
  else c.set64(2, c.hi[0] >> 31, c.hi[0] >> 31);
}

export const MOVE_OPS: readonly OpDef[] = [
  { name: "mov", map: 0, code: 0x88, modrm: true, size: "b", exec: movRmReg },
  { name: "mov", map: 0, code: 0x89, modrm: true, size: "v", exec: movMemReg, form: "mem" },
  { name: "mov", map: 0, code: 0x89, modrm: true, size: "v", exec: movRegReg, form: "reg" },
  { name: "mov", map: 0, code: 0x8a, modrm: true, size: "b", exec: movRegRm },
  { name: "mov", map: 0, code: 0x8b, modrm: true, size: "v", exec: movRegMem, form: "mem" },
  { name: "mov", map: 0, code: 0x8b, modrm: true, size: "v", exec: movRegRm, form: "reg" },
  { name: "mov", map: 0, code: 0xc6, ext: 0, modrm: true, size: "b", imm: "ib", exec: movRmImm },
  { name: "mov", map: 0, code: 0xc7, ext: 0, modrm: true, size: "v", imm: "iz", exec: movRmImm },
  { name: "mov", map: 0, code: 0xb0, plusReg: true, modrm: false, size: "b", imm: "ib", exec: movRmImm },
  { name: "mov", map: 0, code: 0xb8, plusReg: true, modrm: false, size: "v", imm: "iv", exec: movRmImm },
  { name: "mov", map: 0, code: 0xa0, modrm: false, size: "b", imm: "moffs", exec: movAccMoffs },
  { name: "mov", map: 0, code: 0xa1, modrm: false, size: "v", imm: "moffs", exec: movAccMoffs },
  { name: "mov", map: 0, code: 0xa2, modrm: false, size: "b", imm: "moffs", exec: movMoffsAcc },
  { name: "mov", map: 0, code: 0xa3, modrm: false, size: "v", imm: "moffs", exec: movMoffsAcc },
  { name: "movzx", map: 1, code: 0xb6, modrm: true, size: "v", rmByte: true, op: 1, exec: movzx },
  { name: "movzx", map: 1, code: 0xb7, modrm: true, size: "v", rmWord: true, op: 2, exec: movzx },
  { name: "movsx", map: 1, code: 0xbe, modrm: true, size: "v", rmByte: true, op: 1, exec: movsx },
  { name: "movsx", map: 1, code: 0xbf, modrm: true, size: "v", rmWord: true, op: 2, exec: movsx },
  { name: "movsxd", map: 0, code: 0x63, modrm: true, size: "v", op: 4, exec: movsx, mode: "only64" },
  { name: "lea", map: 0, code: 0x8d, modrm: true, size: "v", exec: lea, form: "mem" },
  { name: "xchg", map: 0, code: 0x86, modrm: true, size: "b", exec: xchg, lockable: true },
  { name: "xchg", map: 0, code: 0x87, modrm: true, size: "v", exec: xchg, lockable: true },
  { name: "pause", map: 0, code: 0x90, prefix: 0xf3, modrm: false, size: "v", exec: nop },
  { name: "nop", map: 0, code: 0x90, plusReg: true, modrm: false, size: "v", exec: nop90 },
  { name: "nop", map: 1, code: 0x1f, modrm: true, size: "v", exec: nop },
  // 0F 18–0F 1E: prefetch and hint NOPs (incl. ENDBR64 = F3 0F 1E FA).
  { name: "nop", map: 1, code: 0x18, modrm: true, size: "v", exec: nop },
  { name: "nop", map: 1, code: 0x19, modrm: true, size: "v", exec: nop },
  { name: "nop", map: 1, code: 0x1a, modrm: true, size: "v", exec: nop },
  { name: "nop", map: 1, code: 0x1b, modrm: true, size: "v", exec: nop },
  { name: "nop", map: 1, code: 0x1c, modrm: true, size: "v", exec: nop },
  { name: "nop", map: 1, code: 0x1d, modrm: true, size: "v", exec: nop },
  { name: "nop", map: 1, code: 0x1e, modrm: true, size: "v", exec: nop },
  { name: "push", map: 0, code: 0x50, plusReg: true, modrm: false, size: "d64", exec: pushReg },
  { name: "pop", map: 0, code: 0x58, plusReg: true, modrm: false, size: "d64", exec: popReg },
  { name: "push", map: 0, code: 0x68, modrm: false, size: "d64", imm: "iz", exec: pushImm },
  { name: "push", map: 0, code: 0x6a, modrm: false, size: "d64", imm: "ibs", exec: pushImm },
  { name: "push", map: 0, code: 0xff, ext: 6, modrm: true, size: "d64", exec: pushRm },
  { name: "pop", map: 0, code: 0x8f, ext: 0, modrm: true, size: "d64", exec: popRm },
  { name: "leave", map: 0, code: 0xc9, modrm: false, size: "d64", exec: leave },
  { name: "enter", map: 0, code: 0xc8, modrm: false, size: "d64", imm: "iwib", exec: enter },
  { name: "cbw", map: 0, code: 0x98, modrm: false, size: "v", exec: cbw },
  { name: "cwd", map: 0, code: 0x99, modrm: false, size: "v", exec: cwd },
];
