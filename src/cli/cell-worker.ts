/**
 * A worker thread of the cell pool (piscina): measures the cells it is given, one at a time.
 * Simulated time only, so a cell measured here is identical to one measured in the main thread.
 */
import { readFileSync } from "node:fs";
import "../node-images.js";
import { bundledKernelPath } from "../paths.js";
import { type CellOptions, type CompareCell, measureCell } from "../report/cell.js";

/** One cell to measure, with the options of its run (a sweep's cells differ in them). */
export interface CellTask {
  stack: string;
  workload: string;
  opts: CellOptions;
}

const image = new Uint8Array(readFileSync(bundledKernelPath()));

export default function measure(t: CellTask): CompareCell {
  return measureCell(t.stack, t.workload, t.opts, image);
}
