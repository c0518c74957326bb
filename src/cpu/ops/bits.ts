/**
 * Bit and byte operations: BT/BTS/BTR/BTC (register offset and group 8 imm8), BSF/BSR,
 * TZCNT/LZCNT, POPCNT, BSWAP, CMPXCHG, XADD, CMPXCHG8B/16B, MOVBE. SDM vol. 2A/2B under each
 * mnemonic.
 */
import { GP } from "../../x86/exceptions.js";
import { ARITH, CF, ZF } from "../../x86/flags.js";
import type { Cpu } from "../cpu.js";
import { LF_ADD, LF_NONE, LF_RES } from "../flags.js";
import type { Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";
import { ALU_CMP, alu } from "./alu.js";

/**
 * Set one of CF or OF (`bit`) to `v` (0 or `bit`); the other status flags keep their values.
 * Under LF_RES both live in lfAux; otherwise the flags are materialized first.
 */
export function setCfOrOf(c: Cpu, bit: number, v: number): void {
  if (c.lfOp === LF_RES) c.lfAux = (c.lfAux & ~bit) | v;
  else if (c.lfOp === LF_NONE) c.flagsBase = (c.flagsBase & ~bit) | v;
  else {
    c.flagsBase = (c.getFlags() & ~bit) | v;
    c.lfOp = LF_NONE;
  }
}

/** Set ZF only (CMPXCHG8B/16B). */
function setZfOnly(c: Cpu, zf: boolean): void {
  const f = c.lfOp === LF_NONE ? c.flagsBase : c.getFlags();
  c.flagsBase = zf ? f | ZF : f & ~ZF;
  c.lfOp = LF_NONE;
}

// =====================================================================================
// BT, BTS, BTR, BTC (SDM vol. 2A "BT", "BTC", "BTR", "BTS")
// =====================================================================================

const BT = 0;
const BTS = 1;
const BTR = 2;

/**
 * Apply bit operation `op` to bit `bit` of the value lo:hi (operand `size`); CF = the old bit.
 * Returns the new low half, c.vHi the new high half.
 */
function bitOp(op: number, lo: number, hi: number, bit: number): number {
  resCf = bit >= 32 ? (hi >>> (bit - 32)) & 1 : (lo >>> bit) & 1;
  const m = 1 << (bit & 31);
  resHi = hi;
  if (op === BT) return lo;
  if (bit >= 32) {
    resHi = op === BTS ? hi | m : op === BTR ? hi & ~m : hi ^ m;
    return lo;
  }
  return op === BTS ? lo | m : op === BTR ? lo & ~m : lo ^ m;
}
let resCf = 0;
let resHi = 0;

/** BT* Ev, Gv (0F A3/AB/B3/BB). A memory operand addresses a bit string: the signed offset may reach beyond it. */
function btRmReg(c: Cpu, i: Insn): void {
  const size = i.size;
  const op = i.op;
  const bits = size * 8;
  if (!i.isMem) {
    const bit = c.lo[i.reg] & (bits - 1);
    const v = c.getReg(i.rm, size);
    const r = bitOp(op, v, c.vHi, bit);
    if (op !== BT) c.setReg(i.rm, size, size === 2 ? r & 0xffff : r, resHi);
    setCfOrOf(c, CF, resCf);
    return;
  }
  // Byte displacement = (offset SAR log2(bits)) · size, i.e. offset SAR 3 with the low bits cleared.
  const offLo = c.lo[i.reg];
  let dLo: number;
  let dHi: number;
  if (size === 8) {
    const offHi = c.hi[i.reg];
    dLo = ((offLo >>> 3) | (offHi << 29)) & ~7;
    dHi = offHi >> 3;
  } else {
    const off = size === 2 ? (offLo << 16) >> 16 : offLo;
    dLo = (off >> 3) & (size === 2 ? ~1 : ~3);
    dHi = dLo >> 31;
  }
  const bit = offLo & (bits - 1);
  c.ea(i);
  const aLo = (c.eaLo + dLo) | 0;
  let aHi = (c.eaHi + dHi + (aLo >>> 0 < c.eaLo >>> 0 ? 1 : 0)) | 0;
  if (!c.mode64 || (i.asize === 4 && i.seg < 4)) aHi = 0; // 32-bit address arithmetic wraps
  c.eaLo = aLo;
  c.eaHi = aHi;
  const v = c.readMem(aLo, aHi, size);
  const r = bitOp(op, v, c.vHi, bit);
  if (op !== BT) c.writeMem(aLo, aHi, size, size === 2 ? r & 0xffff : r, resHi);
  setCfOrOf(c, CF, resCf);
}

/** BT* Ev, Ib (group 8, 0F BA /4../7): the offset is taken modulo the operand width. */
function btRmImm(c: Cpu, i: Insn): void {
  const bit = i.imm & (i.size * 8 - 1);
  const v = c.readRm(i);
  const r = bitOp(i.op, v, c.vHi, bit);
  if (i.op !== BT) c.writeRm(i, i.size === 2 ? r & 0xffff : r, resHi);
  setCfOrOf(c, CF, resCf);
}

// =====================================================================================
// BSF, BSR, TZCNT, LZCNT, POPCNT
// =====================================================================================

/** Index of the lowest set bit of a nonzero int32. */
function ctz32(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/**
 * BSF/BSR Gv, Ev (0F BC/BD; SDM "BSF", "BSR"): ZF = (source = 0). With a zero source the
 * destination is left unchanged, except that a 32-bit destination's upper half is cleared as
 * on Intel cores. The undefined CF/OF/SF/AF/PF are derived from the source (CF = OF = AF = 0).
 */
function bsf(c: Cpu, i: Insn): void {
  const v = c.readRm(i);
  const vh = c.vHi;
  const size = i.size;
  if ((v | vh) === 0) {
    if (size === 4) c.hi[i.reg] = 0;
  } else {
    let r: number;
    if (i.op === 0) r = v !== 0 ? ctz32(v) : 32 + ctz32(vh);
    else if (size === 8 && vh !== 0) r = 63 - Math.clz32(vh);
    else r = 31 - Math.clz32(v);
    c.setReg(i.reg, size, r, 0);
  }
  c.setLazyRes(size, v, vh, 0);
}

/** TZCNT/LZCNT Gv, Ev (F3 0F BC/BD): count of trailing/leading zeros; CF = (source = 0), ZF = (result = 0). */
function tzcnt(c: Cpu, i: Insn): void {
  const v = c.readRm(i);
  const vh = c.vHi;
  const size = i.size;
  let r: number;
  if (i.op === 0) {
    if (size === 8) r = v !== 0 ? ctz32(v) : vh !== 0 ? 32 + ctz32(vh) : 64;
    else r = v !== 0 ? ctz32(v) : size * 8;
  } else if (size === 8) r = vh !== 0 ? Math.clz32(vh) : 32 + Math.clz32(v);
  else r = Math.clz32(v) - (32 - size * 8);
  c.setReg(i.reg, size, r, 0);
  c.setLazyRes(size, r, 0, (v | vh) === 0 ? CF : 0);
}

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** POPCNT Gv, Ev (F3 0F B8): ZF = (source = 0); OF, SF, AF, CF, PF cleared. */
function popcnt(c: Cpu, i: Insn): void {
  const v = c.readRm(i);
  const vh = c.vHi;
  c.setReg(i.reg, i.size, popcount32(v) + popcount32(vh), 0);
  c.flagsBase = (c.flagsBase & ~ARITH) | ((v | vh) === 0 ? ZF : 0);
  c.lfOp = LF_NONE;
}

// =====================================================================================
// BSWAP, MOVBE
// =====================================================================================

function bswap32(x: number): number {
  return (x << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
}

/** BSWAP r32/r64 (0F C8+r). The 16-bit form is undefined: Intel cores clear the low word. */
function bswap(c: Cpu, i: Insn): void {
  const r = i.reg;
  if (i.size === 8) {
    const l = c.lo[r];
    c.lo[r] = bswap32(c.hi[r]);
    c.hi[r] = bswap32(l);
  } else if (i.size === 4) c.set32(r, bswap32(c.lo[r]));
  else c.set16(r, 0);
}

/** MOVBE Gv, Mv (0F 38 F0) and Mv, Gv (0F 38 F1): load/store with bytes reversed. */
function movbeLoad(c: Cpu, i: Insn): void {
  const v = c.readRm(i);
  const size = i.size;
  if (size === 8) c.setReg(i.reg, 8, bswap32(c.vHi), bswap32(v));
  else if (size === 4) c.set32(i.reg, bswap32(v));
  else c.set16(i.reg, ((v & 0xff) << 8) | (v >>> 8));
}

function movbeStore(c: Cpu, i: Insn): void {
  const size = i.size;
  const v = c.lo[i.reg];
  if (size === 8) c.storeRm(i, bswap32(c.hi[i.reg]), bswap32(v));
  else if (size === 4) c.storeRm(i, bswap32(v), 0);
  else c.storeRm(i, ((v & 0xff) << 8) | ((v >>> 8) & 0xff), 0);
}

// =====================================================================================
// CMPXCHG, XADD, CMPXCHG8B/16B
// =====================================================================================

/**
 * CMPXCHG Eb/Ev, Gb/Gv (0F B0/B1): compare the accumulator with the destination (flags as CMP);
 * equal: destination = source; else accumulator = destination. A memory destination is always
 * written (with its old value on failure); a register destination is untouched on failure.
 */
function cmpxchg(c: Cpu, i: Insn): void {
  const size = i.size;
  const d = c.readRm(i);
  const dh = size === 8 ? c.vHi : 0;
  const a = c.getReg(0, size);
  const ah = c.vHi;
  if (a === d && ah === dh) {
    const s = c.getReg(i.reg, size);
    c.writeRm(i, s, c.vHi);
  } else {
    if (i.isMem) c.writeRm(i, d, dh);
    c.setReg(0, size, d, dh);
  }
  alu(c, ALU_CMP, size, a, ah, d, dh);
}

/** XADD Eb/Ev, Gb/Gv (0F C0/C1): temp = dst + src; src = dst; dst = temp (flags as ADD). */
function xadd(c: Cpu, i: Insn): void {
  const size = i.size;
  const d = c.readRm(i);
  const dh = size === 8 ? c.vHi : 0;
  const s = c.getReg(i.reg, size);
  const sh = c.vHi;
  let r: number;
  let rh = 0;
  if (size === 8) {
    const t = (d >>> 0) + (s >>> 0);
    r = t | 0;
    rh = (dh + sh + (t > 0xffffffff ? 1 : 0)) | 0;
  } else r = size === 1 ? (d + s) & 0xff : size === 2 ? (d + s) & 0xffff : (d + s) | 0;
  if (i.isMem) {
    c.writeRm(i, r, rh);
    c.setReg(i.reg, size, d, dh);
  } else {
    // Register order matters when both operands are the same register: the sum wins.
    c.setReg(i.reg, size, d, dh);
    c.writeRm(i, r, rh);
  }
  c.setLazy(LF_ADD, size, r, rh, d, dh, s, sh, 0);
}

/**
 * CMPXCHG8B m64 / CMPXCHG16B m128 (0F C7 /1, REX.W selects 16B): compare EDX:EAX (RDX:RAX)
 * with memory; equal: store ECX:EBX (RCX:RBX), ZF = 1; else load memory into EDX:EAX
 * (RDX:RAX, 32-bit writes zero-extend), ZF = 0. Memory is written either way. CMPXCHG16B
 * requires a 16-byte aligned operand (#GP(0)). Other flags are unchanged.
 */
function cmpxchg8b(c: Cpu, i: Insn): void {
  c.ea(i);
  const a = c.eaLo;
  const ah = c.eaHi;
  const lo = c.lo;
  const hi = c.hi;
  if (i.size === 8) {
    if ((a & 15) !== 0) c.raise(GP, 0);
    const m0 = c.read64(a, ah);
    const m0h = c.vHi;
    const a8 = (a + 8) | 0; // same page: the operand is 16-byte aligned
    const m1 = c.read64(a8, ah);
    const m1h = c.vHi;
    if (m0 === lo[0] && m0h === hi[0] && m1 === lo[2] && m1h === hi[2]) {
      c.write64(a, ah, lo[3], hi[3]);
      c.write64(a8, ah, lo[1], hi[1]);
      setZfOnly(c, true);
    } else {
      c.write64(a, ah, m0, m0h);
      c.write64(a8, ah, m1, m1h);
      lo[0] = m0;
      hi[0] = m0h;
      lo[2] = m1;
      hi[2] = m1h;
      setZfOnly(c, false);
    }
    return;
  }
  const m = c.read64(a, ah);
  const mh = c.vHi;
  if (m === lo[0] && mh === lo[2]) {
    c.write64(a, ah, lo[3], lo[1]);
    setZfOnly(c, true);
  } else {
    c.write64(a, ah, m, mh);
    c.set32(0, m);
    c.set32(2, mh);
    setZfOnly(c, false);
  }
}

const table: OpDef[] = [
  { name: "bt", map: 1, code: 0xa3, modrm: true, size: "v", op: BT, exec: btRmReg },
  { name: "bts", map: 1, code: 0xab, modrm: true, size: "v", op: BTS, exec: btRmReg, lockable: true },
  { name: "btr", map: 1, code: 0xb3, modrm: true, size: "v", op: BTR, exec: btRmReg, lockable: true },
  { name: "btc", map: 1, code: 0xbb, modrm: true, size: "v", op: 3, exec: btRmReg, lockable: true },
  { name: "bt", map: 1, code: 0xba, ext: 4, modrm: true, size: "v", imm: "ib", op: BT, exec: btRmImm },
  {
    name: "bts",
    map: 1,
    code: 0xba,
    ext: 5,
    modrm: true,
    size: "v",
    imm: "ib",
    op: BTS,
    exec: btRmImm,
    lockable: true,
  },
  {
    name: "btr",
    map: 1,
    code: 0xba,
    ext: 6,
    modrm: true,
    size: "v",
    imm: "ib",
    op: BTR,
    exec: btRmImm,
    lockable: true,
  },
  { name: "btc", map: 1, code: 0xba, ext: 7, modrm: true, size: "v", imm: "ib", op: 3, exec: btRmImm, lockable: true },
  { name: "bsf", map: 1, code: 0xbc, modrm: true, size: "v", op: 0, exec: bsf },
  { name: "bsr", map: 1, code: 0xbd, modrm: true, size: "v", op: 1, exec: bsf },
  { name: "tzcnt", map: 1, code: 0xbc, prefix: 0xf3, modrm: true, size: "v", op: 0, exec: tzcnt },
  { name: "lzcnt", map: 1, code: 0xbd, prefix: 0xf3, modrm: true, size: "v", op: 1, exec: tzcnt },
  { name: "popcnt", map: 1, code: 0xb8, prefix: 0xf3, modrm: true, size: "v", exec: popcnt },
  { name: "bswap", map: 1, code: 0xc8, plusReg: true, modrm: false, size: "v", exec: bswap },
  { name: "cmpxchg", map: 1, code: 0xb0, modrm: true, size: "b", exec: cmpxchg, lockable: true },
  { name: "cmpxchg", map: 1, code: 0xb1, modrm: true, size: "v", exec: cmpxchg, lockable: true },
  { name: "xadd", map: 1, code: 0xc0, modrm: true, size: "b", exec: xadd, lockable: true },
  { name: "xadd", map: 1, code: 0xc1, modrm: true, size: "v", exec: xadd, lockable: true },
  {
    name: "cmpxchg8b",
    map: 1,
    code: 0xc7,
    ext: 1,
    form: "mem",
    modrm: true,
    size: "v",
    exec: cmpxchg8b,
    lockable: true,
  },
  { name: "movbe", map: 2, code: 0xf0, prefix: 0, form: "mem", modrm: true, size: "v", exec: movbeLoad },
  { name: "movbe", map: 2, code: 0xf1, prefix: 0, form: "mem", modrm: true, size: "v", exec: movbeStore },
];

export const BITS_OPS: readonly OpDef[] = table;
