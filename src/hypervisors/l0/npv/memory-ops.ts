/**
 * MAP, UNMAP, PROTECT and MAP_BATCH (docs/npv-abi.md §4 "Memory"): every check before any
 * change, L0's own record of the L2 map updated, EPT02 kept consistent (composed eagerly for
 * eager VMs; leaves removed or rewritten on UNMAP/PROTECT) and the L2's TLB entries invalidated
 * before the call returns.
 */
import {
  NPV_BATCH_ENTRY_SIZE,
  NPV_BATCH_OP_MAP,
  NPV_BATCH_OP_PROTECT,
  NPV_BATCH_OP_UNMAP,
  NPV_BATCH_PERM_SHIFT,
  NPV_E_EXIST,
  NPV_E_FAULT,
  NPV_E_INVAL,
  NPV_E_NOMEM,
  NPV_E_RANGE,
  NPV_MAX_BATCH,
  NPV_MAX_L2_GPA_BITS,
  NPV_MAX_MAPPED_PAGES,
  NPV_MAX_PAGES_PER_CALL,
  NPV_OK,
  NPV_PERM_R,
  NPV_PERM_W,
} from "../../npv-abi.js";
import type { NpvEngine } from "./engine.js";
import { composeLeaf } from "./ept02.js";
import { isL1Ram, readL1 } from "./l1-memory.js";
import { entryPerms } from "./l2-map.js";
import type { L2Vm } from "./state.js";
import { NE } from "./stats.js";

const L2_LIMIT = 2 ** NPV_MAX_L2_GPA_BITS;

/**
 * A 64-bit argument as halves (exact) and as a number (exact below 2^53). Mutable: the engine
 * fills four per hypercall and MAP_BATCH two per entry, none allocated per call; handlers read
 * them and never keep them.
 */
export class Arg {
  lo = 0;
  hi = 0;
  n = 0;
  set(lo: number, hi: number): this {
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
    this.n = this.hi * 4294967296 + this.lo;
    return this;
  }
}

export function arg(lo: number, hi: number): Arg {
  return new Arg().set(lo, hi);
}

/** Permissions: a non-zero subset of RWX with W ⇒ R. */
export function permsValid(p: number): boolean {
  return p >= 1 && p <= 7 && ((p & NPV_PERM_W) === 0 || (p & NPV_PERM_R) !== 0);
}

/** Checks of an L2 range: page-aligned, below 2^46 (E_RANGE); npages already checked. */
function l2RangeStatus(l2: Arg, npages: number): number {
  if ((l2.lo & 0xfff) !== 0) return NPV_E_RANGE;
  if (l2.hi >= 2 ** (NPV_MAX_L2_GPA_BITS - 32) || l2.n + npages * 4096 > L2_LIMIT) return NPV_E_RANGE;
  return NPV_OK;
}

function npagesValid(n: number, hi = 0): boolean {
  return hi === 0 && n >= 1 && n <= NPV_MAX_PAGES_PER_CALL;
}

export function overlapsMmio(vm: L2Vm, gpa: number, npages: number): boolean {
  const end = gpa + npages * 4096;
  for (const r of vm.mmio) if (gpa < r.gpa + r.npages * 4096 && r.gpa < end) return true;
  return false;
}

/** MAP after the handle check. */
export function doMap(e: NpvEngine, vm: L2Vm, l2: Arg, l1: Arg, npages: number, perms: number, npagesHi = 0): number {
  if (!permsValid(perms)) return NPV_E_INVAL;
  if (!npagesValid(npages, npagesHi)) return NPV_E_INVAL;
  const r = l2RangeStatus(l2, npages);
  if (r !== NPV_OK) return r;
  if ((l1.lo & 0xfff) !== 0) return NPV_E_INVAL;
  const l1vm = vm.owner.vm;
  if (!isL1Ram(l1vm, l1.n, npages * 4096)) return NPV_E_FAULT;
  const l2pfn = l2.n / 4096;
  if (vm.map.anyMapped(l2pfn, npages) || overlapsMmio(vm, l2.n, npages)) return NPV_E_EXIST;
  if (vm.owner.mappedPages + npages > NPV_MAX_MAPPED_PAGES) return NPV_E_NOMEM;
  const l1pfn = l1.n / 4096;
  for (let k = 0; k < npages; k++) vm.map.set(l2pfn + k, (l1pfn + k) * 8 + perms);
  vm.owner.mappedPages += npages;
  e.l0.chargeHandlerN("npv.map_page", "npv_map", npages);
  if (vm.eager) {
    let composed = 0;
    try {
      for (let k = 0; k < npages; k++) {
        if (e.isLapicPage(l2pfn + k)) continue;
        composeLeaf(vm.ept, l1vm, l2pfn + k, (l1pfn + k) * 8 + perms);
        composed++;
      }
    } catch {
      // L0 ran out of host memory for EPT02 tables: the rest is composed lazily on first touch.
      e.counts.events.bump(NE["ept02.eager_fallbacks"]);
    }
    e.l0.chargeHandlerN("npv.ept02_compose", "npv_map", composed);
    e.counts.events.bump(NE["ept02.composed"], composed);
  }
  return NPV_OK;
}

