/**
 * EPT02: the second-level tables the hardware walks for an L2 VM, built by L0 as
 * (L2 map) ∘ (L1's memslots). One hypervisor-MMU table (EPT format) per L2 VM in host memory; leaves are composed
 * lazily on an EPT02 violation (or eagerly at MAP for VMs created with the eager flag), and
 * removed or downgraded on UNMAP/PROTECT, followed by an invalidation of every TLB entry tagged
 * with the L2's VPID before the hypercall returns.
 *
 * Table pages come from a recycling allocator so that destroying an L2 VM gives its EPT02 pages
 * (and its MSR bitmap page) back: a long-running L1 that creates and destroys VMs does not
 * exhaust L0's host memory.
 */
import type { PhysicalMemory } from "../../../mmu/phys.js";
import { PERM_W } from "../../../mmu/walker.js";
import type { HypervisorMmu } from "../../mmu/hv-mmu.js";
import type { PageTableBuilder } from "../../mmu/page-table.js";
import type { RecyclingPages } from "../host-pages.js";
import type { L0Hypervisor } from "../l0.js";
import type { Vm } from "../vm.js";
import { entryL1Pfn, entryPerms, type L2Map } from "./l2-map.js";

/** EPT permissions for an L2 map entry's permissions (the same bit positions: R=1, W=2, X=4). */
export function eptPerms(perms: number): number {
  return perms & 7;
}

/**
 * Compose the EPT02 leaf of one mapped L2 page: L2 GPA → L1 GPA (the map) → host PA (L1's
 * memslots). Returns false (and maps nothing) when the L1 page is not RAM, which MAP's checks
 * exclude, so it only guards against an inconsistency.
 */
export function composeLeaf(ept: PageTableBuilder, l1vm: Vm, l2pfn: number, entry: number): boolean {
  const hpa = l1vm.memslots.translate(entryL1Pfn(entry) * 4096);
  if (hpa < 0 || !l1vm.memslots.contains(entryL1Pfn(entry) * 4096, 4096)) return false;
  l1vm.back(entryL1Pfn(entry) * 4096); // L1's frame may not be backed yet: L0 backs it now
  ept.map(l2pfn * 4096, hpa, eptPerms(entryPerms(entry)));
  return true;
}

/**
 * An EPT02 write miss on a mapped page whose L1 frame is write-tracked (hypervisor MMU page
 * tracking): compose the leaf (read-only while tracked) and emulate the write, which the
 * trackers see. Null when this is not a tracked write; else whether the emulated instruction
 * exited on its own (the caller handles that exit next).
 */
export function trackedL2Write(
  l0: L0Hypervisor,
  ept: PageTableBuilder,
  l1vm: Vm,
  l2gpa: number,
  entry: number,
  access: number,
): boolean | null {
  if ((access & PERM_W) === 0 || !l0.mmu.tracker.active) return null;
  const hpa = l1vm.memslots.translate(entryL1Pfn(entry) * 4096);
  if (hpa < 0 || !l0.mmu.tracker.isTracked(hpa)) return null;
  const l2pfn = Math.floor(l2gpa / 4096);
  if (ept.lookup(l2pfn * 4096) === null) composeLeaf(ept, l1vm, l2pfn, entry);
  l0.chargeHandler("l0.io_kernel", "npv_tracked_write");
  return l0.mmu.emulateTrackedWrite(l2gpa, hpa);
}

/** Build a fresh EPT02 for an L2 VM; its leaves enter L0's reverse map. */
export function newEpt02(mmu: HypervisorMmu, mem: PhysicalMemory, pages: RecyclingPages): PageTableBuilder {
  return mmu.newTable(mem, pages);
}

/** Check helper (tests, fuzzer): does every EPT02 leaf agree with the map and L1's RAM, and is it in the reverse map? */
export function checkEpt02(ept: PageTableBuilder, map: L2Map, l1vm: Vm, report: (msg: string) => void): number {
  let leaves = 0;
  ept.forEachLeaf((gpa, hpa, perms) => {
    leaves++;
    const entry = map.get(gpa / 4096);
    if (entry === 0) {
      report(`EPT02 leaf at L2 0x${gpa.toString(16)} that L1 has not mapped`);
      return;
    }
    const want = l1vm.memslots.translate(entryL1Pfn(entry) * 4096);
    if (want < 0 || hpa !== want)
      report(`EPT02 leaf at L2 0x${gpa.toString(16)} → host 0x${hpa.toString(16)}, map says 0x${want.toString(16)}`);
    if ((perms & ~entryPerms(entry)) !== 0)
      report(`EPT02 leaf at L2 0x${gpa.toString(16)} has perms ${perms} ⊄ ${entryPerms(entry)}`);
    if (ept.mmu !== null && !ept.mmu.rmap.mappingsOf(hpa).some((m) => m.table === ept && m.va === gpa))
      report(`EPT02 leaf at L2 0x${gpa.toString(16)} is missing from L0's reverse map`);
  });
  if (leaves !== ept.leaves) report(`EPT02 leaf count ${ept.leaves} but ${leaves} leaves present`);
  return leaves;
}
