/**
 * VM exits counted by (level, reason): one dense Float64Array per level, indexed by the reason's
 * number in its space (exit-reasons.ts). Counting an exit is an array bump. The table also keeps
 * the order in which reasons were first seen (the tie-break of the lists stacks report).
 */
import type { ReasonSpace } from "./exit-reasons.js";

export interface ExitRow {
  level: number;
  code: number;
  reason: string;
  count: number;
}

export class ExitTable {
  private readonly rows: Float64Array[] = [];
  /** Reason codes in the order they were first counted (at any level). */
  private readonly firstSeen: number[] = [];
  private readonly seen: Uint8Array;

  constructor(readonly space: ReasonSpace) {
    this.seen = new Uint8Array(space.size + 1);
  }

  bump(level: number, code: number, n = 1): void {
    let row = this.rows[level];
    if (row === undefined) {
      row = new Float64Array(this.space.size + 1);
      this.rows[level] = row;
    }
    const i = code >= 0 && code < this.space.size ? code : this.space.size;
    if (this.seen[i] === 0) {
      this.seen[i] = 1;
      this.firstSeen.push(i);
    }
    row[i] += n;
  }

  count(level: number, code: number): number {
    const row = this.rows[level];
    if (row === undefined) return 0;
    return row[code >= 0 && code < this.space.size ? code : this.space.size];
  }

  /** Levels that counted an exit, ascending. */
  levels(): number[] {
    const out: number[] = [];
    this.rows.forEach((r, level) => {
      if (r !== undefined) out.push(level);
    });
    return out;
  }

  /** The non-zero counts at `level` (every level when omitted), in first-seen order of reason. */
  list(level?: number): ExitRow[] {
    const out: ExitRow[] = [];
    const levels = level === undefined ? this.levels() : [level];
    for (const i of this.firstSeen) {
      for (const l of levels) {
        const n = this.rows[l]?.[i] ?? 0;
        if (n !== 0) out.push({ level: l, code: i, reason: this.name(i), count: n });
      }
    }
    return out;
  }

  /** Counts summed over levels, by reason, in first-seen order. */
  merged(): ExitRow[] {
    const out: ExitRow[] = [];
    for (const i of this.firstSeen) {
      let n = 0;
      for (const r of this.rows) if (r !== undefined) n += r[i];
      if (n !== 0) out.push({ level: -1, code: i, reason: this.name(i), count: n });
    }
    return out;
  }

  private name(i: number): string {
    return i === this.space.size ? "reason_other" : this.space.name(i);
  }
}
