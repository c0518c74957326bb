import { IF, NT, RF, TF, VM } from "../x86/flags.js";
import { DF_, GP, NP, PF_, TS, VECTOR_NAMES, hasErrorCode, isContributory } from "../x86/exceptions.js";
import { FAULT, type Cpu } from "./cpu.js";
import { AR_CODE, AR_L, AR_P, AR_S, AR_UNUSABLE, readDescriptor, setSegment } from "./segments.js";

/** How an event arrived (decides privilege checks and the EXT bit of error codes). */
export const EV_EXCEPTION = 0;
export const EV_EXTERNAL = 1;
export const EV_SOFTWARE = 2; // INT n, INT3, INTO: gate DPL is checked against CPL

export function vectorName(v: number): string {
  return VECTOR_NAMES[v] ?? `vector ${v}`;
}

/**
 * Deliver an exception or interrupt through the IDT, applying the double-fault and triple-fault
 * rules of SDM vol. 3, 6.15 (table 6-5): a contributory fault or #PF while delivering a
 * contributory fault or #PF becomes #DF; any fault while delivering #DF shuts the machine down.
 *
 * `external` true for interrupts from the controller; `soft` 0, or 1 for INT n-class events.
 * The return address is the CPU's current RIP (the loop has set it: faulting RIP, or next RIP).
 */
export function deliverEvent(c: Cpu, vector: number, errorCode: number, external: boolean, soft: number): void {
  let v = vector;
  let e = errorCode;
  let kind = external ? EV_EXTERNAL : soft !== 0 ? EV_SOFTWARE : EV_EXCEPTION;
  for (;;) {
    try {
      deliverOnce(c, v, e, kind);
      return;
    } catch (x) {
      if (x !== FAULT) throw x;
      const nv = c.faultVector;
      const ne = c.faultError;
      c.faultVector = -1;
      if (v === DF_) {
        c.shutdown(`triple fault: ${vectorName(nv)} (error ${ne}) while delivering #DF`);
        return;
      }
      const first = kind === EV_EXCEPTION ? v : -1;
      const becomesDf =
        (first >= 0 && isContributory(first) && isContributory(nv)) ||
        (first === PF_ && (nv === PF_ || isContributory(nv)));
      if (becomesDf) {
        v = DF_;
        e = 0;
      } else {
        v = nv;
        e = ne;
      }
      kind = EV_EXCEPTION;
    }
  }
}

function deliverOnce(c: Cpu, v: number, err: number, kind: number): void {
  const ext = kind === EV_EXTERNAL ? 1 : 0;
  const pushErr = kind === EV_EXCEPTION && hasErrorCode(v);
  const errCode = pushErr ? (err < 0 ? 0 : err) : -1;
  if ((c.efer & 0x400) !== 0) deliverLong(c, v, errCode, kind, ext);
  else deliverLegacy(c, v, errCode, kind, ext);
}

/** IA-32e mode delivery (SDM vol. 3, 6.14): 16-byte gates, 64-bit frame, IST, RSP alignment. */
function deliverLong(c: Cpu, v: number, err: number, kind: number, ext: number): void {
  const gateErr = v * 8 + 2 + ext;
  if (v * 16 + 15 > c.idtrLimit) c.raise(GP, gateErr);
  const g = (c.idtrBaseLo + v * 16) | 0;
  const gh = c.idtrBaseHi;
  const w0 = c.readSys(g, gh, 4);
  const w1 = c.readSys((g + 4) | 0, gh, 4);
  const w2 = c.readSys((g + 8) | 0, gh, 4);
  const type = (w1 >> 8) & 0x1f;
  const dpl = (w1 >> 13) & 3;
  const present = (w1 & 0x8000) !== 0;
  if (type !== 0x0e && type !== 0x0f) c.raise(GP, gateErr);
  if (kind === EV_SOFTWARE && dpl < c.cpl) c.raise(GP, gateErr);
  if (!present) c.raise(NP, gateErr);
  const sel = (w0 >>> 16) & 0xffff;
  const offLo = (w0 & 0xffff) | (w1 & 0xffff0000);
  const offHi = w2;
  const ist = c.readSys((g + 4) | 0, gh, 1) & 7;
  if ((sel & 0xfffc) === 0) c.raise(GP, ext);
  const d = readDescriptor(c, sel, GP, false);
  if ((d.ar & AR_S) === 0 || (d.ar & AR_CODE) === 0 || (d.ar & AR_L) === 0) c.raise(GP, (sel & 0xfffc) + ext);
  const codeDpl = (d.ar >> 5) & 3;
  if (codeDpl > c.cpl) c.raise(GP, (sel & 0xfffc) + ext);
  if ((d.ar & AR_P) === 0) c.raise(NP, (sel & 0xfffc) + ext);
  const codeAr = d.ar;
  const codeLimit = d.limit;

  const oldCpl = c.cpl;
  const newCpl = codeDpl; // conforming code segments not modelled
  let rspLo = c.lo[4];
  let rspHi = c.hi[4];
  if (ist !== 0 || newCpl < oldCpl) {
    const off = ist !== 0 ? 36 + (ist - 1) * 8 : 4 + newCpl * 8;
    if (off + 7 > c.trLimit) c.raise(TS, (c.trSel & 0xfffc) + ext);
    rspLo = c.readSys((c.trBaseLo + off) | 0, c.trBaseHi, 4);
    rspHi = c.readSys((c.trBaseLo + off + 4) | 0, c.trBaseHi, 4);
  }
  rspLo &= ~0xf; // 64-bit frames are 16-byte aligned
  const flags = c.getFlags();
  // Build the frame: SS, RSP, RFLAGS, CS, RIP, [error]. Writes first, state commit last.
  const frame = [c.segSel[2], 0, c.lo[4], c.hi[4], flags, 0, c.segSel[1], 0, c.ripLo, c.ripHi];
  if (err >= 0) frame.push(err, 0);
  const savedCpl = c.cpl;
  // Stack writes happen at the new privilege level (supervisor when newCpl < 3).
  c.setCpl(newCpl);
  try {
    let lo = rspLo;
    let hi = rspHi;
    for (let k = 0; k < frame.length; k += 2) {
      const n = (lo - 8) | 0;
      if (n >>> 0 > lo >>> 0) hi = (hi - 1) | 0;
      lo = n;
      c.eaStack = true;
      c.write64(lo, hi, frame[k], frame[k + 1]);
    }
    rspLo = lo;
    rspHi = hi;
  } catch (x) {
    c.setCpl(savedCpl);
    throw x;
  }
  // Commit.
  if (newCpl < oldCpl) setSegment(c, 2, newCpl, 0, 0, 0, AR_UNUSABLE); // SS = NULL with RPL = CPL
  setSegment(c, 1, (sel & 0xfffc) | newCpl, 0, 0, codeLimit, codeAr);
  c.lo[4] = rspLo;
  c.hi[4] = rspHi;
  let nf = flags & ~(TF | NT | RF | VM);
  if (type === 0x0e) nf &= ~IF;
  c.setFlags(nf);
  c.ripLo = offLo;
  c.ripHi = offHi;
  c.updateMode();
}

