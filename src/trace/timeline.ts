/**
 * A timeline recorder: turns the run/exit core's events and the ledger's charges into slices on
 * one track per (level, vCPU), in simulated cycles. Simulated time is one clock, so at any moment
 * exactly one track's innermost open slice owns it: a guest's "run" (entry to exit), L0's "exit"
 * (exit to next entry) with its handler, hypercall, world-switch and engine slices inside, or a
 * piece of time the ledger charged to another level while L0 held the clock (a halted guest's
 * idle time, an instruction L0 emulates). Slices of a level that another level
 * interrupts are split around it, so each level's top-level slices add up to its ledger total.
 */
import type { SliceCategory, TraceRecorder } from "./recorder.js";

/** One recorded event, in cycles. `ph`: X complete slice, i instant, C counter. */
export interface TimelineEvent {
  ph: "X" | "i" | "C";
  name: string;
  cat: string;
  pid: number;
  tid: number;
  start: number;
  dur: number;
  args?: Record<string, number | string>;
}

/** A track: one thread of a level's process. */
export interface Track {
  pid: number;
  tid: number;
  name: string;
}

/** Counters sampled at each exit (cumulative values, named as the counter track shows them). */
export type CounterSample = Record<string, number>;

/** What a stack gives the recorder of the machine it built. */
export interface TimelineSources {
  /** The simulated clock, in cycles. */
  clock: () => number;
  /** Counter tracks: name → a sampler of cumulative values, read at exits and at the end. */
  counters?: Record<string, () => CounterSample>;
}

/** Events a trace keeps by default: a long run's file stays a few tens of MB. */
export const DEFAULT_TRACE_LIMIT = 200_000;

/** Process id of a level's tracks, and of the machine-wide counter tracks. */
export const levelPid = (level: number): number => level + 1;
export const COUNTER_PID = 100;

interface Open {
  cat: string;
  name: string;
  pid: number;
  tid: number;
  start: number;
  /** Pieces emitted so far (a slice another track interrupted is emitted in pieces). */
  pieces: number;
}

interface Frame {
  level: number;
  guestTid: number;
  l0Tid: number;
  inGuest: boolean;
  open: Open[];
}

const MAX_LEVEL = 8;

export class TimelineRecorder implements TraceRecorder {
  readonly events: TimelineEvent[] = [];
  readonly tracks: Track[] = [];
  /** Events not kept once the limit was reached, and the cycle of the first one. */
  dropped = 0;
  truncatedAt = -1;
  private readonly frames: Frame[] = [];
  /** Level that owns the clock now (-1: nothing runs under the recorder yet). */
  private active = -1;
  private readonly foreign = new Float64Array(MAX_LEVEL);
  private readonly foreignCat: string[] = new Array(MAX_LEVEL).fill("");
  private pending = false;
  /** Each level's vCPUs, in order of first appearance (tid = index + 1). */
  private readonly vcpus: Map<object, number>[] = [];
  private readonly l0Tids = new Map<object, number>();
  private readonly lastTid = new Int32Array(MAX_LEVEL);
  private readonly lastSample = new Map<string, CounterSample>();
  private finished = false;

  private src: TimelineSources = { clock: () => 0 };

  /** `limit`: at most this many events are kept (the rest are counted as dropped). */
  constructor(readonly limit = DEFAULT_TRACE_LIMIT) {
    if (!(limit >= 1)) throw new RangeError("a trace limit is at least 1 event");
  }

  /** The stack that runs the machine gives its clock and counters before the run. */
  bind(sources: TimelineSources): void {
    this.src = sources;
  }

  get truncated(): boolean {
    return this.dropped > 0;
  }

  // ---- TraceRecorder ----

