/**
 * L0's exit handlers for L2 vCPUs (the npv counterpart of exits.ts). Each returns 0 when L0
 * handled the exit itself (L2 resumes without L1) or the NPV_EXIT_* reason to forward to L1,
 * with the exit data in `v.exitData`.
 *
 * Handled in L0: CPUID (L1's policy), MSRs in the policy and the LAPIC's MSRs, LAPIC MMIO, HLT
 * with a timer armed, EPT02 misses on mapped pages, mediated-device notifications, interrupt
 * windows and timers. Forwarded: I/O, MMIO in L1-declared regions, faults on unmapped or
 * under-permitted L2 pages, FORWARD MSRs, L2's VMCALL, halts nothing can wake, triple faults and
 * leaving long mode.
 */

import { newGuestContext } from "../../../cpu/vmx/host.js";
import {
  VIRTIO_MMIO_INTERRUPT_ACK,
  VIRTIO_MMIO_INTERRUPT_STATUS,
  VIRTIO_MMIO_QUEUE_NOTIFY,
} from "../../../devices/virtio-mmio.js";
import { MSR_IA32_TSC_DEADLINE } from "../../../x86/msr.js";
import * as V from "../../../x86/vmx.js";
import * as C from "../../../x86/vmx-controls.js";
import {
  NPV_EXIT_BLK_ERROR,
  NPV_EXIT_HALT,
  NPV_EXIT_HYPERCALL,
  NPV_EXIT_IO,
  NPV_EXIT_MEMORY_FAULT,
  NPV_EXIT_MMIO,
  NPV_EXIT_MODE,
  NPV_EXIT_MSR,
  NPV_EXIT_SHUTDOWN,
  NPV_MSR_FORWARD,
  NPV_MSR_VALUE,
  NPV_PERM_R,
} from "../../npv-abi.js";
import { exitReasonName } from "../exits.js";
import { L2_APIC_PFN, type NpvEngine } from "./engine.js";
import { composeLeaf, trackedL2Write } from "./ept02.js";
import { entryPerms } from "./l2-map.js";
import { bytesLoHi } from "./mmio-window.js";
import type { L2Vcpu } from "./state.js";
import { CR0_PE, CR0_PG, CR4_PAE, EFER_LMA } from "./vcpu.js";

const RAX = 0;
const RCX = 1;
const RDX = 2;
const RBX = 3;
const RSP = 4;

type L2ExitHandler = (e: NpvEngine, v: L2Vcpu, depth: number) => number;

const cpuidOut = new Int32Array(4);
const snapshotCtx = newGuestContext();

function handled(e: NpvEngine, name: string): number {
  e.count(`npv.l2_exits.l0.${name}`);
  return 0;
}

function injectGp(e: NpvEngine, v: L2Vcpu, name: string): number {
  v.pendingException = 13;
  v.pendingExceptionError = 0;
  return handled(e, name);
}

/** Stop the vCPU (SHUTDOWN / MODE): it never runs again. */
export function stopVcpu(v: L2Vcpu, reason: number, detail: number): number {
  v.stopped = reason;
  v.stopDetail = detail;
  v.exitView.setUint32(0, detail >>> 0, true);
  return reason;
}

function cpuid(e: NpvEngine, v: L2Vcpu): number {
  const h = e.l0.host;
  v.vm.cpuid.query(h.gprLo[RAX], h.gprLo[RCX], cpuidOut);
  h.gprLo[RAX] = cpuidOut[0];
  h.gprLo[RBX] = cpuidOut[1];
  h.gprLo[RCX] = cpuidOut[2];
  h.gprLo[RDX] = cpuidOut[3];
  h.gprHi[RAX] = 0;
  h.gprHi[RBX] = 0;
  h.gprHi[RCX] = 0;
  h.gprHi[RDX] = 0;
  e.l0.skipInstruction();
  e.l0.chargeHandler("l0.cpuid", "npv_cpuid");
  return handled(e, "cpuid");
}

