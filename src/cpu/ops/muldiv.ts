/**
 * Multiply and divide: MUL/IMUL/DIV/IDIV (group 3, F6/F7 /4–/7), IMUL Gv,Ev (0F AF) and
 * IMUL Gv,Ev,imm (69, 6B). SDM vol. 2A "MUL", "IMUL", "DIV", "IDIV".
 *
 * 64-bit values are int32 halves; the 64×64→128 product is built from 16-bit limbs with double
 * arithmetic (every partial sum stays below 2^53), and 128/64 division uses exact double long
 * division when the divisor is small and a restoring shift-subtract loop otherwise. No BigInt.
 *
 * Flags: MUL/IMUL define only CF and OF; SF/ZF/PF come from the low half of the result and AF
 * is 0 (deterministic for the undefined ones). DIV/IDIV leave all flags unchanged (undefined).
 */
import { DE } from "../../x86/exceptions.js";
import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";

const CF_OF = 0x801; // CF | OF as RFLAGS bits, for setLazyRes
const TWO32 = 4294967296;

// ---- Scratch results (module-level: no allocation on the hot path). ----
/** 128-bit product, 32-bit words from least significant (int32). */
export let p0 = 0;
export let p1 = 0;
export let p2 = 0;
export let p3 = 0;
/** Quotient and remainder of the last division (int32 halves). */
let qLo = 0;
let qHi = 0;
let rLo = 0;
let rHi = 0;

/** Unsigned 32×32→64 into p0 (low) and p1 (high). */
export function mulU32(a: number, b: number): void {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const ll = a0 * b0;
  const mid = a1 * b0 + a0 * b1 + Math.floor(ll / 65536); // < 2^34
  const midLo = mid & 0xffff; // ToInt32 is modular, so the low bits are exact
  p0 = (ll & 0xffff) | (midLo << 16);
  p1 = (a1 * b1 + (mid - midLo) / 65536) | 0;
}

/** Unsigned 64×64→128 into p0..p3 (schoolbook over 16-bit limbs). */
export function mulU64(aLo: number, aHi: number, bLo: number, bHi: number): void {
  const a0 = aLo & 0xffff;
  const a1 = aLo >>> 16;
  const a2 = aHi & 0xffff;
  const a3 = aHi >>> 16;
  const b0 = bLo & 0xffff;
  const b1 = bLo >>> 16;
  const b2 = bHi & 0xffff;
  const b3 = bHi >>> 16;
  // Each column sum is < 4·2^32 + carry < 2^35: exact in a double.
  let t = a0 * b0;
  const w0 = t & 0xffff;
  t = (t - w0) / 65536 + a0 * b1 + a1 * b0;
  const w1 = t & 0xffff;
  t = (t - w1) / 65536 + a0 * b2 + a1 * b1 + a2 * b0;
  const w2 = t & 0xffff;
  t = (t - w2) / 65536 + a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0;
  const w3 = t & 0xffff;
  t = (t - w3) / 65536 + a1 * b3 + a2 * b2 + a3 * b1;
  const w4 = t & 0xffff;
  t = (t - w4) / 65536 + a2 * b3 + a3 * b2;
  const w5 = t & 0xffff;
  t = (t - w5) / 65536 + a3 * b3;
  const w6 = t & 0xffff;
  const w7 = ((t - w6) / 65536) & 0xffff;
  p0 = w0 | (w1 << 16);
  p1 = w2 | (w3 << 16);
  p2 = w4 | (w5 << 16);
  p3 = w6 | (w7 << 16);
}

/** Signed 64×64→128: the unsigned product minus the two's-complement corrections in the high half. */
function mulS64(aLo: number, aHi: number, bLo: number, bHi: number): void {
  mulU64(aLo, aHi, bLo, bHi);
  if (aHi < 0) {
    const s = (p2 - bLo) | 0;
    p3 = (p3 - bHi - (p2 >>> 0 < bLo >>> 0 ? 1 : 0)) | 0;
    p2 = s;
  }
  if (bHi < 0) {
    const s = (p2 - aLo) | 0;
    p3 = (p3 - aHi - (p2 >>> 0 < aLo >>> 0 ? 1 : 0)) | 0;
    p2 = s;
  }
}

