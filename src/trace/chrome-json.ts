/**
 * The Chrome Trace Event format (the JSON that chrome://tracing and Perfetto's UI open):
 * {"traceEvents": [...]} with "M" metadata naming each level's process and each vCPU's thread,
 * "X" complete slices, "i" instants and "C" counters. Timestamps are microseconds of simulated
 * time (cycles / the profile's GHz / 1000), never wall time. Times are rounded to 0.1 ns on the
 * slice's start and end (so rounding keeps nesting), and events are sorted by start, longer first.
 */
import { COUNTER_PID, type TimelineRecorder } from "./timeline.js";

export interface ChromeTraceInfo {
  /** The profile's clock, in GHz (cycles per ns). */
  ghz: number;
  /** Free-form facts kept in otherData (stack, workload, profile, command). */
  about?: Record<string, string | number>;
}

const LEVEL_NAMES = ["L0 (host hypervisor)", "L1", "L2"];

/** Serialize the recorder's timeline; the caller writes the string where it wants. */
export function chromeTraceJson(rec: TimelineRecorder, info: ChromeTraceInfo): string {
  const perUs = info.ghz * 1000;
  const us = (cycles: number): number => Math.round((cycles / perUs) * 1e4) / 1e4;
  const lines: string[] = [];
  const pids = new Set(rec.tracks.map((t) => t.pid));
  for (const pid of [...pids].sort((a, b) => a - b)) {
    const level = pid - 1;
    const name = LEVEL_NAMES[level] ?? `L${level}`;
    lines.push(JSON.stringify({ ph: "M", name: "process_name", pid, tid: 0, args: { name } }));
    lines.push(JSON.stringify({ ph: "M", name: "process_sort_index", pid, tid: 0, args: { sort_index: level } }));
  }
  lines.push(
    JSON.stringify({ ph: "M", name: "process_name", pid: COUNTER_PID, tid: 0, args: { name: "CPU counters" } }),
  );
  for (const t of rec.tracks) {
    lines.push(JSON.stringify({ ph: "M", name: "thread_name", pid: t.pid, tid: t.tid, args: { name: t.name } }));
    lines.push(
      JSON.stringify({ ph: "M", name: "thread_sort_index", pid: t.pid, tid: t.tid, args: { sort_index: t.tid } }),
    );
  }
  const events = rec.events.slice().sort((a, b) => a.start - b.start || b.dur - a.dur);
  for (const e of events) {
    const ts = us(e.start);
    const o: Record<string, unknown> = { ph: e.ph, name: e.name, cat: e.cat, pid: e.pid, tid: e.tid, ts };
    if (e.ph === "X") o.dur = Math.max(0, Math.round((us(e.start + e.dur) - ts) * 1e4) / 1e4);
    if (e.ph === "i") o.s = "t";
    if (e.args !== undefined) o.args = e.args;
    lines.push(JSON.stringify(o));
  }
  if (rec.truncated) {
    lines.push(
      JSON.stringify({
        ph: "i",
        name: `trace truncated: ${rec.dropped} events past the limit of ${rec.limit} were dropped`,
        cat: "trace",
        pid: COUNTER_PID,
        tid: 0,
        ts: us(rec.truncatedAt),
        s: "g",
      }),
    );
  }
  const otherData = {
    clock: "simulated (cycles / profile GHz)",
    ghz: info.ghz,
    limit: rec.limit,
    events: rec.events.length,
    truncated: rec.truncated,
    dropped: rec.dropped,
    ...info.about,
  };
  return `{"displayTimeUnit":"ns","otherData":${JSON.stringify(otherData)},"traceEvents":[\n${lines.join(",\n")}\n]}\n`;
}
