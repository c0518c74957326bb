import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";

/** A compiled block: run it on CPU c until the icount `end` at most, with its instructions I. */
export type BlockFn = (c: Cpu, end: number, I: Insn[]) => void;

/** A compiled basic block: a JavaScript function over the CPU state, keyed by physical address. */
export class Block {
  /** Linear address the block was compiled at (RIP-relative operands and targets are constants). */
  linLo: number;
  linHi: number;
  /** Instructions in the block (it may leave early after a handler that branches or stops). */
  readonly n: number;
  /** Set when the block's page is invalidated or the cache is flushed: links to it are dropped. */
  dead = false;
  /** Direct links: the last two successors (linear low halves and blocks). */
  link0Lo = 0;
  link0: Block | null = null;
  link1Lo = 0;
  link1: Block | null = null;
  /** The block's decoded instructions (handlers are called with them). */
  readonly insns: Insn[];
  /** The compiled code (shared by blocks with the same source, see codegen.ts). */
  readonly fn: BlockFn;

  constructor(linLo: number, linHi: number, insns: Insn[], fn: BlockFn) {
    this.linLo = linLo;
    this.linHi = linHi;
    this.n = insns.length;
    this.insns = insns;
    this.fn = fn;
  }
}
