/**
 * Nested VMX's counters, declared once (src/stats): the engine's events, the VMX instructions it
 * emulated (by exit reason), L1's trapped VMREADs and VMWRITEs (by VMCS field encoding) and the
 * L2 exits it reflected to L1 (by level and basic exit reason). Counting is an array bump.
 */
import { CounterSet, declareCounters, KeyedCounts } from "../../../stats/counters.js";
import { exitReasonName, VMX_EXIT_REASONS } from "../../../stats/exit-reasons.js";
import { ExitTable } from "../../../stats/exit-table.js";
import { type EventCount, eventRows } from "../../../stats/run-stats.js";

/** The engine's events (flat: `nvmx.<name>`), every one reported, zero or not. */
export const NVMX_EVENTS = declareCounters("nvmx", [
  /** Exits L0 took from L2 (VMCS02): each an L2↔L0 world switch. */
  "exits.l2_to_l0",
  /** Exits L0 took from L1 (VMCS01): each an L1↔L0 world switch. */
  "exits.l1_to_l0",
  "exits.reflected_to_l1",
  /** L0 moving between VMCS02 and VMCS01: a nested entry or a reflected exit. */
  "vmcs_switches",
  "nested_entries",
  "ept02.built",
  /** Of those, 2 MiB leaves (EPT12 and EPT01 both large). */
  "ept02.large_leaves",
  "ept02.leaves_dropped",
  /** EPT02 table pages given back to L0's pool (whole drops, and tables a dropped leaf emptied). */
  "ept02.tables_freed",
  "ept12.tracked_writes",
  /** EPT12 entries whose accessed/dirty flags L0's walks set (EPTP12 bit 6). */
  "ept12.ad_writes",
  /** EPT12 entries L0's software walks read, by level (PML4E, PDPTE, PDE, PTE): a 2 MiB leaf ends the walk at the PDE. */
  "ept12.walk_reads.pml4",
  "ept12.walk_reads.pdpt",
  "ept12.walk_reads.pd",
  "ept12.walk_reads.pt",
  "shadow.syncs",
  /** L2 VMREAD/VMWRITEs L0 emulated on the shadow VMCS12 (VMCS shadowing L0 offers L1; not reflected). */
  "l2_vmcs_accesses",
]);
export const XE = NVMX_EVENTS.id;

/** nvmx-evmcs only (evmcs.ts): eVMCS pages mapped, fields copied in (eVMCS → VMCS12) or skipped as clean, copied out, MSR-bitmap merges skipped. */
export const NVMX_EVMCS_EVENTS = declareCounters("nvmx.evmcs", [
  "maps",
  "fields_copied_in",
  "fields_skipped_clean",
  "fields_copied_out",
  "msr_bitmap_merges_skipped",
]);
export const XV = NVMX_EVMCS_EVENTS.id;

/**
 * nvmx-evmcs only (hv-hypercall.ts): Hyper-V hypercalls L1 made, L2 flush calls L0 took without
 * an exit to L1 (each one L1 exit saved), TLB contexts those flushes dropped, calls answered with
 * an error status, synthetic trap-after-flush exits to L1.
 */
export const NVMX_HV_EVENTS = declareCounters("nvmx.hv", [
  "hypercalls.l1",
  "hypercalls.l2_direct",
  "tlb_flushes",
  "failed",
  "trap_after_flush",
]);
export const XH = NVMX_HV_EVENTS.id;

/**
 * VMCS field encodings (SDM vol. 3C, 24.11.2: access type bit 0, index 9:1, type 11:10, width
 * 14:13) fit in 15 bits: one slot each; anything above (L1 asked for a field that cannot exist)
 * lands in the "other" slot.
 */
const FIELD_SLOTS = 0x8000;
const fieldName = (f: number) => `0x${f.toString(16).padStart(4, "0")}`;

/** What L0 counts per L1 vCPU (in its NestedVmxState). */
export class NvmxCounts {
  /** VMX instructions emulated, by exit reason. */
  readonly emulated = new KeyedCounts(0, VMX_EXIT_REASONS.size, exitReasonName);
  /** Trapped VMREADs and VMWRITEs, by field encoding. */
  readonly vmreadFields = new KeyedCounts(0, FIELD_SLOTS, fieldName);
  readonly vmwriteFields = new KeyedCounts(0, FIELD_SLOTS, fieldName);
  /** L2 VMREAD/VMWRITEs L0 emulated on the shadow VMCS12, in all and by field encoding. */
  l2VmcsAccesses = 0;
  readonly l2VmreadFields = new KeyedCounts(0, FIELD_SLOTS, fieldName);
  readonly l2VmwriteFields = new KeyedCounts(0, FIELD_SLOTS, fieldName);
  /** L2 exits reflected to L1, by the L2's level and basic exit reason. */
  readonly reflected = new ExitTable(VMX_EXIT_REASONS);
  /** Exits of L2 L0's reflect step saw, and nested entries (VMLAUNCH/VMRESUME that entered L2). */
  l2Exits = 0;
  entries = 0;
}

