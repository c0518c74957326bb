import { LF_ADD, LF_DEC, LF_INC, LF_RES, LF_SUB } from "../flags.js";
import { BASE_RIP, type Insn, NONE } from "../insn.js";

/**
 * Lazy flags an inline instruction produced and that are not stored in the CPU yet: JavaScript
 * expressions (locals or constants) for the fields `Cpu.setLazy` / `setLazyRes` would write.
 * They are stored only where something can observe them: before a handler or a slow memory
 * path (which may fault or exit), at block exits, and before a flag reader that is not fused.
 */
export interface PendingFlags {
  op: number;
  size: number;
  r: string;
  rh: string;
  d: string;
  dh: string;
  s: string;
  sh: string;
  aux: string;
}

/** Add two 64-bit values given as int32 halves: the carry out of the low half into the high. */
export function add64(lo: number, hi: number, addLo: number, addHi: number): [number, number] {
  const s = (lo + addLo) | 0;
  return [s, (hi + addHi + (s >>> 0 < lo >>> 0 ? 1 : 0)) | 0];
}

/**
 * Source text of one block under construction, instruction by instruction. Generated code sees
 * `c` (the CPU), `L`/`H` (register halves), `IC` (the icount slot), the software TLB arrays
 * (`RTL RTH RV WTL WTH WV`, page line numbers `RLN WLN`), `DA` (the data-access counter), the
 * data-cache touch `T`, `I`/`E` (the block's decoded
 * instructions and their handlers); `b` is the icount at block entry, rebased after handlers.
 */
export class Gen {
  private readonly out: string[] = [];
  private readonly vars = new Set<string>();
  /** Flags produced inline and not yet stored (null: the CPU holds the current flags). */
  flags: PendingFlags | null = null;
  /** The value `Cpu.eaStack` would hold now, when the CPU does not hold it yet. */
  eaStack: boolean | null = null;
  /** Index, address and next-instruction address of the instruction being compiled. */
  k = 0;
  aLo = 0;
  aHi = 0;
  nLo = 0;
  nHi = 0;
  /** The current instruction has a slow path that may ask to leave the block after it. */
  slow = false;
  /** The current instruction is the block's last. */
  last = false;
  /** The code emitted so far always leaves the block (or loops back): nothing follows. */
  ended = false;
  private seq = 0;

  /** Forward jumps inside the block not yet joined: target index, JS label, taken paths; innermost last. */
  private readonly open: { target: number; label: string; paths: { idx: number; flags: PendingFlags | null }[] }[] = [];

  constructor(
    /** Linear address of the block's first instruction. */
    readonly entryLo: number,
    readonly entryHi: number,
    /** Low halves of the linear addresses of the block's instructions (one page, one high half). */
    private readonly addrs: readonly number[],
    /** Software TLB index mask (entries per privilege set - 1). */
    readonly tlbMask: number,
  ) {
    this.pageLo = entryLo & ~0xfff;
    this.n = addrs.length;
  }

  /** Instructions in the block (the budget a run of it needs). */
  readonly n: number;

  /** Linear address of the block's page (the low half, page-aligned). */
  readonly pageLo: number;

  emit(code: string): void {
    this.out.push(code);
  }

  /** A fresh local (declared at the top of the function as an int). */
  v(name: string): string {
    const n = `${name}${this.k}_${this.seq++}`;
    this.vars.add(n);
    return n;
  }

  /** Start compiling instruction k at aLo:aHi of length len. */
  begin(k: number, lo: number, hi: number, len: number): void {
    this.join(k);
    this.k = k;
    this.last = k === this.n - 1;
    this.aLo = lo;
    this.aHi = hi;
    [this.nLo, this.nHi] = add64(lo, hi, len, 0);
    this.slow = false;
  }

  /** The trace's next instruction is at lo:hi (a JMP/CALL to it was followed). */
  nextIs(lo: number, hi: number): boolean {
    return !this.last && hi === this.entryHi && this.addrs[this.k + 1] === lo;
  }

