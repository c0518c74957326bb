/**
 * A small x86-64 instruction encoder for the difftest generator: legacy prefixes, REX, opcode
 * map escape, ModRM/SIB, displacement and immediate. It encodes exactly what it is told (the
 * generator picks every field), and renders an Intel-syntax-like text for listings.
 */
import { REG_NAMES } from "./layout.js";

export const NO_REG = -1;
export const RIP = 16;

/** A register operand: 0..15. For byte operands 4..7 mean AH..BH without REX, SPL..DIL with it. */
export interface RegOp {
  kind: "reg";
  r: number;
}

/** A memory operand. `ripTarget` (absolute address) makes a RIP-relative disp resolved at link time. */
export interface MemOp {
  kind: "mem";
  /** Base register 0..15, NO_REG (absolute via SIB) or RIP. */
  base: number;
  /** Index register 0..15 except 4, or NO_REG. */
  index: number;
  /** Scale as a shift count 0..3 (also encoded, and ignored, without an index). */
  scale: number;
  disp: number;
  /** Displacement encoding: 0 (none), 1 (disp8) or 4 (disp32). Ignored for RIP/absolute (always 4). */
  dispSize: 0 | 1 | 4;
  /** 67h: 32-bit address computation. */
  asize32: boolean;
  ripTarget?: number;
}

export type RmOp = RegOp | MemOp;

export interface EncodeArgs {
  /** Legacy prefixes in emission order (66, 67, F0, F2, F3, segment). */
  prefixes: number[];
  rexW: boolean;
  /** Emit a REX byte even if no bit is needed (0x40). */
  forceRex: boolean;
  /** Extra REX.R / REX.X bits set although unused (decoders must ignore them). */
  junkRexR?: boolean;
  map: number;
  opcode: number;
  /** ModRM.reg field value 0..15 (register or extension). */
  reg?: number;
  rm?: RmOp;
  /** Register in the low opcode bits (0..15). */
  plusReg?: number;
  /** Immediate/displacement bytes that follow ModRM/SIB/disp. */
  imm?: number[];
  /** Encode with a VEX prefix instead of REX + escape bytes (SDM vol. 2, 2.3); `map` is VEX.mmmmm. */
  vex?: VexArgs;
}

/** The VEX fields the REX-derived R/X/B and `rexW` do not give. */
export interface VexArgs {
  /** The register VEX.vvvv names (0..15; 0 = the "unused" 1111b encoding). */
  vvvv: number;
  /** VEX.L. */
  l: 0 | 1;
  /** The mandatory prefix VEX.pp stands for: 0, 0x66, 0xF3 or 0xF2. */
  pp: number;
}

const VEX_PP: Record<number, number> = { 0: 0, 102: 1, 243: 2, 242: 3 };

export interface Encoded {
  bytes: number[];
  /** RIP-relative fixup: offset of the disp32 within bytes, absolute target. */
  fixupAt: number;
  fixupTarget: number;
  /** Whether a REX byte was emitted (decides byte-register names). */
  hasRex: boolean;
}

export function fitsI8(v: number): boolean {
  return v >= -128 && v <= 127;
}

function pushLE(out: number[], v: number, n: number): void {
  for (let k = 0; k < n; k++) out.push((v >>> (8 * k)) & 0xff);
}

export function immBytes(v: number, n: number): number[] {
  const out: number[] = [];
  pushLE(out, v, n);
  return out;
}

/** Little-endian bytes of a 64-bit value given as halves. */
export function imm64Bytes(lo: number, hi: number): number[] {
  return [...immBytes(lo, 4), ...immBytes(hi, 4)];
}