export function hasPendingInterrupt(v: L2Vcpu): boolean {
  return v.injectQueue.length > 0 || v.lapic.hasPending();
}

function hlt(e: NpvEngine, v: L2Vcpu): number {
  const h = e.l0.host;
  e.l0.skipInstruction();
  e.l0.chargeHandler("l0.hlt", "npv_hlt");
  v.lapic.advance(h.cycles());
  if (hasPendingInterrupt(v)) return handled(e, "hlt");
  const next = v.lapic.nextEventCycle();
  const ifSet = (h.vmread(V.VMCS_GUEST_RFLAGS) & 0x200) !== 0;
  if (next === Number.POSITIVE_INFINITY || !ifSet) {
    v.exitView.setUint32(0, ifSet ? 1 : 0, true); // detail: 1 = interrupts on but nothing armed
    return NPV_EXIT_HALT;
  }
  // Block the vCPU until its timer fires: the skipped time is idle.
  if (next > h.cycles()) e.l0.chargeIdle(next - h.cycles());
  v.lapic.advance(h.cycles());
  return handled(e, "hlt");
}

function io(_e: NpvEngine, v: L2Vcpu): number {
  const h = _e.l0.host;
  const q = h.vmread(V.VMCS_EXIT_QUALIFICATION);
  const size = (q & 7) + 1;
  const isIn = (q & C.IO_QUAL_IN) !== 0;
  const port = (q >>> 16) & 0xffff;
  const d = v.exitView;
  d.setUint16(0, port, true);
  d.setUint8(2, size);
  d.setUint8(3, isIn ? 1 : 0);
  const mask = size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
  d.setUint32(4, isIn ? 0 : (h.gprLo[RAX] & mask) >>> 0, true);
  return NPV_EXIT_IO;
}

function rdmsr(e: NpvEngine, v: L2Vcpu): number {
  const h = e.l0.host;
  const index = h.gprLo[RCX] >>> 0;
  e.l0.chargeHandler("l0.msr", "npv_rdmsr");
  const p = v.vm.msrs.entries.get(index);
  let val: [number, number] | null = null;
  if (p !== undefined) {
    if (p.mode === NPV_MSR_FORWARD) {
      v.exitView.setUint32(0, index, true);
      v.exitView.setUint8(4, 0);
      return NPV_EXIT_MSR;
    }
    if (p.mode === NPV_MSR_VALUE) val = [p.lo, p.hi];
  } else if (v.lapic.handlesMsr(index)) val = v.lapic.readMsr(index);
  if (val === null) return injectGp(e, v, "rdmsr_gp");
  h.gprLo[RAX] = val[0] | 0;
  h.gprHi[RAX] = 0;
  h.gprLo[RDX] = val[1] | 0;
  h.gprHi[RDX] = 0;
  e.l0.skipInstruction();
  return handled(e, "rdmsr");
}

function wrmsr(e: NpvEngine, v: L2Vcpu): number {
  const h = e.l0.host;
  const index = h.gprLo[RCX] >>> 0;
  const lo = h.gprLo[RAX] >>> 0;
  const hi = h.gprLo[RDX] >>> 0;
  e.l0.chargeHandler(index === MSR_IA32_TSC_DEADLINE ? "l0.apic_timer" : "l0.msr", "npv_wrmsr");
  const p = v.vm.msrs.entries.get(index);
  let ok = false;
  if (p !== undefined) {
    if (p.mode === NPV_MSR_FORWARD) {
      v.exitView.setUint32(0, index, true);
      v.exitView.setUint8(4, 1);
      v.exitView.setUint32(8, lo, true);
      v.exitView.setUint32(12, hi, true);
      return NPV_EXIT_MSR;
    }
    if (p.mode === NPV_MSR_VALUE) {
      p.lo = lo;
      p.hi = hi;
      ok = true;
    }
  } else if (v.lapic.handlesMsr(index)) ok = v.lapic.writeMsr(index, lo, hi);
  if (!ok) return injectGp(e, v, "wrmsr_gp");
  e.l0.skipInstruction();
  return handled(e, "wrmsr");
}

