/**
 * The report's charts, drawn by Apache ECharts on the server side as SVG (no script in the page):
 * cycles per iteration (log axis), where the cycles go (ledger share by level × category), and
 * exits per iteration by level.
 */
import * as echarts from "echarts";
import type { CompareDocument } from "./compare-doc.js";
import { findCell } from "./compare-doc.js";

export interface Chart {
  id: string;
  title: string;
  /** The series the chart draws, in legend order. */
  series: string[];
  svg: string;
}

const WIDTH = 960;

function render(option: echarts.EChartsOption, height: number): string {
  const chart = echarts.init(null, null, { renderer: "svg", ssr: true, width: WIDTH, height });
  chart.setOption({ animation: false, textStyle: { fontFamily: "sans-serif" }, ...option });
  const svg = chart.renderToSVGString();
  chart.dispose();
  return svg;
}

const measured = (doc: CompareDocument, w: string, s: string) => {
  const c = findCell(doc, w, s);
  return c?.ok === true && c.iterations > 0 ? c : undefined;
};

/** Cycles per iteration per stack and workload, log axis (native's 27 and compute's 245,000 side by side). */
export function cyclesChart(doc: CompareDocument): Chart {
  const series = doc.stacks;
  const svg = render(
    {
      legend: { data: series, top: 0 },
      grid: { left: 80, right: 20, top: 40, bottom: 60 },
      xAxis: { type: "category", data: doc.workloads, axisLabel: { interval: 0, rotate: 30 } },
      yAxis: { type: "log", name: "cycles / iteration", logBase: 10 },
      series: series.map((s) => ({
        name: s,
        type: "bar",
        data: doc.workloads.map((w) => measured(doc, w, s)?.cyclesPerIter ?? null),
      })),
    },
    420,
  );
  return { id: "cycles", title: "Cycles per iteration (log scale)", series, svg };
}

/** Where the cycles of one iteration go: each bar a cell, split by level × category, as shares. */
export function ledgerChart(doc: CompareDocument): Chart {
  const bars: { label: string; shares: Map<string, number> }[] = [];
  const keys = new Set<string>();
  for (const w of doc.workloads) {
    for (const s of doc.stacks) {
      const c = measured(doc, w, s);
      if (c === undefined) continue;
      const parts = c.ledgerPerIter.filter((p) => p.cycles > 0);
      const total = parts.reduce((n, p) => n + p.cycles, 0);
      if (total <= 0) continue;
      const shares = new Map<string, number>();
      for (const p of parts) {
        const key = `L${p.level} ${p.category}`;
        keys.add(key);
        shares.set(key, (shares.get(key) ?? 0) + (100 * p.cycles) / total);
      }
      bars.push({ label: `${w} · ${s}`, shares });
    }
  }
  const series = [...keys].sort();
  const svg = render(
    {
      legend: { data: series, top: 0, type: "plain" },
      grid: { left: 150, right: 30, top: 60, bottom: 40 },
      xAxis: { type: "value", max: 100, name: "% of the cycles of an iteration" },
      yAxis: { type: "category", data: bars.map((b) => b.label), inverse: true, axisLabel: { interval: 0 } },
      series: series.map((k) => ({
        name: k,
        type: "bar",
        stack: "share",
        data: bars.map((b) => Math.round((b.shares.get(k) ?? 0) * 10) / 10),
      })),
    },
    110 + 18 * bars.length,
  );
  return { id: "ledger", title: "Where the cycles go (ledger, per iteration, by level × category)", series, svg };
}

/** Exits per iteration, one series per stack and level (L0: handled by L0; L1: forwarded to L1). */
export function exitsChart(doc: CompareDocument): Chart {
  const series: { name: string; stack: string; level: string }[] = [];
  for (const s of doc.stacks) {
    const levels = new Set(doc.cells.filter((c) => c.stack === s).flatMap((c) => Object.keys(c.exitsPerIter)));
    for (const l of [...levels].sort()) series.push({ name: `${s} ${l}`, stack: s, level: l });
  }
  const svg = render(
    {
      legend: { data: series.map((x) => x.name), top: 0 },
      grid: { left: 80, right: 20, top: 40, bottom: 60 },
      xAxis: { type: "category", data: doc.workloads, axisLabel: { interval: 0, rotate: 30 } },
      yAxis: { type: "value", name: "exits / iteration" },
      series: series.map((x) => ({
        name: x.name,
        type: "bar",
        data: doc.workloads.map((w) => measured(doc, w, x.stack)?.exitsPerIter[x.level] ?? 0),
      })),
    },
    380,
  );
  return {
    id: "exits",
    title: "VM exits per iteration, by the level that handled them",
    series: series.map((x) => x.name),
    svg,
  };
}
