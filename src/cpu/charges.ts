/**
 * What the CPU itself charges to the simulated clock, beyond one `insn.base` per instruction:
 * each entry names the cost primitive (src/cost/primitives.ts) and the ledger attribution
 * (category, reason). The level is the one running: `levelRoot` or, in VMX non-root
 * operation, `levelNonRoot` (set by the hypervisor).
 */
import type { PrimitiveName } from "../cost/primitives.js";

export const CHARGE_CPUID = 0;
export const CHARGE_MSR = 1;
export const CHARGE_IO = 2;
export const CHARGE_SYSCALL = 3;
export const CHARGE_CR_WRITE = 4;
export const CHARGE_INVLPG = 5;
export const CHARGE_EVENT = 6;
export const CHARGE_IRET = 7;
export const CHARGE_STLB_HIT = 8;
export const CHARGE_WALK_REF = 9;
export const CHARGE_REP_STARTUP = 10;
export const CHARGE_REP_FAST_LINE = 11;
export const CHARGE_REP_ITERATION = 12;
/** VM exit and entry of a guest that guest software launched (VMX in root operation of guest code). */
export const CHARGE_VMEXIT = 13;
export const CHARGE_VMENTRY = 14;
export const CHARGE_VMINJECT = 15;
/** A page-walk reference found in L1D; +1 L2, +2 LLC, +3 DRAM (data-cache.ts FOUND_* order). */
export const CHARGE_WALK_L1D = 16;
/** A page walk: the STLB lookup that missed, the page-miss handler's fixed latency, per EPT translation. */
export const CHARGE_STLB_MISS = 20;
export const CHARGE_PMH_WALK = 21;
export const CHARGE_PMH_NESTED_STEP = 22;

export const CPU_CHARGES: readonly (readonly [PrimitiveName, string, string])[] = [
  ["insn.cpuid", "guest", "cpuid"],
  ["insn.msr", "guest", "msr"],
  ["insn.io", "guest", "port_io"],
  ["insn.syscall", "guest", "syscall"],
  ["insn.cr_write", "guest", "cr_write"],
  ["insn.invlpg", "guest", "tlb_invalidation"],
  ["event.delivery", "guest", "exception_or_interrupt"],
  ["event.iret", "guest", "iret"],
  ["mmu.stlb_hit", "mmu", "stlb_hit"],
  ["mmu.walk_ref", "mmu", "walk_ref"],
  ["insn.rep_startup", "guest", "rep_string"],
  ["insn.rep_fast_line", "guest", "rep_string"],
  ["insn.rep_iteration", "guest", "rep_string"],
  ["vmx.exit", "transition", "vmexit"],
  ["vmx.entry", "transition", "vmentry"],
  ["vmx.inject", "transition", "vmentry_inject"],
  ["mmu.walk_l1d", "mmu", "walk_l1d"],
  ["mmu.walk_l2", "mmu", "walk_l2"],
  ["mmu.walk_llc", "mmu", "walk_llc"],
  ["mmu.walk_dram", "mmu", "walk_dram"],
  ["mmu.stlb_miss", "mmu", "stlb_miss"],
  ["mmu.pmh_walk", "mmu", "pmh_walk"],
  ["mmu.pmh_nested_step", "mmu", "pmh_nested_step"],
];
