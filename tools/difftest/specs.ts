/**
 * What the difftest generator knows about each x86 opcode it may generate: the instruction class
 * (for the coverage report), how to build operands for it (`kind`), which explicit operands it
 * writes, and its effect on the six status flags (which it defines, which it leaves undefined,
 * which it reads). Entries are keyed by encoding (map, opcode, /ext, mandatory prefix), not by
 * mnemonic, so rows others add to the opcode table are matched however they are named.
 *
 * The generator only uses an entry when a row of the emulator's opcode table (OPCODES) matches
 * it: the table decides what is generated, this file only says how to do it safely.
 */
import type { OpDef } from "../../src/cpu/opdef.js";

export const CF = 0x1;
export const PF = 0x4;
export const AF = 0x10;
export const ZF = 0x40;
export const SF = 0x80;
export const DF = 0x400;
export const OF = 0x800;
export const STATUS = CF | PF | AF | ZF | SF | OF;

/** Flag effect of one instruction: `def` become defined, `undef` become undefined, `reads` must be defined before. */
export interface Eff {
  def: number;
  undef: number;
  reads: number;
}

export const E_NONE: Eff = { def: 0, undef: 0, reads: 0 };
export const E_ARITH: Eff = { def: STATUS, undef: 0, reads: 0 };
export const E_ARITH_CF: Eff = { def: STATUS, undef: 0, reads: CF };
export const E_LOGIC: Eff = { def: CF | PF | ZF | SF | OF, undef: AF, reads: 0 };
export const E_INCDEC: Eff = { def: PF | AF | ZF | SF | OF, undef: 0, reads: 0 };
export const E_MUL: Eff = { def: CF | OF, undef: SF | ZF | AF | PF, reads: 0 };
export const E_DIV: Eff = { def: 0, undef: STATUS, reads: 0 };
/** BT*: CF defined; OF SF AF PF undefined; ZF unaffected on Intel, undefined on AMD. */
export const E_BT: Eff = { def: CF, undef: OF | SF | AF | PF | ZF, reads: 0 };
export const E_BSF: Eff = { def: ZF, undef: CF | OF | SF | AF | PF, reads: 0 };
export const E_TZCNT: Eff = { def: CF | ZF, undef: OF | SF | AF | PF, reads: 0 };

/** Flags each condition code (Jcc/SETcc/CMOVcc low nibble) reads. */
export function ccReads(cc: number): number {
  switch (cc >> 1) {
    case 0:
      return OF;
    case 1:
      return CF;
    case 2:
      return ZF;
    case 3:
      return CF | ZF;
    case 4:
      return SF;
    case 5:
      return PF;
    case 6:
      return SF | OF;
    default:
      return ZF | SF | OF;
  }
}

export type Feature = "popcnt" | "lzcnt" | "bmi1" | "bmi2" | "movbe" | "adx" | "lahf";

/**
 * How operands are built:
 * - generic: from the row (ModRM reg/rm, +r, immediate) with `w` saying what is written
 * - shift / shld: generic plus count-dependent flag rules (imm, 1 or CL count)
 * - div: dividend/divisor set up so #DE cannot happen
 * - bt: a register bit offset into memory is bounded first
 * - bsf: the source is made non-zero first (the destination is undefined for 0)
 * - lea / nop: memory operand that is not accessed (any registers, any displacement)
 * - moffs: MOV with a 64-bit (or 32-bit with 67h) absolute address into the data area
 * - string: RSI/RDI/RCX set to stay inside the data area, optional REP
 * - push / pop / pushf / popf / call: balanced stack use
 * - branch: forward Jcc/JMP/JrCXZ/LOOP over a few generated instructions
 * - dfop: CLD/STD (the generator tracks DF statically)
 * - cmpxchg8b: CMPXCHG8B/16B (16-byte aligned for 16B)
 * - enter / leave: ENTER (nesting levels 0..5, RBP pointing into the data area) … LEAVE
 * - ret: PUSH of a forward target then RET / RET imm16 (extra bytes pushed first)
 * - indirect: JMP/CALL r/m64 to a forward target (register or memory)
 */
export type Kind =
  | "generic"
  | "shift"
  | "shld"
  | "div"
  | "bt"
  | "bsf"
  | "lea"
  | "nop"
  | "moffs"
  | "string"
  | "push"
  | "pop"
  | "pushf"
  | "popf"
  | "call"
  | "branch"
  | "dfop"
  | "cmpxchg8b"
  | "enter"
  | "leave"
  | "ret"
  | "indirect";

