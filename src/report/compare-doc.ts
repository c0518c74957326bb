/**
 * A comparison as one document: its cells and what produced them (profile, command, version).
 * `compare --json` prints it; the table, the CSV and the HTML report are drawn from it.
 */
import type { L0Policy } from "../machine/tunables.js";
import type { L1EptPages } from "../stacks/stack.js";
import type { CompareCell } from "./cell.js";

export interface CompareProfileInfo {
  name: string;
  description: string;
  cpu: string;
  ghz: number;
  /** Every primitive: cycles, source, and what it is. */
  primitives: { name: string; what: string; cycles: number; source: string }[];
}

export interface CompareDocument {
  stacks: string[];
  workloads: string[];
  /** The profile's real name (as in its JSON), not "default". */
  profile: string;
  /** Its clock, for ns per iteration. */
  ghz: number;
  /** Iterations asked for with --iters (null: each workload's default). */
  iters: number | null;
  /** Extra kernel command-line words every run had (--kernel-args), when any. */
  kernelArgs?: string;
  /** L0's largest EPT01 leaf (--ept-pages), when not 4k. */
  eptPages?: L0Policy["eptPages"];
  /** l1hv's largest EPT12 leaf on bare-l1 and the nvmx stacks (--l1-ept-pages), when not 4k. */
  l1EptPages?: L1EptPages;
  wallSeconds: number;
  cells: CompareCell[];
}

export function findCell(doc: CompareDocument, workload: string, stack: string): CompareCell | undefined {
  return doc.cells.find((c) => c.workload === workload && c.stack === stack);
}

/** Ratio of a cell's cycles per iteration to native's, or null when either is missing. */
export function ratioToNative(doc: CompareDocument, cell: CompareCell): number | null {
  const nat = findCell(doc, cell.workload, "native");
  if (!cell.ok || cell.iterations === 0 || nat === undefined || !nat.ok || !(nat.cyclesPerIter > 0)) return null;
  return cell.cyclesPerIter / nat.cyclesPerIter;
}

/** Cells that failed, numbered in table order (the table marks them FAIL[n]). */
export function failedCells(doc: CompareDocument): CompareCell[] {
  const out: CompareCell[] = [];
  for (const w of doc.workloads) {
    for (const s of doc.stacks) {
      const c = findCell(doc, w, s);
      if (c !== undefined && !c.ok) out.push(c);
    }
  }
  return out;
}

/** What a comparison ran: the stacks, workloads, profile and options it was asked for. */
export interface CompareRequest {
  stacks: string[];
  workloads: string[];
  profile: { name: string; ghz: number };
  iters?: number;
  kernelArgs?: string;
  l0?: Partial<L0Policy>;
  l1EptPages?: L1EptPages;
}

/** The document of a comparison whose cells are measured (`measureCell`), in task order. */
export function compareDocument(req: CompareRequest, cells: CompareCell[], wallSeconds: number): CompareDocument {
  return {
    stacks: req.stacks,
    workloads: req.workloads,
    profile: req.profile.name,
    ghz: req.profile.ghz,
    iters: req.iters ?? null,
    ...(req.kernelArgs ? { kernelArgs: req.kernelArgs } : {}),
    ...(req.l0?.eptPages !== undefined && req.l0.eptPages !== "4k" ? { eptPages: req.l0.eptPages } : {}),
    ...(req.l1EptPages !== undefined && req.l1EptPages !== "4k" ? { l1EptPages: req.l1EptPages } : {}),
    wallSeconds: Number(wallSeconds.toFixed(2)),
    cells,
  };
}

/** The lines under the table: how many cells, how long, and how the figures were measured (N/2N). */
export function compareFooter(doc: CompareDocument, cpu: string, jobs: number): string {
  return (
    `${doc.cells.length} cells (two runs each) in ${doc.wallSeconds.toFixed(1)} s wall on ${jobs} job${jobs === 1 ? "" : "s"}. ` +
    `Cycles are simulated with profile ${doc.profile} (${cpu}); ns at its ${doc.ghz} GHz clock; ` +
    `exits per iteration are measured between an N- and a 2N-iteration run.\n` +
    (doc.eptPages || doc.l1EptPages
      ? `Largest EPT leaves: EPT01 (L0) ${doc.eptPages ?? "4k"}, EPT12 (l1hv on bare-l1 and nvmx*) ${doc.l1EptPages ?? "4k"}.\n`
      : "")
  );
}