  charged(level: number, category: string, cycles: number): void {
    if (level === this.active || cycles === 0 || level < 0 || level >= MAX_LEVEL) return;
    this.foreign[level] += cycles;
    const seen = this.foreignCat[level];
    // One category names the piece; several ("guest" instructions and "idle" time…) do not.
    if (seen === "") this.foreignCat[level] = category;
    else if (seen !== category) this.foreignCat[level] = "charged";
    this.pending = true;
  }

  runBegin(vcpu: object, level: number): void {
    const t = this.now();
    const top = this.top();
    if (top !== null) this.suspend(top, t);
    const guestTid = this.vcpuTid(vcpu, level);
    const l0Tid = this.l0Tid(vcpu, level, guestTid);
    const f: Frame = { level, guestTid, l0Tid, inGuest: false, open: [] };
    this.frames.push(f);
    f.open.push(this.opened("entry", "enter", levelPid(0), l0Tid, t));
    this.active = 0;
  }

  runEnd(): void {
    const t = this.now();
    const f = this.frames.pop();
    if (f === undefined) return;
    this.closeAll(f, t);
    const top = this.top();
    if (top !== null) this.resume(top, t);
    this.active = top === null ? -1 : top.inGuest ? top.level : 0;
  }

  entered(): void {
    const f = this.top();
    if (f === null || f.inGuest) return;
    const t = this.now();
    this.closeAll(f, t);
    f.open.push(this.opened("run", "run", levelPid(f.level), f.guestTid, t));
    f.inGuest = true;
    this.active = f.level;
  }

  exited(reason: string): void {
    const f = this.top();
    if (f === null) return;
    const t = this.now();
    this.closeAll(f, t);
    f.open.push(this.opened("exit", `exit: ${reason}`, levelPid(0), f.l0Tid, t));
    f.inGuest = false;
    this.active = 0;
    this.sample(t);
  }

  begin(category: SliceCategory, name: string): void {
    const f = this.top();
    if (f === null || f.inGuest) return; // nothing of L0's to nest in
    f.open.push(this.opened(category, name, levelPid(0), f.l0Tid, this.now()));
  }

  end(): void {
    const f = this.top();
    if (f === null || f.open.length === 0) return;
    const o = f.open[f.open.length - 1];
    // The slices `begin` opens only; a run, entry or exit is closed by the core's own events.
    if (o.cat === "run" || o.cat === "entry" || o.cat === "exit") return;
    const t = this.now(); // before the pop: time placed elsewhere pauses this slice too
    f.open.pop();
    this.emitPiece(o, t);
  }

  injected(kind: string, vector: number): void {
    const f = this.top();
    if (f === null) return;
    this.push({
      ph: "i",
      name: `${kind} ${vector}`,
      cat: "inject",
      pid: levelPid(f.level),
      tid: f.guestTid,
      start: this.now(),
      dur: 0,
      args: { vector },
    });
  }

  /** The run ended: close every open slice and take the last counter samples. */
  finish(): void {
    if (this.finished) return;
    const t = this.now();
    while (this.frames.length > 0) this.runEnd();
    this.sample(t, true);
    this.finished = true;
  }

  // ---- Internals ----

  /** The clock, after placing time charged to other levels since the last event. */
  private now(): number {
    const t = this.src.clock();
    if (this.pending) this.placeForeign(t);
    return t;
  }

  /**
   * Time the ledger charged to levels other than the one owning the clock since the last event
   * is placed just before `t`: the owner's open slices pause around it.
   */
  private placeForeign(t: number): void {
    this.pending = false;
    let total = 0;
    for (let l = 0; l < MAX_LEVEL; l++) total += this.foreign[l];
    let at = t - total;
    const top = this.top();
    if (top !== null) this.suspend(top, at);
    for (let l = 0; l < MAX_LEVEL; l++) {
      const c = this.foreign[l];
      if (c === 0) continue;
      this.foreign[l] = 0;
      const name = this.foreignCat[l];
      this.foreignCat[l] = "";
      this.push({
        ph: "X",
        name: name === "charged" ? `L${l} (several categories)` : `L${l} ${name}`,
        cat: "charged",
        pid: levelPid(l),
        tid: this.tidForLevel(l),
        start: at,
        dur: c,
      });
      at += c;
    }
    if (top !== null) this.resume(top, t);
  }

