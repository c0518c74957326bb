import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import type { Block } from "./block.js";
import { compileBlock } from "./codegen.js";
import type { JitOptions } from "./options.js";

/** The longest block compiled (instructions). */
export const MAX_BLOCK = 48;

/** Per physical code page: entry counts and compiled blocks by byte offset. */
class JitPage {
  readonly counts = new Uint16Array(4096);
  /** Filled from the start: one elements kind, so V8's code for it stays valid. */
  readonly blocks: (Block | undefined)[] = new Array(4096).fill(undefined);
}

/**
 * The block compiler's cache and dispatcher. The interpreter calls `enter` at block entry points
 * (after a control transfer); hot entries are compiled (codegen.ts) and run here, linked block
 * to block while they stay on the current code page and inside the instruction budget.
 *
 * Exactness: a block runs only when the whole of it fits the budget the interpreter would have
 * used instruction by instruction, only while the interpreter's own code-page check holds
 * (`curCodeLo`), and it stops wherever the interpreter would look at `irqCheck`. Crossing to
 * another page goes back to the interpreter loop, which translates the fetch exactly as before.
 */
export class BlockJit {
  private readonly cpu: Cpu;
  private readonly threshold: number;
  private readonly warmup: number;
  private readonly cap: number;
  /** Pages by physical frame number (a Map: an array indexed by frame numbers goes sparse). */
  private readonly pages = new Map<number, JitPage>();
  private lastPfn = -1;
  private lastPage: JitPage | undefined = undefined;
  /** Compiled instructions currently cached (against the cap). */
  private cached = 0;
  /** Statistics for the bench (not part of any run's counters: they differ with --no-jit). */
  readonly stats = { compiled: 0, flushes: 0, invalidations: 0, blockRuns: 0, instructions: 0 };

  constructor(cpu: Cpu, opts: JitOptions) {
    this.cpu = cpu;
    this.threshold = Math.max(1, Math.min(0xffff, opts.threshold | 0));
    this.warmup = Math.max(0, opts.warmup | 0);
    this.cap = Math.max(MAX_BLOCK, opts.maxInstructions);
  }

  /**
   * Run compiled code from lo:hi if there is (or now should be) a block there. Returns false
   * when nothing ran (the caller interprets the instruction); true after one or more blocks.
   */
  enter(lo: number, hi: number, end: number): boolean {
    const c = this.cpu;
    // irqCheck still set here means the loop looks again after this one instruction (an STI or
    // MOV SS interrupt shadow with an interrupt window or a pending interrupt): a block would
    // run past that boundary (an interrupt-window exit of nvmx-shadow's L2 came 2 instructions
    // late, `compare` cell nvmx-shadow/pio).
    if (c.irqCheck || c.curCodeLo !== (lo & ~0xfff) || !c.compiledCodeAllowed()) return false;
    // The map is sparse (frame numbers): remember the last page looked up.
    const pfn = c.curCodePfn;
    let page = this.lastPfn === pfn ? this.lastPage : this.pages.get(pfn);
    if (page === undefined) {
      page = new JitPage();
      this.pages.set(pfn, page);
    }
    this.lastPfn = pfn;
    this.lastPage = page;
    const off = lo & 0xfff;
    let b = page.blocks[off];
    if (b === undefined || b.linLo !== lo || b.linHi !== hi) {
      const n = page.counts[off] + 1;
      if (n < this.threshold) {
        page.counts[off] = n;
        return false;
      }
      // Entries are counted during the warm-up too (only compiling waits): V8 optimizes this
      // function early, and code first run after that would deoptimize it.
      if (c.icountSlot[0] < this.warmup) return false;
      page.counts[off] = 0;
      const made = this.compile(page, lo, hi);
      if (made === null) return false;
      b = made;
    }
    const ic = c.icountSlot;
    if (ic[0] + b.n > end) return false;
    const blocks = page.blocks;
    const stats = this.stats;
    for (;;) {
      const before = ic[0];
      b.fn(c, end, b.insns);
      stats.blockRuns++;
      stats.instructions += ic[0] - before;
      const rlo = c.ripLo;
      if (c.irqCheck || c.curCodeLo !== (rlo & ~0xfff) || c.curCodeHi !== c.ripHi) return true;
      let nx: Block | null | undefined;
      if (b.link0Lo === rlo && b.link0 !== null && !b.link0.dead) nx = b.link0;
      else if (b.link1Lo === rlo && b.link1 !== null && !b.link1.dead) nx = b.link1;
      else {
        nx = blocks[rlo & 0xfff];
        if (nx === undefined || nx.linLo !== rlo || nx.linHi !== c.ripHi) return true;
        b.link1Lo = b.link0Lo;
        b.link1 = b.link0;
        b.link0Lo = rlo;
        b.link0 = nx;
      }
      if (ic[0] + nx.n > end) return true;
      b = nx;
    }
  }