  /** Condition under which the block must stop after the current instruction. */
  stopCheck(): string {
    return "Q(c)";
  }

  /** Stores of the pending flags (nothing when the CPU holds them: then they are observed). */
  flagStores(): string {
    if (this.flags === null) {
      this.observe();
      return "";
    }
    return storesOf(this.flags);
  }

  // Flags across joins and around the loop: stores that turn out dead are never emitted. A join
  // (forward jump target) leaves a placeholder on each incoming path; the first flag event after
  // it decides what goes there — the stores (something observes the CPU's flags), nothing (an
  // instruction overwrites them all), or only CF into a local (INC/DEC keep CF). Likewise the
  // loop back stores the flags only if the block's first flag event observes them.
  private joinPaths: { idx: number; flags: PendingFlags | null }[] | null = null;
  /** The first flag event from the block start: undecided, or whether it reads the CPU's flags. */
  private headNeedsFlags: boolean | null = null;
  private readonly loopBacks: { idx: number; code: string }[] = [];

  private placeholder(): number {
    this.out.push("");
    return this.out.length - 1;
  }

  /** Something reads the flags the CPU holds: make the joined paths store theirs. */
  private observe(): void {
    const j = this.joinPaths;
    if (j !== null) {
      for (const p of j) this.out[p.idx] += p.flags === null ? "" : storesOf(p.flags);
      this.joinPaths = null;
    }
    if (this.headNeedsFlags === null) this.headNeedsFlags = true;
  }

  /** New pending flags that replace all six status flags (every inline flag writer). */
  setFlags(f: PendingFlags): void {
    this.joinPaths = null; // the joined paths' flags are dead: their placeholders stay empty
    if (this.headNeedsFlags === null) this.headNeedsFlags = false;
    this.flags = f;
  }

  private eaStackStore(): string {
    return this.eaStack === null ? "" : `c.eaStack=${this.eaStack};`;
  }

  /**
   * The state the interpreter has while it executes the current instruction: start and next
   * RIP, instructions retired, flags, eaStack. Written before anything that may fault, exit or
   * read the clock (a handler, a slow memory path), so faults stay precise.
   */
  sync(): string {
    return `S(c,${this.k},b);${this.flagStores()}${this.eaStackStore()}`;
  }

  /**
   * Leave the block with `retired` instructions done and RIP already set or set here. Every exit
   * goes through one exit sequence after the block's loop (`source`): it sets what the exit
   * needs in locals and breaks out. One sequence, not one per exit, keeps the function smaller
   * for V8's optimizing compiler and gives its calls type feedback from the first exit taken:
   * an exit first taken after V8 optimized the block no longer deoptimizes it for want of
   * feedback (docs/jit.md, round of 2026-12-05, branch coldjit).
   */
  exit(retired: number, ripLo: number | null, ripHi: number): string {
    const rip = ripLo === null ? "xr=0;" : `xr=1;xl=${ripLo};xh=${ripHi};`;
    return `${rip}xk=${this.k};xn=${retired};${this.exitFlags()}${this.exitEaStack()}break L;`;
  }

  /** The pending flags into the exit sequence's locals (xf = -1: the CPU holds them). */
  private exitFlags(): string {
    const f = this.flags;
    if (f === null) {
      this.observe();
      return "xf=-1;";
    }
    if (f.op === LF_RES) return `xf=${f.op};xs=${f.size};x0=${f.r};x1=${f.rh};x6=${f.aux};`;
    return `xf=${f.op};xs=${f.size};x0=${f.r};x1=${f.rh};x2=${f.d};x3=${f.dh};x4=${f.s};x5=${f.sh};x6=${f.aux};`;
  }

  /** eaStack into the exit sequence's local (-1: the CPU holds it). */
  private exitEaStack(): string {
    return this.eaStack === null ? "xe=-1;" : `xe=${this.eaStack ? 1 : 0};`;
  }

