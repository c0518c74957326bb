/**
 * Inline code for SHL/SAL/SHR/SAR of a 32/64-bit register by a constant (C1 /4-/7 imm8, D1 by
 * one) and IMUL with a 32-bit truncated result (0F AF, 69, 6B), with the flags ops/shift.ts and
 * ops/muldiv.ts record: LF_RES with CF, OF (and AF = 0) in aux.
 */

import { LF_RES } from "../flags.js";
import type { Insn } from "../insn.js";
import type { Gen } from "./gen.js";
import { memVal, num, regVal } from "./operands.js";

const SHL = 4;
const SHR = 5;
const SAL = 6;
const SAR = 7;

export function inlineShift(g: Gen, i: Insn): boolean {
  const size = i.size;
  const code = i.opcode;
  const op = i.op;
  if ((code !== 0xc1 && code !== 0xd1) || i.isMem || (size !== 4 && size !== 8)) return false;
  if (op !== SHL && op !== SHR && op !== SAL && op !== SAR) return false;
  const n = (code === 0xd1 ? 1 : i.imm) & (size === 8 ? 63 : 31);
  const rm = i.rm;
  if (n === 0) {
    // Nothing changes, not even the flags; a 32-bit destination is still zero-extended.
    if (size === 4) g.emit(`H[${rm}]=0;`);
    return true;
  }
  const [d, dh] = regVal(g, rm, size);
  const r = g.v("sr");
  const rh = size === 8 ? g.v("srh") : "0";
  const cf = g.v("scf");
  const aux = g.v("sx");
  const left = op === SHL || op === SAL;
  if (size === 4) {
    if (left) g.emit(`${r}=${d}<<${n};${cf}=(${d}>>>${32 - n})&1;${aux}=${cf}|((((${r}>>>31)&1)^${cf})<<11);`);
    else if (op === SHR) g.emit(`${r}=(${d}>>>${n})|0;${cf}=(${d}>>>${n - 1})&1;${aux}=${cf}|((${d}>>>31)<<11);`);
    else g.emit(`${r}=${d}>>${n};${cf}=(${d}>>${n - 1})&1;${aux}=${cf};`);
    g.emit(`L[${rm}]=${r};H[${rm}]=0;`);
  } else {
    if (left) {
      if (n < 32) g.emit(`${rh}=(${dh}<<${n})|(${d}>>>${32 - n});${r}=${d}<<${n};${cf}=(${dh}>>>${32 - n})&1;`);
      else g.emit(`${rh}=${d}<<${n - 32};${r}=0;${cf}=${n === 32 ? `${dh}&1` : `(${d}>>>${64 - n})&1`};`);
      g.emit(`${aux}=${cf}|(((${rh}>>>31)^${cf})<<11);`);
    } else if (op === SHR) {
      if (n < 32) g.emit(`${r}=(${d}>>>${n})|(${dh}<<${32 - n});${rh}=${dh}>>>${n};${cf}=(${d}>>>${n - 1})&1;`);
      else g.emit(`${r}=${dh}>>>${n - 32};${rh}=0;${cf}=${n === 32 ? `${d}>>>31` : `(${dh}>>>${n - 33})&1`};`);
      g.emit(`${r}|=0;${rh}|=0;${aux}=${cf}|((${dh}>>>31)<<11);`);
    } else {
      if (n < 32) g.emit(`${r}=(${d}>>>${n})|(${dh}<<${32 - n});${rh}=${dh}>>${n};${cf}=(${d}>>>${n - 1})&1;`);
      else g.emit(`${r}=${dh}>>${n - 32};${rh}=${dh}>>31;${cf}=${n === 32 ? `${d}>>>31` : `(${dh}>>${n - 33})&1`};`);
      g.emit(`${aux}=${cf};`);
    }
    g.emit(`L[${rm}]=${r};H[${rm}]=${rh};`);
  }
  g.setFlags({ op: LF_RES, size, r, rh, d: "0", dh: "0", s: "0", sh: "0", aux });
  return true;
}

/** CF | OF (RFLAGS bits 0 and 11): IMUL lost significant bits. */
const CF_OF = 0x801;

/** IMUL r32, r/m32 (0F AF) and IMUL r32, r/m32, imm (69, 6B). */
export function inlineImul(g: Gen, i: Insn): boolean {
  const code = i.opcode;
  if ((code !== 0x1af && code !== 0x69 && code !== 0x6b) || i.size !== 4 || i.name !== "imul") return false;
  let s: string;
  if (i.isMem) {
    const [al, ah] = g.ea(i);
    s = memVal(g, 4, al, ah)[0];
  } else s = regVal(g, i.rm, 4)[0];
  const a = code === 0x1af ? regVal(g, i.reg, 4)[0] : s;
  const b = code === 0x1af ? s : num(i.imm);
  const r = g.v("mr");
  const aux = g.v("mx");
  // The double product is exact when it fits in int32, and otherwise differs from the truncation.
  g.emit(`${r}=Math.imul(${a},${b});${aux}=${a}*${b}!==${r}?${CF_OF}:0;L[${i.reg}]=${r};H[${i.reg}]=0;`);
  g.setFlags({ op: LF_RES, size: 4, r, rh: "0", d: "0", dh: "0", s: "0", sh: "0", aux });
  return true;
}