export interface Spec {
  map: number;
  code: number;
  ext?: number;
  /** Mandatory prefix (0 = none); for VEX rows, VEX.pp. */
  prefix?: number;
  /** Matches VEX-encoded rows only. */
  vex?: boolean;
  /** Instruction class for the coverage report. */
  cls: string;
  kind: Kind;
  /** Explicit operands written ("acc" = AL/eAX only, implicit). */
  w?: "rm" | "reg" | "both" | "none";
  eff?: Eff;
  /** Allowed operand sizes (default: all the row allows). */
  sizes?: number[];
  feature?: Feature;
  /** ModRM.reg is ignored by the instruction (SETcc): any value is generated. */
  regIgnored?: boolean;
  /** Bytes the memory operand accesses when not the operand size. */
  memWidth?: number;
  /** For shifts: 0 rol, 1 ror, 2 rcl, 3 rcr, 4 shl, 5 shr, 6 sal, 7 sar; count source. */
  shift?: number;
  count?: "imm" | "one" | "cl";
  /** For div: signed. */
  signed?: boolean;
  /** For shld: true = SHLD. */
  left?: boolean;
  /** For string ops: which one. */
  str?: "movs" | "cmps" | "stos" | "lods" | "scas";
  /** For branches. */
  branch?: "jcc" | "jmp" | "jrcxz" | "loop" | "loope" | "loopne";
  /**
   * VEX-encoded (the row has `vex`): where the VEX.vvvv register goes in the Intel operand order
   * (`first`: vvvv, r/m as BLSR; `mid`: reg, vvvv, r/m as ANDN; `last`: reg, r/m, vvvv as
   * SHLX; `none`: unused, 1111b), and whether the instruction writes it.
   */
  vvvv?: "first" | "mid" | "last" | "none";
  vWritten?: boolean;
}

/** The classes the difftest issue requires, in report order. */
export const REQUIRED_CLASSES = [
  "ADD",
  "SUB",
  "ADC",
  "SBB",
  "AND",
  "OR",
  "XOR",
  "CMP",
  "TEST",
  "INC",
  "DEC",
  "NEG",
  "NOT",
  "MOV",
  "MOVZX",
  "MOVSX",
  "MOVSXD",
  "LEA",
  "XCHG",
  "CMPXCHG",
  "XADD",
  "MUL",
  "IMUL (one operand)",
  "IMUL (two operands)",
  "IMUL (three operands)",
  "DIV",
  "IDIV",
  "SHL/SAL",
  "SHR",
  "SAR",
  "ROL",
  "ROR",
  "RCL",
  "RCR",
  "SHLD",
  "SHRD",
  "BT",
  "BTS",
  "BTR",
  "BTC",
  "BSF",
  "BSR",
  "TZCNT",
  "LZCNT",
  "POPCNT",
  "BSWAP",
  "SETcc",
  "CMOVcc",
  "Jcc",
  "PUSH",
  "POP",
  "CBW/CWDE/CDQE",
  "CWD/CDQ/CQO",
  "MOVS",
  "STOS",
  "LODS",
  "CMPS",
  "SCAS",
  "LAHF",
  "SAHF",
  "CLC",
  "STC",
  "CMC",
] as const;

/** ANDN, BLSI/BLSMSK/BLSR, BZHI: SF ZF CF OF defined, AF PF undefined. */
export const E_BMI: Eff = { def: SF | ZF | CF | OF, undef: AF | PF, reads: 0 };
/** BEXTR: ZF CF OF defined, AF SF PF undefined. */
export const E_BEXTR: Eff = { def: ZF | CF | OF, undef: AF | SF | PF, reads: 0 };

/** One VEX-encoded BMI row in map 0F 38 (RORX moves to 0F 3A). */
function bmi(
  cls: string,
  code: number,
  ext: number | undefined,
  prefix: number,
  vvvv: "first" | "mid" | "last" | "none",
  eff: Eff,
  feature: Feature,
): [Spec] {
  const vWritten = vvvv === "first" || cls === "MULX";
  const w = vvvv === "first" ? "none" : "reg";
  return [
    { map: 2, code, ext, prefix, cls, kind: "generic", w, eff, sizes: [4, 8], feature, vex: true, vvvv, vWritten },
  ];
}

