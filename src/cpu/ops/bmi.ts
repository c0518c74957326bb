/**
 * The general-purpose instruction-set extensions: the VEX-encoded BMI1 (ANDN, BEXTR, BLSI,
 * BLSMSK, BLSR) and BMI2 (BZHI, MULX, PDEP, PEXT, RORX, SARX, SHLX, SHRX) instructions, and
 * ADX (ADCX, ADOX). SDM vol. 2A/2B under each mnemonic. All take 32- or 64-bit operands
 * (VEX.W / REX.W; size kind `y`), so 64-bit values are worked on as int32 halves.
 *
 * Operands: `reg` is ModRM.reg, `rm` ModRM.r/m, `vreg` VEX.vvvv. Flags the SDM leaves
 * undefined (AF and PF for the BMI1 ones and BZHI, SF for BEXTR) come out of the lazy result
 * (PF of the result's low byte, AF = 0); the difftest specs list them as undefined.
 */
import { CF, OF } from "../../x86/flags.js";
import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";
import { setCfOrOf } from "./bits.js";
import { mulU32, mulU64, p0, p1, p2, p3 } from "./muldiv.js";

/** High half of the last 64-bit result of the helpers below (no allocation). */
let outHi = 0;

/** lo:hi >> n (logical), 0 <= n < 64. */
function shr64(lo: number, hi: number, n: number): number {
  if (n === 0) {
    outHi = hi;
    return lo;
  }
  if (n < 32) {
    outHi = hi >>> n;
    return (lo >>> n) | (hi << (32 - n));
  }
  outHi = 0;
  return hi >>> (n - 32);
}

/** lo:hi >> n (arithmetic), 0 <= n < 64. */
function sar64(lo: number, hi: number, n: number): number {
  if (n === 0) {
    outHi = hi;
    return lo;
  }
  if (n < 32) {
    outHi = hi >> n;
    return (lo >>> n) | (hi << (32 - n));
  }
  outHi = hi >> 31;
  return hi >> (n - 32);
}

/** lo:hi << n, 0 <= n < 64. */
function shl64(lo: number, hi: number, n: number): number {
  if (n === 0) {
    outHi = hi;
    return lo;
  }
  if (n < 32) {
    outHi = (hi << n) | (lo >>> (32 - n));
    return lo << n;
  }
  outHi = lo << (n - 32);
  return 0;
}

/** Keep the low n bits of lo:hi (n < 64); zero the rest. */
function lowBits(lo: number, hi: number, n: number): number {
  if (n < 32) {
    outHi = 0;
    return lo & ((1 << n) - 1);
  }
  outHi = hi & ((1 << (n - 32)) - 1);
  return lo;
}

// =====================================================================================
// BMI1 (CPUID.7.0:EBX.BMI1[3])
// =====================================================================================

/** ANDN Gy, By, Ey (VEX.LZ.0F38 F2): reg = ~vvvv & r/m. SF, ZF by the result; CF = OF = 0. */
function andn(c: Cpu, i: Insn): void {
  const s = c.readRm(i);
  const sh = c.vHi;
  const r = ~c.lo[i.vreg] & s;
  const rh = i.size === 8 ? ~c.hi[i.vreg] & sh : 0;
  c.setReg(i.reg, i.size, r, rh);
  c.setLazyRes(i.size, r, rh, 0);
}

/**
 * BEXTR Gy, Ey, By (VEX.LZ.0F38 F7): extract vvvv[15:8] bits of r/m starting at bit vvvv[7:0];
 * a start at or beyond the width gives 0, a length at or beyond it takes every bit above the
 * start. ZF by the result; CF = OF = 0.
 */
function bextr(c: Cpu, i: Insn): void {
  const v = c.readRm(i);
  const vh = c.vHi;
  const w = i.size * 8;
  const ctl = c.lo[i.vreg];
  const start = ctl & 0xff;
  const len = (ctl >>> 8) & 0xff;
  let r = 0;
  let rh = 0;
  if (start < w) {
    r = shr64(v, vh, start);
    rh = outHi;
    if (len < w) {
      r = lowBits(r, rh, len);
      rh = outHi;
    }
  }
  c.setReg(i.reg, i.size, r, rh);
  c.setLazyRes(i.size, r, rh, 0);
}

/** Group 17 (VEX.LZ.0F38 F3 /1 /2 /3): BLSR, BLSMSK, BLSI by ModRM.reg; destination vvvv. */
const BLSR = 1;
const BLSMSK = 2;

