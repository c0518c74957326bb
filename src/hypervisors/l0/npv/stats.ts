/**
 * npv's counters, declared once (src/stats): its events, how L0 handled the L2 exits it kept,
 * the L2 exits it returned to L1 (by npv exit code), L1's hypercalls (by ABI number) and the
 * statuses they failed with. Every count is an array bump by an id interned here.
 */
import { CounterSet, declareCounters, KeyedCounts } from "../../../stats/counters.js";
import { type ReasonSpace, VMX_EXIT_REASONS } from "../../../stats/exit-reasons.js";
import { ExitTable } from "../../../stats/exit-table.js";
import { type EventCount, eventRows, flatEvents, NPV_FORWARDED_FAMILY } from "../../../stats/run-stats.js";
import { NPV_EXIT_NAMES, NPV_HC_FIRST, NPV_HC_LAST, NPV_HC_NAMES, NPV_STATUS_NAMES } from "../../npv-abi.js";

/** The npv ABI's exit codes (docs/npv-abi.md: NPV_EXIT_*), the reasons of the exits L1 handles. */
export const NPV_EXIT_REASONS: ReasonSpace = {
  id: "npv",
  size: 16,
  name: (code) => NPV_EXIT_NAMES[code] ?? String(code),
};

/**
 * The ledger reason of L0's forwarding work for each npv exit code (`npv_forward_<name>`), made
 * once here so the forward path indexes a table instead of building a string per exit.
 */
const NPV_FORWARD_REASONS: readonly string[] = Array.from(
  { length: NPV_EXIT_REASONS.size },
  (_, code) => `npv_forward_${NPV_EXIT_REASONS.name(code)}`,
);

/** The ledger reason of forwarding npv exit `code` to L1 (a code outside the ABI: by number). */
export function npvForwardReason(code: number): string {
  return NPV_FORWARD_REASONS[code] ?? `npv_forward_${code}`;
}

/** npv's events (flat: `npv.<name>`). */
export const NPV_EVENTS = declareCounters("npv", [
  "l2_halts_forwarded",
  "l2_interrupts_injected",
  "l1_timer_preemptions",
  "l2_entry_failures",
  "blk.requests",
  "blk.io_errors",
  "blk.stopped",
  "ept02.composed",
  "ept02.eager_fallbacks",
  "invalidations",
  "internal_errors",
]);
export const NE = NPV_EVENTS.id;

/**
 * L2 exits L0 handled alone in npv's reflect step, by how (flat: `npv.l2_exits.l0.<name>`); the
 * exits it left to L0's table are counted by basic exit reason beside them (same family).
 */
export const NPV_L0_HANDLED = declareCounters("npv.l2_exits.l0", [
  "rdmsr",
  "wrmsr",
  "cr_access",
  "lapic_mmio",
  "blk_notify",
  "blk_isr",
  "mmio_none",
  "tracked_write",
  "ept02_compose",
]);
export const NH = NPV_L0_HANDLED.id;

/** Hypercalls refused before dispatch (flat: `npv.hypercalls.cpl_ud`). */
const NPV_HC_REFUSED = declareCounters("npv.hypercalls", ["cpl_ud"]);

export class NpvStats {
  readonly events = new CounterSet(NPV_EVENTS);
  readonly l0Handled = new CounterSet(NPV_L0_HANDLED);
  /** L2 exits L0's handler table handled for the engine, by taking level and basic exit reason. */
  readonly l0Table = new ExitTable(VMX_EXIT_REASONS);
  /** L2 exits L0 returned to L1 from RUN, by the L2's level and npv exit code. */
  readonly forwarded = new ExitTable(NPV_EXIT_REASONS);
  /** L1's hypercalls by ABI number (numbers outside the ABI: "unknown"). */
  readonly hypercalls = new KeyedCounts(
    NPV_HC_FIRST,
    NPV_HC_LAST - NPV_HC_FIRST + 1,
    (nr) => NPV_HC_NAMES[nr] ?? `0x${nr.toString(16)}`,
    "unknown",
  );
  readonly refused = new CounterSet(NPV_HC_REFUSED);
  /** Failed hypercalls by status (NPV_E_*: -9..-1). */
  readonly errors = new KeyedCounts(-9, 9, (st) => NPV_STATUS_NAMES[st] ?? String(st));

  /** Every event but the forwarded exits (a stack reports those as exits handled by L1). */
  list(): EventCount[] {
    const l0 = new Map<string, number>();
    for (const { name, count } of this.l0Handled.nonZero()) l0.set(name, count);
    for (const r of this.l0Table.merged()) l0.set(r.reason, (l0.get(r.reason) ?? 0) + r.count);
    return [
      ...eventRows(NPV_EVENTS.family, this.events.nonZero()),
      ...eventRows(
        NPV_L0_HANDLED.family,
        [...l0].map(([name, count]) => ({ name, count })),
      ),
      ...eventRows(NPV_HC_REFUSED.family, [...this.hypercalls.nonZero(), ...this.refused.nonZero()]),
      ...eventRows("npv.errors", this.errors.nonZero()),
    ];
  }

  /** Flat names (the engine's `stats()`): the events, and the forwarded exits as npv.l2_exits.l1.*. */
  flat(extra: EventCount[]): Record<string, number> {
    const forwarded = eventRows(
      NPV_FORWARDED_FAMILY,
      this.forwarded.merged().map((r) => ({ name: r.reason, count: r.count })),
    );
    return flatEvents({}, [...this.list(), ...forwarded, ...extra]);
  }
}
