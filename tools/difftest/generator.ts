/**
 * Random instruction-sequence generator for the CPU difftest.
 *
 * Templates are derived from the emulator's opcode table (OPCODES): every row that matches an
 * entry of specs.ts (by encoding) and whose CPU feature the host has becomes a template, so
 * instruction families added to the table later are generated automatically.
 *
 * Invariants every generated sequence keeps (so it runs identically natively and emulated):
 * - R15 holds the buffer base and RSP the stack pointer; neither is ever written except by
 *   balanced PUSH/POP (and CALL, whose return address is popped like a push).
 * - Every memory access lies inside the data area (buffer + stack), at fixed addresses.
 * - No instruction can fault: divisions are set up so no #DE, bit offsets into memory are
 *   bounded, branches only go forward.
 * - No architecturally undefined value reaches a register or memory: a flag that is undefined
 *   is never read (a CMP is inserted to define the flags first), BSF/BSR never see 0, SHLD/SHRD
 *   counts never exceed the operand size. Flags still undefined at the end are masked out.
 */
// The CPU module first: it pulls in the decoder and then the opcode table in the order the
// ops modules (some of which import the CPU) expect; importing optable.js first would cycle.
import "../../src/cpu/cpu.js";
import type { OpDef } from "../../src/cpu/opdef.js";
import { OPCODES } from "../../src/cpu/optable.js";
import {
  bytesHex,
  type Encoded,
  encode,
  fitsI8,
  hex,
  imm64Bytes,
  immBytes,
  type MemOp,
  NO_REG,
  RIP,
  type RmOp,
  regName,
  rmText,
} from "./encoder.js";
import {
  BASE_REG,
  BASE_VALUE,
  BUF_SIZE,
  CODE_ADDR,
  CODE_SIZE,
  DATA_ADDR,
  DATA_SIZE,
  MAP_ADDR,
  MAP_SIZE,
  MAX_STACK_BYTES,
  RSP,
  RSP_INIT,
} from "./layout.js";
import { Rng } from "./prng.js";
import {
  AF,
  ALL_FEATURES,
  CF,
  ccReads,
  DF,
  E_ARITH,
  type Eff,
  type Features,
  OF,
  PF,
  REQUIRED_CLASSES,
  SF,
  type Spec,
  STATUS,
  specFor,
  ZF,
} from "./specs.js";
import { DE_FLAGS_NOTE, type VendorNote } from "./vendor.js";

export interface Template {
  row: OpDef;
  spec: Spec;
  /** Short description: mnemonic and encoding. */
  desc: string;
}

export interface ListingLine {
  off: number;
  bytes: number[];
  text: string;
  /** Description of the table row (or "helper"). */
  row: string;
}

export interface TestCase {
  seed: number;
  index: number;
  /** Where the sequence is placed (CODE_ADDR, or so that it crosses a page boundary). */
  codeAddr: number;
  /** The sequence (without the end marker each side appends). */
  code: Uint8Array;
  regsLo: Int32Array;
  regsHi: Int32Array;
  /** Initial RFLAGS (status flags, DF, IF and bit 1). */
  flags: number;
  /** Initial contents of the data area. */
  data: Uint8Array;
  /** Status flags architecturally undefined at the end (not compared). */
  undef: number;
  /** Vendor-specific behaviour the case exercises (masked on a host of another vendor: vendor.ts). */
  vendor: VendorNote[];
  lines: ListingLine[];
}

export interface GeneratorOptions {
  features?: Features;
  /** Maximum top-level items per sequence (each may be a few instructions). */
  maxLen?: number;
  /** Only classes matching this pattern (case-insensitive regex over class names). */
  only?: string;
  /**
   * Also generate cases whose outcome is model-specific rather than architectural (see genString):
   * REP string ops with 67h and ECX = 0, flags after REP CMPS/SCAS faulting part-way.
   */
  quirks?: boolean;
  /** Generate self-modifying stores into upcoming instructions (default true). */
  smc?: boolean;
  /** Fraction of cases that end with a deliberately faulting instruction (default 0.05). */
  faultRate?: number;
  /** Leave out classes matching this pattern. */
  exclude?: string;
  /** The opcode rows to derive templates from (default: OPCODES). */
  rows?: readonly OpDef[];
}

interface Line {
  off: number;
  len: number;
  text: string;
  row: string;
}

interface Fixup {
  at: number;
  end: number;
  target: number;
}

class Chunk {
  bytes: number[] = [];
  lines: Line[] = [];
  fixups: Fixup[] = [];

  append(c: Chunk): void {
    const base = this.bytes.length;
    for (const b of c.bytes) this.bytes.push(b);
    for (const l of c.lines) this.lines.push({ ...l, off: l.off + base });
    for (const f of c.fixups) this.fixups.push({ at: f.at + base, end: f.end + base, target: f.target });
  }
}

export function describeRow(r: OpDef): string {
  const map = r.map === 0 ? "" : r.map === 1 ? "0F " : r.map === 2 ? "0F 38 " : "0F 3A ";
  const pre = r.prefix ? `${r.prefix.toString(16).toUpperCase()} ` : "";
  const code = r.code.toString(16).toUpperCase().padStart(2, "0");
  const ext = r.ext !== undefined ? ` /${r.ext}` : r.modrm ? " /r" : "";
  const plus = r.plusReg ? "+r" : "";
  const form = r.form ? ` (${r.form})` : "";
  return `${r.name} ${pre}${map}${code}${plus}${ext} ${r.size}${r.imm && r.imm !== "none" ? ` ${r.imm}` : ""}${form}`;
}

/** Addressing a memory operand needs registers set first: these run before the instruction. */
interface MemChoice {
  mem: MemOp;
  setup: (() => void)[];
  /** The effective address, when the generator chose it (not for non-canonical addresses). */
  addr?: number;
}

const INTERESTING32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x7fffffff, -0x80000000, -1, -2];

export class Generator {
  readonly templates: Template[] = [];
  readonly classes = new Map<string, Template[]>();
  /** Rows with no spec (the generator does not know how to test them safely). */
  readonly unknownRows: OpDef[] = [];
  /** Rows skipped because the host CPU lacks the feature. */
  readonly featureSkipped: OpDef[] = [];
  readonly maxLen: number;
  readonly quirks: boolean;
  readonly faultRate: number;
  readonly smc: boolean;
  private readonly rows: readonly OpDef[];

  constructor(opts: GeneratorOptions = {}) {
    const features = opts.features ?? ALL_FEATURES;
    this.maxLen = opts.maxLen ?? 12;
    this.quirks = opts.quirks ?? false;
    this.faultRate = opts.faultRate ?? 0.05;
    this.smc = opts.smc ?? true;
    this.rows = opts.rows ?? OPCODES;
    const only = opts.only ? new RegExp(opts.only, "i") : null;
    const exclude = opts.exclude ? new RegExp(opts.exclude, "i") : null;
    for (const row of this.rows) {
      if (row.mode === "no64") continue; // not encodable in 64-bit mode (INC/DEC 40+r, 82 /r…)
      const spec = specFor(row);
      if (spec === undefined) {
        this.unknownRows.push(row);
        continue;
      }
      if (spec.feature !== undefined && !features[spec.feature]) {
        this.featureSkipped.push(row);
        continue;
      }
      this.templates.push({ row, spec, desc: describeRow(row) });
    }
    // Helpers the generator emits around instructions must exist in the table.
    const need = (map: number, code: number, ext?: number): boolean => this.findRow(map, code, ext) !== undefined;
    const haveHelpers =
      need(0, 0xb8) &&
      need(0, 0x8d) &&
      need(0, 0x81, 1) &&
      need(0, 0x83, 1) &&
      need(0, 0x83, 4) &&
      need(0, 0x80, 4) &&
      need(0, 0x80, 1) &&
      need(0, 0x81, 7);
    if (!haveHelpers)
      throw new Error("difftest: the opcode table lacks the MOV/LEA/OR/AND/CMP forms the generator relies on");
    const haveCbw = need(0, 0x98) && need(0, 0x99);
    const havePop = this.templates.some((t) => t.spec.kind === "pop");
    const havePushImm = need(0, 0x68);
    for (const t of this.templates) {
      const k = t.spec.kind;
      if ((k === "push" || k === "pushf" || k === "call") && !havePop) continue;
      if (k === "popf" && !havePushImm) continue;
      if (k === "div" && t.spec.signed && !haveCbw) continue;
      if (k === "pop" || k === "leave") continue; // generated to balance PUSH / ENTER, not on their own
      if (k === "enter" && this.findRow(0, 0xc9) === undefined) continue;
      if ((k === "ret" || k === "indirect") && this.findRow(0, 0x50) === undefined) continue;
      if (only && !only.test(t.spec.cls)) continue;
      if (exclude?.test(t.spec.cls)) continue;
      let list = this.classes.get(t.spec.cls);
      if (list === undefined) {
        list = [];
        this.classes.set(t.spec.cls, list);
      }
      list.push(t);
    }
    if (this.classes.size === 0) throw new Error("difftest: no instruction class to generate");
  }

  findRow(map: number, code: number, ext?: number, prefix?: number): OpDef | undefined {
    return this.rows.find(
      (r) =>
        r.map === map &&
        r.code === code &&
        r.ext === ext &&
        (r.prefix ?? 0) === (prefix ?? 0) &&
        r.rmExt === undefined &&
        r.mode !== "no64",
    );
  }

  /** VEX-encoded templates of the selected classes (for #UD cases). */
  get vexTemplates(): Template[] {
    if (this.vexList === undefined)
      this.vexList = [...this.classes.values()].flat().filter((t) => t.row.vex !== undefined);
    return this.vexList;
  }
  private vexList: Template[] | undefined;

  popTemplates(): Template[] {
    return this.templates.filter((t) => t.spec.kind === "pop");
  }

  /** Which of the issue's required classes have no template (absent from the table or the host). */
  missingRequired(): string[] {
    const have = new Set(this.templates.map((t) => t.spec.cls));
    return REQUIRED_CLASSES.filter((c) => !have.has(c));
  }

