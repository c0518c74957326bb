/**
 * What the browser page draws while a run goes on, recorded from the same events `run --trace`
 * records: VM exits by the level of the guest that exited and the reason, the ledger by level
 * and category as it is charged, and the most recent slices (a rolling timeline). Nothing is kept
 * beyond a fixed ring, and `onSnapshot` is called at most every `intervalMs` of wall time — wall
 * time paces the drawing only; the run itself sees simulated time alone.
 */
import { type TimelineEvent, TimelineRecorder, type Track } from "../trace/timeline.js";

/** A slice of the rolling timeline, in simulated cycles. */
export interface LiveSlice {
  pid: number;
  tid: number;
  cat: string;
  name: string;
  start: number;
  dur: number;
}

/** Exits so far of one reason, by the level of the guest that took them (all handled first by L0). */
export interface LiveExit {
  takenAt: number;
  reason: string;
  count: number;
}

export interface LiveSnapshot {
  /** The simulated clock at the snapshot. */
  cycles: number;
  /** Exits so far by the level of the guest that exited and reason, in the order first met. */
  exits: LiveExit[];
  /** Cycles charged so far by "<level>/<category>". */
  ledger: Record<string, number>;
  /** The most recent slices, oldest first. */
  slices: LiveSlice[];
  tracks: Track[];
}

/** Slices the rolling timeline keeps. */
export const LIVE_SLICES = 600;
/** Events between two looks at the wall clock. */
const CHECK_EVERY = 256;

export class LiveRecorder extends TimelineRecorder {
  /** Exits by the level of the guest that took them, then reason name (the core's events name them). */
  private readonly exitCounts: Array<Map<string, number>> = [];
  private readonly ledgerCycles = new Map<string, number>();
  /** Level of the guest of each vCPU run loop the core is in, innermost last. */
  private readonly levels: number[] = [];
  private readonly ring: LiveSlice[] = [];
  private ringNext = 0;
  private sinceCheck = 0;
  private lastPost = -Infinity;
  private clockNow: () => number = () => 0;

  constructor(
    private readonly onSnapshot: (s: LiveSnapshot) => void,
    private readonly intervalMs = 100,
  ) {
    super(1);
  }

  override bind(sources: Parameters<TimelineRecorder["bind"]>[0]): void {
    super.bind(sources);
    this.clockNow = sources.clock;
  }

  override charged(level: number, category: string, cycles: number): void {
    const k = `${level}/${category}`;
    this.ledgerCycles.set(k, (this.ledgerCycles.get(k) ?? 0) + cycles);
    super.charged(level, category, cycles);
  }

  override runBegin(vcpu: object, level: number): void {
    this.levels.push(level);
    super.runBegin(vcpu, level);
  }

  override runEnd(): void {
    this.levels.pop();
    super.runEnd();
  }

  override exited(reason: string): void {
    const level = this.levels.length > 0 ? this.levels[this.levels.length - 1] : 0;
    let byReason = this.exitCounts[level];
    if (byReason === undefined) {
      byReason = new Map();
      this.exitCounts[level] = byReason;
    }
    byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
    super.exited(reason);
  }

  override finish(): void {
    super.finish();
    this.post();
  }

  /** The state now (also what the last snapshot of a run holds). */
  snapshot(): LiveSnapshot {
    const n = this.ring.length;
    const slices =
      n < LIVE_SLICES ? this.ring.slice() : [...this.ring.slice(this.ringNext), ...this.ring.slice(0, this.ringNext)];
    return {
      cycles: this.clockNow(),
      exits: this.exitCounts.flatMap((m, takenAt) => [...m].map(([reason, count]) => ({ takenAt, reason, count }))),
      ledger: Object.fromEntries(this.ledgerCycles),
      slices,
      tracks: this.tracks.slice(),
    };
  }

  /** Slices go to the ring (and nothing to `events`): the page needs only the recent ones. */
  protected override push(e: TimelineEvent): void {
    if (e.ph === "X") {
      const s: LiveSlice = { pid: e.pid, tid: e.tid, cat: e.cat, name: e.name, start: e.start, dur: e.dur };
      if (this.ring.length < LIVE_SLICES) this.ring.push(s);
      else this.ring[this.ringNext] = s;
      this.ringNext = (this.ringNext + 1) % LIVE_SLICES;
    }
    if (++this.sinceCheck >= CHECK_EVERY) {
      this.sinceCheck = 0;
      if (performance.now() - this.lastPost >= this.intervalMs) this.post();
    }
  }

  private post(): void {
    this.lastPost = performance.now();
    this.onSnapshot(this.snapshot());
  }
}