export function encode(a: EncodeArgs): Encoded {
  let rex = a.rexW ? 8 : 0;
  if (a.junkRexR) rex |= 4;
  const rm = a.rm;
  if (a.reg !== undefined && a.reg >= 8) rex |= 4;
  if (rm !== undefined) {
    if (rm.kind === "reg") {
      if (rm.r >= 8) rex |= 1;
    } else {
      if (rm.base >= 8 && rm.base !== RIP) rex |= 1;
      if (rm.index >= 8) rex |= 2;
    }
  }
  if (a.plusReg !== undefined && a.plusReg >= 8) rex |= 1;
  const out: number[] = [...a.prefixes];
  const v = a.vex;
  const hasRex = v !== undefined || rex !== 0 || a.forceRex;
  if (v !== undefined) {
    // VEX: R̄ X̄ B̄ and vvvv̄ inverted. The 2-byte form (C5) only for map 0F with W, X, B clear.
    const tail = ((~v.vvvv & 15) << 3) | (v.l << 2) | VEX_PP[v.pp];
    if (a.map === 1 && (rex & 0xb) === 0) out.push(0xc5, (rex & 4 ? 0 : 0x80) | tail);
    else out.push(0xc4, ((~rex & 7) << 5) | a.map, (rex & 8 ? 0x80 : 0) | tail);
  } else {
    if (hasRex) out.push(0x40 | rex);
    if (a.map === 1) out.push(0x0f);
    else if (a.map === 2) out.push(0x0f, 0x38);
    else if (a.map === 3) out.push(0x0f, 0x3a);
  }
  out.push(a.plusReg !== undefined ? a.opcode + (a.plusReg & 7) : a.opcode);
  let fixupAt = -1;
  let fixupTarget = 0;
  if (rm !== undefined) {
    const regBits = ((a.reg ?? 0) & 7) << 3;
    if (rm.kind === "reg") out.push(0xc0 | regBits | (rm.r & 7));
    else if (rm.base === RIP) {
      out.push(0x05 | regBits);
      fixupAt = out.length;
      if (rm.ripTarget !== undefined) fixupTarget = rm.ripTarget;
      pushLE(out, rm.disp, 4);
    } else if (rm.base === NO_REG) {
      out.push(0x04 | regBits);
      out.push((rm.scale << 6) | ((rm.index === NO_REG ? 4 : rm.index & 7) << 3) | 5);
      pushLE(out, rm.disp, 4);
    } else {
      let ds = rm.dispSize;
      if (ds === 0 && (rm.disp !== 0 || (rm.base & 7) === 5)) ds = fitsI8(rm.disp) ? 1 : 4;
      if (ds === 1 && !fitsI8(rm.disp)) ds = 4;
      const mod = ds === 0 ? 0 : ds === 1 ? 1 : 2;
      const needSib = rm.index !== NO_REG || (rm.base & 7) === 4;
      if (needSib) {
        out.push((mod << 6) | regBits | 4);
        out.push((rm.scale << 6) | ((rm.index === NO_REG ? 4 : rm.index & 7) << 3) | (rm.base & 7));
      } else out.push((mod << 6) | regBits | (rm.base & 7));
      pushLE(out, rm.disp, ds);
    }
  }
  if (a.imm !== undefined) out.push(...a.imm);
  return { bytes: out, fixupAt, fixupTarget, hasRex };
}

// ---- Text rendering for listings ----

const R8_REX = ["al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil"];
const R8_LEGACY = ["al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"];

export function regName(r: number, size: number, rex: boolean): string {
  if (r === RIP) return "rip";
  const q = REG_NAMES[r];
  switch (size) {
    case 1:
      return r < 8 ? (rex ? R8_REX[r] : R8_LEGACY[r]) : `${q}b`;
    case 2:
      return r < 8 ? q.slice(1) : `${q}w`;
    case 4:
      return r < 8 ? `e${q.slice(1)}` : `${q}d`;
    default:
      return q;
  }
}

const PTR: Record<number, string> = { 1: "byte", 2: "word", 4: "dword", 8: "qword", 16: "xmmword" };

export function hex(v: number): string {
  return v < 0 ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

export function memText(m: MemOp, size: number): string {
  const parts: string[] = [];
  const asz = m.asize32 ? 4 : 8;
  if (m.base === RIP) parts.push(m.asize32 ? "eip" : "rip");
  else if (m.base !== NO_REG) parts.push(regName(m.base, asz, true));
  if (m.index !== NO_REG) parts.push(`${regName(m.index, asz, true)}*${1 << m.scale}`);
  let s = parts.join("+");
  if (m.base === RIP && m.ripTarget !== undefined) s += ` -> ${hex(m.ripTarget)}`;
  else if (m.disp !== 0 || parts.length === 0)
    s += s === "" ? hex(m.disp) : m.disp < 0 ? hex(m.disp) : `+${hex(m.disp)}`;
  return `${PTR[size] ?? ""}${PTR[size] ? " ptr " : ""}[${s}]`;
}

export function rmText(rm: RmOp, size: number, rex: boolean): string {
  return rm.kind === "reg" ? regName(rm.r, size, rex) : memText(rm, size);
}

export function bytesHex(b: ArrayLike<number>): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += (i ? " " : "") + (b[i] & 0xff).toString(16).padStart(2, "0");
  return s;
}