  generate(seed: number, index: number): TestCase {
    return new CaseGen(this, new Rng(seed, index), seed, index).run();
  }
}

interface Snapshot {
  undef: number;
  notes: number;
  len: number;
  lines: number;
  fixups: number;
}

class CaseGen {
  private chunk = new Chunk();
  private readonly chunks: Chunk[] = [];
  /** Status flags currently undefined. */
  private undef = 0;
  /** Vendor-specific behaviour exercised so far (vendor.ts). */
  private readonly notes: VendorNote[] = [];
  /** DF as the generator knows it statically (CLD/STD/POPF only at top level). */
  private df = 0;
  /** Sizes of the balanced pushes not popped yet (innermost last). */
  private readonly pushed: number[] = [];
  private pushedBytes = 0;
  /** A register that must not be written for now (RBP between ENTER and LEAVE), or -1. */
  private reserved = -1;
  /**
   * For a deliberately faulting last instruction: pickMem returns a non-canonical address ("gp")
   * or one that runs off the mapped data pages ("pf"); genString runs off them ("pf" too).
   */
  private faultMem: "" | "gp" | "pf" = "";
  private readonly regsLo = new Int32Array(16);
  private readonly regsHi = new Int32Array(16);
  private readonly pops: Template[];
  private readonly classNames: string[];

  constructor(
    private readonly g: Generator,
    private readonly rng: Rng,
    private readonly seed: number,
    private readonly index: number,
  ) {
    this.pops = g.popTemplates();
    this.classNames = [...g.classes.keys()];
  }

  run(): TestCase {
    const r = this.rng;
    for (let k = 0; k < 16; k++) {
      const [lo, hi] = this.randomValue();
      this.regsLo[k] = lo;
      this.regsHi[k] = hi;
    }
    this.regsLo[RSP] = RSP_INIT;
    this.regsHi[RSP] = 0;
    this.regsLo[BASE_REG] = BASE_VALUE;
    this.regsHi[BASE_REG] = 0;
    let flags = 0x202 | (r.u32() & STATUS);
    if (r.chance(0.25)) flags |= DF;
    this.df = flags & DF;
    const data = new Uint8Array(DATA_SIZE);
    for (let i = 0; i < DATA_SIZE; i += 4) {
      const v = r.chance(0.15) ? r.pick(INTERESTING32) : r.u32();
      for (let k = 0; k < 4 && i + k < DATA_SIZE; k++) data[i + k] = (v >>> (8 * k)) & 0xff;
    }
    const n = r.range(1, this.g.maxLen);
    for (let i = 0; i < n; i++) this.item(0);
    while (this.pushed.length > 0) this.emitPop();
    // Sometimes end with an instruction that faults: both sides must report the same exception
    // at the same instruction with the same registers, flags and memory.
    if (r.chance(this.g.faultRate)) this.genFault();
    // Place the code (sometimes across a 4 KiB boundary) and resolve RIP-relative displacements.
    const c = this.chunk;
    const codeAddr = r.chance(0.3) && c.bytes.length > 0 ? CODE_ADDR + 0x1000 - r.range(1, c.bytes.length) : CODE_ADDR;
    for (const f of c.fixups) {
      const disp = f.target - (codeAddr + f.end);
      for (let k = 0; k < 4; k++) c.bytes[f.at + k] = (disp >>> (8 * k)) & 0xff;
    }
    const code = Uint8Array.from(c.bytes);
    const lines = c.lines.map((l) => ({
      off: l.off,
      bytes: c.bytes.slice(l.off, l.off + l.len),
      text: l.text,
      row: l.row,
    }));
    return {
      seed: this.seed,
      index: this.index,
      codeAddr,
      code,
      regsLo: this.regsLo,
      regsHi: this.regsHi,
      flags,
      data,
      undef: this.undef,
      vendor: this.notes,
      lines,
    };
  }

  // ------------------------------------------------------------------------------------
  // Random values
  // ------------------------------------------------------------------------------------

  private randomValue(): [number, number] {
    const r = this.rng;
    switch (r.int(10)) {
      case 0:
        return [r.pick(INTERESTING32), r.pick([0, 0, -1, 0x7fffffff, -0x80000000, 1])];
      case 1:
        return [r.i32(), 0];
      case 2:
        return [r.int(256), 0];
      case 3:
        return [-r.range(1, 256), -1];
      case 4:
        return [r.pick(INTERESTING32), r.pick(INTERESTING32)];
      case 5:
        return [r.int(0x10000), r.chance(0.5) ? 0 : r.i32()];
      case 6:
        return [DATA_ADDR + r.int(DATA_SIZE), 0];
      default:
        return [r.i32(), r.i32()];
    }
  }

  private imm8(): number {
    const r = this.rng;
    return r.chance(0.3) ? r.pick([0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0xfe, 0x1f, 0x20, 0x3f, 0x40]) : r.int(256);
  }

  private imm16(): number {
    return this.rng.chance(0.3) ? this.rng.pick(INTERESTING32) & 0xffff : this.rng.int(0x10000);
  }

  private imm32(): number {
    return this.rng.chance(0.3) ? this.rng.pick(INTERESTING32) : this.rng.i32();
  }

  // ------------------------------------------------------------------------------------
  // Emission
  // ------------------------------------------------------------------------------------

  private emit(e: Encoded, text: string, row: string): void {
    const c = this.chunk;
    const off = c.bytes.length;
    for (const b of e.bytes) c.bytes.push(b);
    if (e.fixupAt >= 0 && e.fixupTarget !== 0)
      c.fixups.push({ at: off + e.fixupAt, end: off + e.bytes.length, target: e.fixupTarget });
    c.lines.push({ off, len: e.bytes.length, text, row });
    if (e.bytes.length > 15)
      throw new Error(`difftest generator: instruction longer than 15 bytes: ${bytesHex(e.bytes)} ${text}`);
  }

  private snapshot(): Snapshot {
    return {
      undef: this.undef,
      notes: this.notes.length,
      len: this.chunk.bytes.length,
      lines: this.chunk.lines.length,
      fixups: this.chunk.fixups.length,
    };
  }

  private restore(s: Snapshot): void {
    this.undef = s.undef;
    this.notes.length = s.notes;
    this.chunk.bytes.length = s.len;
    this.chunk.lines.length = s.lines;
    this.chunk.fixups.length = s.fixups;
  }

  private applyEff(e: Eff): void {
    this.undef = (this.undef & ~e.def) | e.undef;
  }

  /** Make sure the flags in `reads` are defined, inserting a CMP when they are not. */
  private ensureDefined(reads: number): void {
    if ((reads & this.undef) !== 0) this.emitDefiner();
  }

  // ------------------------------------------------------------------------------------
  // Item selection
  // ------------------------------------------------------------------------------------

  private item(level: number): void {
    const r = this.rng;
    if (this.g.smc && r.chance(0.03)) {
      this.genSmc();
      return;
    }
    for (let attempt = 0; attempt < 20; attempt++) {
      const cls = r.pick(this.classNames);
      const t = r.pick(this.g.classes.get(cls) as Template[]);
      if (this.tryTemplate(t, level)) return;
    }
    this.emitDefiner();
  }

  private tryTemplate(t: Template, level: number): boolean {
    const k = t.spec.kind;
    const top = level === 0;
    switch (k) {
      case "push":
        return top && this.genPush(t);
      case "pushf":
        return top && this.genPushf(t);
      case "popf":
        return top && this.genPopf(t);
      case "call":
        return top && this.genCall(t);
      case "enter":
        return top && this.genEnter(t);
      case "ret":
        return top && this.genRet(t);
      case "indirect":
        return (t.row.ext === 2 ? top : level < 2) && this.genIndirect(t, level);
      case "dfop":
        if (!top) return false;
        this.emitPlain(t, []);
        this.df = t.row.code === 0xfd ? DF : 0;
        return true;
      case "branch":
        return level < 2 && this.genBranch(t, level);
      case "string":
        this.genString(t);
        return true;
      case "moffs":
        this.genMoffs(t);
        return true;
      case "cmpxchg8b":
        this.genCmpxchg8b(t);
        return true;
      case "lea":
        this.genLea(t);
        return true;
      case "nop":
        this.genNop(t);
        return true;
      case "pop":
        return false;
      default:
        this.genGeneric(t);
        return true;
    }
  }

  // ------------------------------------------------------------------------------------
  // Operand helpers
  // ------------------------------------------------------------------------------------

  /** Operand size for a row's size kind (restricted to `sizes`). */
  private pickSize(row: OpDef, sizes?: number[]): number {
    let opts: number[];
    switch (row.size) {
      case "b":
        return 1;
      case "w":
        return 2;
      case "d":
        return 4;
      case "q":
        return 8;
      case "f64":
        return 8;
      case "d64":
        opts = [8, 8, 8, 2];
        break;
      case "y":
        opts = [4, 8];
        break;
      default:
        opts = [2, 4, 4, 8, 8];
    }
    if (sizes) opts = opts.filter((s) => sizes.includes(s));
    return this.rng.pick(opts);
  }

  /** Whether a register code may be written at this size/REX state (never RSP or R15). */
  private writable(r: number, byte: boolean, rex: boolean): boolean {
    if (r === BASE_REG) return false;
    // AH/CH are fine without REX, but SPL/SP/ESP/RSP (and BPL… of a reserved RBP) are not.
    if (r === RSP || r === this.reserved) return byte && !rex;
    return true;
  }

  private pickReg(written: boolean, byte: boolean, rex: boolean, avoid: readonly number[] = []): number {
    const n = rex ? 16 : 8;
    for (let tries = 0; tries < 100; tries++) {
      const r = this.rng.int(n);
      if (written && !this.writable(r, byte, rex)) continue;
      if (avoid.includes(r)) continue;
      return r;
    }
    throw new Error("difftest generator: no register satisfies the constraints");
  }

