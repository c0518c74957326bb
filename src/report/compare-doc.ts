/**
 * A comparison as one document: its cells and what produced them (profile, command, version).
 * `compare --json` prints it; the table, the CSV and the HTML report are drawn from it.
 */
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