const S: Spec[] = [];
const ALU = ["ADD", "OR", "ADC", "SBB", "AND", "SUB", "XOR", "CMP"];
for (let op = 0; op < 8; op++) {
  const cls = ALU[op];
  const eff = op === 2 || op === 3 ? E_ARITH_CF : op === 1 || op === 4 || op === 6 ? E_LOGIC : E_ARITH;
  const cmp = op === 7;
  S.push(
    { map: 0, code: op * 8, cls, kind: "generic", w: cmp ? "none" : "rm", eff },
    { map: 0, code: op * 8 + 1, cls, kind: "generic", w: cmp ? "none" : "rm", eff },
    { map: 0, code: op * 8 + 2, cls, kind: "generic", w: cmp ? "none" : "reg", eff },
    { map: 0, code: op * 8 + 3, cls, kind: "generic", w: cmp ? "none" : "reg", eff },
    { map: 0, code: op * 8 + 4, cls, kind: "generic", w: "none", eff },
    { map: 0, code: op * 8 + 5, cls, kind: "generic", w: "none", eff },
    { map: 0, code: 0x80, ext: op, cls, kind: "generic", w: cmp ? "none" : "rm", eff },
    { map: 0, code: 0x81, ext: op, cls, kind: "generic", w: cmp ? "none" : "rm", eff },
    { map: 0, code: 0x83, ext: op, cls, kind: "generic", w: cmp ? "none" : "rm", eff },
  );
}
S.push(
  { map: 0, code: 0x84, cls: "TEST", kind: "generic", w: "none", eff: E_LOGIC },
  { map: 0, code: 0x85, cls: "TEST", kind: "generic", w: "none", eff: E_LOGIC },
  { map: 0, code: 0xa8, cls: "TEST", kind: "generic", w: "none", eff: E_LOGIC },
  { map: 0, code: 0xa9, cls: "TEST", kind: "generic", w: "none", eff: E_LOGIC },
  { map: 0, code: 0xf6, ext: 0, cls: "TEST", kind: "generic", w: "none", eff: E_LOGIC },
  { map: 0, code: 0xf6, ext: 1, cls: "TEST", kind: "generic", w: "none", eff: E_LOGIC },
  { map: 0, code: 0xf7, ext: 0, cls: "TEST", kind: "generic", w: "none", eff: E_LOGIC },
  { map: 0, code: 0xf7, ext: 1, cls: "TEST", kind: "generic", w: "none", eff: E_LOGIC },
  { map: 0, code: 0xf6, ext: 2, cls: "NOT", kind: "generic", w: "rm", eff: E_NONE },
  { map: 0, code: 0xf7, ext: 2, cls: "NOT", kind: "generic", w: "rm", eff: E_NONE },
  { map: 0, code: 0xf6, ext: 3, cls: "NEG", kind: "generic", w: "rm", eff: E_ARITH },
  { map: 0, code: 0xf7, ext: 3, cls: "NEG", kind: "generic", w: "rm", eff: E_ARITH },
  { map: 0, code: 0xf6, ext: 4, cls: "MUL", kind: "generic", w: "none", eff: E_MUL },
  { map: 0, code: 0xf7, ext: 4, cls: "MUL", kind: "generic", w: "none", eff: E_MUL },
  { map: 0, code: 0xf6, ext: 5, cls: "IMUL (one operand)", kind: "generic", w: "none", eff: E_MUL },
  { map: 0, code: 0xf7, ext: 5, cls: "IMUL (one operand)", kind: "generic", w: "none", eff: E_MUL },
  { map: 0, code: 0xf6, ext: 6, cls: "DIV", kind: "div", w: "none", eff: E_DIV },
  { map: 0, code: 0xf7, ext: 6, cls: "DIV", kind: "div", w: "none", eff: E_DIV },
  { map: 0, code: 0xf6, ext: 7, cls: "IDIV", kind: "div", w: "none", eff: E_DIV, signed: true },
  { map: 0, code: 0xf7, ext: 7, cls: "IDIV", kind: "div", w: "none", eff: E_DIV, signed: true },
  { map: 1, code: 0xaf, cls: "IMUL (two operands)", kind: "generic", w: "reg", eff: E_MUL },
  { map: 0, code: 0x69, cls: "IMUL (three operands)", kind: "generic", w: "reg", eff: E_MUL },
  { map: 0, code: 0x6b, cls: "IMUL (three operands)", kind: "generic", w: "reg", eff: E_MUL },
  { map: 0, code: 0xfe, ext: 0, cls: "INC", kind: "generic", w: "rm", eff: E_INCDEC },
  { map: 0, code: 0xfe, ext: 1, cls: "DEC", kind: "generic", w: "rm", eff: E_INCDEC },
  { map: 0, code: 0xff, ext: 0, cls: "INC", kind: "generic", w: "rm", eff: E_INCDEC },
  { map: 0, code: 0xff, ext: 1, cls: "DEC", kind: "generic", w: "rm", eff: E_INCDEC },
  // Data movement.
  { map: 0, code: 0x88, cls: "MOV", kind: "generic", w: "rm", eff: E_NONE },
  { map: 0, code: 0x89, cls: "MOV", kind: "generic", w: "rm", eff: E_NONE },
  { map: 0, code: 0x8a, cls: "MOV", kind: "generic", w: "reg", eff: E_NONE },
  { map: 0, code: 0x8b, cls: "MOV", kind: "generic", w: "reg", eff: E_NONE },
  { map: 0, code: 0xc6, ext: 0, cls: "MOV", kind: "generic", w: "rm", eff: E_NONE },
  { map: 0, code: 0xc7, ext: 0, cls: "MOV", kind: "generic", w: "rm", eff: E_NONE },
  { map: 0, code: 0xb0, cls: "MOV", kind: "generic", w: "reg", eff: E_NONE },
  { map: 0, code: 0xb8, cls: "MOV", kind: "generic", w: "reg", eff: E_NONE },
  { map: 0, code: 0xa0, cls: "MOV (moffs)", kind: "moffs", eff: E_NONE },
  { map: 0, code: 0xa1, cls: "MOV (moffs)", kind: "moffs", eff: E_NONE },
  { map: 0, code: 0xa2, cls: "MOV (moffs)", kind: "moffs", eff: E_NONE },
  { map: 0, code: 0xa3, cls: "MOV (moffs)", kind: "moffs", eff: E_NONE },
  { map: 1, code: 0xb6, cls: "MOVZX", kind: "generic", w: "reg", eff: E_NONE },
  { map: 1, code: 0xb7, cls: "MOVZX", kind: "generic", w: "reg", eff: E_NONE },
  { map: 1, code: 0xbe, cls: "MOVSX", kind: "generic", w: "reg", eff: E_NONE },
  { map: 1, code: 0xbf, cls: "MOVSX", kind: "generic", w: "reg", eff: E_NONE },
  { map: 0, code: 0x63, cls: "MOVSXD", kind: "generic", w: "reg", eff: E_NONE, memWidth: 4 },
  { map: 0, code: 0x8d, cls: "LEA", kind: "lea", w: "reg", eff: E_NONE },
  { map: 0, code: 0x86, cls: "XCHG", kind: "generic", w: "both", eff: E_NONE },
  { map: 0, code: 0x87, cls: "XCHG", kind: "generic", w: "both", eff: E_NONE },
  { map: 0, code: 0x90, cls: "XCHG", kind: "generic", w: "reg", eff: E_NONE },
  { map: 0, code: 0x90, prefix: 0xf3, cls: "PAUSE", kind: "generic", w: "none", eff: E_NONE },
  { map: 1, code: 0xb0, cls: "CMPXCHG", kind: "generic", w: "rm", eff: E_ARITH },
  { map: 1, code: 0xb1, cls: "CMPXCHG", kind: "generic", w: "rm", eff: E_ARITH },
  { map: 1, code: 0xc0, cls: "XADD", kind: "generic", w: "both", eff: E_ARITH },
  { map: 1, code: 0xc1, cls: "XADD", kind: "generic", w: "both", eff: E_ARITH },
  { map: 1, code: 0xc7, ext: 1, cls: "CMPXCHG8B/16B", kind: "cmpxchg8b", eff: { def: ZF, undef: 0, reads: 0 } },
  { map: 0, code: 0x98, cls: "CBW/CWDE/CDQE", kind: "generic", w: "none", eff: E_NONE },
  { map: 0, code: 0x99, cls: "CWD/CDQ/CQO", kind: "generic", w: "none", eff: E_NONE },
  { map: 1, code: 0xc8, cls: "BSWAP", kind: "generic", w: "reg", eff: E_NONE, sizes: [4, 8] },
  { map: 2, code: 0xf0, cls: "MOVBE", kind: "generic", w: "reg", eff: E_NONE, sizes: [2, 4, 8], feature: "movbe" },
  { map: 2, code: 0xf1, cls: "MOVBE", kind: "generic", w: "rm", eff: E_NONE, sizes: [2, 4, 8], feature: "movbe" },
  {
    map: 2,
    code: 0xf6,
    prefix: 0x66,
    cls: "ADCX",
    kind: "generic",
    w: "reg",
    eff: { def: CF, undef: 0, reads: CF },
    sizes: [4, 8],
    feature: "adx",
  },
  {
    map: 2,
    code: 0xf6,
    prefix: 0xf3,
    cls: "ADOX",
    kind: "generic",
    w: "reg",
    eff: { def: OF, undef: 0, reads: OF },
    sizes: [4, 8],
    feature: "adx",
  },
  // BMI1/BMI2 (VEX, 32/64-bit). Flags per SDM vol. 2 (AMD's APM vol. 3 lists the same): the
  // BMI1 ones and BZHI define SF ZF CF OF (BEXTR: ZF CF OF) and leave AF PF (BEXTR: AF SF PF)
  // undefined; MULX, PDEP, PEXT, RORX, SARX, SHLX, SHRX touch no flag.
  ...bmi("ANDN", 0xf2, undefined, 0, "mid", E_BMI, "bmi1"),
  ...bmi("BEXTR", 0xf7, undefined, 0, "last", E_BEXTR, "bmi1"),
  ...bmi("BLSR", 0xf3, 1, 0, "first", E_BMI, "bmi1"),
  ...bmi("BLSMSK", 0xf3, 2, 0, "first", E_BMI, "bmi1"),
  ...bmi("BLSI", 0xf3, 3, 0, "first", E_BMI, "bmi1"),
  ...bmi("BZHI", 0xf5, undefined, 0, "last", E_BMI, "bmi2"),
  ...bmi("PDEP", 0xf5, undefined, 0xf2, "mid", E_NONE, "bmi2"),
  ...bmi("PEXT", 0xf5, undefined, 0xf3, "mid", E_NONE, "bmi2"),
  ...bmi("MULX", 0xf6, undefined, 0xf2, "mid", E_NONE, "bmi2"),
  ...bmi("SARX", 0xf7, undefined, 0xf3, "last", E_NONE, "bmi2"),
  ...bmi("SHLX", 0xf7, undefined, 0x66, "last", E_NONE, "bmi2"),
  ...bmi("SHRX", 0xf7, undefined, 0xf2, "last", E_NONE, "bmi2"),
  { ...bmi("RORX", 0xf0, undefined, 0xf2, "none", E_NONE, "bmi2")[0], map: 3 },
  { map: 1, code: 0x1f, cls: "NOP", kind: "nop", w: "none", eff: E_NONE },
  // Hint NOPs: prefetch (0F 18), reserved-NOP space (0F 19, 0F 1C, 0F 1D). 0F 1A/1B (MPX) and
  // 0F 1E (CET) are left out: their meaning depends on enabled features.
  { map: 1, code: 0x18, cls: "NOP", kind: "nop", w: "none", eff: E_NONE },
  { map: 1, code: 0x19, cls: "NOP", kind: "nop", w: "none", eff: E_NONE },
  { map: 1, code: 0x1c, cls: "NOP", kind: "nop", w: "none", eff: E_NONE },
  { map: 1, code: 0x1d, cls: "NOP", kind: "nop", w: "none", eff: E_NONE },
  // Bit scan / count.
  { map: 1, code: 0xbc, cls: "BSF", kind: "bsf", w: "reg", eff: E_BSF },
  { map: 1, code: 0xbd, cls: "BSR", kind: "bsf", w: "reg", eff: E_BSF },
  {
    map: 1,
    code: 0xbc,
    prefix: 0xf3,
    cls: "TZCNT",
    kind: "generic",
    w: "reg",
    eff: E_TZCNT,
    sizes: [2, 4, 8],
    feature: "bmi1",
  },
  {
    map: 1,
    code: 0xbd,
    prefix: 0xf3,
    cls: "LZCNT",
    kind: "generic",
    w: "reg",
    eff: E_TZCNT,
    sizes: [2, 4, 8],
    feature: "lzcnt",
  },
  {
    map: 1,
    code: 0xb8,
    prefix: 0xf3,
    cls: "POPCNT",
    kind: "generic",
    w: "reg",
    eff: E_ARITH,
    sizes: [2, 4, 8],
    feature: "popcnt",
  },
  // Bit test.
  { map: 1, code: 0xa3, cls: "BT", kind: "bt", w: "none", eff: E_BT },
  { map: 1, code: 0xab, cls: "BTS", kind: "bt", w: "rm", eff: E_BT },
  { map: 1, code: 0xb3, cls: "BTR", kind: "bt", w: "rm", eff: E_BT },
  { map: 1, code: 0xbb, cls: "BTC", kind: "bt", w: "rm", eff: E_BT },
  { map: 1, code: 0xba, ext: 4, cls: "BT", kind: "generic", w: "none", eff: E_BT },
  { map: 1, code: 0xba, ext: 5, cls: "BTS", kind: "generic", w: "rm", eff: E_BT },
  { map: 1, code: 0xba, ext: 6, cls: "BTR", kind: "generic", w: "rm", eff: E_BT },
  { map: 1, code: 0xba, ext: 7, cls: "BTC", kind: "generic", w: "rm", eff: E_BT },
  // Double shifts.
  { map: 1, code: 0xa4, cls: "SHLD", kind: "shld", w: "rm", left: true, count: "imm" },
  { map: 1, code: 0xa5, cls: "SHLD", kind: "shld", w: "rm", left: true, count: "cl" },
  { map: 1, code: 0xac, cls: "SHRD", kind: "shld", w: "rm", left: false, count: "imm" },
  { map: 1, code: 0xad, cls: "SHRD", kind: "shld", w: "rm", left: false, count: "cl" },
  // Flag instructions.
  {
    map: 0,
    code: 0x9e,
    cls: "SAHF",
    kind: "generic",
    w: "none",
    eff: { def: SF | ZF | AF | PF | CF, undef: 0, reads: 0 },
    feature: "lahf",
  },
  {
    map: 0,
    code: 0x9f,
    cls: "LAHF",
    kind: "generic",
    w: "none",
    eff: { def: 0, undef: 0, reads: SF | ZF | AF | PF | CF },
    feature: "lahf",
  },
  { map: 0, code: 0xf8, cls: "CLC", kind: "generic", w: "none", eff: { def: CF, undef: 0, reads: 0 } },
  { map: 0, code: 0xf9, cls: "STC", kind: "generic", w: "none", eff: { def: CF, undef: 0, reads: 0 } },
  // CMC keeps CF's definedness (an undefined CF stays undefined), so it needs nothing.
  { map: 0, code: 0xf5, cls: "CMC", kind: "generic", w: "none", eff: E_NONE },
  { map: 0, code: 0xfc, cls: "CLD", kind: "dfop" },
  { map: 0, code: 0xfd, cls: "STD", kind: "dfop" },
  // Stack.
  { map: 0, code: 0x50, cls: "PUSH", kind: "push" },
  { map: 0, code: 0x68, cls: "PUSH", kind: "push" },
  { map: 0, code: 0x6a, cls: "PUSH", kind: "push" },
  { map: 0, code: 0xff, ext: 6, cls: "PUSH", kind: "push" },
  { map: 0, code: 0x58, cls: "POP", kind: "pop" },
  { map: 0, code: 0x8f, ext: 0, cls: "POP", kind: "pop" },
  { map: 0, code: 0x9c, cls: "PUSHF", kind: "pushf" },
  { map: 0, code: 0x9d, cls: "POPF", kind: "popf" },
  { map: 0, code: 0xe8, cls: "CALL", kind: "call" },
  { map: 0, code: 0xff, ext: 2, cls: "CALL (indirect)", kind: "indirect" },
  { map: 0, code: 0xff, ext: 4, cls: "JMP (indirect)", kind: "indirect" },
  { map: 0, code: 0xc3, cls: "RET", kind: "ret" },
  { map: 0, code: 0xc2, cls: "RET", kind: "ret" },
  { map: 0, code: 0xc8, cls: "ENTER/LEAVE", kind: "enter" },
  { map: 0, code: 0xc9, cls: "ENTER/LEAVE", kind: "leave" },
  // Branches (forward only).
  { map: 0, code: 0xeb, cls: "JMP", kind: "branch", branch: "jmp" },
  { map: 0, code: 0xe9, cls: "JMP", kind: "branch", branch: "jmp" },
  { map: 0, code: 0xe3, cls: "JrCXZ", kind: "branch", branch: "jrcxz" },
  { map: 0, code: 0xe2, cls: "LOOP", kind: "branch", branch: "loop" },
  { map: 0, code: 0xe1, cls: "LOOP", kind: "branch", branch: "loope" },
  { map: 0, code: 0xe0, cls: "LOOP", kind: "branch", branch: "loopne" },
  // String operations.
  { map: 0, code: 0xa4, cls: "MOVS", kind: "string", str: "movs" },
  { map: 0, code: 0xa5, cls: "MOVS", kind: "string", str: "movs" },
  { map: 0, code: 0xa6, cls: "CMPS", kind: "string", str: "cmps" },
  { map: 0, code: 0xa7, cls: "CMPS", kind: "string", str: "cmps" },
  { map: 0, code: 0xaa, cls: "STOS", kind: "string", str: "stos" },
  { map: 0, code: 0xab, cls: "STOS", kind: "string", str: "stos" },
  { map: 0, code: 0xac, cls: "LODS", kind: "string", str: "lods" },
  { map: 0, code: 0xad, cls: "LODS", kind: "string", str: "lods" },
  { map: 0, code: 0xae, cls: "SCAS", kind: "string", str: "scas" },
  { map: 0, code: 0xaf, cls: "SCAS", kind: "string", str: "scas" },
);
// Shifts and rotates: C0/C1 imm8, D0/D1 by 1, D2/D3 by CL.
const SHIFT_CLS = ["ROL", "ROR", "RCL", "RCR", "SHL/SAL", "SHR", "SHL/SAL", "SAR"];
for (let op = 0; op < 8; op++) {
  for (const [code, count] of [
    [0xc0, "imm"],
    [0xc1, "imm"],
    [0xd0, "one"],
    [0xd1, "one"],
    [0xd2, "cl"],
    [0xd3, "cl"],
  ] as const) {
    S.push({ map: 0, code, ext: op, cls: SHIFT_CLS[op], kind: "shift", w: "rm", shift: op, count });
  }
}
// Condition-code users: Jcc rel8 / rel32, SETcc, CMOVcc.
for (let cc = 0; cc < 16; cc++) {
  S.push(
    { map: 0, code: 0x70 + cc, cls: "Jcc", kind: "branch", branch: "jcc" },
    { map: 1, code: 0x80 + cc, cls: "Jcc", kind: "branch", branch: "jcc" },
    { map: 1, code: 0x90 + cc, cls: "SETcc", kind: "generic", w: "rm", regIgnored: true },
    { map: 1, code: 0x40 + cc, cls: "CMOVcc", kind: "generic", w: "reg" },
  );
}

