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
  readonly run: () => void;

  constructor(linLo: number, linHi: number, n: number, run: () => void) {
    this.linLo = linLo;
    this.linHi = linHi;
    this.n = n;
    this.run = run;
  }
}
