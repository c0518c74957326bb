/**
 * `sweep --queue` and `nestlab worker` through a real Redis (Debian's redis-server; .ci/run
 * installs and starts one and names it in NESTLAB_TEST_REDIS, else this file starts its own):
 * a sweep interrupted after queueing its cells resumes, two worker processes measure the cells,
 * and the results are the cells measured here in-process.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundledKernelPath } from "../../src/paths.js";
import { measureCell } from "../../src/report/cell.js";
import type { SweepDocument } from "../../src/report/sweep.js";
import { BIN, ensureBuilt, nestlabAsync } from "./cli-helpers.js";

const HAVE_REDIS = spawnSync("redis-server", ["--version"]).status === 0;
if (!HAVE_REDIS && !process.env.NESTLAB_TEST_REDIS)
  console.warn(
    "queue.test: skipped: redis-server is not installed here (apt-get install redis-server; CI installs it)",
  );

const children: ChildProcess[] = [];
const tmp = mkdtempSync(join(tmpdir(), "nestlab-redis-"));
let url = process.env.NESTLAB_TEST_REDIS ?? "";
let doc: SweepDocument;
// A grid no other test queues, so a shared CI Redis holds none of its cells yet.
const grid = ["--stacks", "native,vm", "--workloads", "cpuid", "--iters", "12"];

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

/** Start `nestlab ARGS` in the background; resolves once its stderr or stdout matches `ready`. */
function background(args: string[], ready: RegExp): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  return new Promise((resolve, reject) => {
    const hear = (b: Buffer) => {
      out += b.toString();
      if (ready.test(out)) resolve({ child, output: () => out });
    };
    child.stdout?.on("data", hear);
    child.stderr?.on("data", hear);
    child.on("exit", (code) => reject(new Error(`nestlab ${args.join(" ")} exited ${code}: ${out}`)));
  });
}

const exited = (c: ChildProcess) => new Promise<number | null>((r) => c.once("exit", (code) => r(code)));

beforeAll(async () => {
  if (url === "" && HAVE_REDIS) {
    const port = await freePort();
    const redis = spawn("redis-server", [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      tmp,
    ]);
    children.push(redis);
    await new Promise<void>((resolve) =>
      redis.stdout.on("data", (b: Buffer) => /Ready to accept/.test(b.toString()) && resolve()),
    );
    url = `redis://127.0.0.1:${port}`;
  }
  ensureBuilt();
}, 60_000);

afterAll(() => {
  for (const c of children) c.kill("SIGTERM");
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(url === "" && !HAVE_REDIS)("sweep --queue and nestlab worker", () => {
  it("resumes an interrupted sweep and gets from two workers the cells measured here", async () => {
    // Queue the cells, then stop the sweep before any worker exists.
    const first = await background(["sweep", ...grid, "--queue", url, "--json"], /newly queued/);
    expect(first.output()).toMatch(/2 cells, 0 already done, 2 newly queued; waiting for workers/);
    first.child.kill("SIGINT");
    expect(await exited(first.child)).toBe(130);
    expect(first.output()).toMatch(/queued cells stay queued: run the same sweep again to resume/);

    const workers = await Promise.all([1, 2].map(() => background(["worker", "--queue", url], /taking cells/)));
    const resumed = await nestlabAsync(["sweep", ...grid, "--queue", url, "--json"]);
    expect(resumed.status).toBe(0);
    expect(resumed.stderr).toMatch(/2 cells, \d already done, 0 newly queued/);
    const queued = JSON.parse(resumed.stdout) as SweepDocument;
    expect(queued.ranOn).toBe(url);

    for (const w of workers) w.child.kill("SIGTERM");
    const codes = await Promise.all(workers.map((w) => exited(w.child)));
    expect(codes).toEqual([0, 0]);
    const measured = workers.map((w) => Number(/stopped after (\d+) cell/.exec(w.output())?.[1]));
    expect(measured.reduce((a, b) => a + b, 0)).toBe(2);

    // The same cells measured here, in this process.
    const image = new Uint8Array(readFileSync(bundledKernelPath()));
    const opts = { memory: 256 * 1024 * 1024, maxInstructions: 500_000_000, maxCycles: 100e9, iters: 12 };
    for (const c of queued.cells) {
      const here = measureCell(
        c.stack,
        c.workload,
        { ...opts, profile: "cascadelake-kvm", npvMap: "demand", l0: { eptPages: c.variant.eptPages } },
        image,
      );
      expect({ ...c, wallSeconds: 0 }).toMatchObject({ ...here, wallSeconds: 0 });
    }
    doc = queued;
  }, 55_000);

  it("only collects when every cell of the sweep is done", async () => {
    const again = await nestlabAsync(["sweep", ...grid, "--queue", url, "--json"]);
    expect(again.stderr).toMatch(/2 cells, 2 already done, 0 newly queued\n/);
    const cells = (d: SweepDocument) => d.cells.map((c) => ({ ...c, wallSeconds: 0 }));
    expect(cells(JSON.parse(again.stdout) as SweepDocument)).toEqual(cells(doc));
  }, 30_000);
});