export const SPECS: readonly Spec[] = S;

function normPrefix(p: number | undefined): number {
  return p === undefined ? 0 : p;
}

/** The spec for a table row, or undefined when the generator does not know the instruction. */
export function specFor(row: OpDef): Spec | undefined {
  if (row.rmExt !== undefined || row.mode === "no64") return undefined;
  for (const s of SPECS) {
    if (s.map !== row.map) continue;
    if (row.plusReg) {
      if (s.code !== row.code) continue;
    } else if (s.code !== row.code) continue;
    if (s.ext !== row.ext) continue;
    if (normPrefix(s.prefix) !== normPrefix(row.prefix)) continue;
    if ((s.vex === true) !== (row.vex !== undefined)) continue;
    return s;
  }
  return undefined;
}

/** Feature gates the host CPU reported (all true when unknown). */
export type Features = Record<Feature, boolean>;

export const ALL_FEATURES: Features = {
  popcnt: true,
  lzcnt: true,
  bmi1: true,
  bmi2: true,
  movbe: true,
  adx: true,
  lahf: true,
};

export const FLAG_NAMES: [number, string][] = [
  [CF, "CF"],
  [PF, "PF"],
  [AF, "AF"],
  [ZF, "ZF"],
  [SF, "SF"],
  [DF, "DF"],
  [OF, "OF"],
];

export function flagsText(v: number): string {
  const s = FLAG_NAMES.filter(([b]) => (v & b) !== 0).map(([, n]) => n);
  return s.length ? s.join(" ") : "-";
}
