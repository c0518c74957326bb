/**
 * Exception and interrupt delivery through the IDT (SDM vol. 3, chapter 6): IA-32e mode
 * (16-byte gates, 64-bit frames, IST, 16-byte stack alignment) and 32-bit protected mode
 * (8-byte gates, 32-bit frames, stack switch from a 32-bit TSS). Interrupt and trap gates only:
 * task gates (and 16-bit gates) raise #GP(gate). The double-fault and triple-fault rules of
 * SDM vol. 3, 6.15 (tables 6-4, 6-5) apply; a triple fault stops the machine via Cpu.shutdown.
 *
 * No allocation: frames are pushed one slot at a time.
 */

import { isCanonical } from "../x86/canonical.js";
import {
  DF_,
  ERR_EXT,
  ERR_IDT,
  GP,
  hasErrorCode,
  isContributory,
  isFaultClass,
  NP,
  SS_,
  TS,
  VECTOR_NAMES,
} from "../x86/exceptions.js";
import { IF, NT, RF, TF, VM } from "../x86/flags.js";
import {
  INTR_INFO_DELIVER_CODE,
  INTR_INFO_VALID,
  INTR_TYPE_EXT_INTR,
  INTR_TYPE_HW_EXCEPTION,
  INTR_TYPE_NMI,
} from "../x86/vmx-controls.js";
import { CHARGE_EVENT } from "./charges.js";
import { type Cpu, FAULT } from "./cpu.js";
import { debugEventDelivered } from "./debug.js";
import {
  AR_CODE,
  AR_CONFORMING,
  AR_DB,
  AR_L,
  AR_P,
  AR_RW,
  AR_S,
  type Descriptor,
  nullSegment,
  readDescriptor,
  setSegment,
} from "./segments.js";
import { VMEXIT } from "./vmx/vmx.js";

/** How an event arrived (decides privilege checks, error codes and the EXT bit). */
export const EV_EXCEPTION = 0; // a fault or trap the processor detected (EXT = 1 in nested error codes)
export const EV_EXTERNAL = 1; // an interrupt from the controller (EXT = 1)
export const EV_SOFTWARE = 2; // INT n, INT3, INTO: gate DPL is checked against CPL, EXT = 0

export function vectorName(v: number): string {
  return VECTOR_NAMES[v] ?? `vector ${v}`;
}

function hex(v: number): string {
  return `0x${(v >>> 0).toString(16)}`;
}

const gateCode: Descriptor = { baseLo: 0, baseHi: 0, limit: 0, ar: 0 };
const tssStack: Descriptor = { baseLo: 0, baseHi: 0, limit: 0, ar: 0 };

/**
 * Deliver an exception or interrupt through the IDT, applying the double-fault rules: a
 * contributory fault while delivering a contributory fault, or a contributory fault or #PF while
 * delivering a #PF, becomes #DF(0); any fault while delivering #DF shuts the machine down
 * (triple fault). Other faults during delivery are delivered instead of the first event.
 *
 * `external` true for interrupts from the controller; `soft` 0, or 1 for INT n-class events
 * (INT n, INT3, INTO). The return address is the CPU's current RIP (the caller has set it: the
 * faulting instruction for faults, the next instruction for traps, INT n and interrupts).
 * A fault while delivering INT n is reported at c.startLo/Hi (the INT instruction).
 */