  /** A register usable as a base/index the generator may set (not RSP/R15, not avoided). */
  private pickAddrReg(rex: boolean, avoid: readonly number[]): number {
    return this.pickReg(true, false, rex, [...avoid, RSP]);
  }

  private rspNow(): number {
    return RSP_INIT - this.pushedBytes;
  }

  /**
   * A memory operand addressing [lo, hi) relative to an offset in the data area, built in one of
   * several ways (R15+disp, SIB with an index set first, another base set first, absolute,
   * RSP-relative, RIP-relative, 67h 32-bit addressing).
   */
  private pickMem(opts: {
    width: number;
    rex: boolean;
    avoid: readonly number[];
    lo?: number;
    align?: number;
    noRsp?: boolean;
    noAsize32?: boolean;
  }): MemChoice {
    const r = this.rng;
    // The access covers [off + lo, off + width) for the chosen offset `off`.
    const lo = opts.lo ?? 0;
    const minOff = Math.max(0, -lo);
    const maxOff = DATA_SIZE - opts.width;
    let off: number;
    const w = r.int(100);
    if (w < 15 && opts.align === undefined) {
      // Straddle the page boundary between buffer and stack (DATA_ADDR + 256 is 4 KiB aligned).
      off = BUF_SIZE - r.range(1, Math.max(1, opts.width - 1));
    } else if (w < 70) off = r.range(minOff, Math.min(maxOff, BUF_SIZE - 1));
    else off = r.range(minOff, maxOff);
    off = Math.max(minOff, Math.min(maxOff, off));
    if (opts.align !== undefined) {
      const a = opts.align;
      let addr = DATA_ADDR + off;
      addr -= addr % a;
      if (addr - DATA_ADDR < minOff) addr += a;
      off = addr - DATA_ADDR;
    }
    const addr = DATA_ADDR + off;
    const asize32 = !opts.noAsize32 && r.chance(0.12);
    const setup: (() => void)[] = [];
    const mem: MemOp = { kind: "mem", base: NO_REG, index: NO_REG, scale: r.int(4), disp: 0, dispSize: 4, asize32 };
    const dispSize = (d: number): 0 | 1 | 4 => {
      if (d === 0) return r.pick([0, 0, 0, 1, 4] as const);
      if (fitsI8(d)) return r.chance(0.85) ? 1 : 4;
      return 4;
    };
    // Optionally an index register set to a small value (possibly negative) right before.
    const withIndex = (baseAvoid: readonly number[]): number => {
      if (!r.chance(0.4)) return 0;
      const x = this.pickAddrReg(opts.rex, [...opts.avoid, ...baseAvoid]);
      const v = r.range(-40, 40);
      mem.index = x;
      mem.scale = r.int(4);
      setup.push(() => this.emitMovImm(x, v, asize32));
      return v * (1 << mem.scale);
    };
    if (this.faultMem === "pf") {
      // Straddling the end of the mapped pages, or the start (or just outside): #PF.
      const a = r.chance(0.5) ? MAP_ADDR + MAP_SIZE - r.range(0, opts.width - 1) : MAP_ADDR - r.range(1, opts.width);
      if (opts.rex && r.chance(0.6)) {
        mem.base = BASE_REG;
        mem.disp = a - BASE_VALUE;
        mem.dispSize = 4;
      } else mem.disp = a;
      mem.asize32 = false;
      return { mem, setup, addr: a };
    }
    if (this.faultMem === "gp") {
      // A non-canonical address (bits 63:47 not all equal): #GP, or #SS when based on RBP.
      const b =
        r.chance(0.3) && this.writable(5, false, true) && !opts.avoid.includes(5)
          ? 5
          : this.pickAddrReg(true, opts.avoid);
      const hi = r.chance(0.5) ? 0x8000 + r.int(0x7fff0000) : -0x8001 - r.int(0x7fff0000);
      const lo = r.i32();
      mem.base = b;
      mem.asize32 = false;
      mem.disp = r.range(-64, 64);
      mem.dispSize = dispSize(mem.disp);
      setup.push(() => this.emitMovImm64(b, lo, hi));
      return { mem, setup };
    }
    let form = r.int(100);
    if (!opts.rex && form < 45) form = 45 + r.int(55); // R15 needs REX
    if (form < 45) {
      mem.base = BASE_REG;
      const xo = withIndex([]);
      mem.disp = addr - BASE_VALUE - xo;
      mem.dispSize = dispSize(mem.disp);
    } else if (form < 65) {
      const b = this.pickAddrReg(opts.rex, opts.avoid);
      const k = r.range(-200, 200);
      mem.base = b;
      const baseVal = BASE_VALUE + k;
      setup.push(() => (r.chance(0.5) ? this.emitLeaBase(b, k) : this.emitMovImm(b, baseVal, false)));
      const xo = withIndex([b]);
      mem.disp = addr - baseVal - xo;
      mem.dispSize = dispSize(mem.disp);
    } else if (form < 75) {
      mem.base = NO_REG;
      const xo = withIndex([]);
      mem.disp = addr - xo;
    } else if (form < 87 && !opts.noRsp) {
      mem.base = RSP;
      const xo = withIndex([]);
      mem.disp = addr - this.rspNow() - xo;
      mem.dispSize = dispSize(mem.disp);
    } else {
      mem.base = RIP;
      mem.scale = 0;
      mem.ripTarget = addr;
    }
    return { mem, setup, addr };
  }

  /** An arbitrary address expression for LEA / hint NOPs (never accessed). */
  private arbitraryMem(rex: boolean): MemOp {
    const r = this.rng;
    const n = rex ? 16 : 8;
    const asize32 = r.chance(0.2);
    const f = r.int(10);
    if (f === 0) return { kind: "mem", base: RIP, index: NO_REG, scale: 0, disp: this.imm32(), dispSize: 4, asize32 };
    let index = r.chance(0.5) ? r.int(n) : NO_REG;
    if (index === RSP) index = NO_REG;
    const base = f === 1 ? NO_REG : r.int(n);
    const disp = r.chance(0.3) ? 0 : r.chance(0.5) ? r.range(-128, 127) : this.imm32();
    return {
      kind: "mem",
      base,
      index,
      scale: r.int(4),
      disp,
      dispSize: disp === 0 ? 0 : fitsI8(disp) ? r.pick([1, 4] as const) : 4,
      asize32,
    };
  }

  private runSetup(s: (() => void)[]): void {
    for (const f of s) f();
  }

  // ------------------------------------------------------------------------------------
  // Helper instructions (all exist in the table; listed as "helper")
  // ------------------------------------------------------------------------------------

  /** MOV r, imm: B8+r imm32 (zero-extends), or REX.W C7 /0 simm32 for negative 64-bit values. */
  private emitMovImm(reg: number, v: number, only32: boolean): void {
    if (v >= 0 || only32) {
      const e = encode({
        prefixes: [],
        rexW: false,
        forceRex: false,
        map: 0,
        opcode: 0xb8,
        plusReg: reg,
        imm: immBytes(v, 4),
      });
      this.emit(e, `mov ${regName(reg, 4, true)}, ${hex(v >>> 0)}`, "helper");
    } else {
      const e = encode({
        prefixes: [],
        rexW: true,
        forceRex: false,
        map: 0,
        opcode: 0xc7,
        reg: 0,
        rm: { kind: "reg", r: reg },
        imm: immBytes(v, 4),
      });
      this.emit(e, `mov ${regName(reg, 8, true)}, ${hex(v)}`, "helper");
    }
  }

  /** MOV r64, imm64 (REX.W B8+r). */
  private emitMovImm64(reg: number, lo: number, hi: number): void {
    const e = encode({
      prefixes: [],
      rexW: true,
      forceRex: false,
      map: 0,
      opcode: 0xb8,
      plusReg: reg,
      imm: imm64Bytes(lo, hi),
    });
    this.emit(
      e,
      `mov ${regName(reg, 8, true)}, 0x${(hi >>> 0).toString(16)}_${(lo >>> 0).toString(16).padStart(8, "0")}`,
      "helper",
    );
  }

  /** LEA r64, [R15 + k]. */
  private emitLeaBase(reg: number, k: number): void {
    const m: MemOp = {
      kind: "mem",
      base: BASE_REG,
      index: NO_REG,
      scale: 0,
      disp: k,
      dispSize: fitsI8(k) ? 1 : 4,
      asize32: false,
    };
    const e = encode({ prefixes: [], rexW: true, forceRex: false, map: 0, opcode: 0x8d, reg, rm: m });
    this.emit(e, `lea ${regName(reg, 8, true)}, ${rmText(m, 0, true)}`, "helper");
  }

  /**
   * ALU op (ext: 1 OR, 4 AND, 5 SUB, 7 CMP) on a register or memory operand with an immediate:
   * 80 /ext ib for bytes, 83 /ext ib (sign-extended) or 81 /ext iz otherwise.
   */
  private emitAluImm(ext: number, size: number, rm: RmOp, rex: boolean, imm: number, wide = false): void {
    const names = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"];
    const prefixes: number[] = [];
    if (size === 2) prefixes.push(0x66);
    if (rm.kind === "mem" && rm.asize32) prefixes.push(0x67);
    let opcode: number;
    let ib: number[];
    if (size === 1) {
      opcode = 0x80;
      ib = immBytes(imm, 1);
    } else if (!wide && fitsI8(imm)) {
      opcode = 0x83;
      ib = immBytes(imm, 1);
    } else {
      opcode = 0x81;
      ib = immBytes(imm, size === 2 ? 2 : 4);
    }
    const e = encode({ prefixes, rexW: size === 8, forceRex: rex, map: 0, opcode, reg: ext, rm, imm: ib });
    this.emit(e, `${names[ext]} ${rmText(rm, size, e.hasRex)}, ${hex(imm)}`, "helper");
    this.applyEff(ext === 4 || ext === 1 || ext === 6 ? { def: CF | PF | ZF | SF | OF, undef: AF, reads: 0 } : E_ARITH);
  }

