/**
 * Operands for inline code at every size, read and written as Cpu.getReg/setReg and the memory
 * helpers do: sizes 1 and 2 zero-extended (AH..BH are registers 16..19), a 32-bit register
 * write clears the high half, 8- and 16-bit writes keep the rest of the register.
 */
import { HIGH8_BASE, type Insn } from "../insn.js";
import type { Gen } from "./gen.js";

/** A value as expressions of its two halves (the high one may be the constant "0"). */
export type Val = [string, string];

/** A constant as an expression (negative ones parenthesized: "d-(-7)", never "d--7"). */
export function num(n: number): string {
  return n < 0 ? `(${n})` : String(n);
}

/** Read register r at `size` into fresh locals. */
export function regVal(g: Gen, r: number, size: number): Val {
  const lo = g.v("r");
  if (size === 8) {
    const hi = g.v("rh");
    g.emit(`${lo}=L[${r}];${hi}=H[${r}];`);
    return [lo, hi];
  }
  if (size === 4) g.emit(`${lo}=L[${r}];`);
  else if (size === 2) g.emit(`${lo}=L[${r}]&65535;`);
  else g.emit(r < HIGH8_BASE ? `${lo}=L[${r}]&255;` : `${lo}=(L[${r - HIGH8_BASE}]>>8)&255;`);
  return [lo, "0"];
}

/** Write v to register r at `size`. */
export function setReg(g: Gen, r: number, size: number, v: Val): void {
  if (size === 8) g.emit(`L[${r}]=${v[0]};H[${r}]=${v[1]};`);
  else if (size === 4) g.emit(`L[${r}]=${v[0]};H[${r}]=0;`);
  else if (size === 2) g.emit(`L[${r}]=(L[${r}]&-65536)|(${v[0]}&65535);`);
  else if (r < HIGH8_BASE) g.emit(`L[${r}]=(L[${r}]&-256)|(${v[0]}&255);`);
  else g.emit(`L[${r - HIGH8_BASE}]=(L[${r - HIGH8_BASE}]&-65281)|((${v[0]}&255)<<8);`);
}

/** The immediate at the instruction's size. */
export function immVal(i: Insn): Val {
  return [num(i.imm), i.size === 8 ? num(i.immHi) : "0"];
}

/** Read `size` bytes of memory at al:ah. */
export function memVal(g: Gen, size: number, al: string, ah: string): Val {
  const lo = g.v("m");
  if (size !== 8) {
    g.read(size, al, ah, lo, null);
    return [lo, "0"];
  }
  const hi = g.v("mh");
  g.read(8, al, ah, lo, hi);
  return [lo, hi];
}
