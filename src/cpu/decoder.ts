import { GP, UD } from "../x86/exceptions.js";
import type { Cpu } from "./cpu.js";
import { BASE_RIP, HIGH8_BASE, Insn, NONE } from "./insn.js";
import type { OpDef } from "./opdef.js";
import { OPCODES } from "./optable.js";

/** Candidates per (map, opcode byte): most slots hold one row; groups and prefixed forms hold several. */
const SLOTS: OpDef[][] = [];
/** The same for VEX-encoded rows, by (VEX.mmmmm, opcode byte). */
const VEX_SLOTS: OpDef[][] = [];
for (let k = 0; k < 4 * 256; k++) {
  SLOTS.push([]);
  VEX_SLOTS.push([]);
}
for (const d of OPCODES) {
  const n = d.plusReg ? 8 : 1;
  for (let r = 0; r < n; r++) (d.vex ? VEX_SLOTS : SLOTS)[d.map * 256 + d.code + r].push(d);
}
/**
 * Rows with a mandatory prefix or rm extension must be tried before generic ones. A slot is put
 * in that order the first time it is looked up, not at import: sorting all 2048 slots up front
 * cost every process ~8 ms of start-up (issue 11), and a run decodes only a few hundred opcodes.
 * 1 = slot ordered, by the same index as SLOTS / VEX_SLOTS.
 */
const SLOT_ORDERED = new Uint8Array(4 * 256);
const VEX_SLOT_ORDERED = new Uint8Array(4 * 256);
function orderedSlot(slots: OpDef[][], ordered: Uint8Array, k: number): OpDef[] {
  const s = slots[k];
  if (ordered[k] === 0) {
    if (s.length > 1) s.sort((a, b) => specificity(b) - specificity(a));
    ordered[k] = 1;
  }
  return s;
}
/** VEX.pp → the legacy prefix it stands for. */
const VEX_PP = [0, 0x66, 0xf3, 0xf2];
function specificity(d: OpDef): number {
  return (
    (d.prefix !== undefined && d.prefix !== 0 ? 4 : 0) + (d.rmExt !== undefined ? 2 : 0) + (d.ext !== undefined ? 1 : 0)
  );
}

/** Look up the opcode table (exported for tests and the disassembler). */
export function opcodeRows(map: number, code: number, vex = false): readonly OpDef[] {
  return vex
    ? orderedSlot(VEX_SLOTS, VEX_SLOT_ORDERED, map * 256 + code)
    : orderedSlot(SLOTS, SLOT_ORDERED, map * 256 + code);
}

function ud(c: Cpu): never {
  return c.raise(UD);
}

/**
 * Decode the instruction at linear address lo:hi (SDM vol. 2, chapter 2): legacy prefixes, REX,
 * opcode maps, ModRM/SIB, displacement, immediate. Raises #UD for unknown/invalid encodings,
 * #GP for instructions longer than 15 bytes, #PF for unmapped code.
 */