  /** CMP between random registers (or a register and an immediate): defines all six flags. */
  private emitDefiner(): void {
    const r = this.rng;
    const size = r.pick([1, 2, 4, 8]);
    const rex = size === 8 || r.chance(0.5);
    const a = r.int(rex ? 16 : 8);
    const prefixes = size === 2 ? [0x66] : [];
    let e: Encoded;
    let text: string;
    if (r.chance(0.5)) {
      const b = r.int(rex ? 16 : 8);
      e = encode({
        prefixes,
        rexW: size === 8,
        forceRex: rex,
        map: 0,
        opcode: size === 1 ? 0x38 : 0x39,
        reg: b,
        rm: { kind: "reg", r: a },
      });
      text = `cmp ${regName(a, size, e.hasRex)}, ${regName(b, size, e.hasRex)}`;
    } else {
      const v = r.range(-128, 127);
      e = encode({
        prefixes,
        rexW: size === 8,
        forceRex: rex,
        map: 0,
        opcode: size === 1 ? 0x80 : 0x83,
        reg: 7,
        rm: { kind: "reg", r: a },
        imm: immBytes(v, 1),
      });
      text = `cmp ${regName(a, size, e.hasRex)}, ${hex(v)}`;
    }
    this.emit(e, `${text}    ; defines flags`, "helper");
    this.undef = 0;
  }

  /** A row with no operands at all (CLC, STD, CBW…), optionally with 66h/REX.W for the size. */
  private emitPlain(t: Template, prefixes: number[], rexW = false): void {
    const e = encode({ prefixes, rexW, forceRex: false, map: t.row.map, opcode: t.row.code });
    this.emit(e, t.row.name, t.desc);
  }

  // ------------------------------------------------------------------------------------
  // Generic instructions
  // ------------------------------------------------------------------------------------

  private genGeneric(t: Template): void {
    const { row, spec } = t;
    const r = this.rng;
    const kind = spec.kind;
    const size = this.pickSize(row, spec.sizes);
    const byteOp = row.size === "b";
    const vex = row.vex !== undefined;
    let rexW = size === 8 && (row.size === "v" || row.size === "y");
    let rex = rexW || vex || r.chance(0.45); // VEX carries R/X/B: all 16 registers
    if (kind === "div" && byteOp && r.chance(0.5)) rex = false; // exercise AH as the high half
    const prefixes: number[] = [];
    if (byteOp && rex && r.chance(0.1)) rexW = true; // REX.W is ignored for byte operations
    if (size === 2 && row.size !== "w") prefixes.push(0x66);
    else if (byteOp && r.chance(0.05)) prefixes.push(0x66); // ignored too
    const regByte = byteOp;
    const rmByte = byteOp || row.rmByte === true;
    const wReg = spec.w === "reg" || spec.w === "both";
    const wRm = spec.w === "rm" || spec.w === "both";
    let memWidth = spec.memWidth ?? (row.rmByte ? 1 : row.rmWord ? 2 : size);
    const setupWrites: number[] = [];
    const setup: (() => void)[] = [];
    let eff: Eff = spec.eff ?? { def: 0, undef: 0, reads: 0 };

    // ---- choose the register operand(s) ----
    let reg: number | undefined;
    let junkR = false;
    if (row.modrm) {
      if (row.ext !== undefined) {
        reg = row.ext;
        junkR = rex && !vex && r.chance(0.1); // REX.R with an opcode extension is ignored
      } else if (spec.regIgnored) {
        reg = r.int(rex ? 16 : 8);
      } else if (kind === "bt") {
        reg = this.pickReg(true, false, rex); // bounded first when the other operand is memory
      } else reg = this.pickReg(wReg, regByte, rex);
    }
    let plusReg: number | undefined;
    if (row.plusReg) plusReg = this.pickReg(wReg, byteOp, rex);
    // VEX.vvvv: a source (any register) or a destination (a writable one); 0 when unused.
    const vreg =
      spec.vvvv === undefined || spec.vvvv === "none" ? 0 : this.pickReg(spec.vWritten === true, false, true);

    // ---- r/m operand: register or memory ----
    let isMem = false;
    if (row.modrm) {
      if (row.form === "mem") isMem = true;
      else if (row.form === "reg") isMem = false;
      else if (row.map === 2 && (row.code === 0xf0 || row.code === 0xf1) && !row.prefix)
        isMem = true; // MOVBE
      else isMem = this.faultMem !== "" || r.chance(0.45);
    }
    let rmReg = 0;
    let rmAvoid: number[] = [];
    if (kind === "div") {
      rmAvoid = byteOp ? (rex ? [0] : [0, 4]) : [0, 2];
    }
    if (row.modrm && !isMem) {
      const rmWritten = wRm || kind === "div" || kind === "bsf";
      rmReg = this.pickReg(rmWritten, rmByte, rex, rmAvoid);
    }

    // ---- instruction-specific setup and flag effects ----
    let imm: number[] | undefined;
    let immText = "";
    let clCount: number | null | undefined; // for CL counts: known value, or null when unknown
    switch (kind) {
      case "div":
        setupWrites.push(0, 2);
        break;
      case "bt":
        if (isMem) {
          setupWrites.push(reg as number);
          memWidth = 24 + size;
        }
        break;
      case "shift":
      case "shld":
        if (spec.count === "cl") {
          const mustKnow = kind === "shld" && size === 2;
          if (mustKnow || r.chance(0.5)) {
            setupWrites.push(1);
            clCount = -1; // decided below
          } else clCount = null;
        }
        break;
    }

    // ---- memory operand ----
    let mc: MemChoice | undefined;
    if (isMem) {
      const lo = kind === "bt" ? -8 : undefined;
      mc = this.pickMem({ width: memWidth, rex, avoid: setupWrites, lo });
      if (row.map === 0 && row.code === 0x63 && size === 2 && this.movsxd16Differs(mc.addr))
        this.notes.push({ kind: "movsxd16-width", skip: true });
    }
    const rm: RmOp | undefined = row.modrm ? (mc ? mc.mem : { kind: "reg", r: rmReg }) : undefined;

    // ---- immediate ----
    const immKind = row.imm ?? "none";
    let immVal = 0;
    switch (immKind) {
      case "ib":
        immVal = this.imm8();
        imm = immBytes(immVal, 1);
        break;
      case "ibs":
        immVal = (this.imm8() << 24) >> 24;
        imm = immBytes(immVal, 1);
        break;
      case "iw":
        immVal = this.imm16();
        imm = immBytes(immVal, 2);
        break;
      case "iz":
        immVal = size === 2 ? this.imm16() : this.imm32();
        imm = immBytes(immVal, size === 2 ? 2 : 4);
        break;
      case "iv":
        if (size === 8) {
          const [lo, hi] = this.randomValue();
          imm = imm64Bytes(lo, hi);
          immText = `0x${(hi >>> 0).toString(16)}_${(lo >>> 0).toString(16).padStart(8, "0")}`;
        } else {
          immVal = size === 2 ? this.imm16() : this.imm32();
          imm = immBytes(immVal, size === 2 ? 2 : 4);
        }
        break;
      default:
        break;
    }

    // Shift counts and their flag rules.
    if (kind === "shift" || kind === "shld") {
      const mask = size === 8 ? 63 : 31;
      let count: number | null;
      if (spec.count === "one") count = 1;
      else if (spec.count === "imm") {
        let c = this.shiftCount(size);
        if (kind === "shld" && size === 2) c = r.range(0, 16) | (r.int(8) << 5);
        immVal = c & 0xff;
        imm = immBytes(immVal, 1);
        count = immVal & mask;
      } else {
        if (clCount === -1) {
          let c = this.shiftCount(size);
          if (kind === "shld" && size === 2) c = r.range(0, 16) | (r.int(8) << 5);
          const hiBits = r.i32() & ~0xff;
          const v = ((hiBits | (c & 0xff)) >>> 0) & 0x7fffffff;
          setup.push(() => this.emitMovImm(1, v, true));
          count = c & mask;
        } else count = null;
      }
      eff = kind === "shift" ? shiftEff(spec.shift as number, size, count) : shldEff(size, count);
    }

    // Setup sequences that make the instruction safe.
    if (kind === "div") {
      const divisor: RmOp = rm as RmOp;
      if (!spec.signed) {
        const big = r.chance(0.6);
        const high: RmOp = { kind: "reg", r: byteOp ? 4 : 2 };
        const k = big ? r.int(0x80) : 0;
        setup.push(() => this.emitAluImm(4, size, high, false, k)); // and high, k
        const m = big ? 0x80 | r.int(0x80) : r.range(1, 0x7f);
        const wide = big && size !== 1 && r.chance(0.5);
        setup.push(() => this.emitAluImm(1, size, divisor, rex, byteOp ? m : wide ? m : (m << 24) >> 24, wide)); // or divisor, m
      } else {
        setup.push(() => {
          const e = encode({
            prefixes: size <= 2 ? [0x66] : [],
            rexW: size === 8,
            forceRex: false,
            map: 0,
            opcode: byteOp ? 0x98 : 0x99,
          });
          this.emit(e, byteOp ? "cbw" : size === 2 ? "cwd" : size === 4 ? "cdq" : "cqo", "helper");
        });
        const m = 2 * r.range(1, 0x3f);
        setup.push(() => this.emitAluImm(4, size, divisor, rex, -2)); // and divisor, -2
        setup.push(() => this.emitAluImm(1, size, divisor, rex, m)); // or divisor, m (even, non-zero)
      }
    } else if (kind === "bt" && isMem) {
      const b = reg as number;
      const neg = r.chance(0.4);
      setup.push(() => {
        this.emitAluImm(4, size, { kind: "reg", r: b }, rex, 0x7f);
        if (neg) this.emitAluImm(5, size, { kind: "reg", r: b }, rex, 0x40);
      });
    } else if (kind === "bsf") {
      const src = rm as RmOp;
      if (src.kind === "mem" || (src.r !== RSP && src.r !== BASE_REG)) {
        let m = r.range(-128, 127);
        if (m === 0) m = 1;
        setup.push(() => this.emitAluImm(1, size, src, rex, m));
      }
    }

    // Flags read by condition-code users and carry users.
    if (spec.cls === "SETcc" || spec.cls === "CMOVcc") eff = { def: 0, undef: 0, reads: ccReads(row.code & 15) };

    // Memory setup first (it does not touch flags), then instruction setup, then flags.
    if (mc) this.runSetup(mc.setup);
    this.runSetup(setup);
    this.ensureDefined(eff.reads);

    // LOCK for lockable read-modify-write forms with a memory destination.
    if (isMem && row.lockable && r.chance(0.25)) prefixes.unshift(0xf0);
    if (isMem && r.chance(0.04)) prefixes.unshift(r.pick([0x26, 0x2e, 0x36, 0x3e])); // ignored in 64-bit mode
    if (rm && rm.kind === "mem" && rm.asize32) prefixes.push(0x67);
    if (row.prefix && !vex) prefixes.push(row.prefix); // mandatory prefix last before REX
    const e = encode({
      vex: vex ? { vvvv: vreg, l: 0, pp: row.prefix ?? 0 } : undefined,
      prefixes,
      rexW,
      forceRex: rex,
      junkRexR: junkR,
      map: row.map,
      opcode: row.code,
      reg: row.modrm ? reg : undefined,
      rm,
      plusReg,
      imm,
    });
    const hasRex = e.hasRex;
    // ---- listing text ----
    const ops: string[] = [];
    const regSize = byteOp ? 1 : size;
    if (plusReg !== undefined) ops.push(regName(plusReg, regSize, hasRex));
    if (rm) {
      const rmSize = row.rmByte ? 1 : row.rmWord ? 2 : spec.memWidth && rm.kind === "mem" ? spec.memWidth : regSize;
      const rmS = rmText(rm, rmSize, hasRex);
      const regS = row.ext !== undefined ? "" : spec.regIgnored ? "" : regName(reg as number, regSize, hasRex);
      const vS = regName(vreg, regSize, true);
      if (spec.vvvv === "first") ops.push(vS, rmS);
      else if (spec.vvvv === "mid") ops.push(regS, vS, rmS);
      else if (spec.vvvv === "last") ops.push(regS, rmS, vS);
      else if (regS === "") ops.push(rmS);
      else if (spec.w === "reg") ops.push(regS, rmS);
      else ops.push(rmS, regS);
    }
    if (imm !== undefined) ops.push(immText || hex(immVal));
    if (spec.count === "cl") ops.push("cl");
    const sz = row.modrm || row.plusReg ? "" : ` (${size * 8}-bit)`;
    this.emit(e, `${row.name}${ops.length ? " " : ""}${ops.join(", ")}${sz}`, t.desc);
    this.applyEff(eff);
  }