  /** The track of `level` that foreign time goes to: the running vCPU's, else the level's last. */
  private tidForLevel(level: number): number {
    const f = this.top();
    if (f !== null && f.level === level) return f.guestTid;
    if (f !== null && level === 0) return f.l0Tid;
    if (this.lastTid[level] === 0) this.lastTid[level] = this.track(levelPid(level), `L${level}`);
    return this.lastTid[level];
  }

  private top(): Frame | null {
    return this.frames.length === 0 ? null : this.frames[this.frames.length - 1];
  }

  private opened(cat: string, name: string, pid: number, tid: number, start: number): Open {
    return { cat, name, pid, tid, start, pieces: 0 };
  }

  private suspend(f: Frame, t: number): void {
    for (let i = f.open.length - 1; i >= 0; i--) this.emitPiece(f.open[i], t);
  }

  private resume(f: Frame, t: number): void {
    for (const o of f.open) o.start = t;
  }

  private closeAll(f: Frame, t: number): void {
    this.suspend(f, t);
    f.open.length = 0;
  }

  /**
   * Emit the open slice's piece up to `t`. An empty piece is kept only as the first piece of
   * L0's own work (a handler that charged nothing still shows); empty runs, entries and engine
   * steps (a reflect step that left the exit to L0's table) are not.
   */
  private emitPiece(o: Open, t: number): void {
    const dur = t - o.start;
    const first = o.pieces === 0;
    o.pieces++;
    if (dur === 0 && (!first || o.cat === "run" || o.cat === "entry" || o.cat === "engine")) return;
    this.push({ ph: "X", name: o.name, cat: o.cat, pid: o.pid, tid: o.tid, start: o.start, dur });
  }

  /** Keep an event (up to the limit); the browser page's live recorder streams them instead. */
  protected push(e: TimelineEvent): void {
    if (this.events.length >= this.limit) {
      if (this.dropped === 0) this.truncatedAt = e.start;
      this.dropped++;
      return;
    }
    this.events.push(e);
  }

  private sample(t: number, force = false): void {
    const counters = this.src.counters;
    if (counters === undefined) return;
    for (const [name, read] of Object.entries(counters)) {
      const s = read();
      const last = this.lastSample.get(name);
      if (!force && last !== undefined && Object.keys(s).every((k) => s[k] === last[k])) continue;
      this.lastSample.set(name, s);
      this.push({ ph: "C", name, cat: "counter", pid: COUNTER_PID, tid: 0, start: t, dur: 0, args: s });
    }
  }

  private track(pid: number, name: string): number {
    const tid = this.tracks.filter((k) => k.pid === pid).length + 1;
    this.tracks.push({ pid, tid, name });
    return tid;
  }

  private vcpuTid(vcpu: object, level: number): number {
    let m = this.vcpus[level];
    if (m === undefined) {
      m = new Map();
      this.vcpus[level] = m;
    }
    let tid = m.get(vcpu);
    if (tid === undefined) {
      tid = this.track(levelPid(level), `L${level} vCPU${m.size}`);
      m.set(vcpu, tid);
    }
    if (level < MAX_LEVEL) this.lastTid[level] = tid;
    return tid;
  }

  private l0Tid(vcpu: object, level: number, guestTid: number): number {
    let tid = this.l0Tids.get(vcpu);
    if (tid === undefined) {
      const name = this.tracks.find((k) => k.pid === levelPid(level) && k.tid === guestTid)?.name ?? `L${level}`;
      tid = this.track(levelPid(0), `L0 for ${name}`);
      this.l0Tids.set(vcpu, tid);
    }
    return tid;
  }
}
