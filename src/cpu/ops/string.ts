/**
 * String instructions MOVS, CMPS, STOS, LODS, SCAS (A4–AF) with REP/REPE/REPNE. SDM vol. 2B
 * "MOVS", "CMPS", "STOS", "LODS", "SCAS", "REP/REPE/REPZ/REPNE/REPNZ"; vol. 1, 7.3.9.
 * INS/OUTS are I/O instructions and live in port-io.ts.
 *
 * Addressing: the source is seg:rSI (DS by default, overridable; in 64-bit mode only FS/GS
 * bases apply), the destination ES:rDI (no override; ES base ignored in 64-bit mode). The
 * address size (67h) selects RSI/RDI/RCX or ESI/EDI/ECX; 32-bit updates zero-extend.
 * DF = 1 walks downwards.
 *
 * REP forms: each iteration reads and writes memory first and only then commits rSI/rDI/rCX,
 * so a fault in iteration k leaves the registers describing the k remaining elements and the
 * instruction restarts at its own RIP. One handler call runs at most REP_CAP iterations (fewer
 * if an interrupt may be pending); when the count is not exhausted it sets RIP back to the
 * instruction so the loop can take interrupts and then resume it. Each handler call counts as
 * one retired instruction in icount (the budget), whatever the number of iterations.
 * F2 with MOVS/STOS/LODS acts as REP, as on Intel cores.
 *
 * Cost: a REP form costs by the work it does, not as one instruction (repCharge below):
 * `insn.rep_startup` once per instruction that runs an iteration, then `insn.rep_fast_line` per
 * 64-byte line for MOVS/STOS going up (fast strings, Intel optimization manual §3.7.6) or
 * `insn.rep_iteration` per element for the others. A handler call that stops at REP_CAP (or to
 * let an interrupt in) and is resumed at the same RIP is one instruction: its start-up is not
 * charged again, and partial lines carry over.
 */
import { DF } from "../../x86/flags.js";
import { CHARGE_REP_FAST_LINE, CHARGE_REP_ITERATION, CHARGE_REP_STARTUP } from "../charges.js";
import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";
import { ALU_CMP, alu } from "./alu.js";

const RCX = 1;
const RSI = 6;
const RDI = 7;
/** Iterations of a REP string instruction per handler call. */
export const REP_CAP = 4096;

/** Linear address scratch (no allocation). */
let aLo = 0;
let aHi = 0;

/** Bits 63:32 of the last `elementLinear` result (module scratch: no allocation per element). */
let elementHi = 0;
export function elementLinearHi(): number {
  return elementHi;
}

/**
 * Linear address of a string element seg:(register r) at the address size (`a8`: 64-bit); bits
 * 63:32 in `elementLinearHi()`. In 64-bit mode only FS and GS add a base. Also serves INS/OUTS.
 */
export function elementLinear(c: Cpu, r: number, seg: number, a8: boolean): number {
  let lo = c.lo[r];
  let hi = a8 ? c.hi[r] : 0;
  if (c.mode64) {
    if (seg >= 4) {
      const s = (lo + c.segBaseLo[seg]) | 0;
      hi = (hi + c.segBaseHi[seg] + (s >>> 0 < lo >>> 0 ? 1 : 0)) | 0;
      lo = s;
    }
  } else {
    lo = (lo + c.segBaseLo[seg]) | 0;
    hi = 0;
  }
  elementHi = hi;
  return lo;
}

/** aLo/aHi = linear address of the source element seg:rSI. */
function srcLinear(c: Cpu, i: Insn): void {
  aLo = elementLinear(c, RSI, i.seg, i.asize === 8);
  aHi = elementHi;
  c.eaStack = i.seg === 2;
}

/** aLo/aHi = linear address of the destination element ES:rDI. */
function dstLinear(c: Cpu, i: Insn): void {
  if (c.mode64) {
    aLo = c.lo[RDI];
    aHi = i.asize === 8 ? c.hi[RDI] : 0;
  } else {
    aLo = (c.lo[RDI] + c.segBaseLo[0]) | 0;
    aHi = 0;
  }
  c.eaStack = false;
}

/** Add the signed element step to register r at the address size. */
function advance(c: Cpu, asize: number, r: number, delta: number): void {
  const lo = c.lo[r];
  const n = (lo + delta) | 0;
  c.lo[r] = n;
  if (asize === 8) {
    if (delta > 0) {
      if (n >>> 0 < lo >>> 0) c.hi[r] = (c.hi[r] + 1) | 0;
    } else if (n >>> 0 > lo >>> 0) c.hi[r] = (c.hi[r] - 1) | 0;
  } else c.hi[r] = 0;
}

function countZero(c: Cpu, asize: number): boolean {
  return asize === 8 ? (c.lo[RCX] | c.hi[RCX]) === 0 : c.lo[RCX] === 0;
}

