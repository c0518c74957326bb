/**
 * Inline code for the condition-code users besides Jcc: SETcc (0F 90+cc) and CMOVcc (0F 40+cc)
 * at size 4/8, with the condition fused with the flags before them when it can be (Gen.cond).
 * Same order as ops/control.ts: CMOVcc always reads its source (it may fault) and a 32-bit
 * destination is zero-extended even when nothing moves.
 */
import type { Insn } from "../insn.js";
import type { Gen } from "./gen.js";
import { memVal, regVal, setReg } from "./operands.js";

export function inlineSetcc(g: Gen, i: Insn): boolean {
  if (i.opcode < 0x190 || i.opcode > 0x19f || !i.name.startsWith("set") || i.size !== 1) return false;
  const v = g.v("cc");
  if (i.isMem) {
    const [al, ah] = g.ea(i);
    g.emit(`${v}=${g.cond(i.op)}?1:0;`);
    g.write(1, al, ah, v, "0");
  } else {
    g.emit(`${v}=${g.cond(i.op)}?1:0;`);
    setReg(g, i.rm, 1, [v, "0"]);
  }
  return true;
}

export function inlineCmov(g: Gen, i: Insn): boolean {
  const size = i.size;
  if (i.opcode < 0x140 || i.opcode > 0x14f || !i.name.startsWith("cmov") || (size !== 4 && size !== 8)) return false;
  let v: [string, string];
  if (i.isMem) {
    const [al, ah] = g.ea(i);
    v = memVal(g, size, al, ah);
  } else v = regVal(g, i.rm, size);
  const r = i.reg;
  const move = size === 8 ? `L[${r}]=${v[0]};H[${r}]=${v[1]};` : `L[${r}]=${v[0]};`;
  g.emit(`if(${g.cond(i.op)}){${move}}`);
  if (size === 4) g.emit(`H[${r}]=0;`);
  return true;
}
