/**
 * The MMU's counters, declared once (Blink-style): the name list is the schema, a Float64Array
 * holds the values, `MC.<name>` is a counter's index. Stats/JSON output enumerates MMU_COUNTERS.
 * Counters marked "derived" are computed when read (Mmu.stats()).
 */
export const MMU_COUNTERS = [
  // L1 instruction TLB. Accesses = instructions executed (derived); hits = accesses - misses.
  "itlb_accesses",
  "itlb_hits",
  "itlb_misses",
  /**
   * L1 data TLB. Accesses are counted by the CPU (one per read8..write64 call, in the fast
   * path); misses by the model on software-TLB misses; hits = accesses - misses (derived).
   */
  "dtlb_accesses",
  "dtlb_hits",
  "dtlb_misses",
  /** Software-TLB misses answered by the modelled DTLB (informational: one access may look up twice). */
  "dtlb_model_hits",
  // Second-level TLB (shared), by side.
  "stlb_hits",
  "stlb_misses",
  "stlb_i_hits",
  "stlb_i_misses",
  "stlb_d_hits",
  "stlb_d_misses",
  // Page walks.
  "walks",
  "walks_i",
  "walks_d",
  /**
   * EPT walks: each EPT translation a 2-D walk makes (a guest table whose address no guest PSC
   * entry supplied, and the final address), and each access of a guest running with paging off.
   */
  "ept_walks",
  /** A TLB hit whose cached rights forbid the access (or a write to a clean entry): re-walked. */
  "rewalks_rights",
  "rewalks_dirty",
  /** A walk that started from a PSC entry faulted: re-verified by a full walk from the root. */
  "rewalks_psc",
  "walk_faults",
  /** Memory references of all walks (guest dimension + nested EPT dimension; derived). By level: guest dimension only. */
  "walk_refs",
  "walk_refs_l1",
  "walk_refs_l2",
  "walk_refs_l3",
  "walk_refs_l4",
  "walk_refs_l5",
  /** References made by EPT (nested-dimension) walks (derived from the per-level counts). */
  "ept_refs",
  "ept_refs_l1",
  "ept_refs_l2",
  "ept_refs_l3",
  "ept_refs_l4",
  "ept_refs_l5",
  /** Accessed/Dirty bit writes (guest and EPT entries). */
  "ad_writes",
  // Paging-structure caches: hits by cached level, and walks that found nothing.
  "psc_hits_pde",
  "psc_hits_pdpte",
  "psc_hits_pml4e",
  "psc_hits_pml5e",
  "psc_misses",
  "ept_psc_hits_pde",
  "ept_psc_hits_pdpte",
  "ept_psc_hits_pml4e",
  "ept_psc_hits_pml5e",
  // Faults produced.
  "page_faults",
  "ept_violations",
  "ept_misconfigs",
  // Invalidations, by cause (events), and how many TLB entries they dropped.
  "inval_cr3",
  "inval_cr3_noflush",
  /**
   * CR3 found changed without writeCr3 (loaders, state restore that assign cpu.cr3 directly):
   * treated as a flushing load of the new CR3 (not counted in inval_cr3).
   */
  "cr3_implicit_loads",
  "inval_invlpg",
  "inval_invpcid_0",
  "inval_invpcid_1",
  "inval_invpcid_2",
  "inval_invpcid_3",
  "inval_cr0",
  "inval_cr4",
  "inval_page_fault",
  "inval_other",
  /** VM entries + exits seen (each flushes everything while vmTransitionsFlush: no VPID). */
  "vm_transitions",
  "inval_entries",
  /** L1 entries evicted by fills (each one drops the page from the CPU's software TLB). */
  "l1_evictions",
  "stlb_evictions",
  /** Software-TLB flushes the model asked of the CPU (whole / one page). */
  "soft_flushes",
  "soft_page_flushes",
] as const;

export type MmuCounterName = (typeof MMU_COUNTERS)[number];

/** Counter indices by name. */
export const MC: Readonly<Record<MmuCounterName, number>> = Object.freeze(
  Object.fromEntries(MMU_COUNTERS.map((n, i) => [n, i])) as Record<MmuCounterName, number>,
);
