/**
 * Inline code for near control flow in 64-bit mode: Jcc (fused with the flags before it), JMP
 * rel, CALL rel, RET. Each ends its block by setting RIP, but a JMP/CALL the trace followed. Targets are constants of the block's
 * linear address; a non-canonical one is left to the handler (it raises #GP where it must).
 */
import { GP } from "../../x86/exceptions.js";
import type { Insn } from "../insn.js";
import { add64, type Gen } from "./gen.js";
import { pop64, push64 } from "./inline-move.js";

function canonical(hi: number): boolean {
  const top = hi >> 15;
  return top === 0 || top === -1;
}

/** Target of a relative branch: next RIP + sign-extended displacement (Cpu.jumpRel). */
function target(g: Gen, i: Insn): [number, number] {
  return add64(g.nLo, g.nHi, i.imm, i.imm >> 31);
}

/** Returns true when i was compiled (and ended the block). */
export function inlineBranch(g: Gen, i: Insn): boolean {
  const code = i.opcode;
  const isJcc = (code >= 0x70 && code <= 0x7f) || (code >= 0x180 && code <= 0x18f);
  if (isJcc || code === 0xeb || code === 0xe9 || code === 0xe8) {
    if (i.size !== 8 || !i.name.startsWith(code === 0xe8 ? "call" : "j")) return false;
    const [tl, th] = target(g, i);
    if (!canonical(th)) return false;
    if (code === 0xe8) push64(g, [String(g.nLo), String(g.nHi)]);
    if (isJcc) {
      // Taken: a side exit (or the loop back); not taken: the block goes on, or ends here.
      const cond = g.cond(i.op);
      if (g.last) g.condExit(cond, tl, th);
      else g.condBranch(cond, tl, th);
      if (g.last) {
        g.emit(g.branchTo(g.nLo, g.nHi));
        g.ended = true;
      }
    } else if (g.nextIs(tl, th)) {
      // The trace followed the jump (block-jit.ts): go on with the target's instructions, unless
      // the push of a CALL took a slow path that asks to leave.
      if (g.slow) g.emit(`if(brk){${g.exit(g.k + 1, tl, th)}}`);
    } else {
      g.emit(g.branchTo(tl, th));
      g.ended = true;
    }
    return true;
  }
  if ((code === 0xc3 || code === 0xc2) && i.name === "ret" && i.size === 8) {
    const [v, vh] = pop64Checked(g);
    if (code === 0xc2 && i.imm !== 0) {
      const t = g.v("sp");
      g.emit(`${t}=(L[4]+${i.imm})|0;if((${t}>>>0)<(L[4]>>>0))H[4]=(H[4]+1)|0;L[4]=${t};`);
    }
    g.emit(`c.ripLo=${v};c.ripHi=${vh};`);
    g.emit(g.exit(g.k + 1, null, 0));
    g.ended = true;
    return true;
  }
  return false;
}

/**
 * RET's pop with the canonical check of the target before RSP moves: the handler pops, then
 * restores RSP when the jump faults, so #GP(0) sees the original RSP either way.
 */
function pop64Checked(g: Gen): [string, string] {
  g.eaStack = true;
  const v = g.v("p");
  const vh = g.v("ph");
  g.read(8, "L[4]", "H[4]", v, vh);
  g.emit(`if((${vh}>>15)!==0&&(${vh}>>15)!==-1){${g.sync()}c.raise(${GP},0);}`);
  const t = g.v("sp");
  g.emit(`${t}=(L[4]+8)|0;if((${t}>>>0)<(L[4]>>>0))H[4]=(H[4]+1)|0;L[4]=${t};`);
  return [v, vh];
}

export { pop64 };
