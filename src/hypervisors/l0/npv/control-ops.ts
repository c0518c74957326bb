/**
 * Policy and device hypercalls: SET_CPUID, SET_MSRS, INJECT, MMIO_REGION, BLK_SETUP and
 * BLK_TEARDOWN. Every table is read from L1 RAM only after its whole extent has been checked,
 * and parsed completely before it replaces the old policy (a bad entry changes nothing).
 */

import { VIRTIO_MMIO_SIZE } from "../../../devices/virtio-mmio.js";
import {
  NPV_BLK_AVAIL_GPA,
  NPV_BLK_BACKEND,
  NPV_BLK_DESC_GPA,
  NPV_BLK_DESC_SIZE,
  NPV_BLK_FEATURES,
  NPV_BLK_IRQ_EXTINT,
  NPV_BLK_IRQ_FIXED,
  NPV_BLK_IRQ_TYPE,
  NPV_BLK_IRQ_VECTOR,
  NPV_BLK_MMIO_GPA,
  NPV_BLK_QUEUE_SIZE,
  NPV_BLK_USED_GPA,
  NPV_CPUID_ENTRY_SIZE,
  NPV_CPUID_F_SUBLEAF,
  NPV_E_EXIST,
  NPV_E_FAULT,
  NPV_E_INVAL,
  NPV_E_NOENT,
  NPV_E_NOMEM,
  NPV_E_RANGE,
  NPV_INJECT_EXTERNAL,
  NPV_MAX_BLK_DEVICES,
  NPV_MAX_CPUID_ENTRIES,
  NPV_MAX_L2_GPA_BITS,
  NPV_MAX_MMIO_REGIONS,
  NPV_MAX_MSR_ENTRIES,
  NPV_MAX_PAGES_PER_CALL,
  NPV_MMIO_REMOVE,
  NPV_MSR_ENTRY_SIZE,
  NPV_OK,
} from "../../npv-abi.js";
import { MediatedBlk } from "./blk.js";
import type { NpvEngine } from "./engine.js";
import { isL1Ram, readL1, u64 } from "./l1-memory.js";
import type { Arg } from "./memory-ops.js";
import { type CpuidEntry, CpuidPolicy, MsrPolicy, msrEntryError, writeMsrBitmap } from "./policy.js";
import type { L1State, L2Vcpu, L2Vm } from "./state.js";

const L2_LIMIT = 2 ** NPV_MAX_L2_GPA_BITS;

/** A table argument: count in 1..max (E_INVAL), every byte in L1 RAM (E_FAULT). */
function tableStatus(l1: L1State, gpa: Arg, count: Arg, max: number, entrySize: number): number {
  if (count.hi !== 0 || count.lo < 1 || count.lo > max) return NPV_E_INVAL;
  if (!isL1Ram(l1.vm, gpa.n, count.lo * entrySize)) return NPV_E_FAULT;
  return NPV_OK;
}

export function doSetCpuid(e: NpvEngine, vm: L2Vm, gpa: Arg, count: Arg): number {
  const s = tableStatus(vm.owner, gpa, count, NPV_MAX_CPUID_ENTRIES, NPV_CPUID_ENTRY_SIZE);
  if (s !== NPV_OK) return s;
  const n = count.lo;
  const dv = readL1(vm.owner.vm, gpa.n, n * NPV_CPUID_ENTRY_SIZE);
  const entries: CpuidEntry[] = [];
  for (let k = 0; k < n; k++) {
    const o = k * NPV_CPUID_ENTRY_SIZE;
    const flags = dv.getUint32(o + 8, true);
    if ((flags & ~NPV_CPUID_F_SUBLEAF) !== 0 || dv.getUint32(o + 12, true) !== 0) return NPV_E_INVAL;
    entries.push({
      leaf: dv.getUint32(o, true),
      subleaf: dv.getUint32(o + 4, true),
      flags,
      regs: [
        dv.getInt32(o + 16, true),
        dv.getInt32(o + 20, true),
        dv.getInt32(o + 24, true),
        dv.getInt32(o + 28, true),
      ],
    });
  }
  e.l0.chargeHandlerN("npv.table_entry", "npv_set_cpuid", n);
  vm.cpuid = new CpuidPolicy(entries);
  return NPV_OK;
}

export function doSetMsrs(e: NpvEngine, vm: L2Vm, gpa: Arg, count: Arg): number {
  const s = tableStatus(vm.owner, gpa, count, NPV_MAX_MSR_ENTRIES, NPV_MSR_ENTRY_SIZE);
  if (s !== NPV_OK) return s;
  const n = count.lo;
  const dv = readL1(vm.owner.vm, gpa.n, n * NPV_MSR_ENTRY_SIZE);
  const policy = new MsrPolicy();
  for (let k = 0; k < n; k++) {
    const o = k * NPV_MSR_ENTRY_SIZE;
    const index = dv.getUint32(o, true);
    const mode = dv.getUint32(o + 4, true);
    if (msrEntryError(index, mode) !== null) return NPV_E_INVAL;
    policy.entries.set(index, { mode, lo: dv.getUint32(o + 8, true), hi: dv.getUint32(o + 12, true) });
  }
  e.l0.chargeHandlerN("npv.table_entry", "npv_set_msrs", n);
  vm.msrs = policy;
  writeMsrBitmap(e.l0.host.mem, vm.msrBitmap, policy);
  return NPV_OK;
}