function crAccess(e: NpvEngine, v: L2Vcpu): number {
  const h = e.l0.host;
  const q = h.vmread(V.VMCS_EXIT_QUALIFICATION);
  const cr = q & 15;
  const type = (q >>> 4) & 3;
  const gpr = (q >>> 8) & 15;
  e.l0.chargeHandler("l0.cr_access", "npv_cr");
  if (type === C.CR_ACCESS_TYPE_MOV_TO_CR) {
    const value = gpr === RSP ? h.vmread(V.VMCS_GUEST_RSP) : h.gprLo[gpr];
    if (cr === 0) {
      if ((value & CR0_PG) === 0 || (value & CR0_PE) === 0) return stopVcpu(v, NPV_EXIT_MODE, 0);
      h.vmwrite(V.VMCS_GUEST_CR0, value);
    } else if (cr === 4) {
      if ((value & CR4_PAE) === 0) return stopVcpu(v, NPV_EXIT_MODE, 4);
      h.vmwrite(V.VMCS_GUEST_CR4, value);
    }
  }
  e.l0.skipInstruction();
  return handled(e, "cr_access");
}

/** Make the next VM entry execute exactly the instruction at RIP (no injection, window or timer exit). */
function prepEmulation(e: NpvEngine): void {
  const h = e.l0.host;
  h.vmwrite(V.VMCS_PROC_BASED_CONTROLS, h.vmread(V.VMCS_PROC_BASED_CONTROLS) & ~C.CPU_INTR_WINDOW_EXITING);
  h.vmwrite(V.VMCS_PIN_BASED_CONTROLS, h.vmread(V.VMCS_PIN_BASED_CONTROLS) & ~C.PIN_PREEMPTION_TIMER);
  h.vmwrite(V.VMCS_ENTRY_INTR_INFO, 0);
}

/** The emulated instruction exited on its own: handle that exit instead (bounded). */
function nested(e: NpvEngine, v: L2Vcpu, depth: number): number {
  if (depth >= 4) return stopVcpu(v, NPV_EXIT_SHUTDOWN, 0xffff);
  return handleL2Exit(e, v, e.l0.host.exit.reason & 0xffff, depth + 1);
}

function lapicMmio(e: NpvEngine, v: L2Vcpu, depth: number): number {
  prepEmulation(e);
  e.proxy.target = v.lapic;
  let r: { exited: boolean };
  try {
    r = e.l0.host.emulateMmioInstruction(L2_APIC_PFN * 4096, 4096, e.window);
  } finally {
    e.proxy.target = null;
  }
  e.l0.chargeHandler("l0.apic_eoi", "npv_lapic");
  if (r.exited) return nested(e, v, depth);
  return handled(e, "lapic_mmio");
}

function blkNotify(e: NpvEngine, v: L2Vcpu, depth: number, window: number): number {
  const blk = v.vm.blk.get(window);
  if (blk === undefined) return 0;
  const gpa = e.l0.host.vmreadNumber(V.VMCS_GUEST_PHYSICAL_ADDRESS);
  prepEmulation(e);
  e.recorder.reset();
  e.proxy.target = e.recorder;
  let r: { exited: boolean };
  try {
    r = e.l0.host.emulateMmioInstruction(gpa - (gpa % 4096), 4096, e.window);
  } finally {
    e.proxy.target = null;
  }
  if (r.exited) return nested(e, v, depth);
  e.l0.chargeHandler("l0.io_kernel", "npv_blk_notify");
  const res = blk.notify(() => e.l0.chargeHandler("npv.blk_request", "npv_blk"));
  e.count("npv.blk.requests", res.requests);
  if (res.ioErrors > 0) e.count("npv.blk.io_errors", res.ioErrors);
  if (res.interrupt && blk.setup.vector !== 0) v.injectQueue.push(blk.setup.vector);
  if (res.error !== null) {
    e.count("npv.blk.stopped");
    v.exitView.setUint32(0, window % 4294967296, true);
    v.exitView.setUint32(4, Math.floor(window / 4294967296), true);
    return NPV_EXIT_BLK_ERROR;
  }
  return handled(e, "blk_notify");
}

