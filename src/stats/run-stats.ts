/**
 * What a run's statistics are, structurally: VM exits by (handling level, taking level, reason)
 * and engine events by (family, name[, key]). Stacks fill these from the registry's tables
 * (exit-table.ts, counters.ts); readers (reports, the CLI, the browser page, tests) read the
 * fields. The flat `counters` map of a run's JSON is produced from them once, by `flatCounters`.
 */

import type { ReasonSpaceId } from "./exit-reasons.js";
import type { ExitTable } from "./exit-table.js";

/**
 * VM exits of one reason. The convention (docs/results.md): `handledBy` is the level whose code
 * handled the exit — 0 for every exit L0 took (including those it then reflected or forwarded),
 * 1 for the exits an L1 handled (reflected or forwarded by L0, or taken by bare-l1's root-mode
 * L1). `takenAt` is the level of the guest code that took it (the VMCS's level).
 */
export interface ExitCount {
  handledBy: number;
  takenAt: number;
  /** The numbering of `code`: Intel's basic exit reasons, or the npv ABI's exit codes. */
  space: ReasonSpaceId;
  code: number;
  reason: string;
  count: number;
}

/** One counted engine event: its declared family ("npv", "nvmx.trapped.vmread", …) and name. */
export interface EventCount {
  family: string;
  name: string;
  /** For families counted by number: the hypercall number, VMCS field encoding or guest level. */
  key?: number;
  count: number;
}

/** Rows of `table` as exits handled at `handledBy`, one per (taking level, reason), first-seen order. */
export function exitsFrom(table: ExitTable, handledBy: number, takenAt?: number): ExitCount[] {
  return table.list(takenAt).map((r) => ({
    handledBy,
    takenAt: r.level,
    space: table.space.id,
    code: r.code,
    reason: r.reason,
    count: r.count,
  }));
}

/**
 * The one order of a stack's exit list: by handling level; then the reason's total at that level,
 * most first; ties as `tie` says for that level ("first-seen": the order the rows came in, the
 * order the run first met them; "name"); the rows of one reason together, by taking level.
 */
export function sortExits(rows: ExitCount[], tie: (handledBy: number) => "first-seen" | "name"): ExitCount[] {
  const total = new Map<string, number>();
  const key = (e: ExitCount) => `${e.handledBy}\u0000${e.space}\u0000${e.reason}`;
  for (const e of rows) total.set(key(e), (total.get(key(e)) ?? 0) + e.count);
  const seen = new Map<string, number>();
  rows.forEach((e, i) => {
    if (!seen.has(key(e))) seen.set(key(e), i);
  });
  return rows
    .map((e, i) => ({ e, i }))
    .sort((a, b) => {
      const x = a.e;
      const y = b.e;
      if (x.handledBy !== y.handledBy) return x.handledBy - y.handledBy;
      const d = (total.get(key(y)) ?? 0) - (total.get(key(x)) ?? 0);
      if (d !== 0) return d;
      if (tie(x.handledBy) === "name" && x.reason !== y.reason) return x.reason < y.reason ? -1 : 1;
      const s = (seen.get(key(x)) ?? 0) - (seen.get(key(y)) ?? 0);
      if (s !== 0) return s;
      return x.takenAt - y.takenAt || a.i - b.i;
    })
    .map(({ e }) => e);
}

/** Exits handled at `level`, summed over taking level, by reason (list order). */
export function exitsHandledBy(exits: readonly ExitCount[], level: number): Array<{ reason: string; count: number }> {
  const m = new Map<string, number>();
  for (const e of exits) if (e.handledBy === level) m.set(e.reason, (m.get(e.reason) ?? 0) + e.count);
  return [...m].map(([reason, count]) => ({ reason, count }));
}

/** The total of the exits that match. */
export function exitTotal(exits: readonly ExitCount[], match: (e: ExitCount) => boolean): number {
  let n = 0;
  for (const e of exits) if (match(e)) n += e.count;
  return n;
}

/** Exits of one reason handled at `handledBy` (taken at `takenAt`, or at any level). */
export function exitCount(exits: readonly ExitCount[], handledBy: number, reason: string, takenAt?: number): number {
  return exitTotal(
    exits,
    (e) => e.handledBy === handledBy && e.reason === reason && (takenAt === undefined || e.takenAt === takenAt),
  );
}

/** The events of one family, in list order. */
export function eventsOf(events: readonly EventCount[], family: string): EventCount[] {
  return events.filter((e) => e.family === family);
}

/** One event's count (0 when it never happened). */
export function eventCount(events: readonly EventCount[], family: string, name: string): number {
  let n = 0;
  for (const e of events) if (e.family === family && e.name === name) n += e.count;
  return n;
}

/** Events of a declared list or keyed family, as report rows. */
export function eventRows(
  family: string,
  rows: ReadonlyArray<{ name: string; count: number; key?: number }>,
): EventCount[] {
  return rows.map((r) =>
    r.key === undefined
      ? { family, name: r.name, count: r.count }
      : { family, name: r.name, key: r.key, count: r.count },
  );
}

/**
 * The flat counter map of a run's JSON (`counters`), for compatibility with readers of the
 * dotted names: `base` (CPU, MMU, per-level cycles), then `exits.L<handledBy>.<reason>`, then
 * `exits.taken.L<takenAt>.<reason>` for the exits of the lowest handling level (the hardware
 * exits, by the level that took them), the npv exits L0 returned to L1 also as
 * `npv.l2_exits.l1.<reason>`, then every event as `<family>.<name>`. Built here and nowhere else.
 */
export function flatCounters(
  base: Record<string, number>,
  exits: readonly ExitCount[],
  events: readonly EventCount[],
): Record<string, number> {
  const out: Record<string, number> = { ...base };
  const add = (k: string, n: number) => {
    out[k] = (out[k] ?? 0) + n;
  };
  for (const e of exits) add(`exits.L${e.handledBy}.${e.reason}`, e.count);
  const lowest = Math.min(...exits.map((e) => e.handledBy));
  for (const e of exits) if (e.handledBy === lowest) add(`exits.taken.L${e.takenAt}.${e.reason}`, e.count);
  for (const e of exits) if (e.space === "npv") add(`${NPV_FORWARDED_FAMILY}.${e.reason}`, e.count);
  flatEvents(out, events);
  return out;
}

/** The flat name family of the L2 exits L0 returned to an npv L1 (exits in the npv space). */
export const NPV_FORWARDED_FAMILY = "npv.l2_exits.l1";

/** Add events to a flat map as `<family>.<name>` (summing repeats). */
export function flatEvents(out: Record<string, number>, events: readonly EventCount[]): Record<string, number> {
  for (const e of events) out[`${e.family}.${e.name}`] = (out[`${e.family}.${e.name}`] ?? 0) + e.count;
  return out;
}