/** UNMAP after the handle check. */
export function doUnmap(e: NpvEngine, vm: L2Vm, l2: Arg, npages: number, npagesHi = 0): number {
  if (!npagesValid(npages, npagesHi)) return NPV_E_INVAL;
  const r = l2RangeStatus(l2, npages);
  if (r !== NPV_OK) return r;
  let changed = 0;
  let leaves = 0;
  vm.map.forEachIn(l2.n / 4096, npages, (pfn) => {
    vm.map.clear(pfn);
    if (vm.ept.unmap(pfn * 4096)) leaves++;
    changed++;
  });
  vm.owner.mappedPages -= changed;
  e.l0.chargeHandlerN("npv.map_page", "npv_unmap", changed);
  if (changed > 0) e.invalidate(vm, "npv_unmap", leaves);
  return NPV_OK;
}

/** PROTECT after the handle check. */
export function doProtect(e: NpvEngine, vm: L2Vm, l2: Arg, npages: number, perms: number, npagesHi = 0): number {
  if (!permsValid(perms)) return NPV_E_INVAL;
  if (!npagesValid(npages, npagesHi)) return NPV_E_INVAL;
  const r = l2RangeStatus(l2, npages);
  if (r !== NPV_OK) return r;
  let changed = 0;
  let leaves = 0;
  const l1vm = vm.owner.vm;
  vm.map.forEachIn(l2.n / 4096, npages, (pfn, entry) => {
    if (entryPerms(entry) === perms) return;
    const next = entry - entryPerms(entry) + perms;
    vm.map.set(pfn, next);
    changed++;
    // Rewrite a present leaf with the new permissions (a reduction takes effect now; an
    // increase saves L2 a fault). Absent leaves are composed on the next miss.
    if (vm.ept.lookup(pfn * 4096) !== null) {
      composeLeaf(vm.ept, l1vm, pfn, next);
      leaves++;
    }
  });
  e.l0.chargeHandlerN("npv.map_page", "npv_protect", changed);
  if (changed > 0) e.invalidate(vm, "npv_protect", leaves);
  return NPV_OK;
}

/** The L2 and L1 addresses of the batch entry being applied. */
const entryL2 = new Arg();
const entryL1 = new Arg();

/** MAP_BATCH after the handle check: the status, with RBX = the entries done. */
export function doBatch(e: NpvEngine, vm: L2Vm, list: Arg, count: Arg): number {
  if (count.hi !== 0 || count.lo < 1 || count.lo > NPV_MAX_BATCH) return e.withRbx(NPV_E_INVAL, 0);
  const n = count.lo;
  const bytes = n * NPV_BATCH_ENTRY_SIZE;
  const l1vm = vm.owner.vm;
  if (!isL1Ram(l1vm, list.n, bytes)) return e.withRbx(NPV_E_FAULT, 0);
  // A batch never reads past its page.
  if ((list.lo & 0xfff) + bytes > 4096) return e.withRbx(NPV_E_INVAL, 0);
  const dv = readL1(l1vm, list.n, bytes);
  for (let k = 0; k < n; k++) {
    const o = k * NPV_BATCH_ENTRY_SIZE;
    e.l0.chargeHandler("npv.batch_entry", "npv_map_batch");
    const l2 = entryL2.set(dv.getUint32(o, true), dv.getUint32(o + 4, true));
    const l1 = entryL1.set(dv.getUint32(o + 8, true), dv.getUint32(o + 12, true));
    const npages = dv.getUint32(o + 16, true);
    const opFlags = dv.getUint32(o + 20, true);
    const op = opFlags & 0xf;
    const perms = (opFlags >>> NPV_BATCH_PERM_SHIFT) & 0xff;
    let status: number;
    if ((opFlags & ~(0xf | (0xff << NPV_BATCH_PERM_SHIFT))) !== 0) status = NPV_E_INVAL;
    else if (op === NPV_BATCH_OP_MAP) status = doMap(e, vm, l2, l1, npages, perms);
    else if (op === NPV_BATCH_OP_UNMAP) status = doUnmap(e, vm, l2, npages);
    else if (op === NPV_BATCH_OP_PROTECT) status = doProtect(e, vm, l2, npages, perms);
    else status = NPV_E_INVAL;
    if (status !== NPV_OK) return e.withRbx(status, k);
  }
  return e.withRbx(NPV_OK, n);
}