  /**
   * Leave for lo:hi after the current (branch) instruction retired; a jump to the block's own
   * start loops inside the function while the budget holds (nothing between can have changed
   * irqCheck or the code page: handlers and slow paths leave the block when they do).
   */
  branchTo(lo: number, hi: number): string {
    if (lo !== this.entryLo || hi !== this.entryHi) return this.exit(this.k + 1, lo, hi);
    const stores = this.flagStores();
    this.emit(`b+=${this.k + 1};${this.eaStackStore()}if(!brk&&b+${this.n}<=end){`);
    this.loopBacks.push({ idx: this.placeholder(), code: stores });
    return `continue L;}xr=1;xl=${lo};xh=${hi};xk=${this.k};xn=0;${this.exitFlags()}xe=-1;break L;`;
  }

  /**
   * A conditional branch to lo:hi. When the target is a later instruction of this block the
   * jump stays inside the function (a labeled block left with `break`): both paths store their
   * flags before the join, and the taken path takes back the instructions it skipped from `b`
   * so that `b + index` still counts retired instructions. Otherwise it is a side exit.
   */
  condBranch(cond: string, lo: number, hi: number): void {
    const j = hi === this.entryHi ? this.addrs.indexOf(lo, this.k + 1) : -1;
    const top = this.open.length === 0 ? this.n : this.open[this.open.length - 1].target;
    if (j === this.k + 1) return; // to the next instruction either way
    if (j > this.k + 1 && j <= top) {
      const label = `J${this.k}_${this.seq++}`;
      this.open.push({ target: j, label, paths: [] });
      this.emit(`${label}:{if(${cond}){${this.eaStackStore()}b-=${j - this.k - 1};`);
      this.pathIntoJoin(this.open[this.open.length - 1].paths);
      this.emit(`break ${label};}`);
      return;
    }
    this.condExit(cond, lo, hi);
  }

  /** If cond, leave for lo:hi (or loop back); otherwise go on. */
  condExit(cond: string, lo: number, hi: number): void {
    this.emit(`if(${cond}){`);
    this.emit(this.branchTo(lo, hi));
    this.emit("}");
  }

  /** The current path goes into a join: a placeholder for its flags (see observe). */
  private pathIntoJoin(paths: { idx: number; flags: PendingFlags | null }[]): void {
    if (this.flags === null) this.observe(); // the CPU's flags flow into the join
    paths.push({ idx: this.placeholder(), flags: this.flags });
  }

  /** Before instruction k: close the forward jumps that land on it. */
  private join(k: number): void {
    const o = this.open;
    if (o.length === 0 || o[o.length - 1].target !== k) return;
    const paths: { idx: number; flags: PendingFlags | null }[] = [];
    this.emit(this.eaStackStore());
    this.pathIntoJoin(paths);
    while (o.length > 0 && o[o.length - 1].target === k) {
      paths.push(...(o.pop() as { paths: { idx: number; flags: PendingFlags | null }[] }).paths);
      this.emit("}");
    }
    if (this.joinPaths !== null) this.observe(); // an older join still open: settle it first
    this.joinPaths = paths;
    this.flags = null;
    this.eaStack = null;
  }

  /** Call the instruction's own handler (everything not compiled inline). */
  callHandler(): void {
    const k = this.k;
    this.emit(`${this.sync()}I[${k}].exec(c,I[${k}]);b=IC[0]-${k};`);
    this.flags = null;
    this.eaStack = null;
    this.emit(`if(c.ripLo!==${this.nLo}||c.ripHi!==${this.nHi}||${this.stopCheck()}){IC[0]=b+${k + 1};return;}`);
  }

  /** After an instruction with a slow path: leave if the slow path asked to. */
  endInsn(): void {
    if (this.slow) this.emit(`if(brk){${this.exit(this.k + 1, this.nLo, this.nHi)}}`);
  }

  // ---- Effective addresses (as Cpu.ea in 64-bit mode) ----