/** The engine's sums over its L1 vCPUs, as report rows. */
export function nvmxEvents(
  all: readonly NvmxCounts[],
  extra: {
    l0Exits: number;
    shadowSyncs: number;
    ept02Built: number;
    largeLeaves: number;
    leavesDropped: number;
    tablesFreed: number;
    trackedWrites: number;
    adWrites: number;
    /** EPT12 entries read by L0's walks, by level 1 (PTE) … 4 (PML4E) at index level − 1. */
    ept12WalkReads: readonly number[];
    /** nvmx-evmcs: each L1 vCPU's eVMCS counts (null on the other variants: not reported). */
    evmcs: readonly CounterSet[] | null;
    /** nvmx-evmcs: each L1 vCPU's Hyper-V hypercall counts (null on the other variants). */
    hv: readonly CounterSet[] | null;
  },
): EventCount[] {
  const ev = new CounterSet(NVMX_EVENTS);
  const emulated = new KeyedCounts(0, VMX_EXIT_REASONS.size, exitReasonName);
  const reads = new KeyedCounts(0, FIELD_SLOTS, fieldName);
  const writes = new KeyedCounts(0, FIELD_SLOTS, fieldName);
  const l2Reads = new KeyedCounts(0, FIELD_SLOTS, fieldName);
  const l2Writes = new KeyedCounts(0, FIELD_SLOTS, fieldName);
  let reflected = 0;
  for (const c of all) {
    ev.bump(XE["exits.l2_to_l0"], c.l2Exits);
    ev.bump(XE.nested_entries, c.entries);
    ev.bump(XE.l2_vmcs_accesses, c.l2VmcsAccesses);
    l2Reads.addFrom(c.l2VmreadFields);
    l2Writes.addFrom(c.l2VmwriteFields);
    for (const r of c.reflected.list()) reflected += r.count;
    emulated.addFrom(c.emulated);
    reads.addFrom(c.vmreadFields);
    writes.addFrom(c.vmwriteFields);
  }
  ev.bump(XE["exits.l1_to_l0"], extra.l0Exits - ev.get("exits.l2_to_l0"));
  ev.bump(XE["exits.reflected_to_l1"], reflected);
  ev.bump(XE.vmcs_switches, ev.get("nested_entries") + reflected);
  ev.bump(XE["ept02.built"], extra.ept02Built);
  ev.bump(XE["ept02.large_leaves"], extra.largeLeaves);
  ev.bump(XE["ept02.leaves_dropped"], extra.leavesDropped);
  ev.bump(XE["ept02.tables_freed"], extra.tablesFreed);
  ev.bump(XE["ept12.tracked_writes"], extra.trackedWrites);
  ev.bump(XE["ept12.ad_writes"], extra.adWrites);
  ev.bump(XE["ept12.walk_reads.pml4"], extra.ept12WalkReads[3]);
  ev.bump(XE["ept12.walk_reads.pdpt"], extra.ept12WalkReads[2]);
  ev.bump(XE["ept12.walk_reads.pd"], extra.ept12WalkReads[1]);
  ev.bump(XE["ept12.walk_reads.pt"], extra.ept12WalkReads[0]);
  ev.bump(XE["shadow.syncs"], extra.shadowSyncs);
  const evmcs: EventCount[] = [];
  if (extra.evmcs !== null) {
    const e: CounterSet = new CounterSet(NVMX_EVMCS_EVENTS);
    for (const c of extra.evmcs) e.addFrom(c);
    evmcs.push(...eventRows(NVMX_EVMCS_EVENTS.family, e.all()));
  }
  if (extra.hv !== null) {
    const e: CounterSet = new CounterSet(NVMX_HV_EVENTS);
    for (const c of extra.hv) e.addFrom(c);
    evmcs.push(...eventRows(NVMX_HV_EVENTS.family, e.all()));
  }
  return [
    ...eventRows(NVMX_EVENTS.family, ev.all()),
    ...evmcs,
    // Every exit L0 takes is one hardware world switch out of a guest and one back.
    { family: "world_switches", name: "L2-L0", key: 2, count: ev.get("exits.l2_to_l0") },
    { family: "world_switches", name: "L1-L0", key: 1, count: ev.get("exits.l1_to_l0") },
    ...eventRows("nvmx.emulated", emulated.nonZero()),
    ...eventRows("nvmx.trapped.vmread", reads.nonZero()),
    ...eventRows("nvmx.trapped.vmwrite", writes.nonZero()),
    ...eventRows("nvmx.l2_emulated.vmread", l2Reads.nonZero()),
    ...eventRows("nvmx.l2_emulated.vmwrite", l2Writes.nonZero()),
  ];
}

/** The reflected exits of every L1 vCPU in one table. */
export function reflectedExits(all: readonly NvmxCounts[]): ExitTable {
  const t = new ExitTable(VMX_EXIT_REASONS);
  for (const c of all) for (const r of c.reflected.list()) t.bump(r.level, r.code, r.count);
  return t;
}
