/**
 * A comparison as text: the terminal table (with the reason for every FAIL beneath it and the top
 * exit reasons per cell) and CSV, one row per cell. Precision is fixed per column: cycles and ns
 * as integers / one decimal, ratios and exits per iteration with two decimals.
 */
import type { CompareCell } from "./cell.js";
import { type CompareDocument, failedCells, findCell, ratioToNative } from "./compare-doc.js";

const exitsText = (c: CompareCell) =>
  Object.entries(c.exitsPerIter)
    .map(([l, v]) => `${l} ${v.toFixed(2)}`)
    .join(" ") || "0";

function grid(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i])))
      .join("  ")
      .trimEnd();
  return [line(rows[0]), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n");
}

/** The columns of one cell as the table shows them (FAIL[n] refers to `failedCells`). */
export interface CellColumns {
  cpi: string;
  ns: string;
  ratio: string;
  exits: string;
}

export function cellColumns(doc: CompareDocument, workload: string, stack: string): CellColumns {
  const c = findCell(doc, workload, stack);
  if (c === undefined) return { cpi: "-", ns: "-", ratio: "-", exits: "-" };
  const measured = c.ok && c.iterations > 0;
  const cpi = !c.ok
    ? `FAIL[${failedCells(doc).indexOf(c) + 1}]`
    : c.iterations === 0
      ? "skip"
      : String(c.cyclesPerIter);
  const ratio = ratioToNative(doc, c);
  return {
    cpi,
    ns: measured ? c.nsPerIter.toFixed(1) : "-",
    ratio: ratio === null ? "-" : `${ratio.toFixed(2)}x`,
    exits: measured ? exitsText(c) : "-",
  };
}

/** Column headers per stack: native has no ratio or exits. */
export function stackHeaders(stack: string): string[] {
  return stack === "native" ? ["native c/it", "ns/it"] : [`${stack} c/it`, "ns/it", "×native", `${stack} exits/it`];
}

export function renderTable(doc: CompareDocument): string {
  const failed = failedCells(doc);
  const rows: string[][] = [["workload", ...doc.stacks.flatMap(stackHeaders)]];
  for (const w of doc.workloads) {
    const row = [w];
    for (const s of doc.stacks) {
      const k = cellColumns(doc, w, s);
      row.push(...(s === "native" ? [k.cpi, k.ns] : [k.cpi, k.ns, k.ratio, k.exits]));
    }
    rows.push(row);
  }
  const out = [grid(rows)];
  if (failed.length > 0) {
    out.push("", "Failed cells:");
    failed.forEach((c, i) => {
      out.push(`  [${i + 1}] ${c.workload} on ${c.stack}: ${c.message}`);
    });
  }
  const ws = doc.cells.filter((c) => c.ok && c.worldSwitchesPerIter !== undefined);
  if (ws.length > 0) {
    out.push("", "World switches per iteration (a guest level to L0 and back):");
    const keys = worldSwitchKeys(doc);
    const wrows = [["workload", "stack", ...keys]];
    for (const c of ws) wrows.push([c.workload, c.stack, ...keys.map((k) => worldSwitchText(c, k))]);
    out.push(
      grid(wrows)
        .split("\n")
        .map((l) => `  ${l}`)
        .join("\n"),
    );
  }
  const tops = doc.cells.filter((c) => c.ok && c.topExits.length > 0);
  if (tops.length > 0) {
    out.push("", "Top exit reasons per iteration:");
    const trows = [["workload", "stack", "exits/it (level.reason)"]];
    for (const c of tops) {
      trows.push([
        c.workload,
        c.stack,
        c.topExits.map((e) => `${e.level}.${e.reason} ${e.perIter.toFixed(2)}`).join(", "),
      ]);
    }
    out.push(
      grid(trows)
        .split("\n")
        .map((l) => `  ${l}`)
        .join("\n"),
    );
  }
  return out.join("\n");
}

function csvField(v: string | number | boolean): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The world-switch kinds ("L1-L0", "L2-L0") any cell counts, sorted. */
function worldSwitchKeys(doc: CompareDocument): string[] {
  return [...new Set(doc.cells.flatMap((c) => Object.keys(c.worldSwitchesPerIter ?? {})))].sort();
}

const worldSwitchText = (c: CompareCell, k: string) =>
  c.worldSwitchesPerIter === undefined ? "" : (c.worldSwitchesPerIter[k] ?? 0).toFixed(2);

/** One row per cell; exit levels as columns (exits_per_iter_L0, …); `message` holds FAIL reasons. */
export function renderCsv(doc: CompareDocument): string {
  const levels = [...new Set(doc.cells.flatMap((c) => Object.keys(c.exitsPerIter)))].sort();
  const switches = worldSwitchKeys(doc);
  const header = [
    "workload",
    "stack",
    "ok",
    "message",
    "iterations",
    "cycles_per_iter",
    "ns_per_iter",
    "ratio_to_native",
    ...levels.map((l) => `exits_per_iter_${l}`),
    ...switches.map((k) => `world_switches_per_iter_${k}`),
    "top_exits",
    "instructions",
  ];
  const lines = [header.join(",")];
  for (const w of doc.workloads) {
    for (const s of doc.stacks) {
      const c = findCell(doc, w, s);
      if (c === undefined) continue;
      const measured = c.ok && c.iterations > 0;
      const ratio = ratioToNative(doc, c);
      lines.push(
        [
          c.workload,
          c.stack,
          c.ok,
          c.message,
          c.iterations,
          measured ? c.cyclesPerIter : "",
          measured ? c.nsPerIter.toFixed(1) : "",
          ratio === null ? "" : ratio.toFixed(2),
          ...levels.map((l) => (measured ? (c.exitsPerIter[l] ?? 0).toFixed(2) : "")),
          ...switches.map((k) => (measured ? worldSwitchText(c, k) : "")),
          c.topExits.map((e) => `${e.level}.${e.reason}=${e.perIter.toFixed(2)}`).join(" "),
          c.instructions,
        ]
          .map(csvField)
          .join(","),
      );
    }
  }
  return `${lines.join("\n")}\n`;
}
