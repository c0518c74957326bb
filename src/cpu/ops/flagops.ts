/**
 * Flag instructions: CLC/STC/CMC, CLD/STD, LAHF/SAHF, PUSHF/POPF. SDM vol. 2A "CLC", "STC",
 * "CMC", "CLD", "STD", "LAHF", vol. 2B "SAHF", "PUSHF/PUSHFD/PUSHFQ", "POPF/POPFD/POPFQ".
 * CLAC/STAC (SDM vol. 2A "CLAC", "STAC"; SMAP). CLI/STI live with the interrupt instructions
 * (interrupt-insns.ts).
 */
import { UD } from "../../x86/exceptions.js";
import { AC, CF, DF, IF, IOPL, POPF_MASK_CPL0, RF, VM } from "../../x86/flags.js";
import type { Cpu } from "../cpu.js";
import { LF_NONE, LF_RES } from "../flags.js";
import type { Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";

/** Set CF to `cf`, other status flags unchanged. */
function putCf(c: Cpu, cf: number): void {
  if (c.lfOp === LF_RES) c.lfAux = (c.lfAux & ~CF) | cf;
  else if (c.lfOp === LF_NONE) c.flagsBase = (c.flagsBase & ~CF) | cf;
  else c.setCF(cf);
}

function clc(c: Cpu, _i: Insn): void {
  putCf(c, 0);
}

function stc(c: Cpu, _i: Insn): void {
  putCf(c, 1);
}

function cmc(c: Cpu, _i: Insn): void {
  putCf(c, c.getCF() ^ 1);
}

/** DF is not a status flag: it always lives in flagsBase. */
function cld(c: Cpu, _i: Insn): void {
  c.flagsBase &= ~DF;
}

function std(c: Cpu, _i: Insn): void {
  c.flagsBase |= DF;
}

/** LAHF: AH = SF:ZF:0:AF:0:PF:1:CF. */
function lahf(c: Cpu, _i: Insn): void {
  c.lo[0] = (c.lo[0] & ~0xff00) | ((c.getFlags() & 0xff) << 8);
}

/** SAHF: SF, ZF, AF, PF, CF = bits 7, 6, 4, 2, 0 of AH (OF unchanged). */
function sahf(c: Cpu, _i: Insn): void {
  const ah = (c.lo[0] >> 8) & 0xd5;
  c.flagsBase = (c.getFlags() & ~0xd5) | ah;
  c.lfOp = LF_NONE;
}

/** PUSHF/PUSHFQ (9C, d64): the image has VM and RF cleared; a 16-bit push stores the low word. */
function pushf(c: Cpu, i: Insn): void {
  const f = c.getFlags() & ~(VM | RF);
  c.push(i.size, i.size === 2 ? f & 0xffff : f, 0);
}

/**
 * POPF/POPFQ (9D, d64). CPL 0: every flag POPF may change (IOPL and IF included); CPL > 0:
 * IOPL unchanged, IF changed only when CPL <= IOPL. VM, VIF, VIP and reserved bits unchanged;
 * RF cleared. A 16-bit pop changes only the low word. setFlags handles AC (TLB) and IF (IRQ check).
 */
function popf(c: Cpu, i: Insn): void {
  const v = c.pop(i.size);
  let mask = POPF_MASK_CPL0;
  if (c.cpl !== 0) {
    mask &= ~IOPL;
    if (c.cpl > (c.flagsBase & IOPL) >> 12) mask &= ~IF;
  }
  if (i.size === 2) mask &= 0xffff;
  const old = c.getFlags();
  c.setFlags(((old & ~mask) | (v & mask)) & ~RF);
}

/** CLAC/STAC (0F 01 CA/CB): clear/set RFLAGS.AC; #UD at CPL > 0. */
function clacStac(c: Cpu, i: Insn): void {
  if (c.cpl !== 0) c.raise(UD);
  const f = c.getFlags();
  c.setFlags(i.op === 1 ? f | AC : f & ~AC);
}

export const FLAGOPS_OPS: readonly OpDef[] = [
  { name: "clc", map: 0, code: 0xf8, modrm: false, size: "v", exec: clc },
  { name: "stc", map: 0, code: 0xf9, modrm: false, size: "v", exec: stc },
  { name: "cmc", map: 0, code: 0xf5, modrm: false, size: "v", exec: cmc },
  { name: "cld", map: 0, code: 0xfc, modrm: false, size: "v", exec: cld },
  { name: "std", map: 0, code: 0xfd, modrm: false, size: "v", exec: std },
  { name: "lahf", map: 0, code: 0x9f, modrm: false, size: "v", exec: lahf },
  { name: "sahf", map: 0, code: 0x9e, modrm: false, size: "v", exec: sahf },
  { name: "pushf", map: 0, code: 0x9c, modrm: false, size: "d64", exec: pushf },
  { name: "popf", map: 0, code: 0x9d, modrm: false, size: "d64", exec: popf },
  { name: "clac", map: 1, code: 0x01, ext: 1, rmExt: 2, modrm: true, size: "v", op: 0, exec: clacStac },
  { name: "stac", map: 1, code: 0x01, ext: 1, rmExt: 3, modrm: true, size: "v", op: 1, exec: clacStac },
];
