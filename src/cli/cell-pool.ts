/**
 * Runs cells — compare's, a sweep's, a queue worker's — in this thread (one job) or on a pool of
 * worker threads (piscina, `--jobs N`). Results come back in task order whatever order the
 * workers finish in, so the output does not depend on N.
 */
import { readFileSync } from "node:fs";
import { Piscina } from "piscina";
import { bundledKernelPath } from "../paths.js";
import { type CompareCell, measureCell } from "../report/cell.js";
import type { CellTask } from "./cell-worker.js";

export type { CellTask } from "./cell-worker.js";

/** Measures cells one by one in this thread, or up to `jobs` at once on worker threads. */
export interface CellRunner {
  run(task: CellTask): Promise<CompareCell>;
  /** Stop the workers (Ctrl-C, or the work is done). */
  close(): Promise<void>;
}

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

/** `threads`: use a worker thread even for one job (a queue worker keeps its event loop free). */
export function cellRunner(jobs: number, opts: { threads?: boolean } = {}): CellRunner {
  if (jobs <= 1 && !opts.threads) {
    let image: Uint8Array | undefined;
    let closed = false;
    let queue: Promise<unknown> = Promise.resolve();
    return {
      run(t) {
        const next = queue.then(async () => {
          await yieldToEventLoop(); // let a progress bar draw and Ctrl-C be seen between cells
          if (closed) throw new Error("the cell runner was closed");
          image ??= new Uint8Array(readFileSync(bundledKernelPath()));
          return measureCell(t.stack, t.workload, t.opts, image);
        });
        queue = next.catch(() => undefined);
        return next;
      },
      close: async () => {
        closed = true;
      },
    };
  }
  const pool = new Piscina<CellTask, CompareCell>({
    filename: new URL("./cell-worker.js", import.meta.url).href,
    minThreads: jobs,
    maxThreads: jobs,
    // One cell per thread at a time: the pool queues the rest.
    concurrentTasksPerWorker: 1,
  });
  return { run: (t) => pool.run(t), close: () => pool.destroy() };
}

export interface CellBatch {
  /** Resolves with every cell, in task order. */
  done: Promise<CompareCell[]>;
  /** Stop the workers (Ctrl-C). */
  cancel(): Promise<void>;
}

/** Measure `tasks` on `jobs` threads; `onCell` hears of each cell as it finishes. */
export function runCells(tasks: CellTask[], jobs: number, onCell: (cell: CompareCell) => void): CellBatch {
  const runner = cellRunner(Math.min(jobs, Math.max(1, tasks.length)));
  const done = Promise.all(
    tasks.map(async (t) => {
      const cell = await runner.run(t);
      onCell(cell);
      return cell;
    }),
  ).finally(() => runner.close());
  return { done, cancel: () => runner.close() };
}
