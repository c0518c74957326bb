/**
 * Inline code for data movement at 32/64-bit operand size: MOV (register, load, store,
 * immediate), LEA, MOVZX/MOVSX/MOVSXD, PUSH/POP of a register. Same order of reads, writes and
 * register updates as ops/move.ts and Cpu.push/pop, so a fault leaves the same state.
 */
import type { Insn } from "../insn.js";
import type { Gen } from "./gen.js";
import { memVal, regVal, setReg, type Val } from "./operands.js";

export function inlineMov(g: Gen, i: Insn): boolean {
  const size = i.size;
  if (i.name !== "mov") return false;
  const code = i.opcode;
  if (code === 0x88 || code === 0x89 || code === 0x8a || code === 0x8b) {
    const toRm = code === 0x88 || code === 0x89;
    if (!i.isMem) {
      const v = regVal(g, toRm ? i.reg : i.rm, size);
      setReg(g, toRm ? i.rm : i.reg, size, v);
    } else if (toRm) {
      const v = regVal(g, i.reg, size);
      const [al, ah] = g.ea(i);
      g.write(size, al, ah, v[0], v[1]);
    } else {
      const [al, ah] = g.ea(i);
      setReg(g, i.reg, size, memVal(g, size, al, ah));
    }
    return true;
  }
  if ((code >= 0xb0 && code <= 0xbf) || ((code === 0xc6 || code === 0xc7) && !i.isMem)) {
    setReg(g, i.rm, size, [String(i.imm), String(i.immHi)]);
    return true;
  }
  if (code === 0xc6 || code === 0xc7) {
    const [al, ah] = g.ea(i);
    g.write(size, al, ah, String(i.imm), String(i.immHi));
    return true;
  }
  return false;
}

/** LEA Gv, M (8D) at size 4/8: the offset without a segment base. */
export function inlineLea(g: Gen, i: Insn): boolean {
  if ((i.size !== 4 && i.size !== 8) || i.opcode !== 0x8d || !i.isMem) return false;
  const [al, ah] = g.ea(i, true);
  setReg(g, i.reg, i.size, [al, ah]);
  return true;
}

/** MOVZX (0F B6/B7), MOVSX (0F BE/BF), MOVSXD (63) into a 32/64-bit register. */
export function inlineMovx(g: Gen, i: Insn): boolean {
  const size = i.size;
  if (size !== 4 && size !== 8) return false;
  const code = i.opcode;
  const zx = code === 0x1b6 || code === 0x1b7;
  if (!zx && code !== 0x1be && code !== 0x1bf && code !== 0x63) return false;
  if (i.name !== (zx ? "movzx" : code === 0x63 ? "movsxd" : "movsx")) return false;
  const width = i.op; // 1, 2 or 4
  let v: string;
  if (i.isMem) {
    const [al, ah] = g.ea(i);
    v = g.v("z");
    g.read(width, al, ah, v, null);
  } else v = regVal(g, i.rm, width)[0];
  if (zx) {
    setReg(g, i.reg, size, [v, "0"]);
    return true;
  }
  const s = g.v("sx");
  g.emit(width === 1 ? `${s}=(${v}<<24)>>24;` : width === 2 ? `${s}=(${v}<<16)>>16;` : `${s}=${v};`);
  setReg(g, i.reg, size, [s, `(${s}>>31)`]);
  return true;
}

/** The new RSP after subtracting (negative) or adding n, as Cpu.push / pop compute it. */
function rspAdd(g: Gen, n: number): Val {
  const lo = g.v("sp");
  const hi = g.v("sph");
  if (n < 0) g.emit(`${lo}=(L[4]${n})|0;${hi}=(${lo}>>>0)>(L[4]>>>0)?(H[4]-1)|0:H[4];`);
  else g.emit(`${lo}=(L[4]+${n})|0;${hi}=(${lo}>>>0)<(L[4]>>>0)?(H[4]+1)|0:H[4];`);
  return [lo, hi];
}

/** Push a 64-bit value (64-bit mode): store below RSP, then move RSP. */
export function push64(g: Gen, v: Val): void {
  const [sl, sh] = rspAdd(g, -8);
  g.eaStack = true;
  g.write(8, sl, sh, v[0], v[1]);
  g.emit(`L[4]=${sl};H[4]=${sh};`);
}

/** Pop a 64-bit value: load at RSP, then move RSP (the caller writes the destination). */
export function pop64(g: Gen): Val {
  g.eaStack = true;
  const v: Val = [g.v("p"), g.v("ph")];
  g.read(8, "L[4]", "H[4]", v[0], v[1]);
  const [sl, sh] = rspAdd(g, 8);
  g.emit(`L[4]=${sl};H[4]=${sh};`);
  return v;
}

/** PUSH r64 (50+r) and POP r64 (58+r) in 64-bit mode. */
export function inlinePushPop(g: Gen, i: Insn): boolean {
  if (i.size !== 8) return false;
  const code = i.opcode;
  if (code >= 0x50 && code <= 0x57 && i.name === "push") {
    push64(g, regVal(g, i.reg, 8));
    return true;
  }
  if (code >= 0x58 && code <= 0x5f && i.name === "pop") {
    setReg(g, i.reg, 8, pop64(g));
    return true;
  }
  return false;
}

/** CBW/CWDE/CDQE (98) and CWD/CDQ/CQO (99) at size 4/8 (ops/move.ts cbw, cwd). */
export function inlineSignExtendAcc(g: Gen, i: Insn): boolean {
  const size = i.size;
  if (size !== 4 && size !== 8) return false;
  if (i.opcode === 0x98 && i.name === "cbw") {
    g.emit(size === 4 ? "L[0]=(L[0]<<16)>>16;H[0]=0;" : "H[0]=L[0]>>31;");
    return true;
  }
  if (i.opcode === 0x99 && i.name === "cwd") {
    g.emit(size === 4 ? "L[2]=L[0]>>31;H[2]=0;" : "L[2]=H[0]>>31;H[2]=H[0]>>31;");
    return true;
  }
  return false;
}
