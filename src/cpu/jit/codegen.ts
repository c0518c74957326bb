import type { Cpu } from "../cpu.js";
import { LF_RES } from "../flags.js";
import type { Insn } from "../insn.js";
import { Block, type BlockFn } from "./block.js";
import { add64, Gen } from "./gen.js";
import { inlineAlu, inlineIncDec } from "./inline-alu.js";
import { inlineCmov, inlineSetcc } from "./inline-cond.js";
import { inlineBranch } from "./inline-control.js";
import { inlineLea, inlineMov, inlineMovx, inlinePushPop, inlineSignExtendAcc } from "./inline-move.js";
import { inlineImul, inlineShift } from "./inline-shift.js";

/** Inline emitters, tried in order; each returns false to leave the instruction to its handler. */
const INLINE: ((g: Gen, i: Insn) => boolean)[] = [
  inlineMov,
  inlineAlu,
  inlineLea,
  inlineMovx,
  inlinePushPop,
  inlineIncDec,
  inlineShift,
  inlineCmov,
  inlineSetcc,
  inlineImul,
  inlineSignExtendAcc,
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
 * Compile the decoded instructions `insns` (a trace on one page, at the linear addresses
 * `addrs`:hi, 64-bit mode) into a block function. The trace is straight-line but for direct
 * JMP/CALL it followed (the next instruction is then the target). No Node-only API:
 * `new Function` over plain JS.
 */
export function compileBlock(c: Cpu, insns: readonly Insn[], addrs: readonly number[], hi: number): Block {
  const lo = addrs[0];
  const g = new Gen(lo, hi, addrs, c.rTagLo.length / 2 - 1);
  for (let k = 0; k < insns.length && !g.ended; k++) {
    const i = insns[k];
    g.begin(k, addrs[k], hi, i.len);
    if (isBranch(i) && inlineBranch(g, i)) continue;
    let done = false;
    for (const f of INLINE) {
      if (f(g, i)) {
        done = true;
        break;
      }
    }
    if (done) g.endInsn();
    else g.callHandler();
  }
  if (!g.ended) g.emit(g.exit(insns.length, g.nLo, g.nHi));
  // The instruction boundaries (the AL AH NL NH tables) are part of the text: equal text, equal block.
  const bounds = `${hi}:${addrs.join(",")}-${g.nLo}`;
  return new Block(lo, hi, insns.slice(), blockFunction(`${g.source()}\n/* ${bounds} */`, insns, addrs, hi));
}

/**
 * The flag store of every block's exit sequence (gen.ts, Gen.exit): one function for all blocks,
 * so its type feedback is there from the first exit any block takes.
 */
function storeExitFlags(
  c: Cpu,
  op: number,
  size: number,
  r: number,
  rh: number,
  d: number,
  dh: number,
  s: number,
  sh: number,
  aux: number,
): void {
  if (op === LF_RES) c.setLazyRes(size, r, rh, aux);
  else c.setLazy(op, size, r, rh, d, dh, s, sh, aux);
}

/**
 * The data-cache touch of a fast-path access (as Cpu.readN / writeN): the line, unless it is its
 * L1D set's most recent one. Called on every access, so the call has type feedback from a block's
 * first run and the rare MRU miss inside shares one feedback for every block.
 */
function touchLine(c: Cpu, line: number): void {
  if (c.dcMru[line & c.dcMask] !== line) c.dcache.touchData(line);
}

/**
 * Block functions by source text, shared by every CPU in this JavaScript realm: the same guest
 * code at the same linear address and mode compiles to the same source, and sharing the
 * function lets V8 reuse what it optimized (the machines of a `compare`, the runs of a
 * benchmark). Bounded: cleared when full.
 */
const FUNCTIONS = new Map<string, BlockFn>();
const MAX_FUNCTIONS = 4096;

function blockFunction(source: string, insns: readonly Insn[], addrs: readonly number[], hi: number): BlockFn {
  let f = FUNCTIONS.get(source);
  if (f !== undefined) return f;
  const n = insns.length;
  const al = new Int32Array(n);
  const ah = new Int32Array(n);
  const nl = new Int32Array(n);
  const nh = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    al[k] = addrs[k];
    ah[k] = hi;
    [nl[k], nh[k]] = add64(addrs[k], hi, insns[k].len, 0);
  }
  f = new Function("AL", "AH", "NL", "NH", "F", "T", source)(al, ah, nl, nh, storeExitFlags, touchLine) as BlockFn;
  if (FUNCTIONS.size >= MAX_FUNCTIONS) FUNCTIONS.clear();
  FUNCTIONS.set(source, f);
  return f;
}