/** Decrement rCX; returns true when it reached zero. */
function decCount(c: Cpu, asize: number): boolean {
  const lo = c.lo[RCX];
  const n = (lo - 1) | 0;
  c.lo[RCX] = n;
  if (asize === 8) {
    if (lo === 0) c.hi[RCX] = (c.hi[RCX] - 1) | 0;
    return (n | c.hi[RCX]) === 0;
  }
  c.hi[RCX] = 0;
  return n === 0;
}

/** The cap was reached with work left: re-execute the instruction after the loop's checks. */
function restart(c: Cpu): void {
  c.ripLo = c.startLo;
  c.ripHi = c.startHi;
}

/** The REP instruction that stopped part-way and will resume (its start-up is paid). */
let resumeCpu: Cpu | null = null;
let resumeLo = 0;
let resumeHi = 0;
/** Bytes of a started 64-byte line not charged yet (fast strings). */
let resumeCarry = 0;

/**
 * Charge `n` completed iterations of a REP string instruction; `done` when it will not resume
 * (count exhausted, condition met, or a fault). Fast strings charge by 64-byte line.
 */
function repCharge(c: Cpu, i: Insn, n: number, fast: boolean, done: boolean): void {
  let carry = 0;
  if (resumeCpu === c && resumeLo === c.startLo && resumeHi === c.startHi) carry = resumeCarry;
  else c.chargeEvent(CHARGE_REP_STARTUP);
  if (fast) {
    const bytes = carry + n * i.size;
    const lines = done ? Math.ceil(bytes / 64) : Math.floor(bytes / 64);
    if (lines > 0) c.chargeEvent(CHARGE_REP_FAST_LINE, lines);
    carry = bytes - lines * 64;
  } else c.chargeEvent(CHARGE_REP_ITERATION, n);
  if (done) resumeCpu = null;
  else {
    resumeCpu = c;
    resumeLo = c.startLo;
    resumeHi = c.startHi;
    resumeCarry = carry;
  }
}

function step(c: Cpu, i: Insn): number {
  return (c.flagsBase & DF) !== 0 ? -i.size : i.size;
}

/**
 * The REP loop every string instruction shares: run `elem` (one element; true when a REPE/REPNE
 * condition ends the loop) until rCX reaches 0, the condition ends it, or REP_CAP / a possible
 * interrupt makes the instruction stop and resume later; completed iterations are charged
 * (repCharge), also when an element faults. Per-element operands travel in the e* scratch (no
 * closure per call).
 */
function repLoop(c: Cpu, i: Insn, fast: boolean, elem: (c: Cpu, i: Insn) => boolean): void {
  if (countZero(c, i.asize)) return;
  let capped: boolean;
  try {
    capped = repIterate(c, i, elem);
  } catch (e) {
    if (repDone > 0) repCharge(c, i, repDone, fast, true);
    throw e;
  }
  if (capped) restart(c);
  repCharge(c, i, repDone, fast, !capped);
}

/** Iterations the running (or last) repIterate completed: what repLoop charges, also after a fault. */
let repDone = 0;

/**
 * The iterations themselves; true when they stopped at REP_CAP or for a possible interrupt with
 * work left. Kept apart from the charging because V8 optimizes this loop while it runs (on-stack
 * replacement, e.g. a long REP STOS at boot): code after the loop that had never run then lacked
 * type feedback, and the optimized repLoop was thrown away (deoptimized) at its end every time,
 * some 20 times in one boot (`node --trace-deopt`). Here only `return`s follow the loop.
 */
function repIterate(c: Cpu, i: Insn, elem: (c: Cpu, i: Insn) => boolean): boolean {
  const asize = i.asize;
  repDone = 0;
  for (;;) {
    const stop = elem(c, i);
    repDone++;
    if (decCount(c, asize) || stop) return false;
    if (repDone >= REP_CAP || c.irqCheck) return true;
  }
}

/** Element scratch for repLoop: the step, the rAX operand (STOS/SCAS), REPE (true) or REPNE. */
let eDelta = 0;
let eV = 0;
let eVh = 0;
let eWhileEqual = true;

// ---- MOVS ----

function movsOnce(c: Cpu, i: Insn, delta: number): void {
  const size = i.size;
  srcLinear(c, i);
  const v = c.readMem(aLo, aHi, size);
  const vh = c.vHi;
  dstLinear(c, i);
  c.writeMem(aLo, aHi, size, v, vh);
  advance(c, i.asize, RSI, delta);
  advance(c, i.asize, RDI, delta);
}

function movsElem(c: Cpu, i: Insn): boolean {
  movsOnce(c, i, eDelta);
  return false;
}

function movs(c: Cpu, i: Insn): void {
  const delta = step(c, i);
  if (i.rep === 0) {
    movsOnce(c, i, delta);
    return;
  }
  eDelta = delta;
  repLoop(c, i, delta > 0, movsElem);
}