/** InterruptStatus read / InterruptACK write of a mediated device: handled by L0 with the data path. */
function blkInterruptStatus(e: NpvEngine, v: L2Vcpu, depth: number, window: number): number {
  const blk = v.vm.blk.get(window);
  if (blk === undefined) return 0;
  const gpa = e.l0.host.vmreadNumber(V.VMCS_GUEST_PHYSICAL_ADDRESS);
  const page = gpa - (gpa % 4096);
  prepEmulation(e);
  e.proxy.target = blk.isrHandler(window - page);
  let r: { exited: boolean };
  try {
    r = e.l0.host.emulateMmioInstruction(page, 4096, e.window);
  } finally {
    e.proxy.target = null;
  }
  if (r.exited) return nested(e, v, depth);
  e.l0.chargeHandler("l0.io_kernel", "npv_blk_isr");
  return handled(e, "blk_isr");
}

/** Save what an aborted emulation could have changed (GPRs and RIP/RSP/RFLAGS/interruptibility). */
interface Snapshot {
  ripLo: number;
  ripHi: number;
  rspLo: number;
  rspHi: number;
  rflags: number;
  intr: number;
}

function snapshot(e: NpvEngine): Snapshot {
  const h = e.l0.host;
  h.saveContext(snapshotCtx);
  const ripLo = h.vmread(V.VMCS_GUEST_RIP);
  const ripHi = h.current!.lastHi;
  const rspLo = h.vmread(V.VMCS_GUEST_RSP);
  const rspHi = h.current!.lastHi;
  return {
    ripLo,
    ripHi,
    rspLo,
    rspHi,
    rflags: h.vmread(V.VMCS_GUEST_RFLAGS),
    intr: h.vmread(V.VMCS_GUEST_INTERRUPTIBILITY),
  };
}

function restore(e: NpvEngine, s: Snapshot): void {
  const h = e.l0.host;
  h.restoreContext(snapshotCtx);
  h.vmwrite(V.VMCS_GUEST_RIP, s.ripLo, s.ripHi);
  h.vmwrite(V.VMCS_GUEST_RSP, s.rspLo, s.rspHi);
  h.vmwrite(V.VMCS_GUEST_RFLAGS, s.rflags);
  h.vmwrite(V.VMCS_GUEST_INTERRUPTIBILITY, s.intr);
}

/**
 * An access inside an L1-declared MMIO region. L0 runs the instruction against a recorder: a
 * write retires with its value captured; a read is rolled back (it retires at the next RUN with
 * L1's value). Either way L1 gets the GPA, size and direction without decoding anything.
 */
function l1Mmio(e: NpvEngine, v: L2Vcpu, depth: number, gpa: number): number {
  const page = gpa - (gpa % 4096);
  const snap = snapshot(e);
  prepEmulation(e);
  e.recorder.reset();
  e.proxy.target = e.recorder;
  let r: { exited: boolean };
  try {
    r = e.l0.host.emulateMmioInstruction(page, 4096, e.window);
  } finally {
    e.proxy.target = null;
  }
  const rec = e.recorder;
  if (r.exited) {
    restore(e, snap);
    return nested(e, v, depth);
  }
  if (rec.accesses === 0) {
    // The instruction did not touch the region after all (e.g. it faulted): nothing to forward.
    return handled(e, "mmio_none");
  }
  const d = v.exitView;
  const at = page + rec.base;
  d.setUint32(0, at % 4294967296, true);
  d.setUint32(4, Math.floor(at / 4294967296), true);
  d.setUint8(8, rec.extent);
  if (rec.firstIsWrite) {
    d.setUint8(9, 1);
    const [lo, hi] = bytesLoHi(rec.bytes);
    d.setUint32(16, lo, true);
    d.setUint32(20, hi, true);
  } else {
    restore(e, snap);
    d.setUint8(9, 0);
    v.pendingMmioRead = { gpa: at, size: rec.extent };
  }
  return NPV_EXIT_MMIO;
}