  private shiftCount(size: number): number {
    const r = this.rng;
    const w = size * 8;
    switch (r.int(6)) {
      case 0:
        return r.pick([0, 1, 1, 2]);
      case 1:
        return r.pick([w - 1, w, w + 1, 31, 32, 33, 63, 64, 65]) & 0xff;
      case 2:
        return r.int(256);
      default:
        return r.int(w);
    }
  }

  // ------------------------------------------------------------------------------------
  // Special forms
  // ------------------------------------------------------------------------------------

  private genMoffs(t: Template): void {
    const { row } = t;
    const r = this.rng;
    const size = this.pickSize(row);
    const rexW = size === 8;
    const asize32 = r.chance(0.3);
    const off = r.range(0, DATA_SIZE - size);
    const addr = DATA_ADDR + off;
    const prefixes: number[] = [];
    if (size === 2) prefixes.push(0x66);
    if (asize32) prefixes.push(0x67);
    const imm = asize32 ? immBytes(addr, 4) : imm64Bytes(addr, 0);
    const e = encode({ prefixes, rexW, forceRex: r.chance(0.2), map: 0, opcode: row.code, imm });
    const acc = regName(0, size, e.hasRex);
    const m = `${["byte", "word", "", "dword", "", "", "", "qword"][size - 1]} ptr [${hex(addr)}]`;
    this.emit(e, row.code < 0xa2 ? `mov ${acc}, ${m}` : `mov ${m}, ${acc}`, t.desc);
  }

  private genCmpxchg8b(t: Template): void {
    const r = this.rng;
    const wide = r.chance(0.5);
    const rex = wide || r.chance(0.4);
    const mc = this.pickMem({ width: wide ? 16 : 8, rex, avoid: [], align: wide ? 16 : undefined });
    this.runSetup(mc.setup);
    const prefixes: number[] = [];
    if (r.chance(0.3)) prefixes.push(0xf0);
    if (mc.mem.asize32) prefixes.push(0x67);
    const e = encode({ prefixes, rexW: wide, forceRex: rex, map: 1, opcode: 0xc7, reg: 1, rm: mc.mem });
    this.emit(e, `${wide ? "cmpxchg16b" : "cmpxchg8b"} ${rmText(mc.mem, wide ? 16 : 8, true)}`, t.desc);
    this.applyEff(t.spec.eff as Eff);
  }

  private genLea(t: Template): void {
    const { row } = t;
    const r = this.rng;
    const size = this.pickSize(row);
    const rex = size === 8 || r.chance(0.5);
    const reg = this.pickReg(true, false, rex);
    const m = this.arbitraryMem(rex);
    const prefixes: number[] = [];
    if (size === 2) prefixes.push(0x66);
    if (m.asize32) prefixes.push(0x67);
    const e = encode({ prefixes, rexW: size === 8, forceRex: rex, map: row.map, opcode: row.code, reg, rm: m });
    this.emit(e, `lea ${regName(reg, size, e.hasRex)}, ${rmText(m, 0, e.hasRex)}`, t.desc);
  }

  private genNop(t: Template): void {
    const { row } = t;
    const r = this.rng;
    const size = this.pickSize(row);
    const rex = size === 8 || r.chance(0.5);
    const isMem = row.form === "mem" || (row.form !== "reg" && r.chance(0.7));
    const rm: RmOp = isMem ? this.arbitraryMem(rex) : { kind: "reg", r: r.int(rex ? 16 : 8) };
    const prefixes: number[] = [];
    if (size === 2) prefixes.push(0x66);
    if (rm.kind === "mem" && rm.asize32) prefixes.push(0x67);
    const e = encode({
      prefixes,
      rexW: size === 8,
      forceRex: rex,
      map: row.map,
      opcode: row.code,
      reg: row.ext ?? r.int(8),
      rm,
    });
    this.emit(e, `nop ${rmText(rm, size, e.hasRex)}`, t.desc);
  }

  private genString(t: Template): void {
    const { row, spec } = t;
    const r = this.rng;
    const byteOp = row.size === "b";
    const size = byteOp ? 1 : this.pickSize(row);
    const str = spec.str as string;
    const cmpLike = str === "cmps" || str === "scas";
    const pf = this.faultMem === "pf";
    const repKind = r.int(10) < (pf ? 1 : 3) ? 0 : cmpLike && r.chance(0.5) ? 0xf2 : 0xf3;
    const asize32 = r.chance(0.2);
    // With pf: one pointer starts `d` elements before the edge of the mapped pages (plus a
    // misalignment so the faulting element may straddle it) and the count goes past it.
    const d = repKind ? r.range(0, 8) : 0;
    const n = pf ? (repKind ? d + r.range(1, 8) : 1) : repKind ? (r.chance(0.1) ? 0 : r.range(1, 12)) : 1;
    const usesSrc = str === "movs" || str === "cmps" || str === "lods";
    const usesDst = str === "movs" || str === "cmps" || str === "stos" || str === "scas";
    const span = Math.max(1, n) * size;
    const place = (): number => {
      // Offset of the first element so that all n elements stay in the data area.
      if (this.df === 0) return r.range(0, DATA_SIZE - span);
      return r.range(span - size, DATA_SIZE - size);
    };
    const setReg = (reg: number, value: number): void => {
      // 67h REP that completes no iteration (ECX = 0, or a fault on the first element): Intel
      // cores still zero-extend RCX (and RSI/RDI for MOVS, RDI for STOS) although the SDM
      // pseudo-code writes nothing; model-specific, generated only with `quirks` (otherwise the
      // upper halves are zero in those cases).
      const noIteration = n === 0 || (pf && d === 0);
      if (asize32 && (!noIteration || this.g.quirks) && r.chance(0.5)) this.emitMovImm64(reg, value, r.i32());
      else if (r.chance(0.5)) this.emitLeaBase(reg, value - BASE_VALUE);
      else this.emitMovImm(reg, value, false);
    };
    const edge = (): number => {
      const mis = r.int(size);
      return this.df === 0 ? MAP_ADDR + MAP_SIZE - d * size - mis : MAP_ADDR + (d - 1) * size + mis;
    };
    const crossSrc = pf && usesSrc && (!usesDst || r.chance(0.5));
    const crossDst = pf && usesDst && !crossSrc;
    if (usesSrc) setReg(6, crossSrc ? edge() : DATA_ADDR + place());
    if (usesDst) setReg(7, crossDst ? edge() : DATA_ADDR + place());
    if (repKind) setReg(1, n);
    const prefixes: number[] = [];
    if (size === 2) prefixes.push(0x66);
    if (asize32) prefixes.push(0x67);
    if (r.chance(0.5)) prefixes.reverse();
    if (repKind) {
      if (r.chance(0.5)) prefixes.push(repKind);
      else prefixes.unshift(repKind);
    }
    const rexW = size === 8;
    const e = encode({ prefixes, rexW, forceRex: r.chance(0.15), map: 0, opcode: row.code });
    const sfx = ["b", "w", "", "d", "", "", "", "q"][size - 1];
    const rep = repKind === 0 ? "" : repKind === 0xf2 ? "repne " : cmpLike ? "repe " : "rep ";
    this.emit(
      e,
      `${rep}${str}${sfx}${asize32 ? " (addr32)" : ""}  ; count ${repKind ? n : 1}, DF=${this.df ? 1 : 0}`,
      t.desc,
    );
    if (pf && cmpLike && repKind && d > 0) {
      // Faulting part-way, Intel cores report the flags from before the instruction, not those of
      // the last completed iteration; the SDM does not say. Model-specific: masked unless `quirks`.
      if (!this.g.quirks) this.undef |= STATUS;
    } else if (cmpLike && n > 0 && (!pf || d > 0)) this.applyEff(E_ARITH);
  }