  /** Emit the linear address of i's memory operand into two new locals; returns their names. */
  ea(i: Insn, lea = false): [string, string] {
    const al = this.v("a");
    const ah = this.v("ah");
    const d = i.disp;
    const dh = i.dispHi;
    if (i.base === BASE_RIP) {
      const [lo, hi] = add64(d, dh, this.nLo, this.nHi);
      this.emit(`${al}=${lo};${ah}=${hi};`);
    } else if (i.base !== NONE) {
      const b = i.base;
      if (d === 0 && dh === 0) this.emit(`${al}=L[${b}];${ah}=H[${b}];`);
      else this.emit(`${al}=(${d}+L[${b}])|0;${ah}=(${dh}+H[${b}]+((${al}>>>0)<${d >>> 0}?1:0))|0;`);
    } else this.emit(`${al}=${d};${ah}=${dh};`);
    const x = i.index;
    if (x !== NONE) {
      const sc = i.scale;
      const xl = sc === 0 ? `L[${x}]` : `(L[${x}]<<${sc})`;
      const xh = sc === 0 ? `H[${x}]` : `((H[${x}]<<${sc})|(L[${x}]>>>${32 - sc}))`;
      const t = this.v("t");
      this.emit(`${t}=(${al}+${xl})|0;${ah}=(${ah}+${xh}+((${t}>>>0)<(${al}>>>0)?1:0))|0;${al}=${t};`);
    }
    if (i.asize === 4) this.emit(`${ah}=0;`);
    const seg = lea ? 3 : i.seg;
    if (seg >= 4) {
      const t = this.v("t");
      this.emit(
        `${t}=(${al}+c.segBaseLo[${seg}])|0;${ah}=(${ah}+c.segBaseHi[${seg}]+((${t}>>>0)<(${al}>>>0)?1:0))|0;${al}=${t};`,
      );
    }
    this.eaStack = seg === 2;
    return [al, ah];
  }

  // ---- Memory accesses through the software TLB (as Cpu.readN / writeN) ----

  /** Load `size` bytes at al:ah into dst (and dstH for size 8), TLB probe inline. */
  read(size: number, al: string, ah: string, dst: string, dstH: string | null): void {
    const x = this.v("x");
    const o = this.v("o");
    const limit = 4096 - size;
    const get =
      size === 1
        ? `${dst}=RV[${x}].getUint8(${o});`
        : size === 2
          ? `${dst}=RV[${x}].getUint16(${o},true);`
          : size === 4
            ? `${dst}=RV[${x}].getInt32(${o},true);`
            : `${dst}=RV[${x}].getInt32(${o},true);${dstH}=RV[${x}].getInt32(${o}+4,true);`;
    const slow = size === 8 ? `${dst}=c.read64(${al},${ah});${dstH}=c.vHi;` : `${dst}=c.read${size * 8}(${al},${ah});`;
    this.emit(
      `${x}=(((${al}>>>12)^${ah})&${this.tlbMask})|c.tlbSet;${o}=${al}&4095;` +
        `if(RTL[${x}]===(${al}&-4096)&&RTH[${x}]===${ah}${size > 1 ? `&&${o}<=${limit}` : ""}){DA[0]++;${this.cacheTouch("RLN", x, o)}${get}}` +
        `else{${this.sync()}${slow}if(${this.stopCheck()})brk=true;}`,
    );
    this.slow = true;
  }

  /**
   * The data-cache touch of a fast-path access, as Cpu.readN / writeN do it: the line of the
   * access's first byte, skipped when it is its L1D set's most recent line (exact: data-cache.ts).
   */
  private cacheTouch(lines: string, x: string, o: string): string {
    return `T(c,${lines}[${x}]+(${o}>>>6));`;
  }