export function deliverEvent(c: Cpu, vector: number, errorCode: number, external: boolean, soft: number): void {
  let v = vector;
  let e = errorCode;
  let kind = external ? EV_EXTERNAL : soft !== 0 ? EV_SOFTWARE : EV_EXCEPTION;
  for (;;) {
    c.delivering = v;
    // In VMX non-root operation the exception bitmap may turn the exception into a VM exit
    // (SDM vol. 3, 25.2); INT3/INTO count as exceptions, INT n does not.
    if (c.nonRoot && !c.injecting && (kind === EV_EXCEPTION || (kind === EV_SOFTWARE && (v === 3 || v === 4)))) {
      // INT3/INTO exits report their instruction length (27.2.4): RIP is already past them.
      const len = kind === EV_SOFTWARE ? (c.ripLo - c.startLo) | 0 : 0;
      c.vmxUnit.checkException(v, kind === EV_EXCEPTION && hasErrorCode(v) ? Math.max(e, 0) : -1, len);
    }
    // The guest takes the event: an exit from here on is not an IRET's (nmi.ts).
    c.vmxUnit.iretUnblockedNmi = false;
    try {
      deliverOnce(c, v, e, kind);
      c.chargeEvent(CHARGE_EVENT);
      c.delivering = -1;
      c.intShadow = false; // delivery ends STI/MOV SS blocking
      debugEventDelivered(c);
      return;
    } catch (x) {
      if (x === VMEXIT && c.nonRoot && !c.injecting && kind !== EV_SOFTWARE) {
        // A VM exit (an EPT violation on the stack or IDT, say) cut this delivery short: the
        // exit reports the event in the IDT-vectoring information (SDM vol. 3, 27.2.4).
        // (Injected events are reported by VM entry; INT n-class events are not recorded.)
        const code = kind === EV_EXCEPTION && hasErrorCode(v);
        c.vmxUnit.vectoringInfo =
          INTR_INFO_VALID |
          (kind !== EV_EXTERNAL ? INTR_TYPE_HW_EXCEPTION : v === 2 ? INTR_TYPE_NMI : INTR_TYPE_EXT_INTR) |
          v |
          (code ? INTR_INFO_DELIVER_CODE : 0);
        c.vmxUnit.vectoringError = code ? Math.max(e, 0) : 0;
      }
      if (x !== FAULT) throw x;
      c.injecting = false; // a fault during delivery of an injected event is a new exception
      const nv = c.faultVector;
      const ne = c.faultError;
      if (nv === 14) {
        // A #PF detected during delivery loads CR2 at once, even if it then becomes #DF.
        c.cr2Lo = c.faultCr2Lo;
        c.cr2Hi = c.faultCr2Hi;
      }
      c.faultVector = -1;
      // A fault while delivering INT n is reported against the INT instruction itself (the
      // frame would have held the next RIP). For exceptions and interrupts RIP is unchanged:
      // delivery commits nothing before it succeeds.
      if (kind === EV_SOFTWARE) {
        c.ripLo = c.startLo;
        c.ripHi = c.startHi;
      }
      if (v === DF_ && kind === EV_EXCEPTION) {
        c.delivering = -1;
        if (c.nonRoot) c.vmxUnit.tripleFault(); // a guest's triple fault is a VM exit (25.2)
        c.shutdown(
          `triple fault: ${vectorName(nv)}${ne >= 0 ? `(${hex(ne)})` : ""} while delivering #DF (first event ${vectorName(vector)}) at rip ${hex(c.startHi)}:${hex(c.startLo)}`,
        );
        return;
      }
      const first = kind === EV_EXCEPTION ? v : -1; // external interrupts and INT n are benign
      const becomesDf =
        (first >= 0 && isContributory(first) && isContributory(nv)) ||
        (first === 14 && (nv === 14 || isContributory(nv)));
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
  if (v === 14 && kind === EV_EXCEPTION) {
    c.cr2Lo = c.faultCr2Lo; // the faulting linear address (SDM vol. 3, 4.7)
    c.cr2Hi = c.faultCr2Hi;
  }
  const ext = kind === EV_SOFTWARE ? 0 : ERR_EXT;
  const pushErr = kind === EV_EXCEPTION && hasErrorCode(v);
  const errCode = pushErr ? Math.max(err, 0) : -1;
  // A fault-class exception pushes RF = 1 so that IRET restarts the instruction without
  // re-triggering its instruction breakpoint (SDM vol. 3, 18.3.1.1). Traps and interrupts push
  // RF as it is. Events injected by VM entry push RFLAGS as the VMCS gave it (a hypervisor sets
  // RF itself, as KVM does in inject_pending_event).
  const rf = kind === EV_EXCEPTION && !c.injecting && isFaultClass(v) ? RF : 0;
  if ((c.efer & 0x400) !== 0) deliverLong(c, v, errCode, kind, ext, rf);
  else deliverLegacy(c, v, errCode, kind, ext, rf);
}

/**
 * Validate the code segment a gate names (SDM vol. 3, 6.12.1.1 / 6.14.1): present, code,
 * DPL <= CPL, 64-bit (L=1, D=0) in IA-32e mode. Fills `gateCode`; returns the handler's CPL.
 */
function checkGateCode(c: Cpu, sel: number, ext: number, long: boolean): number {
  if ((sel & 0xfffc) === 0) c.raise(GP, ext);
  const err = (sel & 0xfffc) | ext;
  if ((sel & 4) !== 0 || (sel & 0xfff8) + 7 > c.gdtrLimit) c.raise(GP, err);
  const d = readDescriptor(c, sel, GP, false, gateCode);
  if ((d.ar & AR_S) === 0 || (d.ar & AR_CODE) === 0) c.raise(GP, err);
  if (long && ((d.ar & AR_L) === 0 || (d.ar & AR_DB) !== 0)) c.raise(GP, err);
  const dpl = (d.ar >> 5) & 3;
  if (dpl > c.cpl) c.raise(GP, err);
  if ((d.ar & AR_P) === 0) c.raise(NP, err);
  return (d.ar & AR_CONFORMING) !== 0 ? c.cpl : dpl;
}

// Stack pointer while a frame is being pushed (module scratch: delivery never nests in JS).
let spLo = 0;
let spHi = 0;

function push64(c: Cpu, lo: number, hi: number): void {
  const n = (spLo - 8) | 0;
  if (n >>> 0 > spLo >>> 0) spHi = (spHi - 1) | 0;
  spLo = n;
  c.eaStack = true;
  c.write64(spLo, spHi, lo, hi);
}

/** IA-32e mode delivery (SDM vol. 3, 6.14): 16-byte gates, 64-bit frame, IST, RSP alignment. */
function deliverLong(c: Cpu, v: number, err: number, kind: number, ext: number, rf: number): void {
  const gateErr = (v << 3) | ERR_IDT | ext;
  if (v * 16 + 15 > c.idtrLimit) c.raise(GP, gateErr);
  const g = (c.idtrBaseLo + v * 16) | 0;
  const gh = c.idtrBaseHi;
  const w0 = c.readSys(g, gh, 4);
  const w1 = c.readSys((g + 4) | 0, gh, 4);
  const w2 = c.readSys((g + 8) | 0, gh, 4);
  const type = (w1 >> 8) & 0x1f; // includes S (bit 12), which must be 0
  const dpl = (w1 >> 13) & 3;
  if (type !== 0x0e && type !== 0x0f) c.raise(GP, gateErr);
  if (kind === EV_SOFTWARE && dpl < c.cpl) c.raise(GP, gateErr);
  if ((w1 & 0x8000) === 0) c.raise(NP, gateErr);
  const sel = (w0 >>> 16) & 0xffff;
  const offLo = (w0 & 0xffff) | (w1 & 0xffff0000);
  const offHi = w2;
  const ist = w1 & 7;
  const oldCpl = c.cpl;
  const newCpl = checkGateCode(c, sel, ext, true);
  if (!isCanonical(offHi)) c.raise(GP, ext); // non-canonical handler address

  // Stack: IST entry if the gate names one, else RSPn of the TSS on a privilege change.
  let rspLo = c.lo[4];
  let rspHi = c.hi[4];
  if (ist !== 0 || newCpl < oldCpl) {
    const off = ist !== 0 ? 36 + (ist - 1) * 8 : 4 + newCpl * 8;
    if (off + 7 > c.trLimit) c.raise(TS, (c.trSel & 0xfffc) | ext);
    rspLo = c.readSys((c.trBaseLo + off) | 0, c.trBaseHi, 4);
    rspHi = c.readSys((c.trBaseLo + off + 4) | 0, c.trBaseHi, 4);
    if (!isCanonical(rspHi)) c.raise(SS_, ext);
  }
  rspLo &= ~0xf; // IA-32e frames are 16-byte aligned (SDM vol. 3, 6.14.2)

  const flags = c.getFlags();
  const oldSs = c.segSel[2];
  const oldRspLo = c.lo[4];
  const oldRspHi = c.hi[4];
  const oldCs = c.segSel[1];
  // Stack writes are supervisor accesses when the handler runs at CPL < 3.
  c.setCpl(newCpl);
  spLo = rspLo;
  spHi = rspHi;
  try {
    push64(c, oldSs, 0);
    push64(c, oldRspLo, oldRspHi);
    push64(c, flags | rf, 0);
    push64(c, oldCs, 0);
    push64(c, c.ripLo, c.ripHi);
    if (err >= 0) push64(c, err, 0);
  } catch (x) {
    c.setCpl(oldCpl);
    throw x;
  }
  // Commit.
  if (newCpl < oldCpl) nullSegment(c, 2, newCpl); // SS = NULL with RPL = new CPL
  setSegment(c, 1, (sel & 0xfffc) | newCpl, 0, 0, gateCode.limit, gateCode.ar);
  c.lo[4] = spLo;
  c.hi[4] = spHi;
  let nf = flags & ~(TF | NT | RF | VM);
  if (type === 0x0e) nf &= ~IF;
  c.setFlags(nf);
  c.ripLo = offLo;
  c.ripHi = offHi;
  c.updateMode();
}

function push32(c: Cpu, base: number, v: number): void {
  spLo = (spLo - 4) | 0;
  c.eaStack = true;
  c.write32((base + spLo) | 0, 0, v);
}

/**
 * 32-bit protected-mode delivery (SDM vol. 3, 6.12): 8-byte 32-bit interrupt/trap gates,
 * 32-bit frame, SS:ESP from the 32-bit TSS on a privilege change. Segments are flat: EIP is
 * the handler offset.
 */
function deliverLegacy(c: Cpu, v: number, err: number, kind: number, ext: number, rf: number): void {
  const gateErr = (v << 3) | ERR_IDT | ext;
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
  const oldCpl = c.cpl;
  const newCpl = checkGateCode(c, sel, ext, false);
  const flags = c.getFlags();
  const oldSs = c.segSel[2];
  const oldEsp = c.lo[4];
  const oldCs = c.segSel[1];
  let ssSel = c.segSel[2];
  let ssBase = c.segBaseLo[2];
  let ssLimit = c.segLimit[2];
  let ssAr = c.segAr[2];
  let esp = c.lo[4];
  if (newCpl < oldCpl) {
    // 32-bit TSS: ESPn at 4 + 8n, SSn at 8 + 8n (SDM vol. 3, 6.12.1 and 8.2.1).
    const o = 4 + newCpl * 8;
    if (o + 5 > c.trLimit) c.raise(TS, (c.trSel & 0xfffc) | ext);
    esp = c.readSys((c.trBaseLo + o) | 0, 0, 4);
    ssSel = c.readSys((c.trBaseLo + o + 4) | 0, 0, 2) & 0xffff;
    const tsErr = (ssSel & 0xfffc) | ext;
    if ((ssSel & 0xfffc) === 0 || (ssSel & 3) !== newCpl) c.raise(TS, tsErr);
    if ((ssSel & 4) !== 0 || (ssSel & 0xfff8) + 7 > c.gdtrLimit) c.raise(TS, tsErr);
    const sd = readDescriptor(c, ssSel, TS, false, tssStack);
    if ((sd.ar & AR_S) === 0 || (sd.ar & AR_CODE) !== 0 || (sd.ar & AR_RW) === 0) c.raise(TS, tsErr);
    if (((sd.ar >> 5) & 3) !== newCpl) c.raise(TS, tsErr);
    if ((sd.ar & AR_P) === 0) c.raise(SS_, tsErr);
    ssBase = sd.baseLo;
    ssLimit = sd.limit;
    ssAr = sd.ar;
  }
  c.setCpl(newCpl);
  spLo = esp;
  try {
    if (newCpl < oldCpl) {
      push32(c, ssBase, oldSs);
      push32(c, ssBase, oldEsp);
    }
    push32(c, ssBase, flags | rf);
    push32(c, ssBase, oldCs);
    push32(c, ssBase, c.ripLo);
    if (err >= 0) push32(c, ssBase, err);
  } catch (x) {
    c.setCpl(oldCpl);
    throw x;
  }
  if (newCpl < oldCpl) setSegment(c, 2, ssSel, ssBase, 0, ssLimit, ssAr);
  setSegment(c, 1, (sel & 0xfffc) | newCpl, gateCode.baseLo, 0, gateCode.limit, gateCode.ar);
  c.lo[4] = spLo;
  let nf = flags & ~(TF | NT | RF | VM);
  if (type === 0x0e) nf &= ~IF;
  c.setFlags(nf);
  c.ripLo = off;
  c.ripHi = 0;
  c.updateMode();
}
