/**
 * `nestlab sweep`: a grid of cells (report/sweep.ts) measured on this machine's worker threads or
 * through a Redis queue, written as a table, JSON or CSV, and an HTML report.
 */
import { writeFileSync } from "node:fs";
import type { CompareCell } from "../report/cell.js";
import {
  type SweepBase,
  type SweepDocument,
  type SweepGrid,
  sensitivity,
  sweepCells,
  sweepTasks,
  sweepVariants,
} from "../report/sweep.js";
import { renderSweepCsv, renderSweepHtml, renderSweepTable } from "../report/sweep-render.js";
import { workloadCmdline } from "../report/workloads.js";
import { getStack, STACKS } from "../stacks/index.js";
import { type CellBatch, runCells } from "./cell-pool.js";
import { progressBar } from "./compare.js";
import { EXIT, OutputFileError, UsageError } from "./exit-codes.js";
import { checkListL1EptPages } from "./l1-ept-pages.js";
import { writeOut } from "./output.js";

export interface SweepOptions {
  grid: SweepGrid;
  base: SweepBase;
  jobs: number;
  queue?: string;
  json?: boolean;
  csv?: boolean;
  report?: string;
  commandLine: string;
  version: string;
}

function writeFile(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (e) {
    throw new OutputFileError(`cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export async function sweepCommand(opts: SweepOptions): Promise<number> {
  if (opts.json && opts.csv) throw new UsageError("give --json or --csv, not both");
  for (const s of opts.grid.stacks) getStack(s);
  for (const w of opts.grid.workloads) workloadCmdline(w);
  checkListL1EptPages(STACKS, opts.grid.stacks, opts.grid.l1EptPages ?? []);
  let tasks: ReturnType<typeof sweepTasks>;
  try {
    tasks = sweepTasks(opts.grid, opts.base);
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
  if (opts.report !== undefined) writeFile(opts.report, ""); // fails before any work
  const quiet = Boolean(opts.json || opts.csv);
  const cellTasks = tasks.map((t) => ({ stack: t.stack, workload: t.workload, opts: t.opts }));
  const t0 = performance.now();
  const bar = progressBar("sweep", tasks.length, quiet);
  const tick = (c: CompareCell) => bar?.increment({ task: `${c.workload} on ${c.stack}` });
  let batch: CellBatch | undefined;
  const onSigint = () => {
    bar?.stop();
    process.stderr.write(
      opts.queue
        ? "nestlab: interrupted; queued cells stay queued: run the same sweep again to resume\n"
        : "nestlab: interrupted\n",
    );
    void (batch?.cancel() ?? Promise.resolve()).finally(() => process.exit(EXIT.interrupted));
  };
  process.once("SIGINT", onSigint);
  let cells: CompareCell[];
  try {
    if (opts.queue !== undefined) {
      // The Redis client (bullmq, ~0.4 s of CPU to load) only for a queued sweep.
      const { runCellsOnQueue } = await import("./queue.js");
      cells = await runCellsOnQueue(opts.queue, cellTasks, tick, (id, n) => {
        const waiting = n.done < tasks.length ? `; waiting for workers (nestlab worker --queue ${opts.queue})` : "";
        process.stderr.write(
          `nestlab: sweep ${id} on ${opts.queue}: ${tasks.length} cells, ${n.done} already done, ${n.added} newly queued${n.retried > 0 ? `, ${n.retried} failed ones queued again` : ""}${waiting}\n`,
        );
      });
    } else {
      batch = runCells(cellTasks, opts.jobs, tick);
      cells = await batch.done;
    }
  } finally {
    process.removeListener("SIGINT", onSigint);
    bar?.stop();
  }
  const wall = (performance.now() - t0) / 1000;
  const swept = sweepCells(tasks, cells);
  const doc: SweepDocument = {
    version: opts.version,
    commandLine: opts.commandLine,
    grid: opts.grid,
    iters: opts.base.iters ?? null,
    ranOn: opts.queue ?? `${Math.min(opts.jobs, tasks.length)} thread(s)`,
    wallSeconds: Number(wall.toFixed(2)),
    variants: sweepVariants(opts.grid).length,
    cells: swept,
    ...(opts.grid.sensitivity || opts.grid.scalings.length > 0 ? { sensitivity: sensitivity(opts.grid, swept) } : {}),
  };
  if (opts.report !== undefined) writeFile(opts.report, renderSweepHtml(doc));
  if (opts.json) writeOut(`${JSON.stringify(doc, null, 2)}\n`);
  else if (opts.csv) writeOut(renderSweepCsv(doc));
  else {
    writeOut(`${renderSweepTable(doc)}\n`);
    writeOut(
      `\n${swept.length} cells (${doc.variants} variants, two runs each) in ${wall.toFixed(1)} s wall on ${doc.ranOn}.\n`,
    );
    if (opts.report !== undefined) writeOut(`Report: ${opts.report}\n`);
  }
  return swept.every((c) => c.ok) ? EXIT.ok : EXIT.guestFailed;
}