/** At the next RUN: complete a forwarded MMIO read with L1's value (8 bytes from the run page). */
export function completeMmioRead(e: NpvEngine, v: L2Vcpu, value: Uint8Array): number {
  const p = v.pendingMmioRead;
  if (p === null) return 0;
  v.pendingMmioRead = null;
  const page = p.gpa - (p.gpa % 4096);
  prepEmulation(e);
  const rec = e.recorder;
  rec.reset();
  rec.source.set(value.subarray(0, 8));
  e.proxy.target = rec;
  let r: { exited: boolean };
  try {
    r = e.l0.host.emulateMmioInstruction(page, 4096, e.window);
  } finally {
    e.proxy.target = null;
  }
  if (r.exited) return nested(e, v, 0);
  if (rec.wroteAfterRead && rec.writtenExtent > 0) {
    // A read-modify-write instruction: its write goes to L1 as well (already retired).
    const d = v.exitView;
    v.exitData.fill(0);
    const at = page + rec.writtenBase;
    d.setUint32(0, at % 4294967296, true);
    d.setUint32(4, Math.floor(at / 4294967296), true);
    d.setUint8(8, rec.writtenExtent);
    d.setUint8(9, 1);
    const [lo, hi] = bytesLoHi(rec.written);
    d.setUint32(16, lo, true);
    d.setUint32(20, hi, true);
    return NPV_EXIT_MMIO;
  }
  return 0;
}

function eptViolation(e: NpvEngine, v: L2Vcpu, depth: number): number {
  const h = e.l0.host;
  const gpa = h.vmreadNumber(V.VMCS_GUEST_PHYSICAL_ADDRESS);
  const qual = h.vmread(V.VMCS_EXIT_QUALIFICATION);
  const access = qual & 7 || NPV_PERM_R;
  const pfn = Math.floor(gpa / 4096);
  const vm = v.vm;
  if (pfn === L2_APIC_PFN) return lapicMmio(e, v, depth);
  if (vm.blk.size > 0) {
    for (const [window, b] of vm.blk) {
      if (b.stopped) continue;
      const off = gpa - window;
      if (off >= VIRTIO_MMIO_QUEUE_NOTIFY && off < VIRTIO_MMIO_QUEUE_NOTIFY + 4) return blkNotify(e, v, depth, window);
      if (off >= VIRTIO_MMIO_INTERRUPT_STATUS && off < VIRTIO_MMIO_INTERRUPT_ACK + 4)
        return blkInterruptStatus(e, v, depth, window);
    }
  }
  if (vm.findMmio(gpa) !== undefined) return l1Mmio(e, v, depth, gpa);
  const entry = vm.map.get(pfn);
  const tracked =
    entry === 0 ? null : trackedL2Write(e.l0, vm.ept, vm.owner.vm, gpa, entry, access & entryPerms(entry));
  if (tracked !== null) return tracked ? nested(e, v, depth) : handled(e, "tracked_write");
  if (entry !== 0 && (access & ~entryPerms(entry)) === 0 && composeLeaf(vm.ept, vm.owner.vm, pfn, entry)) {
    e.l0.chargeHandler("npv.ept02_compose", "npv_ept02");
    e.count("npv.ept02.composed");
    return handled(e, "ept02_compose");
  }
  const d = v.exitView;
  d.setUint32(0, gpa % 4294967296, true);
  d.setUint32(4, Math.floor(gpa / 4294967296), true);
  d.setUint32(8, access, true);
  return NPV_EXIT_MEMORY_FAULT;
}