  // ---- stack ----

  private genPush(t: Template): boolean {
    const { row } = t;
    const r = this.rng;
    const size = r.chance(0.15) ? 2 : 8;
    if (this.pushedBytes + size > MAX_STACK_BYTES) return false;
    const prefixes = size === 2 ? [0x66] : [];
    const rex = r.chance(0.4);
    let e: Encoded;
    let text: string;
    if (row.plusReg) {
      const reg = r.int(rex ? 16 : 8);
      e = encode({ prefixes, rexW: false, forceRex: rex, map: 0, opcode: row.code, plusReg: reg });
      text = `push ${regName(reg, size, true)}`;
    } else if (row.modrm) {
      const isMem = r.chance(0.6);
      let rm: RmOp;
      if (isMem) {
        const mc = this.pickMem({ width: size, rex, avoid: [] });
        this.runSetup(mc.setup);
        rm = mc.mem;
        if (mc.mem.asize32) prefixes.push(0x67);
      } else rm = { kind: "reg", r: r.int(rex ? 16 : 8) };
      e = encode({ prefixes, rexW: false, forceRex: rex, map: 0, opcode: row.code, reg: 6, rm });
      text = `push ${rmText(rm, size, true)}`;
    } else {
      const ib = row.code === 0x6a;
      const v = ib ? (this.imm8() << 24) >> 24 : size === 2 ? this.imm16() : this.imm32();
      e = encode({
        prefixes,
        rexW: false,
        forceRex: rex,
        map: 0,
        opcode: row.code,
        imm: immBytes(v, ib ? 1 : size === 2 ? 2 : 4),
      });
      text = `push ${size === 2 ? "word " : ""}${hex(v)}`;
    }
    this.emit(e, text, t.desc);
    this.pushed.push(size);
    this.pushedBytes += size;
    return true;
  }

  /** Pop the innermost balanced push (into a register or the buffer). */
  private emitPop(): void {
    const r = this.rng;
    const size = this.pushed.pop() as number;
    this.pushedBytes -= size;
    const t = r.pick(this.pops);
    const prefixes = size === 2 ? [0x66] : [];
    const rex = r.chance(0.4);
    if (t.row.plusReg) {
      const reg = this.pickReg(true, false, rex);
      const e = encode({ prefixes, rexW: false, forceRex: rex, map: 0, opcode: t.row.code, plusReg: reg });
      this.emit(e, `pop ${regName(reg, size, true)}`, t.desc);
    } else {
      const isMem = r.chance(0.6);
      let rm: RmOp;
      if (isMem) {
        // POP m computes the address after incrementing RSP: keep RSP out of the address.
        const mc = this.pickMem({ width: size, rex, avoid: [], noRsp: true });
        this.runSetup(mc.setup);
        rm = mc.mem;
        if (mc.mem.asize32) prefixes.push(0x67);
      } else rm = { kind: "reg", r: this.pickReg(true, false, rex) };
      const e = encode({ prefixes, rexW: false, forceRex: rex, map: 0, opcode: t.row.code, reg: 0, rm });
      this.emit(e, `pop ${rmText(rm, size, true)}`, t.desc);
    }
  }

  private genPushf(t: Template): boolean {
    const size = this.rng.chance(0.2) ? 2 : 8;
    if (this.pushedBytes + size > MAX_STACK_BYTES) return false;
    this.ensureDefined(STATUS);
    this.emitPlain(t, size === 2 ? [0x66] : []);
    this.pushed.push(size);
    this.pushedBytes += size;
    return true;
  }

  /** PUSH imm32 (status flags, maybe DF, IF, bit 1) then POPF. */
  private genPopf(t: Template): boolean {
    const r = this.rng;
    if (this.pushedBytes + 8 > MAX_STACK_BYTES) return false;
    let v = 0x202 | (r.u32() & STATUS);
    if (r.chance(0.3)) v |= DF;
    const e = encode({ prefixes: [], rexW: false, forceRex: false, map: 0, opcode: 0x68, imm: immBytes(v, 4) });
    this.emit(e, `push ${hex(v)}`, "helper");
    this.emitPlain(t, []);
    this.undef = 0;
    this.df = v & DF;
    return true;
  }

  /** CALL rel32 over a few never-executed instructions; the return address is popped later. */
  private genCall(t: Template): boolean {
    if (this.pushedBytes + 8 > MAX_STACK_BYTES) return false;
    const before = this.undef;
    const inner = this.region(1, 200);
    this.undef = before;
    const e = encode({
      prefixes: [],
      rexW: false,
      forceRex: false,
      map: 0,
      opcode: 0xe8,
      imm: immBytes(inner.bytes.length, 4),
    });
    this.emit(e, `call +${inner.bytes.length}  ; return address stays pushed`, t.desc);
    this.chunk.append(inner);
    this.pushed.push(8);
    this.pushedBytes += 8;
    return true;
  }

  /**
   * A faulting last instruction: DIV/IDIV by zero or overflowing (#DE), LOCK on a register or
   * non-lockable form (#UD), a memory operand at a non-canonical address (#GP / #SS), an access
   * straddling the edge of the mapped pages (#PF, nothing may be written), or a string
   * instruction running off them part-way (#PF after some iterations: RCX/RSI/RDI must say so).
   * Flags undefined before it stay excluded (the fault leaves RFLAGS as they were).
   */
  private genFault(): void {
    const r = this.rng;
    const before = this.undef;
    const divs = this.g.templates.filter((t) => t.spec.kind === "div");
    const mems = this.g.templates.filter(
      (t) =>
        t.row.modrm && t.row.form !== "reg" && ["generic", "shift", "shld", "bt", "bsf", "div"].includes(t.spec.kind),
    );
    const strs = this.g.templates.filter((t) => t.spec.kind === "string");
    const k = r.int(7);
    const pf = k === 3 || k === 4;
    if (k === 5) this.genStackFault();
    else if (k === 6) this.genJumpFault();
    else if (k === 0 && divs.length > 0) this.genDivFault(r.pick(divs));
    else if (k === 1 && this.g.vexTemplates.length > 0 && r.chance(0.5)) this.genVexFault(r.pick(this.g.vexTemplates));
    else if (k === 1) this.genLockFault();
    else if (k === 4 && strs.length > 0) {
      this.faultMem = "pf";
      try {
        this.genString(r.pick(strs));
      } finally {
        this.faultMem = "";
      }
    } else if (mems.length > 0) {
      this.faultMem = pf ? "pf" : "gp";
      try {
        this.genGeneric(r.pick(mems));
      } finally {
        this.faultMem = "";
      }
    }
    this.undef |= before;
  }

  /**
   * Self-modifying code: a store (RIP-relative) into the immediate of a MOV r, imm a little
   * further on, which then runs with the new immediate on both sides.
   */
  private genSmc(): void {
    const r = this.rng;
    const wide = r.chance(0.4);
    const reg = this.pickReg(true, false, true);
    const [ilo, ihi] = this.randomValue();
    const target = encode({
      prefixes: [],
      rexW: wide,
      forceRex: false,
      map: 0,
      opcode: 0xb8,
      plusReg: reg,
      imm: wide ? imm64Bytes(ilo, ihi) : immBytes(ilo, 4),
    });
    const immOff = target.bytes.length - (wide ? 8 : 4);
    // The store: MOV byte/dword [rip+d], imm or ADD/XOR dword [rip+d], imm8 inside the immediate.
    const kind = r.int(4);
    const size = kind === 0 ? 1 : 4;
    const within = r.int((wide ? 8 : 4) - size + 1);
    const v = kind === 0 ? r.int(256) : kind === 1 ? this.imm32() : r.range(-128, 127);
    const opcode = kind === 0 ? 0xc6 : kind === 1 ? 0xc7 : 0x83;
    const ext = kind === 3 ? 6 : kind === 2 ? 0 : 0;
    const filler = r.int(3);
    const mk = (d: number): Encoded =>
      encode({
        prefixes: [],
        rexW: false,
        forceRex: false,
        map: 0,
        opcode,
        reg: ext,
        rm: { kind: "mem", base: RIP, index: NO_REG, scale: 0, disp: d, dispSize: 4, asize32: false },
        imm: immBytes(v, kind === 1 ? 4 : 1),
      });
    // Fillers between store and target: definers (CMP reg, reg: 2-4 bytes each) emitted into a
    // side chunk first so their length is known.
    const parent = this.chunk;
    this.chunks.push(parent);
    this.chunk = new Chunk();
    for (let k = 0; k < filler; k++) this.emitDefiner();
    const mid = this.chunk;
    this.chunk = this.chunks.pop() as Chunk;
    const store = mk(mid.bytes.length + immOff + within);
    const names = ["mov byte", "mov dword", "add dword", "xor dword"];
    this.emit(
      store,
      `${names[kind]} ptr [rip+${hex(mid.bytes.length + immOff + within)}], ${hex(v)}  ; patches the mov below`,
      "helper (self-modifying)",
    );
    this.chunk.append(mid);
    this.emit(target, `mov ${regName(reg, wide ? 8 : 4, true)}, <patched imm>`, "helper (self-modified)");
    if (kind >= 2) this.undef = kind === 3 ? (this.undef & ~STATUS) | AF : 0;
    else if (filler > 0) this.undef = 0;
  }