  /** Store `size` bytes of vl (vh for size 8) at al:ah, TLB probe inline. */
  write(size: number, al: string, ah: string, vl: string, vh: string): void {
    const x = this.v("x");
    const o = this.v("o");
    const limit = 4096 - size;
    const set =
      size === 1
        ? `WV[${x}].setUint8(${o},${vl});`
        : size === 2
          ? `WV[${x}].setUint16(${o},${vl},true);`
          : size === 4
            ? `WV[${x}].setInt32(${o},${vl},true);`
            : `WV[${x}].setInt32(${o},${vl},true);WV[${x}].setInt32(${o}+4,${vh},true);`;
    const slow = size === 8 ? `c.write64(${al},${ah},${vl},${vh});` : `c.write${size * 8}(${al},${ah},${vl});`;
    this.emit(
      `${x}=(((${al}>>>12)^${ah})&${this.tlbMask})|c.tlbSet;${o}=${al}&4095;` +
        `if(WTL[${x}]===(${al}&-4096)&&WTH[${x}]===${ah}${size > 1 ? `&&${o}<=${limit}` : ""}){DA[0]++;${this.cacheTouch("WLN", x, o)}${set}}` +
        `else{${this.sync()}${slow}if(${this.stopCheck()})brk=true;}`,
    );
    this.slow = true;
  }

  // ---- Flags ----

  /**
   * CF of the current flags as a 0/1 expression, for INC/DEC (they keep CF and must call
   * setFlags next). After a join, each incoming path computes it into one local.
   */
  cf(): string {
    const f = this.flags;
    if (f !== null) return cfOf(f);
    const j = this.joinPaths;
    if (j === null) {
      this.observe();
      return "c.getCF()";
    }
    const v = this.v("jcf");
    for (const p of j) this.out[p.idx] += `${v}=${p.flags === null ? "c.getCF()" : cfOf(p.flags)};`;
    this.joinPaths = null;
    return v;
  }

  /**
   * Condition cc (Jcc/SETcc/CMOVcc encoding) as a boolean expression. Fused with the pending
   * flags when they come from a compare, subtract, logic op or INC/DEC; otherwise the flags are
   * stored and `Cpu.cond` evaluates them.
   */
  cond(cc: number): string {
    const e = this.flags === null ? null : fusedCond(this.flags, cc >> 1);
    if (e !== null) return (cc & 1) === 0 ? e : `!${e}`;
    this.emit(this.flagStores());
    this.flags = null;
    return `c.cond(${cc})`;
  }

  /**
   * The source of a factory taking the AL AH NL NH tables (start and next RIP per instruction)
   * and returning the block function `block(c, end, I)`: `c` the CPU, `end` the run loop's
   * icount limit, `I` the block's decoded instructions. Everything per CPU comes through the
   * arguments, so one function serves every CPU running the same code at the same address.
   * Shared helpers keep the cold paths short (less for V8 to compile): S = the interpreter's state
   * at instruction k (start and next RIP, icount), X = the state at a block exit, Q = must the
   * block stop (irqCheck, the code page gone, compiled code no longer allowed); F (an argument,
   * one function for every block) = the exit sequence's flag store.
   */
  source(): string {
    for (const l of this.loopBacks) if (this.headNeedsFlags !== false) this.out[l.idx] = l.code;
    const decl = `let ${[...this.vars, ...EXIT_VARS].map((n) => `${n}=0`).join(",")};`;
    return (
      `"use strict";` +
      "function S(c,k,b){c.startLo=AL[k];c.startHi=AH[k];c.ripLo=NL[k];c.ripHi=NH[k];c.icountSlot[0]=b+k;}" +
      "function X(c,k,n){c.icountSlot[0]=n;c.startLo=AL[k];c.startHi=AH[k];}" +
      `function Q(c){return c.irqCheck||c.curCodeLo!==${this.pageLo}||!c.compiledCodeAllowed();}` +
      "return function block(c,end,I){const L=c.lo,H=c.hi,IC=c.icountSlot,RTL=c.rTagLo,RTH=c.rTagHi," +
      "RV=c.rView,WTL=c.wTagLo,WTH=c.wTagHi,WV=c.wView,DA=c.dAccesses,RLN=c.rLine,WLN=c.wLine;" +
      `let b=IC[0],brk=false;${decl}L:for(;;){${this.out.join("\n")}}\n` +
      "if(xr===1){c.ripLo=xl;c.ripHi=xh;}X(c,xk,b+xn);if(xf>=0)F(c,xf,xs,x0,x1,x2,x3,x4,x5,x6);if(xe>=0)c.eaStack=xe===1;};"
    );
  }
}

