import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import { Block } from "./block.js";
import { add64, Gen } from "./gen.js";
import { inlineAlu, inlineIncDec } from "./inline-alu.js";
import { inlineBranch } from "./inline-control.js";
import { inlineLea, inlineMov, inlineMovx, inlinePushPop } from "./inline-move.js";

/** Inline emitters, tried in order; each returns false to leave the instruction to its handler. */
const INLINE: ((g: Gen, i: Insn) => boolean)[] = [
  inlineMov,
  inlineAlu,
  inlineLea,
  inlineMovx,
  inlinePushPop,
  inlineIncDec,
];

/** Branches end the block; handlers that branch end it at run time. */
function isBranch(i: Insn): boolean {
  const op = i.opcode;
  return (
    (op >= 0x70 && op <= 0x7f) ||
    (op >= 0x180 && op <= 0x18f) ||
    op === 0xe8 ||
    op === 0xe9 ||
    op === 0xeb ||
    op === 0xc2 ||
    op === 0xc3
  );
}

/**
 * Compile the decoded instructions `insns` (straight-line, starting at linear lo:hi, all on one
 * page, 64-bit mode) into a block function. No Node-only API: `new Function` over plain JS.
 */
export function compileBlock(c: Cpu, insns: readonly Insn[], lo: number, hi: number): Block {
  const g = new Gen(lo & ~0xfff, c.rTagLo.length / 2 - 1);
  let a: [number, number] = [lo, hi];
  let ended = false;
  for (let k = 0; k < insns.length; k++) {
    const i = insns[k];
    g.begin(k, a[0], a[1], i.len);
    if (isBranch(i) && inlineBranch(g, i)) {
      ended = true;
      break;
    }
    let done = false;
    for (const f of INLINE) {
      if (f(g, i)) {
        done = true;
        break;
      }
    }
    if (done) g.endInsn();
    else g.callHandler();
    a = add64(a[0], a[1], i.len, 0);
  }
  if (!ended) g.emit(g.exit(insns.length, g.nLo, g.nHi));
  const factory = new Function("c", "L", "H", "IC", "RTL", "RTH", "RV", "WTL", "WTH", "WV", "DA", "I", "E", g.source());
  const run = factory(
    c,
    c.lo,
    c.hi,
    c.icountSlot,
    c.rTagLo,
    c.rTagHi,
    c.rView,
    c.wTagLo,
    c.wTagHi,
    c.wView,
    c.dAccesses,
    insns.slice(),
    insns.map((i) => i.exec),
  ) as () => void;
  return new Block(lo, hi, insns.length, run);
}
