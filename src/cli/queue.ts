/**
 * Cells through a Redis queue (BullMQ): `sweep --queue redis://HOST:PORT` enqueues a sweep's
 * cells and collects their results; `nestlab worker --queue …` processes on any number of
 * machines measure them. A cell's job id is the sweep's id (a hash of everything that decides
 * its cells' results: `sweepId`) and the cell's index, so enqueueing the same sweep again adds nothing new: a sweep that stopped resumes, and
 * cells finished meanwhile are collected, not rerun.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { type ConnectionOptions, Job, Queue, QueueEvents, Worker } from "bullmq";
import { loadProfile } from "../cost/profile.js";
import { bundledImagePath } from "../node-images.js";
import { bundledKernelPath } from "../paths.js";
import type { CompareCell } from "../report/cell.js";
import { type CellTask, cellRunner } from "./cell-pool.js";
import { EXIT, UsageError } from "./exit-codes.js";
import { writeOut } from "./output.js";

export const QUEUE_NAME = "nestlab-cells";
/** How long a worker may hold a cell before the queue deems it stalled and hands it to another. */
const LOCK_MS = 10 * 60 * 1000;
const CONNECT_TIMEOUT_MS = 5000;

/** `redis://[:password@]host:port[/db]` → connection options. */
export function redisConnection(url: string): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`bad queue address "${url}" (expected redis://HOST:PORT)`);
  }
  if (u.protocol !== "redis:" || u.hostname === "") {
    throw new UsageError(`bad queue address "${url}" (expected redis://HOST:PORT)`);
  }
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname,
    port: u.port === "" ? 6379 : Number(u.port),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    db,
    maxRetriesPerRequest: null,
  };
}

/** Fail with a clear message when Redis does not answer (ioredis would otherwise retry forever). */
async function ready(what: { waitUntilReady(): Promise<unknown>; close(): Promise<void> }, url: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UsageError(`cannot reach Redis at ${url}`)), CONNECT_TIMEOUT_MS);
  });
  try {
    await Promise.race([what.waitUntilReady(), timeout]);
  } catch (e) {
    void what.close().catch(() => undefined);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");

/** JSON with every object's keys sorted and byte arrays as their digest: equal options, equal text. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (ArrayBuffer.isView(v)) return `sha256:${sha256(new Uint8Array(v.buffer, v.byteOffset, v.byteLength))}`;
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}

/** The guest images this nestlab runs cells with (the workload kernel, and l1hv on nested stacks). */
export function bundledImages(): Record<string, Uint8Array> {
  return {
    kernel: new Uint8Array(readFileSync(bundledKernelPath())),
    l1hv: new Uint8Array(readFileSync(bundledImagePath("l1hv"))),
  };
}

/**
 * A sweep's id, which a resumed sweep finds its cells by: a hash of everything that decides the
 * cells' results — each cell's stack, workload and every option (cache model, iterations, memory,
 * L0 policy, npv mapping…), the cost profile by its numbers rather than its name (a bundled
 * profile changes between versions), and the guest images. The same tasks give the same id on
 * any machine; anything that would change a result gives another id, so no cell measured under
 * other settings is reused.
 */
export function sweepId(tasks: CellTask[], images: Record<string, Uint8Array> = bundledImages()): string {
  const keyed = tasks.map((t) => ({ ...t, opts: { ...t.opts, profile: loadProfile(t.opts.profile).profile } }));
  return sha256(canonicalJson({ tasks: keyed, images })).slice(0, 16);
}

/**
 * Enqueue `tasks` (those not already in the queue) and wait for every result, in task order.
 * `onCell` hears of each as it is collected (a resumed sweep's finished cells first).
 */
export async function runCellsOnQueue(
  url: string,
  tasks: CellTask[],
  onCell: (cell: CompareCell, index: number) => void,
  onEnqueued?: (id: string, counts: { added: number; done: number; retried: number }) => void,
): Promise<CompareCell[]> {
  const connection = redisConnection(url);
  const queue = new Queue(QUEUE_NAME, { connection });
  await ready(queue, url);
  const events = new QueueEvents(QUEUE_NAME, { connection });
  try {
    await ready(events, url);
    const id = sweepId(tasks);
    const jobId = (i: number) => `${id}-${i}`;
    const results: CompareCell[] = new Array(tasks.length);
    let remaining = tasks.length;
    await new Promise<void>((resolve, reject) => {
      if (remaining === 0) resolve();
      const collect = (i: number, cell: CompareCell) => {
        if (results[i] !== undefined) return;
        results[i] = cell;
        remaining--;
        onCell(cell, i);
        if (remaining === 0) resolve();
      };
      const indexOf = (jid: string) => (jid.startsWith(`${id}-`) ? Number(jid.slice(id.length + 1)) : -1);
      events.on("completed", ({ jobId: jid }) => {
        const i = indexOf(jid);
        if (i < 0) return;
        void Job.fromId(queue, jid).then((job) => {
          if (job?.returnvalue) collect(i, job.returnvalue as CompareCell);
        }, reject);
      });
      events.on("failed", ({ jobId: jid, failedReason }) => {
        const i = indexOf(jid);
        if (i >= 0)
          reject(new Error(`cell ${tasks[i].workload} on ${tasks[i].stack} failed on a worker: ${failedReason}`));
      });
      // Listening first, then adding and looking: a cell that finishes in between is seen either way.
      void (async () => {
        const before = await queue.getJobCountByTypes("waiting", "active", "delayed", "completed", "failed");
        await queue.addBulk(
          tasks.map((t, i) => ({
            name: "cell",
            data: t,
            opts: { jobId: jobId(i), removeOnComplete: false, removeOnFail: false, attempts: 1 },
          })),
        );
        const after = await queue.getJobCountByTypes("waiting", "active", "delayed", "completed", "failed");
        let retried = 0;
        for (let i = 0; i < tasks.length; i++) {
          const job = await Job.fromId(queue, jobId(i));
          if (job === undefined) continue;
          const state = await job.getState();
          if (state === "completed") collect(i, job.returnvalue as CompareCell);
          else if (state === "failed") {
            await job.retry(); // a resumed sweep gives a failed cell another go
            retried++;
          }
        }
        onEnqueued?.(id, { added: after - before, done: tasks.length - remaining, retried });
      })().catch(reject);
    });
    return results;
  } finally {
    await events.close();
    await queue.close();
  }
}

/** `nestlab worker --queue URL`: measure queued cells on `jobs` threads until Ctrl-C or SIGTERM. */
export async function workerCommand(opts: { queue: string; jobs: number }): Promise<number> {
  const connection = redisConnection(opts.queue);
  const runner = cellRunner(opts.jobs, { threads: true });
  let done = 0;
  const worker = new Worker<CellTask, CompareCell>(
    QUEUE_NAME,
    async (job) => {
      const cell = await runner.run(job.data);
      done++;
      return cell;
    },
    { connection, concurrency: opts.jobs, lockDuration: LOCK_MS, autorun: false },
  );
  try {
    await ready(worker, opts.queue);
  } catch (e) {
    await runner.close();
    throw e;
  }
  writeOut(`nestlab: worker taking cells from ${opts.queue} on ${opts.jobs} thread(s); Ctrl-C stops\n`);
  void worker.run();
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.removeListener("SIGINT", stop);
      process.removeListener("SIGTERM", stop);
      resolve();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await worker.close();
  await runner.close();
  writeOut(`nestlab: worker stopped after ${done} cell(s)\n`);
  return EXIT.ok;
}