/** Unsigned a >= b for 64-bit halves. */
function uge(aHi: number, aLo: number, bHi: number, bLo: number): boolean {
  return aHi !== bHi ? aHi >>> 0 > bHi >>> 0 : aLo >>> 0 >= bLo >>> 0;
}

/**
 * Unsigned 128/64 division n3:n2:n1:n0 / dHi:dLo into qLo/qHi, rLo/rHi.
 * Precondition: n3:n2 < dHi:dLo (so the quotient fits in 64 bits; the caller raised #DE otherwise).
 */
function udiv128(n3: number, n2: number, n1: number, n0: number, dHi: number, dLo: number): void {
  if (dHi >>> 0 < 0x200000) {
    const d = dHi * TWO32 + (dLo >>> 0); // exact: d < 2^53
    if ((n3 | n2) === 0 && n1 >>> 0 < 0x200000) {
      // The whole dividend is below 2^53.
      const n = (n1 >>> 0) * TWO32 + (n0 >>> 0);
      const q = Math.floor(n / d);
      const r = n - q * d;
      qLo = q | 0;
      qHi = (q / TWO32) | 0;
      rLo = r | 0;
      rHi = (r / TWO32) | 0;
      return;
    }
    if (dHi === 0 && dLo >>> 0 < 0x200000) {
      // 32-bit digits: remainder < 2^21, so rem·2^32 + digit < 2^53.
      // n3 is 0 and n2 < d by the precondition.
      let cur = (n2 >>> 0) * TWO32 + (n1 >>> 0);
      const q1 = Math.floor(cur / d);
      cur = (cur - q1 * d) * TWO32 + (n0 >>> 0);
      const q0 = Math.floor(cur / d);
      const rem = cur - q0 * d;
      qHi = q1 | 0;
      qLo = q0 | 0;
      rLo = rem | 0;
      rHi = 0;
      return;
    }
    if (dHi >>> 0 < 32) {
      // 16-bit digits: remainder < 2^37, so rem·2^16 + digit < 2^53. Start from n3:n2 (< d).
      let rem = (n3 >>> 0) * TWO32 + (n2 >>> 0);
      let cur = rem * 65536 + (n1 >>> 16);
      const q3 = Math.floor(cur / d);
      rem = cur - q3 * d;
      cur = rem * 65536 + (n1 & 0xffff);
      const q2 = Math.floor(cur / d);
      rem = cur - q2 * d;
      cur = rem * 65536 + (n0 >>> 16);
      const q1 = Math.floor(cur / d);
      rem = cur - q1 * d;
      cur = rem * 65536 + (n0 & 0xffff);
      const q0 = Math.floor(cur / d);
      rem = cur - q0 * d;
      qHi = (q3 << 16) | q2;
      qLo = (q1 << 16) | q0;
      rLo = rem | 0;
      rHi = (rem / TWO32) | 0;
      return;
    }
  }
  // Restoring division, one quotient bit per step; the running remainder stays below the divisor.
  let remHi = n3;
  let remLo = n2;
  let qh = 0;
  let ql = 0;
  for (let k = 63; k >= 0; k--) {
    const bit = k >= 32 ? (n1 >>> (k - 32)) & 1 : (n0 >>> k) & 1;
    const top = remHi >>> 31;
    remHi = (remHi << 1) | (remLo >>> 31);
    remLo = (remLo << 1) | bit;
    qh = (qh << 1) | (ql >>> 31);
    ql <<= 1;
    if (top !== 0 || uge(remHi, remLo, dHi, dLo)) {
      const s = (remLo - dLo) | 0;
      remHi = (remHi - dHi - (remLo >>> 0 < dLo >>> 0 ? 1 : 0)) | 0;
      remLo = s;
      ql |= 1;
    }
  }
  qLo = ql;
  qHi = qh;
  rLo = remLo;
  rHi = remHi;
}