  private compile(jp: JitPage, lo: number, hi: number): Block | null {
    const c = this.cpu;
    const code = c.curCode;
    const insns: Insn[] = [];
    const offs: number[] = [];
    let off = lo & 0xfff;
    while (insns.length < MAX_BLOCK && off < 4096) {
      const i = code[off];
      // An instruction already in the trace ends it (a jump back: the block loops or exits there).
      if (i === undefined || offs.includes(off)) break;
      insns.push(i);
      offs.push(off);
      const t = followedTarget(i, off + i.len);
      if (t >= 0) off = t;
      else if (endsBlock(i)) break;
      else off += i.len;
    }
    if (insns.length === 0) return null;
    if (this.cached + insns.length > this.cap) this.flush();
    const page = lo & ~0xfff;
    const b = compileBlock(
      c,
      insns,
      offs.map((o) => page | o),
      hi,
    );
    jp.blocks[lo & 0xfff] = b;
    this.cached += b.n;
    this.stats.compiled++;
    return b;
  }

  /** The decoded bytes of physical page pfn changed (self-modifying code): drop its blocks. */
  invalidatePage(pfn: number): void {
    this.dropPage(pfn);
    if (pfn > 0) this.dropPage(pfn - 1);
    this.stats.invalidations++;
  }

  private dropPage(pfn: number): void {
    const p = this.pages.get(pfn);
    if (p === undefined) return;
    for (const b of p.blocks) {
      if (b !== undefined) {
        b.dead = true;
        this.cached -= b.n;
      }
    }
    this.pages.delete(pfn);
    if (this.lastPfn === pfn) this.lastPfn = -1;
  }

  /** Drop every block (a mode change, or the cap reached). */
  flush(): void {
    for (const p of this.pages.values()) {
      for (const b of p.blocks) if (b !== undefined) b.dead = true;
    }
    this.pages.clear();
    this.lastPfn = -1;
    this.cached = 0;
    this.stats.flushes++;
  }
}

/**
 * The page offset a trace follows after i at page offset `next` (its end): the target of a
 * direct JMP or CALL (64-bit operand size) on the same page, else -1. Following it changes
 * nothing the interpreter would see: the target's fetch is on the current code page (no
 * translation), and the block's instructions are budgeted as a whole.
 */
function followedTarget(i: Insn, next: number): number {
  if (!isDirectTransfer(i)) return -1;
  const t = next + i.imm;
  return t >= 0 && t < 4096 ? t : -1;
}

/** JMP rel8/rel32 or CALL rel32 at 64-bit operand size (what inline-control.ts compiles). */
export function isDirectTransfer(i: Insn): boolean {
  const op = i.opcode;
  if (op === 0xe8) return i.size === 8 && i.name === "call";
  return (op === 0xe9 || op === 0xeb) && i.size === 8 && i.name.startsWith("j");
}

/**
 * Unconditional control transfers end a block (the dispatcher follows them through the links).
 * Conditional ones do not: the block goes on along the fall-through path, with a side exit for
 * the taken one (a trace), as far as the interpreter has decoded that path.
 */
function endsBlock(i: Insn): boolean {
  switch (i.opcode) {
    case 0xe8: // CALL rel
    case 0xe9: // JMP rel32
    case 0xeb: // JMP rel8
    case 0xc2: // RET imm16
    case 0xc3: // RET
    case 0xcd: // INT n
    case 0xcf: // IRET
    case 0xf4: // HLT
    case 0x105: // SYSCALL
    case 0x107: // SYSRET
      return true;
    case 0xff: // group 5: CALL/JMP near and far indirect end it, INC/DEC/PUSH do not
      return (i.reg & 7) >= 2 && (i.reg & 7) <= 5;
    default:
      return false;
  }
}