  /**
   * Whether MOVSXD r16 at `addr` reads differently on Intel (2 bytes) and AMD (4 bytes): bytes
   * 0..1 mapped and some of 2..3 not. Unknown addresses count as differing.
   */
  private movsxd16Differs(addr: number | undefined): boolean {
    if (addr === undefined) return true;
    const mapped = (a: number) => a >= MAP_ADDR && a < MAP_ADDR + MAP_SIZE;
    return mapped(addr) && mapped(addr + 1) && !(mapped(addr + 2) && mapped(addr + 3));
  }

  /** A non-canonical 64-bit value (bits 63:47 not all equal) as halves. */
  private nonCanonical(): [number, number] {
    const r = this.rng;
    return [r.i32(), r.chance(0.5) ? 0x8000 + r.int(0x7fff0000) : -0x8001 - r.int(0x7fff0000)];
  }

  /**
   * A stack instruction with RSP (and RBP for ENTER/LEAVE) moved so that it faults: non-canonical
   * (#SS) or at the edge of the mapped pages (#PF). RSP must be unchanged at the fault.
   */
  private genStackFault(): void {
    const r = this.rng;
    const ops: [number, number | undefined][] = [
      [0x50, undefined],
      [0x68, undefined],
      [0xff, 6],
      [0x58, undefined],
      [0x8f, 0],
      [0xe8, undefined],
      [0xc3, undefined],
      [0xc8, undefined],
      [0xc9, undefined],
      [0x9c, undefined],
      [0xff, 2],
    ];
    const avail = ops.filter(([code, ext]) => this.g.findRow(0, code, ext) !== undefined);
    if (avail.length === 0) return;
    const [code, ext] = r.pick(avail);
    const row = this.g.findRow(0, code, ext) as OpDef;
    // Pushes fault below the mapped pages, pops above them (the other way round they would
    // succeed, and a RET would go to an address only the emulator maps).
    const pops = code === 0x58 || code === 0x8f || code === 0xc3 || code === 0xc9;
    const bad = (): [number, number] => {
      if (r.chance(0.35)) return this.nonCanonical();
      return pops ? [MAP_ADDR + MAP_SIZE - r.int(8), 0] : [MAP_ADDR + r.int(8), 0];
    };
    const [slo, shi] = bad();
    if (code === 0xc9) {
      const [blo, bhi] = bad();
      this.emitMovImm64(5, blo, bhi);
    } else if (code === 0xc8) this.emitLeaBase(5, r.range(-128, 256)); // RBP in the data area
    this.emitMovImm64(RSP, slo, shi);
    let e: Encoded;
    let text: string;
    switch (code) {
      case 0x50:
      case 0x58: {
        const reg = code === 0x50 ? r.int(16) : this.pickReg(true, false, true);
        e = encode({ prefixes: [], rexW: false, forceRex: false, map: 0, opcode: code, plusReg: reg });
        text = `${code === 0x50 ? "push" : "pop"} ${regName(reg, 8, true)}`;
        break;
      }
      case 0x68:
        e = encode({
          prefixes: [],
          rexW: false,
          forceRex: false,
          map: 0,
          opcode: code,
          imm: immBytes(this.imm32(), 4),
        });
        text = "push imm32";
        break;
      case 0xe8:
        e = encode({ prefixes: [], rexW: false, forceRex: false, map: 0, opcode: code, imm: immBytes(0, 4) });
        text = "call +0";
        break;
      case 0xc8: {
        const level = r.pick([0, 1, 2, 4]);
        e = encode({
          prefixes: [],
          rexW: false,
          forceRex: false,
          map: 0,
          opcode: code,
          imm: [...immBytes(r.int(64), 2), level],
        });
        text = `enter ${level}`;
        break;
      }
      case 0xff:
      case 0x8f: {
        let rm: RmOp;
        if (ext === 2) {
          // CALL r64 to the next instruction's address: only the push can fault.
          const x = this.pickReg(true, false, true);
          this.emitLeaRip(x, 3);
          rm = { kind: "reg", r: x };
        } else {
          const mc = this.pickMem({ width: 8, rex: true, avoid: [], noRsp: true });
          this.runSetup(mc.setup);
          rm = mc.mem;
        }
        e = encode({
          prefixes: rm.kind === "mem" && rm.asize32 ? [0x67] : [],
          rexW: false,
          forceRex: true,
          map: 0,
          opcode: code,
          reg: ext,
          rm,
        });
        text = `${code === 0x8f ? "pop" : ext === 2 ? "call" : "push"} ${rmText(rm, 8, true)}`;
        break;
      }
      default:
        e = encode({ prefixes: [], rexW: false, forceRex: false, map: 0, opcode: code });
        text = row.name;
    }
    this.emit(e, `${text}  ; RSP=0x${(shi >>> 0).toString(16)}_${(slo >>> 0).toString(16)}, faults`, describeRow(row));
  }

  /** JMP/CALL/RET to a non-canonical target (#GP at the branch) or an unmapped one (#PF there). */
  private genJumpFault(): void {
    const r = this.rng;
    const kinds: [number, number | undefined][] = [
      [0xff, 4],
      [0xff, 2],
      [0xc3, undefined],
    ];
    const avail = kinds.filter(([code, ext]) => this.g.findRow(0, code, ext) !== undefined);
    if (avail.length === 0 || this.g.findRow(0, 0x50) === undefined) return;
    const [code, ext] = r.pick(avail);
    const row = this.g.findRow(0, code, ext) as OpDef;
    const [lo, hi] = r.chance(0.5) ? this.nonCanonical() : [CODE_ADDR + CODE_SIZE + r.int(0x100), 0];
    const x = this.pickReg(true, false, true);
    this.emitMovImm64(x, lo, hi);
    if (code === 0xc3) {
      this.emit(
        encode({ prefixes: [], rexW: false, forceRex: false, map: 0, opcode: 0x50, plusReg: x }),
        `push ${regName(x, 8, true)}`,
        "helper",
      );
      this.emit(
        encode({ prefixes: [], rexW: false, forceRex: false, map: 0, opcode: 0xc3 }),
        "ret  ; faults",
        describeRow(row),
      );
    } else {
      const e = encode({
        prefixes: [],
        rexW: false,
        forceRex: false,
        map: 0,
        opcode: 0xff,
        reg: ext,
        rm: { kind: "reg", r: x },
      });
      // A non-canonical target (the other kind is canonical, hi = 0).
      if (ext === 2 && hi !== 0)
        this.notes.push({ kind: "call-noncanonical-push", memAddr: this.rspNow() - 8, memLen: 8 });
      this.emit(e, `${ext === 2 ? "call" : "jmp"} ${regName(x, 8, true)}  ; faults`, describeRow(row));
    }
  }

  private genDivFault(t: Template): void {
    const r = this.rng;
    const byteOp = t.row.size === "b";
    const size = byteOp ? 1 : r.pick([2, 4, 8]);
    const rex = size === 8 || r.chance(0.4);
    const isMem = r.chance(0.4);
    let rm: RmOp;
    if (isMem) {
      const mc = this.pickMem({ width: size, rex, avoid: [0, 2] });
      this.runSetup(mc.setup);
      rm = mc.mem;
    } else rm = { kind: "reg", r: this.pickReg(true, byteOp, rex, byteOp ? (rex ? [0] : [0, 4]) : [0, 2]) };
    if (r.chance(0.5))
      this.emitAluImm(4, size, rm, rex, 0); // divisor 0
    else {
      // Quotient too large: high half all ones, divisor 1..0x7f.
      this.emitAluImm(1, size, { kind: "reg", r: byteOp ? 4 : 2 }, false, -1);
      this.emitAluImm(4, size, rm, rex, r.range(0, 0x7f));
    }
    const prefixes: number[] = size === 2 ? [0x66] : [];
    if (rm.kind === "mem" && rm.asize32) prefixes.push(0x67);
    const e = encode({ prefixes, rexW: size === 8, forceRex: rex, map: 0, opcode: t.row.code, reg: t.row.ext, rm });
    this.notes.push(DE_FLAGS_NOTE);
    this.emit(e, `${t.row.name} ${rmText(rm, size, e.hasRex)}  ; faults`, t.desc);
  }

  /** LOCK with a register destination (ADD/OR/… r/m, r) or on MOV to memory: #UD. */
  private genLockFault(): void {
    const r = this.rng;
    const size = r.pick([1, 2, 4, 8]);
    const rex = size === 8 || r.chance(0.4);
    const prefixes = [0xf0, ...(size === 2 ? [0x66] : [])];
    let e: Encoded;
    let text: string;
    if (r.chance(0.6)) {
      const op = r.int(8);
      const rm: RmOp = { kind: "reg", r: r.int(rex ? 16 : 8) };
      const reg = r.int(rex ? 16 : 8);
      e = encode({ prefixes, rexW: size === 8, forceRex: rex, map: 0, opcode: op * 8 + (size === 1 ? 0 : 1), reg, rm });
      text = `lock ${["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"][op]} ${rmText(rm, size, e.hasRex)}, ${regName(reg, size, e.hasRex)}  ; #UD`;
    } else {
      const mc = this.pickMem({ width: size, rex, avoid: [] });
      this.runSetup(mc.setup);
      if (mc.mem.asize32) prefixes.push(0x67);
      const reg = r.int(rex ? 16 : 8);
      e = encode({
        prefixes,
        rexW: size === 8,
        forceRex: rex,
        map: 0,
        opcode: size === 1 ? 0x88 : 0x89,
        reg,
        rm: mc.mem,
      });
      text = `lock mov ${rmText(mc.mem, size, e.hasRex)}, ${regName(reg, size, e.hasRex)}  ; #UD`;
    }
    this.emit(e, text, "helper (faults)");
  }