/** Unsigned 64/32 division nHi:nLo / d (nHi < d) into qLo, rLo (uint32 values as int32). */
function udiv64by32(nHi: number, nLo: number, d: number): void {
  const dd = d >>> 0;
  if (nHi === 0) {
    const n = nLo >>> 0;
    const q = Math.floor(n / dd);
    qLo = q | 0;
    rLo = (n - q * dd) | 0;
    return;
  }
  // Two 16-bit digits; the partial dividends stay below 2^48.
  let cur = (nHi >>> 0) * 65536 + (nLo >>> 16);
  const q1 = Math.floor(cur / dd);
  cur = (cur - q1 * dd) * 65536 + (nLo & 0xffff);
  const q0 = Math.floor(cur / dd);
  qLo = (q1 << 16) | q0;
  rLo = (cur - q0 * dd) | 0;
}

// =====================================================================================
// Group 3 multiply/divide (F6/F7 /4../7)
// =====================================================================================

/** MUL r/m: unsigned AX = AL·src, DX:AX, EDX:EAX, RDX:RAX = rAX·src. CF = OF = (high half ≠ 0). */
function mul(c: Cpu, i: Insn): void {
  const s = c.readRm(i);
  const sh = c.vHi;
  const lo = c.lo;
  const hi = c.hi;
  switch (i.size) {
    case 1: {
      const r = (lo[0] & 0xff) * s;
      c.set16(0, r);
      c.setLazyRes(1, r & 0xff, 0, r > 0xff ? CF_OF : 0);
      return;
    }
    case 2: {
      const r = (lo[0] & 0xffff) * s;
      c.set16(0, r);
      c.set16(2, r >>> 16);
      c.setLazyRes(2, r & 0xffff, 0, r > 0xffff ? CF_OF : 0);
      return;
    }
    case 4: {
      mulU32(lo[0], s);
      c.set32(0, p0);
      c.set32(2, p1);
      c.setLazyRes(4, p0, 0, p1 !== 0 ? CF_OF : 0);
      return;
    }
    default: {
      mulU64(lo[0], hi[0], s, sh);
      lo[0] = p0;
      hi[0] = p1;
      lo[2] = p2;
      hi[2] = p3;
      c.setLazyRes(8, p0, p1, (p2 | p3) !== 0 ? CF_OF : 0);
    }
  }
}

/** IMUL r/m (one operand): signed; CF = OF = (the full product ≠ sign extension of its low half). */
function imul1(c: Cpu, i: Insn): void {
  const s = c.readRm(i);
  const sh = c.vHi;
  const lo = c.lo;
  const hi = c.hi;
  switch (i.size) {
    case 1: {
      const r = ((lo[0] << 24) >> 24) * ((s << 24) >> 24);
      c.set16(0, r);
      c.setLazyRes(1, r & 0xff, 0, r !== (r << 24) >> 24 ? CF_OF : 0);
      return;
    }
    case 2: {
      const r = ((lo[0] << 16) >> 16) * ((s << 16) >> 16);
      c.set16(0, r);
      c.set16(2, r >> 16);
      c.setLazyRes(2, r & 0xffff, 0, r !== (r << 16) >> 16 ? CF_OF : 0);
      return;
    }
    case 4: {
      const a = lo[0];
      mulU32(a, s);
      let h = p1;
      if (a < 0) h = (h - s) | 0;
      if (s < 0) h = (h - a) | 0;
      c.set32(0, p0);
      c.set32(2, h);
      c.setLazyRes(4, p0, 0, h !== p0 >> 31 ? CF_OF : 0);
      return;
    }
    default: {
      mulS64(lo[0], hi[0], s, sh);
      lo[0] = p0;
      hi[0] = p1;
      lo[2] = p2;
      hi[2] = p3;
      const sx = p1 >> 31;
      c.setLazyRes(8, p0, p1, p2 !== sx || p3 !== sx ? CF_OF : 0);
    }
  }
}

/**
 * DIV r/m: unsigned; #DE on a zero divisor or a quotient too wide for the destination. The SDM
 * leaves the status flags undefined; a faulting DIV/IDIV leaves RFLAGS as it was, as Intel does
 * (AMD hosts change PF: tools/difftest/vendor.ts "de-flags").
 */