/**
 * BLSR By, Ey: r/m & (r/m - 1); BLSMSK: r/m ^ (r/m - 1); BLSI: r/m & -r/m. SF and ZF by the
 * result (BLSMSK's is never 0); OF = 0; CF = (source = 0) for BLSR and BLSMSK, (source ≠ 0) for BLSI.
 */
function blsx(c: Cpu, i: Insn): void {
  const v = c.readRm(i);
  const vh = c.vHi;
  const zero = (v | vh) === 0;
  const op = i.op;
  let r: number;
  let rh: number;
  if (op === BLSR || op === BLSMSK) {
    // v - 1 on the halves (the high half is 0 for 32-bit operands and stays unused then).
    const m = (v - 1) | 0;
    const mh = v === 0 ? (vh - 1) | 0 : vh;
    r = op === BLSR ? v & m : v ^ m;
    rh = op === BLSR ? vh & mh : vh ^ mh;
  } else {
    const n = -v | 0;
    const nh = (~vh + (v === 0 ? 1 : 0)) | 0;
    r = v & n;
    rh = vh & nh;
  }
  if (i.size === 4) rh = 0;
  c.setReg(i.vreg, i.size, r, rh);
  c.setLazyRes(i.size, r, rh, (op === BLSR || op === BLSMSK) === zero ? CF : 0);
}

// =====================================================================================
// BMI2 (CPUID.7.0:EBX.BMI2[8])
// =====================================================================================

/**
 * BZHI Gy, Ey, By (VEX.LZ.0F38 F5): r/m with bits from index vvvv[7:0] up cleared; CF = 1 when
 * the index exceeds width - 1 (the source is then copied). SF, ZF by the result; OF = 0.
 */
function bzhi(c: Cpu, i: Insn): void {
  const v = c.readRm(i);
  const vh = c.vHi;
  const w = i.size * 8;
  const n = c.lo[i.vreg] & 0xff;
  let r = v;
  let rh = vh;
  if (n < w) {
    r = lowBits(v, vh, n);
    rh = outHi;
  }
  c.setReg(i.reg, i.size, r, rh);
  c.setLazyRes(i.size, r, rh, n > w - 1 ? CF : 0);
}

/**
 * MULX Gy, By, Ey (VEX.LZ.F2.0F38 F6): unsigned rDX · r/m; the low half goes to vvvv, then the
 * high half to ModRM.reg (which wins when both name one register). Flags are not touched.
 */
function mulx(c: Cpu, i: Insn): void {
  const s = c.readRm(i);
  const sh = c.vHi;
  if (i.size === 4) {
    mulU32(c.lo[2], s);
    c.set32(i.vreg, p0);
    c.set32(i.reg, p1);
  } else {
    mulU64(c.lo[2], c.hi[2], s, sh);
    c.set64(i.vreg, p0, p1);
    c.set64(i.reg, p2, p3);
  }
}

/**
 * PDEP Gy, By, Ey (VEX.LZ.F2.0F38 F5): deposit the low bits of vvvv, in order, at the set bits
 * of the mask r/m. PEXT (F3): gather the bits of vvvv at the set bits of the mask into the low
 * bits of the result, in order. Both walk the mask's set bits from the lowest, `k` counting
 * them. Flags are not touched.
 */
function pdepPext(c: Cpu, i: Insn): void {
  const m = c.readRm(i);
  const mh = c.vHi;
  const s = c.lo[i.vreg];
  const sh = i.size === 8 ? c.hi[i.vreg] : 0;
  const extract = i.op === PEXT;
  let r = 0;
  let rh = 0;
  let k = 0;
  for (let half = 0; half < 2; half++) {
    let mm = half === 0 ? m : mh;
    const src = half === 0 ? s : sh;
    while (mm !== 0) {
      const bit = mm & -mm;
      if (extract) {
        if ((src & bit) !== 0) {
          if (k < 32) r |= 1 << k;
          else rh |= 1 << (k - 32);
        }
      } else if ((k < 32 ? (s >>> k) & 1 : (sh >>> (k - 32)) & 1) !== 0) {
        if (half === 0) r |= bit;
        else rh |= bit;
      }
      mm ^= bit;
      k++;
    }
  }
  c.setReg(i.reg, i.size, r, rh);
}
const PEXT = 1;

/** RORX Gy, Ey, Ib (VEX.LZ.F2.0F3A F0): rotate right by imm8 mod width. Flags are not touched. */
function rorx(c: Cpu, i: Insn): void {
  const v = c.readRm(i);
  const vh = c.vHi;
  if (i.size === 4) {
    const n = i.imm & 31;
    c.set32(i.reg, n === 0 ? v : (v >>> n) | (v << (32 - n)));
    return;
  }
  const n = i.imm & 63;
  const a = shr64(v, vh, n);
  const ah = outHi;
  const b = shl64(v, vh, (64 - n) & 63);
  c.set64(i.reg, n === 0 ? v : a | b, n === 0 ? vh : ah | outHi);
}