  /**
   * A VEX-encoded instruction made invalid (SDM vol. 2, 2.3.2, 2.3.6, 2.5.1; AMD APM vol. 3,
   * 1.8): VEX.L = 1, a 66/F2/F3/LOCK/REX prefix before VEX, a reserved VEX.mmmmm, or a vvvv
   * other than 1111b where the instruction does not use it. #UD on both sides.
   */
  private genVexFault(t: Template): void {
    const r = this.rng;
    const row = t.row;
    const size = r.pick([4, 8]);
    const why = r.int(row.vex === "nov" ? 4 : 3);
    const prefixes = why === 1 ? [r.pick([0x66, 0xf2, 0xf3, 0xf0, 0x40 | r.int(16)])] : [];
    const map = why === 2 ? r.pick([0, 4, 5, 6, 7]) : row.map;
    const vvvv = why === 3 ? r.range(1, 15) : row.vex === "nov" ? 0 : r.int(16);
    const e = encode({
      prefixes,
      rexW: size === 8,
      forceRex: false,
      map,
      opcode: row.code,
      reg: row.ext ?? r.int(16),
      rm: { kind: "reg", r: r.int(16) },
      imm: row.imm === "ib" ? [this.imm8()] : undefined,
      vex: { vvvv, l: why === 0 ? 1 : 0, pp: row.prefix ?? 0 },
    });
    const what = ["VEX.L = 1", `${bytesHex(prefixes)} before VEX`, `VEX.mmmmm = ${map}`, "vvvv not 1111b"][why];
    this.emit(e, `${row.name} (${size * 8}-bit)  ; #UD: ${what}`, "helper (faults)");
  }

  /** ENTER size, level with RBP pointing into the data area; a few items; LEAVE. */
  private genEnter(t: Template): boolean {
    const r = this.rng;
    const level = r.pick([0, 0, 1, 2, 3, 5]);
    const size = r.int(5) * 8 + (r.chance(0.3) ? r.int(8) : 0);
    const use = 8 + 8 * level + size;
    if (this.pushedBytes + use > MAX_STACK_BYTES) return false;
    // Levels > 1 copy level-1 frame pointers from [RBP-8], [RBP-16]…: RBP must point into the data area.
    const rbpOff = r.range(8 * level + 8, DATA_SIZE - 8);
    this.emitLeaBase(5, DATA_ADDR + rbpOff - BASE_VALUE);
    const e = encode({
      prefixes: [],
      rexW: false,
      forceRex: r.chance(0.1),
      map: 0,
      opcode: 0xc8,
      imm: [...immBytes(size, 2), level],
    });
    this.emit(e, `enter ${hex(size)}, ${level}`, t.desc);
    this.reserved = 5;
    this.pushedBytes += use;
    const n = r.int(4);
    for (let k = 0; k < n; k++) this.item(1);
    this.pushedBytes -= use;
    this.reserved = -1;
    const leave = this.g.findRow(0, 0xc9) as OpDef;
    this.emit(
      encode({ prefixes: [], rexW: false, forceRex: false, map: 0, opcode: 0xc9 }),
      "leave",
      describeRow(leave),
    );
    return true;
  }

  /** PUSH of a forward target (address from LEA [RIP+d]) and RET / RET imm16 over a region. */
  private genRet(t: Template): boolean {
    const r = this.rng;
    const extra = t.row.code === 0xc2 ? r.pick([0, 8, 16]) : 0;
    if (this.pushedBytes + 8 + extra > MAX_STACK_BYTES) return false;
    const before = this.undef;
    const inner = this.region(1, 200);
    this.undef = before;
    for (let k = 0; k < extra; k += 8) {
      const v = this.imm32();
      this.emit(
        encode({ prefixes: [], rexW: false, forceRex: false, map: 0, opcode: 0x68, imm: immBytes(v, 4) }),
        `push ${hex(v)}`,
        "helper",
      );
    }
    const x = this.pickReg(true, false, true);
    const push = encode({ prefixes: [], rexW: false, forceRex: false, map: 0, opcode: 0x50, plusReg: x });
    const ret = encode({
      prefixes: [],
      rexW: false,
      forceRex: false,
      map: 0,
      opcode: t.row.code,
      imm: extra || t.row.code === 0xc2 ? immBytes(extra, 2) : undefined,
    });
    this.emitLeaRip(x, push.bytes.length + ret.bytes.length + inner.bytes.length);
    this.emit(push, `push ${regName(x, 8, true)}`, "helper");
    this.emit(ret, `ret${t.row.code === 0xc2 ? ` ${hex(extra)}` : ""}  ; forward +${inner.bytes.length}`, t.desc);
    this.chunk.append(inner);
    return true;
  }

  /** JMP/CALL r/m64 to a forward target held in a register or the buffer. */
  private genIndirect(t: Template, level: number): boolean {
    const r = this.rng;
    const call = t.row.ext === 2;
    if (call && this.pushedBytes + 8 > MAX_STACK_BYTES) return false;
    const before = this.undef;
    const inner = this.region(level + 1, 200);
    this.undef = before;
    const x = this.pickReg(true, false, true);
    let store: Encoded | null = null;
    let storeText = "";
    let rm: RmOp = { kind: "reg", r: x };
    const prefixes: number[] = [];
    if (r.chance(0.5)) {
      const mc = this.pickMem({ width: 8, rex: true, avoid: [x] });
      this.runSetup(mc.setup);
      const p = mc.mem.asize32 ? [0x67] : [];
      store = encode({ prefixes: p, rexW: true, forceRex: true, map: 0, opcode: 0x89, reg: x, rm: mc.mem });
      storeText = `mov ${rmText(mc.mem, 8, true)}, ${regName(x, 8, true)}`;
      rm = mc.mem;
      if (mc.mem.asize32) prefixes.push(0x67);
    }
    const jump = encode({ prefixes, rexW: r.chance(0.2), forceRex: false, map: 0, opcode: 0xff, reg: t.row.ext, rm });
    this.emitLeaRip(x, (store ? store.bytes.length : 0) + jump.bytes.length + inner.bytes.length);
    if (store) this.emit(store, storeText, "helper");
    this.emit(jump, `${call ? "call" : "jmp"} ${rmText(rm, 8, true)}  ; forward +${inner.bytes.length}`, t.desc);
    this.chunk.append(inner);
    if (call) {
      this.pushed.push(8);
      this.pushedBytes += 8;
    }
    return true;
  }

  /** LEA r64, [RIP + d] (a code address; no fixup: relative within the sequence). */
  private emitLeaRip(reg: number, d: number): void {
    const m: MemOp = { kind: "mem", base: RIP, index: NO_REG, scale: 0, disp: d, dispSize: 4, asize32: false };
    this.emit(
      encode({ prefixes: [], rexW: true, forceRex: false, map: 0, opcode: 0x8d, reg, rm: m }),
      `lea ${regName(reg, 8, true)}, [rip+${hex(d)}]`,
      "helper",
    );
  }

  // ---- forward branches ----

  /** Generate up to three items into a separate chunk of at most `limit` bytes. */
  private region(level: number, limit: number): Chunk {
    const parent = this.chunk;
    this.chunks.push(parent);
    this.chunk = new Chunk();
    const n = this.rng.int(4);
    for (let k = 0; k < n; k++) {
      const s = this.snapshot();
      this.item(level);
      if (this.chunk.bytes.length > limit) {
        this.restore(s);
        break;
      }
    }
    const inner = this.chunk;
    this.chunk = this.chunks.pop() as Chunk;
    return inner;
  }

  private genBranch(t: Template, level: number): boolean {
    const { row, spec } = t;
    const r = this.rng;
    const b = spec.branch;
    let reads = 0;
    if (b === "jcc") reads = ccReads(row.code & 15);
    else if (b === "loope" || b === "loopne") reads = ZF;
    this.ensureDefined(reads);
    const rel8 = row.imm === "rel8";
    const before = this.undef;
    const inner = this.region(level + 1, rel8 ? 127 : 300);
    if (b === "jmp")
      this.undef = before; // the inner code never runs
    else this.undef |= before;
    const prefixes: number[] = [];
    const asize32 = (b === "jrcxz" || b?.startsWith("loop")) && r.chance(0.3);
    if (asize32) prefixes.push(0x67);
    if (b === "jcc" && r.chance(0.1)) prefixes.push(r.pick([0x2e, 0x3e]));
    const disp = inner.bytes.length;
    const e = encode({
      prefixes,
      rexW: false,
      forceRex: false,
      map: row.map,
      opcode: row.code,
      imm: immBytes(disp, rel8 ? 1 : 4),
    });
    const name = b === "jrcxz" && asize32 ? "jecxz" : row.name;
    this.emit(e, `${name} +${disp}${asize32 && b !== "jrcxz" ? " (ecx)" : ""}`, t.desc);
    this.chunk.append(inner);
    return true;
  }
}

/** Flag effect of ROL/ROR/RCL/RCR/SHL/SHR/SAL/SAR with a masked count (null = unknown). */
export function shiftEff(op: number, size: number, count: number | null): Eff {
  const width = size * 8;
  const rotate = op < 4;
  const thruCarry = op === 2 || op === 3;
  if (count === null) {
    if (rotate) return { def: 0, undef: OF, reads: thruCarry ? CF : 0 };
    return { def: 0, undef: OF | AF | (size < 4 ? CF : 0), reads: 0 };
  }
  if (count === 0) return { def: 0, undef: 0, reads: 0 };
  const of1 = count === 1 ? OF : 0;
  if (rotate) return { def: CF | of1, undef: OF & ~of1, reads: thruCarry ? CF : 0 };
  const cfOk = count < width ? CF : 0;
  return { def: SF | ZF | PF | cfOk | of1, undef: AF | (CF & ~cfOk) | (OF & ~of1), reads: 0 };
}

/** Flag effect of SHLD/SHRD with a masked count (null = unknown, only for 32/64-bit). */
export function shldEff(_size: number, count: number | null): Eff {
  if (count === null) return { def: 0, undef: OF | AF, reads: 0 };
  if (count === 0) return { def: 0, undef: 0, reads: 0 };
  const of1 = count === 1 ? OF : 0;
  return { def: CF | SF | ZF | PF | of1, undef: AF | (OF & ~of1), reads: 0 };
}
