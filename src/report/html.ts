/**
 * `compare --report FILE.html`: one self-contained HTML file (inline CSS and SVG, no script, no
 * external resource) with the table, the charts, the profile with every primitive's value and
 * source, and the command line and version that produced it.
 */
import { type Chart, cyclesChart, exitsChart, ledgerChart } from "./charts.js";
import type { CompareDocument, CompareProfileInfo } from "./compare-doc.js";
import { failedCells } from "./compare-doc.js";
import { cellColumns, stackHeaders } from "./table.js";

export interface ReportProvenance {
  commandLine: string;
  version: string;
}

const ESC: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const esc = (s: string | number) => String(s).replace(/[&<>"']/g, (ch) => ESC[ch]);

export const REPORT_STYLE = `
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { padding: 2px 8px; border-bottom: 1px solid #eee; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.fail { color: #b00; font-weight: bold; }
code, .cmd { font-family: ui-monospace, monospace; }
.cmd { background: #f4f4f4; padding: 0.5em; display: block; white-space: pre-wrap; }
figure { margin: 1em 0; } figcaption { font-weight: bold; margin-bottom: 0.5em; }
`;

function resultsTable(doc: CompareDocument, idPrefix: string): string {
  const head = ["workload", ...doc.stacks.flatMap(stackHeaders)].map((h) => `<th>${esc(h)}</th>`).join("");
  const rows = doc.workloads.map((w) => {
    const tds = doc.stacks.flatMap((s) => {
      const k = cellColumns(doc, w, s);
      const vals = s === "native" ? [k.cpi, k.ns] : [k.cpi, k.ns, k.ratio, k.exits];
      return vals.map((v, i) => `<td class="${i === 0 && v.startsWith("FAIL") ? "n fail" : "n"}">${esc(v)}</td>`);
    });
    return `<tr><td>${esc(w)}</td>${tds.join("")}</tr>`;
  });
  return `<table id="${idPrefix}results"><thead><tr>${head}</tr></thead><tbody>${rows.join("\n")}</tbody></table>`;
}

function failures(doc: CompareDocument, idPrefix: string): string {
  const failed = failedCells(doc);
  if (failed.length === 0) return "<p>Every cell passed its self-checks.</p>";
  const items = failed.map(
    (c, i) => `<li>[${i + 1}] <b>${esc(c.workload)} on ${esc(c.stack)}</b>: ${esc(c.message)}</li>`,
  );
  return `<h3>Failed cells</h3><ol id="${idPrefix}failures" style="list-style:none;padding:0">${items.join("\n")}</ol>`;
}

function topExits(doc: CompareDocument, idPrefix: string): string {
  const rows = doc.cells
    .filter((c) => c.ok && c.topExits.length > 0)
    .map(
      (c) =>
        `<tr><td>${esc(c.workload)}</td><td>${esc(c.stack)}</td><td>${esc(
          c.topExits.map((e) => `${e.level}.${e.reason} ${e.perIter.toFixed(2)}`).join(", "),
        )}</td></tr>`,
    );
  if (rows.length === 0) return "";
  return `<h2>Top exit reasons per iteration</h2><table id="${idPrefix}top-exits"><thead><tr><th>workload</th><th>stack</th><th>exits / iteration (level.reason)</th></tr></thead><tbody>${rows.join("\n")}</tbody></table>`;
}

function figure(c: Chart, idPrefix: string): string {
  return `<figure id="chart-${idPrefix}${c.id}" data-series="${esc(JSON.stringify(c.series))}"><figcaption>${esc(c.title)}</figcaption>${c.svg}</figure>`;
}

export function profileTable(p: CompareProfileInfo): string {
  const rows = p.primitives.map(
    (x) =>
      `<tr><td><code>${esc(x.name)}</code></td><td>${esc(x.what)}</td><td class="n">${esc(x.cycles)}</td><td>${esc(x.source)}</td></tr>`,
  );
  return `<p><b>${esc(p.name)}</b>: ${esc(p.description)} (${esc(p.cpu)}, ${esc(p.ghz)} GHz)</p>
<table id="profile"><thead><tr><th>primitive</th><th>what it is</th><th>cycles</th><th>source</th></tr></thead><tbody>${rows.join("\n")}</tbody></table>`;
}

/** A comparison's table, failures, charts and top exits (a sweep shows one per variant). */
export function compareSections(doc: CompareDocument, idPrefix = ""): string {
  const charts = [cyclesChart(doc), ledgerChart(doc), exitsChart(doc)];
  return `${resultsTable(doc, idPrefix)}
${failures(doc, idPrefix)}
<h2>Charts</h2>
${charts.map((c) => figure(c, idPrefix)).join("\n")}
${topExits(doc, idPrefix)}`;
}

export function renderHtmlReport(doc: CompareDocument, profile: CompareProfileInfo, prov: ReportProvenance): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nestlab compare: ${esc(doc.stacks.join(", "))}</title>
<style>${REPORT_STYLE}</style></head>
<body>
<h1>nestlab compare</h1>
<p>nestlab ${esc(prov.version)} · profile <b>${esc(doc.profile)}</b> (${esc(doc.ghz)} GHz) · ${doc.cells.length} cells · ${esc(doc.wallSeconds)} s wall</p>
<code class="cmd" id="command">${esc(prov.commandLine)}</code>
<h2>Results</h2>
<p>c/it: the guest's own cycles per iteration (RDTSC on the simulated clock); ns/it at the profile's clock; ×native: ratio to native; exits/it: VM exits per iteration by the level that handled them, measured between an N- and a 2N-iteration run.</p>
${compareSections(doc)}
<h2>Cost profile</h2>
${profileTable(profile)}
</body></html>
`;
}