function div(c: Cpu, i: Insn): void {
  const d = c.readRm(i);
  const dh = c.vHi;
  const lo = c.lo;
  const hi = c.hi;
  switch (i.size) {
    case 1: {
      if (d === 0) c.raise(DE);
      const n = lo[0] & 0xffff;
      const q = Math.floor(n / d);
      if (q > 0xff) c.raise(DE);
      c.set16(0, ((n - q * d) << 8) | q);
      return;
    }
    case 2: {
      if (d === 0) c.raise(DE);
      const n = (lo[2] & 0xffff) * 65536 + (lo[0] & 0xffff);
      const q = Math.floor(n / d);
      if (q > 0xffff) c.raise(DE);
      c.set16(0, q);
      c.set16(2, n - q * d);
      return;
    }
    case 4: {
      if (d === 0 || lo[2] >>> 0 >= d >>> 0) c.raise(DE);
      udiv64by32(lo[2], lo[0], d);
      c.set32(0, qLo);
      c.set32(2, rLo);
      return;
    }
    default: {
      if ((d | dh) === 0 || uge(hi[2], lo[2], dh, d)) c.raise(DE);
      udiv128(hi[2], lo[2], hi[0], lo[0], dh, d);
      lo[0] = qLo;
      hi[0] = qHi;
      lo[2] = rLo;
      hi[2] = rHi;
    }
  }
}

/**
 * IDIV r/m: signed, quotient truncated toward zero, remainder has the dividend's sign.
 * #DE on a zero divisor or a quotient outside [-2^(n-1), 2^(n-1)-1] (so INT_MIN / -1 faults).
 */
function idiv(c: Cpu, i: Insn): void {
  const s = c.readRm(i);
  const sh = c.vHi;
  const lo = c.lo;
  const hi = c.hi;
  switch (i.size) {
    case 1: {
      if (s === 0) c.raise(DE);
      const n = (lo[0] << 16) >> 16;
      const d = (s << 24) >> 24;
      const q = Math.trunc(n / d);
      if (q > 127 || q < -128) c.raise(DE);
      c.set16(0, (((n - q * d) & 0xff) << 8) | (q & 0xff));
      return;
    }
    case 2: {
      if (s === 0) c.raise(DE);
      const n = (lo[2] << 16) | (lo[0] & 0xffff);
      const d = (s << 16) >> 16;
      const q = Math.trunc(n / d);
      if (q > 32767 || q < -32768) c.raise(DE);
      c.set16(0, q);
      c.set16(2, n - q * d);
      return;
    }
    case 4: {
      if (s === 0) c.raise(DE);
      // Magnitudes: |EDX:EAX| (64-bit) and |src| (32-bit).
      let nh = lo[2];
      let nl = lo[0];
      const nNeg = nh < 0;
      if (nNeg) {
        nl = -nl | 0;
        nh = (~nh + (nl === 0 ? 1 : 0)) | 0;
      }
      const dNeg = s < 0;
      const dm = dNeg ? -s | 0 : s; // 0x80000000 stays as the unsigned magnitude 2^31
      if (nh >>> 0 >= dm >>> 0) c.raise(DE);
      udiv64by32(nh, nl, dm);
      const qm = qLo >>> 0;
      if (nNeg !== dNeg ? qm > 0x80000000 : qm > 0x7fffffff) c.raise(DE);
      c.set32(0, nNeg !== dNeg ? -qm | 0 : qm | 0);
      c.set32(2, nNeg ? -rLo | 0 : rLo);
      return;
    }
    default: {
      if ((s | sh) === 0) c.raise(DE);
      // |RDX:RAX| as a 128-bit magnitude.
      let n3 = hi[2];
      let n2 = lo[2];
      let n1 = hi[0];
      let n0 = lo[0];
      const nNeg = n3 < 0;
      if (nNeg) {
        n0 = ~n0;
        n1 = ~n1;
        n2 = ~n2;
        n3 = ~n3;
        n0 = (n0 + 1) | 0;
        if (n0 === 0) {
          n1 = (n1 + 1) | 0;
          if (n1 === 0) {
            n2 = (n2 + 1) | 0;
            if (n2 === 0) n3 = (n3 + 1) | 0;
          }
        }
      }
      let dl = s;
      let dhm = sh;
      const dNeg = sh < 0;
      if (dNeg) {
        dl = -dl | 0;
        dhm = (~dhm + (dl === 0 ? 1 : 0)) | 0;
      }
      if (uge(n3, n2, dhm, dl)) c.raise(DE);
      udiv128(n3, n2, n1, n0, dhm, dl);
      // Range: a positive quotient must be < 2^63, a negative one ≥ -2^63.
      const neg = nNeg !== dNeg;
      if (qHi < 0 && !(neg && qHi === (0x80000000 | 0) && qLo === 0)) c.raise(DE);
      let ql = qLo;
      let qh = qHi;
      if (neg) {
        ql = -ql | 0;
        qh = (~qh + (ql === 0 ? 1 : 0)) | 0;
      }
      let rl = rLo;
      let rh = rHi;
      if (nNeg) {
        rl = -rl | 0;
        rh = (~rh + (rl === 0 ? 1 : 0)) | 0;
      }
      lo[0] = ql;
      hi[0] = qh;
      lo[2] = rl;
      hi[2] = rh;
    }
  }
}

