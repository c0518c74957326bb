/**
 * Inline code for the integer ALU: ADD OR AND SUB XOR CMP TEST at every size, INC/DEC of a
 * 32/64-bit register, with lazy flags recorded exactly as ops/alu.ts records them.
 */
import { LF_ADD, LF_DEC, LF_INC, LF_RES, LF_SUB } from "../flags.js";
import type { Insn } from "../insn.js";
import type { Gen } from "./gen.js";
import { immVal, memVal, regVal, setReg, type Val } from "./operands.js";

const ALU_NAMES = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"];
const ALU_ADD = 0;
const ALU_OR = 1;
const ALU_AND = 4;
const ALU_SUB = 5;
const ALU_XOR = 6;
const ALU_CMP = 7;

/** Compute d op s; set the pending flags; return the result. */
function compute(g: Gen, op: number, size: number, d: Val, s: Val): Val {
  const r = g.v("res");
  const rh = size === 8 ? g.v("resh") : "0";
  if (op === ALU_ADD || op === ALU_SUB || op === ALU_CMP) {
    const add = op === ALU_ADD;
    if (size === 8) {
      // Carry and borrow from int32 compares only (no double temporaries V8 might box).
      g.emit(
        add
          ? `${r}=(${d[0]}+${s[0]})|0;${rh}=(${d[1]}+${s[1]}+((${r}>>>0)<(${d[0]}>>>0)?1:0))|0;`
          : `${r}=(${d[0]}-${s[0]})|0;${rh}=(${d[1]}-${s[1]}-((${d[0]}>>>0)<(${s[0]}>>>0)?1:0))|0;`,
      );
    } else if (size === 4) g.emit(`${r}=(${d[0]}${add ? "+" : "-"}${s[0]})|0;`);
    else g.emit(`${r}=(${d[0]}${add ? "+" : "-"}${s[0]})&${size === 1 ? 255 : 65535};`);
    g.setFlags({ op: add ? LF_ADD : LF_SUB, size, r, rh, d: d[0], dh: d[1], s: s[0], sh: s[1], aux: "0" });
    return [r, rh];
  }
  const sym = op === ALU_OR ? "|" : op === ALU_AND ? "&" : "^";
  g.emit(`${r}=${d[0]}${sym}${s[0]};`);
  if (size === 8) g.emit(`${rh}=${d[1]}${sym}${s[1]};`);
  g.setFlags({ op: LF_RES, size, r, rh, d: "0", dh: "0", s: "0", sh: "0", aux: "0" });
  return [r, rh];
}

/**
 * ALU forms: op Ev,Gv (base+1), op Gv,Ev (base+3), op eAX,Iz (base+5), group 1 (81, 83), TEST
 * (85, A9, F7 /0 /1). Returns false (use the handler) for other sizes, ADC/SBB and LOCK.
 */
export function inlineAlu(g: Gen, i: Insn): boolean {
  if (i.lock) return false;
  const size = i.size;
  const code = i.opcode;
  let op: number;
  let form: "rm,reg" | "reg,rm" | "acc,imm" | "rm,imm";
  if (code < 0x40 && (code & 7) <= 5) {
    op = code >> 3;
    form = (code & 7) < 2 ? "rm,reg" : (code & 7) < 4 ? "reg,rm" : "acc,imm";
  } else if (code === 0x80 || code === 0x81 || code === 0x83) {
    op = i.op;
    form = "rm,imm";
  } else if (code === 0x84 || code === 0x85 || code === 0xa8 || code === 0xa9) {
    if (i.name !== "test") return false;
    return inlineTest(g, i, code <= 0x85 ? "rm,reg" : "acc,imm");
  } else if ((code === 0xf6 || code === 0xf7) && (i.reg & 7) <= 1) {
    if (i.name !== "test") return false;
    return inlineTest(g, i, "rm,imm");
  } else return false;
  if (op !== ALU_ADD && op !== ALU_OR && op !== ALU_AND && op !== ALU_SUB && op !== ALU_XOR && op !== ALU_CMP) {
    return false;
  }
  if (i.name !== ALU_NAMES[op]) return false;
  let d: Val;
  let s: Val;
  let al = "";
  let ah = "";
  let dstReg = -1;
  if (form === "reg,rm") {
    if (i.isMem) {
      [al, ah] = g.ea(i);
      s = memVal(g, size, al, ah);
    } else s = regVal(g, i.rm, size);
    d = regVal(g, i.reg, size);
    dstReg = i.reg;
  } else if (form === "acc,imm") {
    d = regVal(g, 0, size);
    s = immVal(i);
    dstReg = 0;
  } else {
    if (i.isMem) {
      [al, ah] = g.ea(i);
      d = memVal(g, size, al, ah);
    } else {
      d = regVal(g, i.rm, size);
      dstReg = i.rm;
    }
    s = form === "rm,imm" ? immVal(i) : regVal(g, i.reg, size);
  }
  const r = compute(g, op, size, d, s);
  if (op === ALU_CMP) return true;
  if (dstReg >= 0) setReg(g, dstReg, size, r);
  else g.write(size, al, ah, r[0], r[1]);
  return true;
}

function inlineTest(g: Gen, i: Insn, form: "rm,reg" | "acc,imm" | "rm,imm"): boolean {
  const size = i.size;
  let d: Val;
  if (form === "acc,imm") d = regVal(g, 0, size);
  else if (i.isMem) {
    const [al, ah] = g.ea(i);
    d = memVal(g, size, al, ah);
  } else d = regVal(g, i.rm, size);
  const s = form === "rm,reg" ? regVal(g, i.reg, size) : immVal(i);
  compute(g, ALU_AND, size, d, s);
  return true;
}

/** INC/DEC of a 32/64-bit register (FF /0, FF /1): CF is kept (LF_INC/LF_DEC aux). */
export function inlineIncDec(g: Gen, i: Insn): boolean {
  const size = i.size;
  if (i.isMem || (size !== 4 && size !== 8) || i.lock) return false;
  if (i.name !== "inc" && i.name !== "dec") return false;
  const inc = i.op === 0;
  const cf = g.v("cf");
  g.emit(`${cf}=${g.cf()};`);
  const d = regVal(g, i.rm, size);
  const r = g.v("res");
  const rh = size === 8 ? g.v("resh") : "0";
  if (inc) {
    g.emit(`${r}=(${d[0]}+1)|0;`);
    if (size === 8) g.emit(`${rh}=${r}===0?(${d[1]}+1)|0:${d[1]};`);
  } else {
    g.emit(`${r}=(${d[0]}-1)|0;`);
    if (size === 8) g.emit(`${rh}=${d[0]}===0?(${d[1]}-1)|0:${d[1]};`);
  }
  g.setFlags({ op: inc ? LF_INC : LF_DEC, size, r, rh, d: d[0], dh: d[1], s: "1", sh: "0", aux: cf });
  setReg(g, i.rm, size, [r, rh]);
  return true;
}
