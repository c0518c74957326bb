/**
 * Shifts and rotates: group 2 ROL/ROR/RCL/RCR/SHL(SAL)/SHR/SAR (C0/C1 ib, D0/D1 by 1, D2/D3 by
 * CL) and the double-precision shifts SHLD/SHRD (0F A4/A5, 0F AC/AD). SDM vol. 2B "RCL/RCR/ROL/
 * ROR", "SAL/SAR/SHL/SHR", "SHLD", "SHRD".
 *
 * The count is masked to 5 bits (6 with a 64-bit operand); a masked count of 0 changes no flags
 * (a 32-bit register destination is still zero-extended, as every 32-bit write is). OF is
 * architecturally defined for count 1 only; for larger counts the count-1 formula is applied to
 * the final result, as Intel cores do. AF is undefined for shifts: it is cleared. Rotates change
 * only CF and OF. SHLD/SHRD of a 16-bit operand by 17..31 are undefined: the result continues
 * the dst:src:dst bit pattern.
 */
import { CF, OF } from "../../x86/flags.js";
import type { Cpu } from "../cpu.js";
import { LF_NONE, LF_RES } from "../flags.js";
import type { Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";

const ROL = 0;
const ROR = 1;
const RCL = 2;
const RCR = 3;
const SHL = 4;
const SHR = 5;
const SAL = 6;
// 7 = SAR (the default case).

/** Set CF and OF only, leaving the other status flags as they are. */
function setCfOf(c: Cpu, cf: number, of: number): void {
  if (c.lfOp === LF_RES) {
    // ZF/SF/PF come from the recorded result; CF/OF/AF live in aux.
    c.lfAux = (c.lfAux & ~(CF | OF)) | cf | (of << 11);
  } else if (c.lfOp === LF_NONE) {
    c.flagsBase = (c.flagsBase & ~(CF | OF)) | cf | (of << 11);
  } else {
    c.flagsBase = (c.getFlags() & ~(CF | OF)) | cf | (of << 11);
    c.lfOp = LF_NONE;
  }
}

/** Zero-extension of a 32-bit register destination when the masked count is 0. */
function countZero(c: Cpu, i: Insn): void {
  if (i.size === 4 && !i.isMem) c.hi[i.rm] = 0;
}

/** Execute group-2 operation i.op on r/m by `raw` (before masking). */
function group2(c: Cpu, i: Insn, raw: number): void {
  const size = i.size;
  const count = raw & (size === 8 ? 63 : 31);
  const d = c.readRm(i);
  const dh = c.vHi;
  if (count === 0) {
    countZero(c, i);
    return;
  }
  if (size === 8) {
    group2q(c, i, count, d, dh);
    return;
  }
  const w = size * 8;
  const mask = size === 1 ? 0xff : size === 2 ? 0xffff : -1;
  const msb = w - 1;
  let r: number;
  let cf: number;
  switch (i.op) {
    case ROL: {
      const rc = count & msb;
      r = rc === 0 ? d : ((d << rc) | (d >>> (w - rc))) & mask;
      cf = r & 1;
      c.writeRm(i, r, 0);
      setCfOf(c, cf, ((r >>> msb) & 1) ^ cf);
      return;
    }
    case ROR: {
      const rc = count & msb;
      r = rc === 0 ? d : ((d >>> rc) | (d << (w - rc))) & mask;
      cf = (r >>> msb) & 1;
      c.writeRm(i, r, 0);
      setCfOf(c, cf, cf ^ ((r >>> (msb - 1)) & 1));
      return;
    }
    case RCL: {
      const t = size === 1 ? count % 9 : size === 2 ? count % 17 : count;
      cf = c.getCF();
      if (t !== 0) {
        if (size === 4) {
          r = t === 1 ? (d << 1) | cf : (d << t) | (cf << (t - 1)) | (d >>> (33 - t));
          cf = (d >>> (32 - t)) & 1;
        } else {
          // Rotate the (w+1)-bit value CF:dst.
          const v = d | (cf << w);
          const v2 = ((v << t) | (v >>> (w + 1 - t))) & ((mask << 1) | 1);
          r = v2 & mask;
          cf = (v2 >>> w) & 1;
        }
      } else r = d;
      c.writeRm(i, r, 0);
      setCfOf(c, cf, ((r >>> msb) & 1) ^ cf);
      return;
    }
    case RCR: {
      const t = size === 1 ? count % 9 : size === 2 ? count % 17 : count;
      cf = c.getCF();
      if (t !== 0) {
        if (size === 4) {
          r = t === 1 ? (d >>> 1) | (cf << 31) : (d >>> t) | (cf << (32 - t)) | (d << (33 - t));
          cf = (d >>> (t - 1)) & 1;
        } else {
          const v = d | (cf << w);
          const v2 = ((v >>> t) | (v << (w + 1 - t))) & ((mask << 1) | 1);
          r = v2 & mask;
          cf = (v2 >>> w) & 1;
        }
      } else r = d;
      c.writeRm(i, r, 0);
      setCfOf(c, cf, ((r >>> msb) & 1) ^ ((r >>> (msb - 1)) & 1));
      return;
    }
    case SHL:
    case SAL: {
      r = (d << count) & mask;
      cf = count <= w ? (d >>> (w - count)) & 1 : 0;
      c.writeRm(i, r, 0);
      c.setLazyRes(size, r, 0, cf | ((((r >>> msb) & 1) ^ cf) << 11));
      return;
    }
    case SHR: {
      r = (d >>> count) | 0;
      cf = count <= w ? (d >>> (count - 1)) & 1 : 0;
      c.writeRm(i, r, 0);
      c.setLazyRes(size, r, 0, cf | (((d >>> msb) & 1) << 11));
      return;
    }
    default: {
      // SAR
      const ds = size === 1 ? (d << 24) >> 24 : size === 2 ? (d << 16) >> 16 : d;
      r = (ds >> count) & mask;
      cf = (ds >> (count - 1)) & 1;
      c.writeRm(i, r, 0);
      c.setLazyRes(size, r, 0, cf);
    }
  }
}

/** Group 2 on a 64-bit operand, count 1..63. */
function group2q(c: Cpu, i: Insn, count: number, d: number, dh: number): void {
  let rl: number;
  let rh: number;
  let cf: number;
  switch (i.op) {
    case ROL:
    case ROR: {
      // ROR by n = ROL by 64-n.
      let rc = i.op === ROL ? count : (64 - count) & 63;
      let l = d;
      let h = dh;
      if (rc >= 32) {
        l = dh;
        h = d;
        rc -= 32;
      }
      if (rc !== 0) {
        rl = (l << rc) | (h >>> (32 - rc));
        rh = (h << rc) | (l >>> (32 - rc));
      } else {
        rl = l;
        rh = h;
      }
      c.writeRm(i, rl, rh);
      if (i.op === ROL) {
        cf = rl & 1;
        setCfOf(c, cf, (rh >>> 31) ^ cf);
      } else {
        cf = rh >>> 31;
        setCfOf(c, cf, cf ^ ((rh >>> 30) & 1));
      }
      return;
    }
    case RCL: {
      cf = c.getCF();
      rl = d;
      rh = dh;
      for (let k = 0; k < count; k++) {
        const n = rh >>> 31;
        rh = (rh << 1) | (rl >>> 31);
        rl = (rl << 1) | cf;
        cf = n;
      }
      c.writeRm(i, rl, rh);
      setCfOf(c, cf, (rh >>> 31) ^ cf);
      return;
    }
    case RCR: {
      cf = c.getCF();
      rl = d;
      rh = dh;
      for (let k = 0; k < count; k++) {
        const n = rl & 1;
        rl = (rl >>> 1) | (rh << 31);
        rh = (rh >>> 1) | (cf << 31);
        cf = n;
      }
      c.writeRm(i, rl, rh);
      setCfOf(c, cf, (rh >>> 31) ^ ((rh >>> 30) & 1));
      return;
    }
    case SHL:
    case SAL:
      if (count < 32) {
        rh = (dh << count) | (d >>> (32 - count));
        rl = d << count;
        cf = (dh >>> (32 - count)) & 1;
      } else {
        rh = d << (count - 32);
        rl = 0;
        cf = count === 32 ? dh & 1 : (d >>> (64 - count)) & 1;
      }
      c.writeRm(i, rl, rh);
      c.setLazyRes(8, rl, rh, cf | (((rh >>> 31) ^ cf) << 11));
      return;
    case SHR:
      if (count < 32) {
        rl = (d >>> count) | (dh << (32 - count));
        rh = dh >>> count;
        cf = (d >>> (count - 1)) & 1;
      } else {
        rl = dh >>> (count - 32);
        rh = 0;
        cf = count === 32 ? d >>> 31 : (dh >>> (count - 33)) & 1;
      }
      c.writeRm(i, rl, rh);
      c.setLazyRes(8, rl, rh, cf | ((dh >>> 31) << 11));
      return;
    default:
      // SAR
      if (count < 32) {
        rl = (d >>> count) | (dh << (32 - count));
        rh = dh >> count;
        cf = (d >>> (count - 1)) & 1;
      } else {
        rl = dh >> (count - 32);
        rh = dh >> 31;
        cf = count === 32 ? d >>> 31 : (dh >> (count - 33)) & 1;
      }
      c.writeRm(i, rl, rh);
      c.setLazyRes(8, rl, rh, cf);
  }
}

/** C0/C1: by imm8. */
function shiftImm(c: Cpu, i: Insn): void {
  group2(c, i, i.imm);
}

/** Fast path: C1 /4../7 (SHL/SHR/SAL/SAR by imm8) on a 32/64-bit register, the compiled-code staple. */
function shiftRegImm(c: Cpu, i: Insn): void {
  const size = i.size;
  if (size === 2) {
    group2(c, i, i.imm);
    return;
  }
  const r = i.rm;
  if (size === 8) {
    const count = i.imm & 63;
    if (count !== 0) group2q(c, i, count, c.lo[r], c.hi[r]);
    return;
  }
  const count = i.imm & 31;
  const d = c.lo[r];
  c.hi[r] = 0;
  if (count === 0) return;
  let res: number;
  let cf: number;
  let of: number;
  if (i.op === SHR) {
    res = (d >>> count) | 0;
    cf = (d >>> (count - 1)) & 1;
    of = d >>> 31;
  } else if (i.op === SHL || i.op === SAL) {
    res = d << count;
    cf = (d >>> (32 - count)) & 1;
    of = (res >>> 31) ^ cf;
  } else {
    res = d >> count;
    cf = (d >> (count - 1)) & 1;
    of = 0;
  }
  c.lo[r] = res;
  c.setLazyRes(4, res, 0, cf | (of << 11));
}

/** D0/D1: by 1. */
function shiftOne(c: Cpu, i: Insn): void {
  group2(c, i, 1);
}

/** D2/D3: by CL. */
function shiftCl(c: Cpu, i: Insn): void {
  group2(c, i, c.lo[1] & 0xff);
}

/**
 * SHLD/SHRD r/m, reg, count (i.op: 0 = SHLD, 1 = SHRD). SHLD shifts dst left filling from the
 * top of src; SHRD shifts dst right filling from the bottom of src. CF = last bit shifted out of
 * dst; OF = sign change of dst.
 */
function shiftDouble(c: Cpu, i: Insn, raw: number): void {
  const size = i.size;
  const count = raw & (size === 8 ? 63 : 31);
  const d = c.readRm(i);
  const dh = c.vHi;
  if (count === 0) {
    countZero(c, i);
    return;
  }
  const s = c.lo[i.reg];
  const sh = c.hi[i.reg];
  let rl: number;
  let rh = 0;
  let cf: number;
  let of: number;
  if (i.op === 0) {
    // SHLD
    if (size === 8) {
      if (count < 32) {
        rh = (dh << count) | (d >>> (32 - count));
        rl = (d << count) | (sh >>> (32 - count));
        cf = (dh >>> (32 - count)) & 1;
      } else if (count === 32) {
        rh = d;
        rl = sh;
        cf = dh & 1;
      } else {
        const k = count - 32;
        rh = (d << k) | (sh >>> (32 - k));
        rl = (sh << k) | (s >>> (32 - k));
        cf = (d >>> (32 - k)) & 1;
      }
      of = (rh >>> 31) ^ (dh >>> 31);
    } else if (size === 4) {
      rl = (d << count) | (s >>> (32 - count));
      cf = (d >>> (32 - count)) & 1;
      of = (rl >>> 31) ^ (d >>> 31);
    } else {
      const s16 = s & 0xffff;
      if (count <= 16) {
        rl = ((d << count) | (s16 >>> (16 - count))) & 0xffff;
        cf = (d >>> (16 - count)) & 1;
      } else {
        rl = ((s16 << (count - 16)) | (d >>> (32 - count))) & 0xffff;
        cf = (s16 >>> (32 - count)) & 1;
      }
      of = ((rl ^ d) >>> 15) & 1;
    }
  } else {
    // SHRD
    if (size === 8) {
      if (count < 32) {
        rl = (d >>> count) | (dh << (32 - count));
        rh = (dh >>> count) | (s << (32 - count));
        cf = (d >>> (count - 1)) & 1;
      } else if (count === 32) {
        rl = dh;
        rh = s;
        cf = d >>> 31;
      } else {
        const k = count - 32;
        rl = (dh >>> k) | (s << (32 - k));
        rh = (s >>> k) | (sh << (32 - k));
        cf = (dh >>> (k - 1)) & 1;
      }
      of = (rh >>> 31) ^ (dh >>> 31);
    } else if (size === 4) {
      rl = (d >>> count) | (s << (32 - count));
      cf = (d >>> (count - 1)) & 1;
      of = (rl >>> 31) ^ (d >>> 31);
    } else {
      const s16 = s & 0xffff;
      if (count <= 16) {
        rl = ((d >>> count) | (s16 << (16 - count))) & 0xffff;
        cf = (d >>> (count - 1)) & 1;
      } else {
        rl = ((s16 >>> (count - 16)) | (d << (32 - count))) & 0xffff;
        cf = (s16 >>> (count - 17)) & 1;
      }
      of = ((rl ^ d) >>> 15) & 1;
    }
  }
  c.writeRm(i, rl, rh);
  c.setLazyRes(size, rl, rh, cf | (of << 11));
}

function shiftDoubleImm(c: Cpu, i: Insn): void {
  shiftDouble(c, i, i.imm);
}

function shiftDoubleCl(c: Cpu, i: Insn): void {
  shiftDouble(c, i, c.lo[1] & 0xff);
}

// /6 is the undocumented SAL alias of SHL; objdump prints it as "shl".
const NAMES = ["rol", "ror", "rcl", "rcr", "shl", "shr", "shl", "sar"];
const table: OpDef[] = [];
for (let op = 0; op < 8; op++) {
  const name = NAMES[op];
  table.push(
    { name, map: 0, code: 0xc0, ext: op, modrm: true, size: "b", imm: "ib", op, exec: shiftImm },
    {
      name,
      map: 0,
      code: 0xc1,
      ext: op,
      modrm: true,
      size: "v",
      imm: "ib",
      op,
      exec: shiftImm,
      form: op >= SHL ? "mem" : undefined,
    },
    { name, map: 0, code: 0xd0, ext: op, modrm: true, size: "b", op, exec: shiftOne },
    { name, map: 0, code: 0xd1, ext: op, modrm: true, size: "v", op, exec: shiftOne },
    { name, map: 0, code: 0xd2, ext: op, modrm: true, size: "b", op, exec: shiftCl },
    { name, map: 0, code: 0xd3, ext: op, modrm: true, size: "v", op, exec: shiftCl },
  );
}
for (let op = SHL; op < 8; op++) {
  table.push({
    name: NAMES[op],
    map: 0,
    code: 0xc1,
    ext: op,
    modrm: true,
    size: "v",
    imm: "ib",
    op,
    exec: shiftRegImm,
    form: "reg",
  });
}
table.push(
  { name: "shld", map: 1, code: 0xa4, modrm: true, size: "v", imm: "ib", op: 0, exec: shiftDoubleImm },
  { name: "shld", map: 1, code: 0xa5, modrm: true, size: "v", op: 0, exec: shiftDoubleCl },
  { name: "shrd", map: 1, code: 0xac, modrm: true, size: "v", imm: "ib", op: 1, exec: shiftDoubleImm },
  { name: "shrd", map: 1, code: 0xad, modrm: true, size: "v", op: 1, exec: shiftDoubleCl },
);

export const SHIFT_OPS: readonly OpDef[] = table;