// =====================================================================================
// IMUL with a truncated destination (0F AF, 69, 6B)
// =====================================================================================

/** dst = truncate(a·b) at `size`, flags CF = OF = truncation lost significant bits. */
function imulTrunc(c: Cpu, i: Insn, a: number, ah: number, b: number, bh: number): void {
  const size = i.size;
  switch (size) {
    case 2: {
      const r = ((a << 16) >> 16) * ((b << 16) >> 16);
      c.set16(i.reg, r);
      c.setLazyRes(2, r & 0xffff, 0, r !== (r << 16) >> 16 ? CF_OF : 0);
      return;
    }
    case 4: {
      const r = Math.imul(a, b);
      // The double product is exact when it fits in int32 and otherwise has magnitude ≥ 2^31.
      c.set32(i.reg, r);
      c.setLazyRes(4, r, 0, a * b !== r ? CF_OF : 0);
      return;
    }
    default: {
      if (ah === a >> 31 && bh === b >> 31) {
        // Both operands are sign-extended 32-bit values: |product| < 2^62 never overflows.
        mulU32(a, b);
        let h = p1;
        if (a < 0) h = (h - b) | 0;
        if (b < 0) h = (h - a) | 0;
        c.lo[i.reg] = p0;
        c.hi[i.reg] = h;
        c.setLazyRes(8, p0, h, 0);
        return;
      }
      mulS64(a, ah, b, bh);
      c.lo[i.reg] = p0;
      c.hi[i.reg] = p1;
      const sx = p1 >> 31;
      c.setLazyRes(8, p0, p1, p2 !== sx || p3 !== sx ? CF_OF : 0);
    }
  }
}

/** IMUL Gv, Ev (0F AF). */
function imul2(c: Cpu, i: Insn): void {
  const s = c.readRm(i);
  const sh = c.vHi;
  imulTrunc(c, i, c.lo[i.reg], c.hi[i.reg], s, sh);
}

/** IMUL Gv, Ev, Iz / Ib (69, 6B): the immediate is sign-extended to the operand size. */
function imul3(c: Cpu, i: Insn): void {
  const s = c.readRm(i);
  imulTrunc(c, i, s, c.vHi, i.imm, i.immHi);
}

export const MULDIV_OPS: readonly OpDef[] = [
  { name: "mul", map: 0, code: 0xf6, ext: 4, modrm: true, size: "b", exec: mul },
  { name: "mul", map: 0, code: 0xf7, ext: 4, modrm: true, size: "v", exec: mul },
  { name: "imul", map: 0, code: 0xf6, ext: 5, modrm: true, size: "b", exec: imul1 },
  { name: "imul", map: 0, code: 0xf7, ext: 5, modrm: true, size: "v", exec: imul1 },
  { name: "div", map: 0, code: 0xf6, ext: 6, modrm: true, size: "b", exec: div },
  { name: "div", map: 0, code: 0xf7, ext: 6, modrm: true, size: "v", exec: div },
  { name: "idiv", map: 0, code: 0xf6, ext: 7, modrm: true, size: "b", exec: idiv },
  { name: "idiv", map: 0, code: 0xf7, ext: 7, modrm: true, size: "v", exec: idiv },
  { name: "imul", map: 1, code: 0xaf, modrm: true, size: "v", exec: imul2 },
  { name: "imul", map: 0, code: 0x69, modrm: true, size: "v", imm: "iz", exec: imul3 },
  { name: "imul", map: 0, code: 0x6b, modrm: true, size: "v", imm: "ibs", exec: imul3 },
];
