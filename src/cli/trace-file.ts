/**
 * `run --trace FILE`: the recorder a run fills, and the Chrome Trace Event JSON written from it
 * (Perfetto's UI and chrome://tracing open it). Timestamps are simulated time at the profile's clock.
 */
import { writeFileSync } from "node:fs";
import { loadProfile, type ProfileSpec } from "../cost/profile.js";
import { chromeTraceJson } from "../trace/chrome-json.js";
import { TimelineRecorder } from "../trace/timeline.js";
import { OutputFileError } from "./exit-codes.js";

function writeTraceFile(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new OutputFileError(`cannot write the trace ${file}: ${why}`);
  }
}

/** A recorder for the run, after checking that `file` can be written (before any work). */
export function openTrace(file: string, limit: number): TimelineRecorder {
  writeTraceFile(file, "");
  return new TimelineRecorder(limit);
}

/** Write the trace; one line on stderr says what went where, and whether the limit cut it. */
export function saveTrace(
  file: string,
  rec: TimelineRecorder,
  profile: ProfileSpec | undefined,
  about: Record<string, string>,
): void {
  const p = loadProfile(profile);
  const text = chromeTraceJson(rec, { ghz: p.profile.machine.ghz, about: { profile: p.name, ...about } });
  writeTraceFile(file, text);
  const size = `${(text.length / 1048576).toFixed(1)} MiB`;
  const cut = rec.truncated
    ? `; truncated at the limit of ${rec.limit} events (${rec.dropped} more dropped; raise --trace-limit)`
    : "";
  process.stderr.write(`nestlab: trace: ${rec.events.length} events, ${size} in ${file}${cut}\n`);
}