// ---- STOS ----

function stosOnce(c: Cpu, i: Insn, delta: number, v: number, vh: number): void {
  dstLinear(c, i);
  c.writeMem(aLo, aHi, i.size, v, vh);
  advance(c, i.asize, RDI, delta);
}

function stosElem(c: Cpu, i: Insn): boolean {
  stosOnce(c, i, eDelta, eV, eVh);
  return false;
}

function stos(c: Cpu, i: Insn): void {
  const delta = step(c, i);
  const v = c.getReg(0, i.size);
  const vh = c.vHi;
  if (i.rep === 0) {
    stosOnce(c, i, delta, v, vh);
    return;
  }
  eDelta = delta;
  eV = v;
  eVh = vh;
  repLoop(c, i, delta > 0, stosElem);
}

// ---- LODS ----

function lodsOnce(c: Cpu, i: Insn, delta: number): void {
  srcLinear(c, i);
  const v = c.readMem(aLo, aHi, i.size);
  c.setReg(0, i.size, v, c.vHi);
  advance(c, i.asize, RSI, delta);
}

function lodsElem(c: Cpu, i: Insn): boolean {
  lodsOnce(c, i, eDelta);
  return false;
}

function lods(c: Cpu, i: Insn): void {
  const delta = step(c, i);
  if (i.rep === 0) {
    lodsOnce(c, i, delta);
    return;
  }
  eDelta = delta;
  repLoop(c, i, false, lodsElem);
}

// ---- CMPS (flags of [rSI] - [rDI]) ----

/** One CMPS element; returns true when the operands were equal (ZF = 1). */
function cmpsOnce(c: Cpu, i: Insn, delta: number): boolean {
  const size = i.size;
  srcLinear(c, i);
  const a = c.readMem(aLo, aHi, size);
  const ah = c.vHi;
  dstLinear(c, i);
  const b = c.readMem(aLo, aHi, size);
  const bh = c.vHi;
  alu(c, ALU_CMP, size, a, ah, b, bh);
  advance(c, i.asize, RSI, delta);
  advance(c, i.asize, RDI, delta);
  return a === b && (size !== 8 || ah === bh);
}

function cmpsElem(c: Cpu, i: Insn): boolean {
  return cmpsOnce(c, i, eDelta) !== eWhileEqual;
}

function cmps(c: Cpu, i: Insn): void {
  const delta = step(c, i);
  if (i.rep === 0) {
    cmpsOnce(c, i, delta);
    return;
  }
  eDelta = delta;
  eWhileEqual = i.rep === 1; // REPE; REPNE otherwise
  repLoop(c, i, false, cmpsElem);
}

// ---- SCAS (flags of rAX - [rDI]) ----

function scasOnce(c: Cpu, i: Insn, delta: number, a: number, ah: number): boolean {
  const size = i.size;
  dstLinear(c, i);
  const b = c.readMem(aLo, aHi, size);
  const bh = c.vHi;
  alu(c, ALU_CMP, size, a, ah, b, bh);
  advance(c, i.asize, RDI, delta);
  return a === b && (size !== 8 || ah === bh);
}

function scasElem(c: Cpu, i: Insn): boolean {
  return scasOnce(c, i, eDelta, eV, eVh) !== eWhileEqual;
}

function scas(c: Cpu, i: Insn): void {
  const delta = step(c, i);
  const a = c.getReg(0, i.size);
  const ah = c.vHi;
  if (i.rep === 0) {
    scasOnce(c, i, delta, a, ah);
    return;
  }
  eDelta = delta;
  eV = a;
  eVh = ah;
  eWhileEqual = i.rep === 1;
  repLoop(c, i, false, scasElem);
}

export const STRING_OPS: readonly OpDef[] = [
  { name: "movs", map: 0, code: 0xa4, modrm: false, size: "b", exec: movs },
  { name: "movs", map: 0, code: 0xa5, modrm: false, size: "v", exec: movs },
  { name: "cmps", map: 0, code: 0xa6, modrm: false, size: "b", exec: cmps },
  { name: "cmps", map: 0, code: 0xa7, modrm: false, size: "v", exec: cmps },
  { name: "stos", map: 0, code: 0xaa, modrm: false, size: "b", exec: stos },
  { name: "stos", map: 0, code: 0xab, modrm: false, size: "v", exec: stos },
  { name: "lods", map: 0, code: 0xac, modrm: false, size: "b", exec: lods },
  { name: "lods", map: 0, code: 0xad, modrm: false, size: "v", exec: lods },
  { name: "scas", map: 0, code: 0xae, modrm: false, size: "b", exec: scas },
  { name: "scas", map: 0, code: 0xaf, modrm: false, size: "v", exec: scas },
];
