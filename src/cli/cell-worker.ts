/**
 * A worker thread of `compare --jobs N`: measures the cells the main thread sends, one at a time.
 * Simulated time only, so a cell measured here is identical to one measured in the main thread.
 */
import { readFileSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { bundledKernelPath } from "../paths.js";
import { type CellOptions, measureCell } from "../report/cell.js";

export interface CellTask {
  index: number;
  stack: string;
  workload: string;
}

export type CellReply =
  | { index: number; cell: ReturnType<typeof measureCell> }
  | { index: number; error: { message: string; stack?: string } };

const opts = workerData as CellOptions;
const image = new Uint8Array(readFileSync(bundledKernelPath()));
parentPort?.on("message", (t: CellTask) => {
  let reply: CellReply;
  try {
    reply = { index: t.index, cell: measureCell(t.stack, t.workload, opts, image) };
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    reply = { index: t.index, error: { message: err.message, stack: err.stack } };
  }
  parentPort?.postMessage(reply);
});