export function doInject(v: L2Vcpu, vector: Arg, type: Arg): number {
  if (vector.hi !== 0 || vector.lo < 32 || vector.lo > 255) return NPV_E_INVAL;
  if (type.hi !== 0 || type.lo !== NPV_INJECT_EXTERNAL) return NPV_E_INVAL;
  if (v.injectQueue.length >= 256) return NPV_E_NOMEM;
  v.injectQueue.push(vector.lo);
  return NPV_OK;
}

export function doMmioRegion(vm: L2Vm, gpa: Arg, npages: Arg, flags: Arg): number {
  if (flags.hi !== 0 || (flags.lo & ~NPV_MMIO_REMOVE) !== 0) return NPV_E_INVAL;
  if (npages.hi !== 0 || npages.lo < 1 || npages.lo > NPV_MAX_PAGES_PER_CALL) return NPV_E_INVAL;
  if ((gpa.lo & 0xfff) !== 0 || gpa.n + npages.lo * 4096 > L2_LIMIT) return NPV_E_RANGE;
  const n = npages.lo;
  if ((flags.lo & NPV_MMIO_REMOVE) !== 0) {
    const i = vm.mmio.findIndex((r) => r.gpa === gpa.n && r.npages === n);
    if (i < 0) return NPV_E_NOENT;
    vm.mmio.splice(i, 1);
    return NPV_OK;
  }
  const end = gpa.n + n * 4096;
  for (const r of vm.mmio) if (gpa.n < r.gpa + r.npages * 4096 && r.gpa < end) return NPV_E_EXIST;
  if (vm.map.anyMapped(gpa.n / 4096, n)) return NPV_E_EXIST;
  if (vm.mmio.length >= NPV_MAX_MMIO_REGIONS) return NPV_E_NOMEM;
  vm.mmio.push({ gpa: gpa.n, npages: n });
  return NPV_OK;
}

export function doBlkSetup(e: NpvEngine, st: L1State, vm: L2Vm, gpa: Arg): number {
  if (!isL1Ram(st.vm, gpa.n, NPV_BLK_DESC_SIZE)) return NPV_E_FAULT;
  const dv = readL1(st.vm, gpa.n, NPV_BLK_DESC_SIZE);
  const window = u64(dv, NPV_BLK_MMIO_GPA);
  const queueSize = dv.getUint32(NPV_BLK_QUEUE_SIZE, true);
  const backendId = dv.getUint32(NPV_BLK_BACKEND, true);
  const desc = u64(dv, NPV_BLK_DESC_GPA);
  const avail = u64(dv, NPV_BLK_AVAIL_GPA);
  const used = u64(dv, NPV_BLK_USED_GPA);
  const vector = dv.getUint32(NPV_BLK_IRQ_VECTOR, true);
  const irqType = dv.getUint32(NPV_BLK_IRQ_TYPE, true);
  if (queueSize === 0 || queueSize > 1024 || (queueSize & (queueSize - 1)) !== 0) return NPV_E_INVAL;
  if (vector !== 0 && (vector < 32 || vector > 255)) return NPV_E_INVAL;
  if (irqType !== NPV_BLK_IRQ_FIXED && irqType !== NPV_BLK_IRQ_EXTINT) return NPV_E_INVAL;
  if (window % 4 !== 0 || desc % 16 !== 0 || avail % 2 !== 0 || used % 4 !== 0) return NPV_E_INVAL;
  if (
    window + VIRTIO_MMIO_SIZE > L2_LIMIT ||
    desc + 16 * queueSize > L2_LIMIT ||
    avail + 6 + 2 * queueSize > L2_LIMIT ||
    used + 6 + 8 * queueSize > L2_LIMIT
  )
    return NPV_E_RANGE;
  const backend = st.backends.get(backendId);
  if (backend === undefined) return NPV_E_NOENT;
  for (const b of vm.blk.values()) if (Math.abs(b.setup.window - window) < VIRTIO_MMIO_SIZE) return NPV_E_EXIST;
  if (st.blkDevices >= NPV_MAX_BLK_DEVICES) return NPV_E_NOMEM;
  const blk = new MediatedBlk(
    {
      window,
      queueSize,
      backendId,
      desc,
      avail,
      used,
      vector,
      extInt: irqType === NPV_BLK_IRQ_EXTINT,
      featuresLo: dv.getUint32(NPV_BLK_FEATURES, true),
      featuresHi: dv.getUint32(NPV_BLK_FEATURES + 4, true),
    },
    backend,
    vm.map,
    st.vm,
    e.l0.host.mem,
  );
  vm.blk.set(window, blk);
  st.blkDevices++;
  return NPV_OK;
}

/** BLK_TEARDOWN: RBX = the next available-ring index L0 would have consumed (L1 continues from it). */
export function doBlkTeardown(e: NpvEngine, st: L1State, vm: L2Vm, window: Arg): number {
  const blk = vm.blk.get(window.n);
  if (blk === undefined) return NPV_E_NOENT;
  vm.blk.delete(window.n);
  st.blkDevices--;
  return e.withRbx(NPV_OK, blk.queue.lastAvailIdx);
}