/** 32-bit protected-mode delivery (SDM vol. 3, 6.12): 8-byte gates, 32-bit frame. */
function deliverLegacy(c: Cpu, v: number, err: number, kind: number, ext: number): void {
  const gateErr = v * 8 + 2 + ext;
  if (v * 8 + 7 > c.idtrLimit) c.raise(GP, gateErr);
  const g = (c.idtrBaseLo + v * 8) | 0;
  const w0 = c.readSys(g, 0, 4);
  const w1 = c.readSys((g + 4) | 0, 0, 4);
  const type = (w1 >> 8) & 0x1f;
  const dpl = (w1 >> 13) & 3;
  if (type !== 0x0e && type !== 0x0f) c.raise(GP, gateErr); // 16-bit and task gates out of scope
  if (kind === EV_SOFTWARE && dpl < c.cpl) c.raise(GP, gateErr);
  if ((w1 & 0x8000) === 0) c.raise(NP, gateErr);
  const sel = (w0 >>> 16) & 0xffff;
  const off = (w0 & 0xffff) | (w1 & 0xffff0000);
  if ((sel & 0xfffc) === 0) c.raise(GP, ext);
  const d = readDescriptor(c, sel, GP, false);
  if ((d.ar & AR_S) === 0 || (d.ar & AR_CODE) === 0) c.raise(GP, (sel & 0xfffc) + ext);
  const newCpl = (d.ar >> 5) & 3;
  if (newCpl > c.cpl) c.raise(GP, (sel & 0xfffc) + ext);
  if ((d.ar & AR_P) === 0) c.raise(NP, (sel & 0xfffc) + ext);
  const codeAr = d.ar;
  const codeBase = d.baseLo;
  const codeLimit = d.limit;
  const flags = c.getFlags();
  const oldCpl = c.cpl;
  const frame: number[] = [];
  let espNew = c.lo[4];
  let ssSel = c.segSel[2];
  let ssBase = c.segBaseLo[2];
  let ssLimit = c.segLimit[2];
  let ssAr = c.segAr[2];
  if (newCpl < oldCpl) {
    // TSS32: ESPn at 4 + 8n, SSn at 8 + 8n.
    const o = 4 + newCpl * 8;
    if (o + 5 > c.trLimit) c.raise(TS, (c.trSel & 0xfffc) + ext);
    espNew = c.readSys((c.trBaseLo + o) | 0, 0, 4);
    ssSel = c.readSys((c.trBaseLo + o + 4) | 0, 0, 2) & 0xffff;
    const sd = readDescriptor(c, ssSel, TS, false);
    ssBase = sd.baseLo;
    ssLimit = sd.limit;
    ssAr = sd.ar;
    frame.push(c.segSel[2], c.lo[4]);
  }
  frame.push(flags, c.segSel[1], c.ripLo);
  if (err >= 0) frame.push(err);
  c.setCpl(newCpl);
  let esp = espNew;
  try {
    for (const w of frame) {
      esp = (esp - 4) | 0;
      c.eaStack = true;
      c.write32((ssBase + esp) | 0, 0, w);
    }
  } catch (x) {
    c.setCpl(oldCpl);
    throw x;
  }
  if (newCpl < oldCpl) setSegment(c, 2, ssSel, ssBase, 0, ssLimit, ssAr);
  setSegment(c, 1, (sel & 0xfffc) | newCpl, codeBase, 0, codeLimit, codeAr);
  c.lo[4] = esp;
  let nf = flags & ~(TF | NT | RF | VM);
  if (type === 0x0e) nf &= ~IF;
  c.setFlags(nf);
  // RIP holds the linear address: segments are flat (base 0) in the modes nestlab models.
  c.ripLo = off;
  c.ripHi = 0;
  c.updateMode();
}
