/** `nestlab run --trace`: the file, the stderr line, the limit, and a path that cannot be written. */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit-codes.js";
import { nestlab } from "../cli/cli-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "nestlab-trace-"));
/** `run` of the cpuid workload on vm, plus `extra` arguments. */
const runCpuid = (...extra: string[]) =>
  nestlab(["run", "--stack", "vm", "--workload", "cpuid", "--iters", "20", ...extra]);

// Each test is seconds of synchronous work: let the worker's event loop reach its poll phase
// between them, so vitest's 60 s worker RPC timeout cannot fire on a loaded machine.
afterEach(() => new Promise<void>((done) => setImmediate(done)));

describe("nestlab run --trace", () => {
  it("writes the trace, says so on stderr, and keeps the run's output", () => {
    const file = join(tmp, "cpuid.json");
    const plain = runCpuid("--json");
    const r = runCpuid("--json", "--trace", file);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^nestlab: trace: \d+ events, [\d.]+ MiB in .*cpuid\.json\n$/);
    const doc = JSON.parse(readFileSync(file, "utf8"));
    expect(doc.otherData).toMatchObject({ truncated: false, stack: "vm", ghz: 2.5, profile: "cascadelake-kvm" });
    expect(doc.traceEvents.some((e: { cat?: string }) => e.cat === "exit")).toBe(true);
    const strip = (s: string) => JSON.stringify(JSON.parse(s), (k, v) => (/wall/i.test(k) ? undefined : v));
    expect(strip(r.stdout)).toBe(strip(plain.stdout));
  });

  it("--trace-limit cuts the trace and says so in the file and on stderr", () => {
    const file = join(tmp, "cut.json");
    const r = runCpuid("--trace", file, "--trace-limit", "100");
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/nestlab: trace: 100 events, .* truncated at the limit of 100 events \(\d+ more dropped/);
    const doc = JSON.parse(readFileSync(file, "utf8"));
    expect(doc.otherData.truncated).toBe(true);
    expect(doc.otherData.limit).toBe(100);
  });

  it("a trace that cannot be written exits 6 before any work", () => {
    const r = runCpuid("--trace", join(tmp, "no", "such", "t.json"));
    expect(r.status).toBe(EXIT.outputError);
    expect(r.stderr).toMatch(/^nestlab: cannot write the trace .*t\.json: ENOENT\n$/);
    expect(r.stdout).toBe("");
  });

  it("a bad --trace-limit is a usage error", () => {
    const r = runCpuid("--trace", join(tmp, "x.json"), "--trace-limit", "0");
    expect(r.status).toBe(EXIT.usage);
  });
});
