/**
 * `compare --report FILE.html`: one self-contained file, opened in headless Chromium (Debian's
 * `chromium`, driven by playwright-core): it renders with no console error, and each chart holds
 * the series and bars the comparison measured. A screenshot is kept in tests/cli/out/.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PRIMITIVES } from "../../src/cost/primitives.js";
import type { CompareDocument } from "../../src/report/compare-doc.js";
import { CHROMIUM, HAVE_CHROMIUM, launchChromium, pageWithErrors } from "../helpers/chromium.js";
import { nestlab } from "./cli-helpers.js";

if (!HAVE_CHROMIUM)
  console.warn(`report.test: skipped the browser checks: ${CHROMIUM} is not installed (apt-get install chromium)`);

const tmp = mkdtempSync(join(tmpdir(), "nestlab-report-"));
const outDir = join("tests", "cli", "out");
const file = join(tmp, "report.html");
const args = ["compare", "--stacks", "native,vm,npv", "--workloads", "cpuid,pio,compute", "--iters", "20"];
let run: ReturnType<typeof nestlab>;
let doc: CompareDocument;
let html: string;

beforeAll(() => {
  run = nestlab([...args, "--json", "--jobs", "1", "--report", file]);
  doc = JSON.parse(run.stdout) as CompareDocument;
  html = readFileSync(file, "utf8");
}, 180_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("the HTML report", () => {
  it("is one self-contained file: no script, no external resource", () => {
    expect(run.status).toBe(0);
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|\bsrc=|url\(/i);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/)/); // only SVG's namespace URIs
  });

  it("holds the command line, the version, the table and every primitive with its value and source", () => {
    expect(html).toContain(`nestlab ${args.join(" ")} --json --jobs 1 --report ${file}`);
    expect(html).toMatch(/nestlab 0\.1\.0 · profile <b>cascadelake-kvm<\/b> \(2\.5 GHz\)/);
    const vm = doc.cells.find((c) => c.workload === "cpuid" && c.stack === "vm")!;
    expect(html).toContain(`<td class="n">${vm.cyclesPerIter}</td><td class="n">${vm.nsPerIter.toFixed(1)}</td>`);
    const rows = html.slice(html.indexOf('<table id="profile">')).match(/<tr><td><code>/g) ?? [];
    expect(rows).toHaveLength(PRIMITIVES.length);
    expect(html).toMatch(/<code>vmx\.exit<\/code><\/td><td>[^<]+<\/td><td class="n">130<\/td><td>PVM paper/);
  });

  it.skipIf(!HAVE_CHROMIUM)(
    "renders in headless Chromium with no console error, and the charts hold the expected series",
    async () => {
      const { context, close } = await launchChromium();
      try {
        const { page, errors } = await pageWithErrors(context);
        await page.goto(pathToFileURL(file).href, { waitUntil: "load" });
        const charts = await page.$$eval("figure", (figs) =>
          figs.map((f) => {
            const svg = f.querySelector("svg")!;
            const box = svg.getBoundingClientRect();
            const series = JSON.parse(f.dataset.series ?? "[]") as { name: string; color: string }[];
            return {
              id: f.id,
              width: box.width,
              height: box.height,
              texts: [...svg.querySelectorAll("text")].map((t) => t.textContent ?? ""),
              series: series.map((s) => ({
                name: s.name,
                // bars of this colour, plus the legend's icon
                paths: svg.querySelectorAll(`path[fill="${s.color}"]`).length,
              })),
            };
          }),
        );
        mkdirSync(outDir, { recursive: true });
        await page.screenshot({ path: join(outDir, "report.png"), fullPage: true });
        expect(errors).toEqual([]);
        expect(charts.map((c) => c.id)).toEqual(["chart-cycles", "chart-ledger", "chart-exits"]);
        for (const c of charts) {
          expect(c.width).toBeGreaterThan(500);
          expect(c.height).toBeGreaterThan(200);
          for (const s of c.series) expect(c.texts).toContain(s.name); // the legend
        }
        const measured = doc.cells.filter((c) => c.ok && c.iterations > 0);
        // cycles per iteration: one bar per measured cell, one series per stack, workloads on the axis
        const cycles = charts[0];
        expect(cycles.series.map((s) => s.name)).toEqual(["native", "vm", "npv"]);
        for (const s of cycles.series) {
          expect(s.paths - 1).toBe(measured.filter((c) => c.stack === s.name).length);
        }
        for (const w of doc.workloads) expect(cycles.texts).toContain(w);
        expect(cycles.texts).toContain("100,000"); // the log axis reaches compute's ~245,000
        // where the cycles go: a bar per measured cell, series by level × category from the ledger
        const ledger = charts[1];
        for (const c of measured) expect(ledger.texts).toContain(`${c.workload} · ${c.stack}`);
        expect(ledger.series.map((s) => s.name)).toEqual(
          expect.arrayContaining(["L0 handler", "L0 transition", "L1 guest", "L2 guest"]),
        );
        // exits per iteration: a series per stack and level, a bar per workload where it exits
        const exits = charts[2];
        expect(exits.series.map((s) => s.name)).toEqual(["vm L0", "npv L0", "npv L1"]);
        for (const s of exits.series) {
          const [stack, level] = s.name.split(" ");
          const bars = measured.filter((c) => c.stack === stack && (c.exitsPerIter[level] ?? 0) > 0).length;
          expect(s.paths - 1).toBe(bars);
        }
      } finally {
        await close();
      }
    },
    30_000,
  );
});
