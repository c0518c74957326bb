/** A sweep as a terminal table, CSV (one row per cell) and one self-contained HTML report. */
import { loadProfile } from "../cost/profile.js";
import type { CompareDocument } from "./compare-doc.js";
import { compareSections, esc, REPORT_STYLE } from "./html.js";
import {
  optionsLabel,
  type SensitivityRow,
  type SweepCell,
  type SweepDocument,
  scaleLabel,
  variantLabel,
} from "./sweep.js";

const exitsText = (c: SweepCell) =>
  Object.entries(c.exitsPerIter)
    .map(([level, n]) => `${level} ${n}`)
    .join(" ");

function cellValues(c: SweepCell): string[] {
  if (!c.ok) return ["FAIL", "", "", c.message];
  if (c.iterations === 0) return ["skip", "", "", c.message];
  return [
    String(c.cyclesPerIter),
    c.nsPerIter.toFixed(1),
    c.ratioToNative === null ? "" : c.ratioToNative.toFixed(2),
    exitsText(c),
  ];
}

function sensitivityLines(rows: SensitivityRow[]): string[] {
  const out = ["", "Order of the stacks (fastest first, by cycles per iteration): does a scaling change it?"];
  for (const r of rows) {
    const head = `  ${r.workload} (${r.profile}, ${optionsLabel(r).replaceAll(" ", ", ")}): ${r.baseOrder}`;
    if (r.changes.length === 0) out.push(`${head} — unchanged by all ${r.unchanged} scalings`);
    else {
      out.push(`${head} — changed by ${r.changes.length} of ${r.changes.length + r.unchanged} scalings:`);
      for (const ch of r.changes) out.push(`      ${ch.scale}: ${ch.order}`);
    }
  }
  return out;
}

export function renderSweepTable(doc: SweepDocument): string {
  const head = ["variant", "workload", "stack", "c/it", "ns/it", "×native", "exits/it"];
  const rows = doc.cells.map((c) => [variantLabel(c.variant), c.workload, c.stack, ...cellValues(c)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((v, i) => (i >= 3 && i <= 5 ? v.padStart(widths[i]) : v.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  const out = [line(head), ...rows.map(line)];
  if (doc.sensitivity) out.push(...sensitivityLines(doc.sensitivity));
  return out.join("\n");
}

const csvField = (v: string | number) => (/[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));

export function renderSweepCsv(doc: SweepDocument): string {
  const head = [
    "profile",
    "npv_map",
    "ept_pages",
    "l1_ept_pages",
    "scaled",
    "workload",
    "stack",
    "ok",
    "cycles_per_iter",
    "ns_per_iter",
    "ratio_to_native",
    "exits_per_iter",
    "message",
  ];
  const rows = doc.cells.map((c) => [
    c.variant.profile,
    c.variant.npvMap,
    c.variant.eptPages,
    c.variant.l1EptPages ?? "4k",
    c.variant.scale === null ? "" : scaleLabel(c.variant.scale),
    c.workload,
    c.stack,
    c.ok ? "1" : "0",
    c.iterations > 0 ? c.cyclesPerIter : "",
    c.iterations > 0 ? c.nsPerIter : "",
    c.ratioToNative ?? "",
    exitsText(c),
    c.message,
  ]);
  return `${[head, ...rows].map((r) => r.map(csvField).join(",")).join("\n")}\n`;
}

function sensitivityHtml(rows: SensitivityRow[]): string {
  const trs = rows.map((r) => {
    const changes =
      r.changes.length === 0
        ? `unchanged by all ${r.unchanged} scalings`
        : `<ul>${r.changes.map((ch) => `<li><code>${esc(ch.scale)}</code>: ${esc(ch.order)}</li>`).join("")}</ul>`;
    return `<tr data-changed="${r.changes.length}"><td>${esc(r.workload)}</td><td>${esc(`${r.profile} ${optionsLabel(r)}`)}</td><td>${esc(r.baseOrder)}</td><td>${changes}</td></tr>`;
  });
  return `<h2>Sensitivity</h2>
<p>The order of the stacks (fastest first, by cycles per iteration), unscaled and under each scaling (with --sensitivity: every primitive whose source says "assumption", ×0.5 and ×2 in turn): which scalings change it?</p>
<table id="sensitivity"><thead><tr><th>workload</th><th>variant</th><th>order, unscaled</th><th>scalings that change it</th></tr></thead><tbody>${trs.join("\n")}</tbody></table>`;
}

function allCellsHtml(doc: SweepDocument): string {
  const trs = doc.cells.map((c) => {
    const v = cellValues(c);
    return `<tr><td>${esc(variantLabel(c.variant))}</td><td>${esc(c.workload)}</td><td>${esc(c.stack)}</td>${v
      .map((x, i) => `<td class="${i < 3 ? "n" : ""}${x === "FAIL" ? " fail" : ""}">${esc(x)}</td>`)
      .join("")}</tr>`;
  });
  return `<h2>Every cell</h2>
<table id="cells"><thead><tr><th>variant</th><th>workload</th><th>stack</th><th>c/it</th><th>ns/it</th><th>×native</th><th>exits/it (or why it failed)</th></tr></thead><tbody>${trs.join("\n")}</tbody></table>`;
}

/** The unscaled variants, each drawn as a comparison (table and charts). */
function variantSections(doc: SweepDocument): string {
  const seen = new Map<string, SweepCell[]>();
  for (const c of doc.cells) {
    if (c.variant.scale !== null) continue;
    const k = variantLabel(c.variant);
    seen.set(k, [...(seen.get(k) ?? []), c]);
  }
  return [...seen.entries()]
    .map(([label, cells], i) => {
      const profile = loadProfile(cells[0].variant.profile).profile;
      const cmp: CompareDocument = {
        stacks: doc.grid.stacks,
        workloads: doc.grid.workloads,
        profile: profile.name,
        ghz: profile.machine.ghz,
        iters: doc.iters,
        wallSeconds: doc.wallSeconds,
        cells,
      };
      return `<h2 id="variant-${i}">${esc(label)}</h2>\n${compareSections(cmp, `v${i}-`)}`;
    })
    .join("\n");
}

export function renderSweepHtml(doc: SweepDocument): string {
  const g = doc.grid;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nestlab sweep: ${doc.cells.length} cells</title>
<style>${REPORT_STYLE}</style></head>
<body>
<h1>nestlab sweep</h1>
<p>nestlab ${esc(doc.version)} · ${doc.cells.length} cells in ${doc.variants} variants · ${esc(doc.wallSeconds)} s wall on ${esc(doc.ranOn)}</p>
<code class="cmd" id="command">${esc(doc.commandLine)}</code>
<p>Grid: stacks ${esc(g.stacks.join(", "))} × workloads ${esc(g.workloads.join(", "))} × profiles ${esc(g.profiles.join(", "))} × npv-map ${esc(g.npvMap.join(", "))} × ept-pages ${esc(g.eptPages.join(", "))} × l1-ept-pages ${esc((g.l1EptPages ?? ["4k"]).join(", "))} × scalings: unscaled${g.scalings.map((s) => `, ${esc(scaleLabel(s))}`).join("")}${g.sensitivity ? ", every assumed primitive ×0.5 and ×2" : ""}.</p>
${doc.sensitivity ? sensitivityHtml(doc.sensitivity) : ""}
${variantSections(doc)}
${allCellsHtml(doc)}
</body></html>
`;
}