/** SARX/SHLX/SHRX by Insn.op. */
const SARX = 0;
const SHLX = 1;

/**
 * SARX (F3), SHLX (66), SHRX (F2) Gy, Ey, By (VEX.LZ.0F38 F7): shift r/m by vvvv mod width.
 * Flags are not touched.
 */
function shiftx(c: Cpu, i: Insn): void {
  const v = c.readRm(i);
  const vh = c.vHi;
  const op = i.op;
  if (i.size === 4) {
    const n = c.lo[i.vreg] & 31;
    c.set32(i.reg, op === SARX ? v >> n : op === SHLX ? v << n : v >>> n);
    return;
  }
  const n = c.lo[i.vreg] & 63;
  const r = op === SARX ? sar64(v, vh, n) : op === SHLX ? shl64(v, vh, n) : shr64(v, vh, n);
  c.set64(i.reg, r, outHi);
}

// =====================================================================================
// ADX (CPUID.7.0:EBX.ADX[19])
// =====================================================================================

/**
 * ADCX (66 0F 38 F6) / ADOX (F3 0F 38 F6) Gy, Ey: reg = reg + r/m + CF (ADCX) or OF (ADOX);
 * the carry out goes to that same flag and every other flag is left as it was.
 */
function adx(c: Cpu, i: Insn): void {
  const s = c.readRm(i);
  const sh = c.vHi;
  const bit = i.op === 0 ? CF : OF;
  const cin = i.op === 0 ? c.getCF() : c.getOF();
  const t = (c.lo[i.reg] >>> 0) + (s >>> 0) + cin;
  let carry = t > 0xffffffff ? 1 : 0;
  let rh = 0;
  if (i.size === 8) {
    const th = (c.hi[i.reg] >>> 0) + (sh >>> 0) + carry;
    rh = th | 0;
    carry = th > 0xffffffff ? 1 : 0;
  }
  c.setReg(i.reg, i.size, t | 0, rh);
  setCfOrOf(c, bit, carry !== 0 ? bit : 0);
}

const table: OpDef[] = [
  { name: "andn", map: 2, code: 0xf2, prefix: 0, vex: "v", modrm: true, size: "y", exec: andn },
  { name: "bextr", map: 2, code: 0xf7, prefix: 0, vex: "v", modrm: true, size: "y", exec: bextr },
  { name: "blsr", map: 2, code: 0xf3, ext: 1, prefix: 0, vex: "v", modrm: true, size: "y", op: BLSR, exec: blsx },
  { name: "blsmsk", map: 2, code: 0xf3, ext: 2, prefix: 0, vex: "v", modrm: true, size: "y", op: BLSMSK, exec: blsx },
  { name: "blsi", map: 2, code: 0xf3, ext: 3, prefix: 0, vex: "v", modrm: true, size: "y", op: 3, exec: blsx },
  { name: "bzhi", map: 2, code: 0xf5, prefix: 0, vex: "v", modrm: true, size: "y", exec: bzhi },
  { name: "pdep", map: 2, code: 0xf5, prefix: 0xf2, vex: "v", modrm: true, size: "y", op: 0, exec: pdepPext },
  { name: "pext", map: 2, code: 0xf5, prefix: 0xf3, vex: "v", modrm: true, size: "y", op: PEXT, exec: pdepPext },
  { name: "mulx", map: 2, code: 0xf6, prefix: 0xf2, vex: "v", modrm: true, size: "y", exec: mulx },
  { name: "sarx", map: 2, code: 0xf7, prefix: 0xf3, vex: "v", modrm: true, size: "y", op: SARX, exec: shiftx },
  { name: "shlx", map: 2, code: 0xf7, prefix: 0x66, vex: "v", modrm: true, size: "y", op: SHLX, exec: shiftx },
  { name: "shrx", map: 2, code: 0xf7, prefix: 0xf2, vex: "v", modrm: true, size: "y", op: 2, exec: shiftx },
  { name: "rorx", map: 3, code: 0xf0, prefix: 0xf2, vex: "nov", modrm: true, size: "y", imm: "ib", exec: rorx },
  { name: "adcx", map: 2, code: 0xf6, prefix: 0x66, modrm: true, size: "y", op: 0, exec: adx },
  { name: "adox", map: 2, code: 0xf6, prefix: 0xf3, modrm: true, size: "y", op: 1, exec: adx },
];

export const BMI_OPS: readonly OpDef[] = table;