export function decode(c: Cpu, lo: number, hi: number): Insn {
  let pos = 0;
  const byte = (): number => {
    if (pos >= 15) c.raise(GP, 0);
    const a = (lo + pos) | 0;
    const b = c.fetchByte(a, c.mode64 ? (a >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi) : 0);
    pos++;
    return b;
  };
  const m64 = c.mode64;
  let opsizePrefix = false;
  let asizePrefix = false;
  let rep = 0;
  let lastRepByte = 0;
  let lock = false;
  let seg = -1;
  let rex = 0;
  let b: number;
  for (;;) {
    b = byte();
    if (b === 0x66) opsizePrefix = true;
    else if (b === 0x67) asizePrefix = true;
    else if (b === 0xf0) lock = true;
    else if (b === 0xf2 || b === 0xf3) {
      rep = b === 0xf3 ? 1 : 2;
      lastRepByte = b;
    } else if (b === 0x26 || b === 0x2e || b === 0x36 || b === 0x3e) {
      if (!m64) seg = (b >> 3) & 3; // ES=0 CS=1 SS=2 DS=3; ignored in 64-bit mode
    } else if (b === 0x64) seg = 4;
    else if (b === 0x65) seg = 5;
    else if (m64 && (b & 0xf0) === 0x40) {
      rex = b;
      b = byte();
      // A REX prefix counts only immediately before the opcode.
      if (
        (b & 0xf0) === 0x40 ||
        b === 0x66 ||
        b === 0x67 ||
        b === 0xf0 ||
        b === 0xf2 ||
        b === 0xf3 ||
        b === 0x26 ||
        b === 0x2e ||
        b === 0x36 ||
        b === 0x3e ||
        b === 0x64 ||
        b === 0x65
      ) {
        pos--;
        rex = 0;
        continue;
      }
      break;
    } else break;
  }
  let map = 0;
  // VEX (SDM vol. 2, 2.3.5): C5 = R̄ vvvv̄ L pp; C4 = R̄ X̄ B̄ mmmmm, then W vvvv̄ L pp. Outside
  // 64-bit mode C4/C5 are LES/LDS unless the next byte's top bits are 11 (a register ModRM
  // there), and VEX.R/X/B/W and vvvv[3] are ignored (as Bochs decodes it).
  let vexV = -1;
  let vexL = 0;
  let vexPP = 0;
  if (b === 0xc4 || b === 0xc5) {
    const p1 = byte();
    if (m64 || p1 >= 0xc0) {
      // 2.3.2: a 66, F2, F3, REX or LOCK prefix before VEX is #UD.
      if (rex !== 0 || opsizePrefix || rep !== 0 || lock) ud(c);
      let p2 = p1;
      let rx = (~p1 >> 5) & 4;
      map = 1;
      if (b === 0xc4) {
        map = p1 & 0x1f;
        p2 = byte();
        rx = ((~p1 >> 5) & 7) | ((p2 >> 4) & 8);
        if (map < 1 || map > 3) ud(c);
      }
      vexV = (~p2 >> 3) & 15;
      vexL = (p2 >> 2) & 1;
      vexPP = VEX_PP[p2 & 3];
      if (m64) rex = 0x40 | rx;
      else vexV &= 7;
      b = byte();
    } else pos--;
  }
  if (vexV < 0 && b === 0x0f) {
    b = byte();
    if (b === 0x38) {
      map = 2;
      b = byte();
    } else if (b === 0x3a) {
      map = 3;
      b = byte();
    } else map = 1;
  }
  const rows = opcodeRows(map, b, vexV >= 0);
  if (rows.length === 0) ud(c);
  const needModrm = rows[0].modrm;
  let modrm = -1;
  if (needModrm) modrm = byte();
  const mod = modrm >> 6;
  const regField = (modrm >> 3) & 7;
  const rmField = modrm & 7;
  // Which mandatory prefix is in effect: the last of F2/F3, else 66.
  const mandatory = lastRepByte !== 0 ? lastRepByte : opsizePrefix ? 0x66 : 0;
  let def: OpDef | undefined;
  for (const d of rows) {
    if (d.ext !== undefined && d.ext !== regField) continue;
    if (d.rmExt !== undefined && (mod !== 3 || d.rmExt !== rmField)) continue;
    if (vexV >= 0) {
      if ((d.prefix ?? 0) !== vexPP) continue;
    } else if (d.prefix !== undefined) {
      if (d.prefix === 0) {
        if (lastRepByte !== 0) continue;
      } else if (d.prefix !== mandatory && !(d.prefix === 0x66 && opsizePrefix && lastRepByte === 0)) continue;
    }
    if (d.form === "reg" && mod !== 3) continue;
    if (d.form === "mem" && mod === 3) continue;
    if (d.mode === "no64" && m64) continue;
    if (d.mode === "only64" && !m64) continue;
    def = d;
    break;
  }
  if (def === undefined) return ud(c);
  // VEX-encoded general-purpose instructions (SDM vol. 2, 2.5.1, exception class 13): VEX.L = 1
  // is #UD, and so is a vvvv other than 1111b where the instruction does not use it (2.3.6).
  if (vexV >= 0 && (vexL !== 0 || (def.vex === "nov" && vexV !== 0))) ud(c);
  if (asizePrefix && !m64) ud(c); // 16-bit addressing is out of scope
  const i = new Insn(def.exec);
  i.name = def.name;
  i.opcode = (map << 8) | b;
  i.op = def.op ?? 0;
  i.rep = rep;
  i.lock = lock;
  if (vexV >= 0) i.vreg = vexV;
  const rexW = (rex & 8) !== 0;
  // Operand size.
  const usedOpsizeAsMandatory = def.prefix === 0x66;
  const o16 = opsizePrefix && !usedOpsizeAsMandatory;
  switch (def.size) {
    case "b":
      i.size = 1;
      break;
    case "w":
      i.size = 2;
      break;
    case "d":
      i.size = 4;
      break;
    case "q":
      i.size = 8;
      break;
    case "v":
      i.size = rexW ? 8 : o16 ? 2 : 4;
      break;
    case "d64":
      i.size = m64 ? (o16 ? 2 : 8) : o16 ? 2 : 4;
      break;
    case "f64":
      i.size = m64 ? 8 : o16 ? 2 : 4;
      break;
    case "y":
      i.size = m64 && rexW ? 8 : 4;
      break;
  }
  i.asize = m64 ? (asizePrefix ? 4 : 8) : 4;
  // Registers.
  const byteRegs = i.size === 1;
  const hi8 = (r: number): number => (rex === 0 && r >= 4 && r < 8 ? HIGH8_BASE + r - 4 : r);
  if (def.plusReg) {
    const r = (b & 7) | ((rex & 1) << 3);
    i.reg = byteRegs ? hi8(r) : r;
    i.rm = i.reg; // so r/m helpers serve "+r" forms too
  }
  if (needModrm) {
    const reg = regField | ((rex & 4) << 1);
    i.reg = byteRegs ? hi8(reg) : reg;
    if (mod === 3 || def.modIgnored) {
      i.isMem = false;
      const rm = rmField | ((rex & 1) << 3);
      i.rm = byteRegs || def.rmByte ? hi8(rm) : rm;
    } else {
      i.isMem = true;
      let defaultSeg = 3;
      if (rmField === 4) {
        const sib = byte();
        const scale = sib >> 6;
        const index = ((sib >> 3) & 7) | ((rex & 2) << 2);
        const base = (sib & 7) | ((rex & 1) << 3);
        i.index = index === 4 ? NONE : index;
        i.scale = scale;
        if ((sib & 7) === 5 && mod === 0) {
          i.base = NONE;
          i.disp = dword();
        } else {
          i.base = base;
          if (base === 4 || base === 5) defaultSeg = 2; // [rsp+…]/[rbp+…] default to SS
        }
      } else if (rmField === 5 && mod === 0) {
        i.base = m64 ? BASE_RIP : NONE;
        i.disp = dword();
      } else {
        i.base = rmField | ((rex & 1) << 3);
        if (i.base === 5) defaultSeg = 2; // [rbp+disp]: SS (R13 is not special)
      }
      if (mod === 1) {
        const d8 = byte();
        i.disp = (d8 << 24) >> 24;
      } else if (mod === 2) i.disp = dword();
      i.dispHi = i.disp >> 31;
      i.seg = seg >= 0 ? seg : defaultSeg;
    }
  }
  function dword(): number {
    const a = byte();
    const b1 = byte();
    const b2 = byte();
    const b3 = byte();
    return a | (b1 << 8) | (b2 << 16) | (b3 << 24);
  }
  // Immediates.
  switch (def.imm ?? "none") {
    case "none":
      break;
    case "ib":
      i.imm = byte();
      break;
    case "ibs": {
      const v = (byte() << 24) >> 24;
      i.imm = i.size === 1 ? v & 0xff : i.size === 2 ? v & 0xffff : v;
      i.immHi = i.size === 8 ? v >> 31 : 0;
      break;
    }
    case "iw":
      i.imm = byte() | (byte() << 8);
      break;
    case "iz":
      if (i.size === 2) i.imm = byte() | (byte() << 8);
      else {
        i.imm = dword();
        i.immHi = i.size === 8 ? i.imm >> 31 : 0;
      }
      break;
    case "iv":
      if (i.size === 2) i.imm = byte() | (byte() << 8);
      else {
        i.imm = dword();
        if (i.size === 8) i.immHi = dword();
      }
      break;
    case "rel8":
      i.imm = (byte() << 24) >> 24;
      break;
    case "relz":
      if (i.size === 2 && !m64) i.imm = ((byte() | (byte() << 8)) << 16) >> 16;
      else i.imm = dword();
      break;
    case "moffs":
      i.isMem = true;
      i.base = NONE;
      i.index = NONE;
      i.disp = dword();
      i.dispHi = i.asize === 8 ? dword() : 0;
      i.seg = seg >= 0 ? seg : 3;
      break;
    case "ptr":
      i.imm = i.size === 2 ? byte() | (byte() << 8) : dword();
      i.imm2 = byte() | (byte() << 8);
      break;
    case "iwib":
      i.imm = byte() | (byte() << 8);
      i.imm2 = byte();
      break;
  }
  if (!needModrm && def.imm !== "moffs" && seg >= 0) i.seg = seg;
  else if (!needModrm && def.imm !== "moffs") i.seg = 3;
  if (lock && (!def.lockable || !i.isMem)) ud(c);
  i.len = pos;
  return i;
}