function exception(e: NpvEngine, v: L2Vcpu): number {
  const h = e.l0.host;
  const info = h.vmread(V.VMCS_EXIT_INTR_INFO);
  const vector = info & 0xff;
  e.l0.chargeHandler("l0.exception", `npv_exception_${vector}`);
  v.pendingException = vector;
  v.pendingExceptionError = (info & C.INTR_INFO_DELIVER_CODE) !== 0 ? h.vmread(V.VMCS_EXIT_INTR_ERROR_CODE) : -1;
  return handled(e, "exception");
}

function interruptWindow(e: NpvEngine): number {
  e.l0.chargeHandler("l0.ext_interrupt", "npv_interrupt_window");
  return handled(e, "interrupt_window");
}

function preemptionTimer(e: NpvEngine, v: L2Vcpu): number {
  v.lapic.advance(e.l0.host.cycles());
  e.l0.chargeHandler("l0.ext_interrupt", "npv_preemption_timer");
  return handled(e, "preemption_timer");
}

function externalInterrupt(e: NpvEngine): number {
  e.l0.chargeHandler("l0.ext_interrupt", "npv_external_interrupt");
  return handled(e, "external_interrupt");
}

function undefinedOpcode(e: NpvEngine, v: L2Vcpu): number {
  v.pendingException = 6;
  v.pendingExceptionError = -1;
  return handled(e, "vmx_instruction");
}

const HANDLERS: Record<number, L2ExitHandler> = {
  [V.EXIT_EXCEPTION_NMI]: exception,
  [V.EXIT_EXTERNAL_INTERRUPT]: externalInterrupt,
  [V.EXIT_TRIPLE_FAULT]: (_e, v) => stopVcpu(v, NPV_EXIT_SHUTDOWN, 0),
  [V.EXIT_INTERRUPT_WINDOW]: interruptWindow,
  [V.EXIT_CPUID]: cpuid,
  [V.EXIT_HLT]: hlt,
  [V.EXIT_VMCALL]: () => NPV_EXIT_HYPERCALL,
  [V.EXIT_IO_INSTRUCTION]: io,
  [V.EXIT_RDMSR]: rdmsr,
  [V.EXIT_WRMSR]: wrmsr,
  [V.EXIT_CR_ACCESS]: crAccess,
  [V.EXIT_EPT_VIOLATION]: eptViolation,
  [V.EXIT_EPT_MISCONFIG]: eptViolation,
  [V.EXIT_PREEMPTION_TIMER]: preemptionTimer,
  [V.EXIT_VMCLEAR]: undefinedOpcode,
  [V.EXIT_VMLAUNCH]: undefinedOpcode,
  [V.EXIT_VMPTRLD]: undefinedOpcode,
  [V.EXIT_VMPTRST]: undefinedOpcode,
  [V.EXIT_VMREAD]: undefinedOpcode,
  [V.EXIT_VMRESUME]: undefinedOpcode,
  [V.EXIT_VMWRITE]: undefinedOpcode,
  [V.EXIT_VMXOFF]: undefinedOpcode,
  [V.EXIT_VMXON]: undefinedOpcode,
  [V.EXIT_INVEPT]: undefinedOpcode,
  [V.EXIT_INVVPID]: undefinedOpcode,
  [V.EXIT_VMFUNC]: undefinedOpcode,
};

/** Dispatch one L2 exit (the exit record is in the current VMCS). */
export function handleL2Exit(e: NpvEngine, v: L2Vcpu, reason: number, depth: number): number {
  const h = e.l0.host;
  // Left long mode some way that did not exit (EFER.LMA or CR0.PG clear in the saved state): stop.
  if ((h.vmread(V.VMCS_GUEST_IA32_EFER) & EFER_LMA) === 0 || (h.vmread(V.VMCS_GUEST_CR0) & CR0_PG) === 0) {
    return stopVcpu(v, NPV_EXIT_MODE, 0x80);
  }
  const handler = HANDLERS[reason];
  if (handler === undefined) {
    e.count(`npv.l2_exits.unhandled.${exitReasonName(reason)}`);
    return stopVcpu(v, NPV_EXIT_SHUTDOWN, reason);
  }
  return handler(e, v, depth);
}
