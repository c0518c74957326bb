/**
 * Runs compare's cells: in this thread (one job) or on worker threads (`--jobs N`). Results come
 * back in task order whatever order the workers finish in, so the output does not depend on N.
 */
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { bundledKernelPath } from "../paths.js";
import { type CellOptions, type CompareCell, measureCell } from "../report/cell.js";
import type { CellReply, CellTask } from "./cell-worker.js";

/** Where a worker's exception is re-raised in the main thread, with the worker's stack. */
export class WorkerCellError extends Error {
  constructor(message: string, workerStack?: string) {
    super(message);
    if (workerStack) this.stack = workerStack;
  }
}

export interface CellPool {
  /** Resolves with every cell, in task order. */
  done: Promise<CompareCell[]>;
  /** Stop the workers (Ctrl-C). */
  cancel(): Promise<void>;
}

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

export function runCells(
  tasks: Omit<CellTask, "index">[],
  opts: CellOptions,
  jobs: number,
  onCell: (cell: CompareCell, next: CellTask | undefined) => void,
): CellPool {
  const indexed = tasks.map((t, index) => ({ ...t, index }));
  const results: CompareCell[] = new Array(indexed.length);
  if (jobs <= 1 || indexed.length <= 1) {
    let cancelled = false;
    const done = (async () => {
      const image = new Uint8Array(readFileSync(bundledKernelPath()));
      for (const t of indexed) {
        await yieldToEventLoop(); // let the progress bar draw and Ctrl-C be seen between cells
        if (cancelled) break;
        results[t.index] = measureCell(t.stack, t.workload, opts, image);
        onCell(results[t.index], indexed[t.index + 1]);
      }
      return results;
    })();
    return {
      done,
      cancel: async () => {
        cancelled = true;
      },
    };
  }
  const workers: Worker[] = [];
  let nextTask = 0;
  let finished = 0;
  const done = new Promise<CompareCell[]>((resolve, reject) => {
    const feed = (w: Worker) => {
      if (nextTask < indexed.length) w.postMessage(indexed[nextTask++]);
      else void w.terminate();
    };
    const n = Math.min(jobs, indexed.length);
    for (let k = 0; k < n; k++) {
      const w = new Worker(new URL("./cell-worker.js", import.meta.url), { workerData: opts });
      workers.push(w);
      w.on("message", (m: CellReply) => {
        if ("error" in m) {
          reject(new WorkerCellError(m.error.message, m.error.stack));
          for (const x of workers) void x.terminate();
          return;
        }
        results[m.index] = m.cell;
        finished++;
        onCell(m.cell, indexed[nextTask]);
        if (finished === indexed.length) resolve(results);
        feed(w);
      });
      w.on("error", (e) => {
        reject(e);
        for (const x of workers) void x.terminate();
      });
      feed(w);
    }
  });
  return {
    done,
    cancel: async () => {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
