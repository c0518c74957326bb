/**
 * The npv engine's reflect step (its nested_vmx_reflect_vmexit): every exit of an L2 vCPU comes
 * here first. It returns NOT_REFLECTED for what L0's own handler table does the same for every
 * guest (CPUID from the vCPU's policy, HLT, LAPIC MSRs, exceptions, interrupt windows, timers,
 * VMX instructions), HANDLED for what L0 handles itself in the npv way, or the NPV_EXIT_* reason
 * to forward to L1, with the exit data in `v.exitData`.
 *
 * Handled here in L0: MSRs with a VALUE policy entry, LAPIC MMIO, EPT02 misses on mapped pages,
 * mediated-device notifications. Forwarded: I/O, MMIO in L1-declared regions, faults on unmapped
 * or under-permitted L2 pages, FORWARD MSRs, L2's VMCALL, triple faults and leaving long mode.
 */

import { newGuestContext } from "../../../cpu/vmx/host.js";
import {
  VIRTIO_MMIO_INTERRUPT_ACK,
  VIRTIO_MMIO_INTERRUPT_STATUS,
  VIRTIO_MMIO_QUEUE_NOTIFY,
} from "../../../devices/virtio-mmio.js";
import { CR0_PE, CR0_PG, CR4_PAE, EFER_LMA } from "../../../x86/control.js";
import { GP } from "../../../x86/exceptions.js";
import { RAX, RCX, RDX, RSP } from "../../../x86/registers.js";
import * as V from "../../../x86/vmx.js";
import * as C from "../../../x86/vmx-controls.js";
import {
  NPV_EXIT_BLK_ERROR,
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
import { NOT_REFLECTED } from "../engine.js";
import { chargeMsr } from "../exits.js";
import { HANDLED } from "../vcpu.js";
import { L2_APIC_PFN, type NpvEngine } from "./engine.js";
import { composeLeaf, trackedL2Write } from "./ept02.js";
import { entryPerms } from "./l2-map.js";
import { bytesLoHi } from "./mmio-window.js";
import { EXTINT_QUEUED, type L2Vcpu } from "./state.js";
import { NE, NH } from "./stats.js";

const snapshotCtx = newGuestContext();

/** L0 handled the exit alone, as `how` (an id of NPV_L0_HANDLED). */
function handled(e: NpvEngine, how: number): number {
  e.counts.l0Handled.bump(how);
  return HANDLED;
}

/** Stop the vCPU (SHUTDOWN / MODE): it never runs again. */
export function stopVcpu(v: L2Vcpu, reason: number, detail: number): number {
  return v.stopWith(reason, detail);
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

/**
 * RDMSR/WRMSR of an MSR in L1's policy: FORWARD goes to L1, VALUE is answered (and kept) by L0;
 * an MSR outside the policy is the common table's (the LAPIC's MSRs, else #GP).
 */
function msr(e: NpvEngine, v: L2Vcpu, write: boolean): number {
  const h = e.l0.host;
  const index = h.gprLo[RCX] >>> 0;
  const p = v.vm.msrs.entries.get(index);
  if (p === undefined) return NOT_REFLECTED;
  chargeMsr(e.l0, v, index, write);
  const lo = h.gprLo[RAX] >>> 0;
  const hi = h.gprLo[RDX] >>> 0;
  if (p.mode === NPV_MSR_FORWARD) {
    v.exitView.setUint32(0, index, true);
    v.exitView.setUint8(4, write ? 1 : 0);
    if (write) {
      v.exitView.setUint32(8, lo, true);
      v.exitView.setUint32(12, hi, true);
    }
    return NPV_EXIT_MSR;
  }
  if (p.mode !== NPV_MSR_VALUE) {
    v.pendingException = GP;
    v.pendingExceptionError = 0;
    return handled(e, write ? NH.wrmsr : NH.rdmsr);
  }
  if (write) {
    p.lo = lo;
    p.hi = hi;
  } else {
    h.gprLo[RAX] = p.lo | 0;
    h.gprHi[RAX] = 0;
    h.gprLo[RDX] = p.hi | 0;
    h.gprHi[RDX] = 0;
  }
  e.l0.skipInstruction();
  return handled(e, write ? NH.wrmsr : NH.rdmsr);
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
  return handled(e, NH.cr_access);
}

/** Make the next VM entry execute exactly the instruction at RIP (no injection, window or timer exit). */
function prepEmulation(e: NpvEngine): void {
  const h = e.l0.host;
  h.vmwrite(V.VMCS_PROC_BASED_CONTROLS, h.vmread(V.VMCS_PROC_BASED_CONTROLS) & ~C.CPU_INTR_WINDOW_EXITING);
  h.vmwrite(V.VMCS_PIN_BASED_CONTROLS, h.vmread(V.VMCS_PIN_BASED_CONTROLS) & ~C.PIN_PREEMPTION_TIMER);
  h.vmwrite(V.VMCS_ENTRY_INTR_INFO, 0);
}

/** The emulated instruction exited on its own: handle that exit instead (bounded by L0's core). */
function nested(e: NpvEngine, v: L2Vcpu, depth: number): number {
  return e.l0.dispatchNested(v, depth);
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
  return handled(e, NH.lapic_mmio);
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
  e.counts.events.bump(NE["blk.requests"], res.requests);
  if (res.ioErrors > 0) e.counts.events.bump(NE["blk.io_errors"], res.ioErrors);
  if (res.interrupt && blk.setup.vector !== 0)
    v.injectQueue.push(blk.setup.extInt ? blk.setup.vector | EXTINT_QUEUED : blk.setup.vector);
  if (res.error !== null) {
    e.counts.events.bump(NE["blk.stopped"]);
    v.exitView.setUint32(0, window % 4294967296, true);
    v.exitView.setUint32(4, Math.floor(window / 4294967296), true);
    return NPV_EXIT_BLK_ERROR;
  }
  return handled(e, NH.blk_notify);
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
  return handled(e, NH.blk_isr);
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
  const ripHi = h.vmreadHigh(V.VMCS_GUEST_RIP);
  const rspLo = h.vmread(V.VMCS_GUEST_RSP);
  const rspHi = h.vmreadHigh(V.VMCS_GUEST_RSP);
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
    return handled(e, NH.mmio_none);
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
  if (tracked !== null) return tracked ? nested(e, v, depth) : handled(e, NH.tracked_write);
  if (entry !== 0 && (access & ~entryPerms(entry)) === 0 && composeLeaf(vm.ept, vm.owner.vm, pfn, entry)) {
    e.l0.chargeHandler("npv.ept02_compose", "npv_ept02");
    e.counts.events.bump(NE["ept02.composed"]);
    return handled(e, NH.ept02_compose);
  }
  const d = v.exitView;
  d.setUint32(0, gpa % 4294967296, true);
  d.setUint32(4, Math.floor(gpa / 4294967296), true);
  d.setUint32(8, access, true);
  return NPV_EXIT_MEMORY_FAULT;
}

/** The reflect step for one L2 exit (the exit record is in the current VMCS). */
export function reflectL2Exit(e: NpvEngine, v: L2Vcpu, reason: number, depth: number): number {
  const h = e.l0.host;
  // Left long mode some way that did not exit (EFER.LMA or CR0.PG clear in the saved state): stop.
  if ((h.vmread(V.VMCS_GUEST_IA32_EFER) & EFER_LMA) === 0 || (h.vmread(V.VMCS_GUEST_CR0) & CR0_PG) === 0) {
    return stopVcpu(v, NPV_EXIT_MODE, 0x80);
  }
  switch (reason) {
    case V.EXIT_TRIPLE_FAULT:
      return stopVcpu(v, NPV_EXIT_SHUTDOWN, 0);
    case V.EXIT_VMCALL:
      return NPV_EXIT_HYPERCALL;
    case V.EXIT_IO_INSTRUCTION:
      return io(e, v);
    case V.EXIT_RDMSR:
      return msr(e, v, false);
    case V.EXIT_WRMSR:
      return msr(e, v, true);
    case V.EXIT_CR_ACCESS:
      return crAccess(e, v);
    case V.EXIT_EPT_VIOLATION:
    case V.EXIT_EPT_MISCONFIG:
      return eptViolation(e, v, depth);
    default:
      return NOT_REFLECTED;
  }
}