/** Locals of the shared exit sequence (see Gen.exit). */
const EXIT_VARS = ["xr", "xl", "xh", "xk", "xn", "xf", "xs", "x0", "x1", "x2", "x3", "x4", "x5", "x6", "xe"];

/** Stores of pending flags into the CPU (its own lazy-flag setters). */
function storesOf(f: PendingFlags): string {
  if (f.op === LF_RES) return `c.setLazyRes(${f.size},${f.r},${f.rh},${f.aux});`;
  return `c.setLazy(${f.op},${f.size},${f.r},${f.rh},${f.d},${f.dh},${f.s},${f.sh},${f.aux});`;
}

/** CF of pending flags as a 0/1 expression. */
function cfOf(f: PendingFlags): string {
  switch (f.op) {
    case LF_SUB:
      return `(${ult(f.size, f.d, f.dh, f.s, f.sh)}?1:0)`;
    case LF_ADD:
      return `(${ult(f.size, f.r, f.rh, f.d, f.dh)}?1:0)`;
    default:
      return `(${f.aux}&1)`; // LF_RES (CF in aux) and LF_INC/LF_DEC (CF before, in aux)
  }
}

/** Unsigned a < b at size 4 or 8, from int32 halves. */
function ult(size: number, a: string, ah: string, b: string, bh: string): string {
  const lo = `(${a}>>>0)<(${b}>>>0)`;
  return size === 8 ? `((${ah}>>>0)<(${bh}>>>0)||(${ah}===${bh}&&${lo}))` : `(${lo})`;
}

/** Signed a < b at `size` (values of size 1 and 2 are zero-extended: sign-extend them). */
function slt(size: number, a: string, ah: string, b: string, bh: string): string {
  if (size === 8) return `(${ah}<${bh}||(${ah}===${bh}&&(${a}>>>0)<(${b}>>>0)))`;
  if (size === 4) return `(${a}<${b})`;
  const sh = size === 1 ? 24 : 16;
  return `(((${a}<<${sh})>>${sh})<((${b}<<${sh})>>${sh}))`;
}

/** The positive condition (cc >> 1) from pending flags, or null when not fused. */
function fusedCond(f: PendingFlags, base: number): string | null {
  const z = f.size === 8 ? `((${f.r}|${f.rh})===0)` : `(${f.r}===0)`;
  const s =
    f.size === 8 ? `(${f.rh}<0)` : f.size === 4 ? `(${f.r}<0)` : `((${f.r}&${f.size === 1 ? 0x80 : 0x8000})!==0)`;
  if (base === 2) return z;
  if (base === 4) return s;
  switch (f.op) {
    case LF_SUB: {
      // SUB/CMP: CF = dst <u src; SF != OF exactly when dst <s src.
      const b = ult(f.size, f.d, f.dh, f.s, f.sh);
      const l = slt(f.size, f.d, f.dh, f.s, f.sh);
      if (base === 1) return b;
      if (base === 3) return `(${b}||${z})`;
      if (base === 6) return l;
      if (base === 7) return `(${l}||${z})`;
      return null;
    }
    case LF_RES:
      if (f.aux !== "0") return null;
      // Logic ops: CF = OF = 0.
      if (base === 0 || base === 1) return "false";
      if (base === 3) return z;
      if (base === 6) return s;
      if (base === 7) return `(${z}||${s})`;
      return null;
    case LF_ADD:
      return base === 1 ? ult(f.size, f.r, f.rh, f.d, f.dh) : null;
    case LF_INC:
    case LF_DEC:
      return null;
    default:
      return null;
  }
}
