/**
 * The report's charts, drawn by Apache ECharts on the server side as SVG (no script in the page):
 * cycles per iteration (log axis), where the cycles go (ledger share by level × category), and
 * exits per iteration by level.
 */
import * as echarts from "echarts";
import type { CompareDocument } from "./compare-doc.js";
import { findCell } from "./compare-doc.js";

export interface ChartSeries {
  name: string;
  color: string;
}

export interface Chart {
  id: string;
  title: string;
  /** The series the chart draws, in legend order, each with the colour of its bars. */
  series: ChartSeries[];
  svg: string;
}

const WIDTH = 960;
/** Colour-blind-safe qualitative palette (Okabe–Ito, then Tableau's). */
const PALETTE = [
  "#0072b2",
  "#e69f00",
  "#009e73",
  "#cc79a7",
  "#56b4e9",
  "#d55e00",
  "#f0e442",
  "#000000",
  "#9c755f",
  "#bab0ac",
  "#76b7b2",
  "#ff9da7",
];

const coloured = (names: string[]): ChartSeries[] =>
  names.map((name, i) => ({ name, color: PALETTE[i % PALETTE.length] }));

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
  const series = coloured(doc.stacks);
  const svg = render(
    {
      legend: { data: series.map((x) => x.name), top: 0 },
      grid: { left: 80, right: 20, top: 40, bottom: 60 },
      xAxis: { type: "category", data: doc.workloads, axisLabel: { interval: 0, rotate: 30 } },
      yAxis: { type: "log", name: "cycles / iteration", logBase: 10 },
      series: series.map((x) => ({
        name: x.name,
        type: "bar",
        itemStyle: { color: x.color },
        data: doc.workloads.map((w) => measured(doc, w, x.name)?.cyclesPerIter ?? null),
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
  const series = coloured([...keys].sort());
  const svg = render(
    {
      legend: { data: series.map((x) => x.name), top: 0, type: "plain" },
      grid: { left: 150, right: 30, top: 60, bottom: 50 },
      xAxis: { type: "value", max: 100, name: "% of the cycles of an iteration", nameLocation: "middle", nameGap: 28 },
      yAxis: { type: "category", data: bars.map((b) => b.label), inverse: true, axisLabel: { interval: 0 } },
      series: series.map((x) => ({
        name: x.name,
        type: "bar",
        stack: "share",
        itemStyle: { color: x.color },
        data: bars.map((b) => Math.round((b.shares.get(x.name) ?? 0) * 10) / 10),
      })),
    },
    110 + 18 * bars.length,
  );
  return { id: "ledger", title: "Where the cycles go (ledger, per iteration, by level × category)", series, svg };
}

/** Exits per iteration, one series per stack and level (L0: handled by L0; L1: forwarded to L1). */
export function exitsChart(doc: CompareDocument): Chart {
  const found: { stack: string; level: string }[] = [];
  for (const s of doc.stacks) {
    const levels = new Set(doc.cells.filter((c) => c.stack === s).flatMap((c) => Object.keys(c.exitsPerIter)));
    for (const level of [...levels].sort()) found.push({ stack: s, level });
  }
  const series = coloured(found.map((x) => `${x.stack} ${x.level}`)).map((x, i) => ({ ...x, ...found[i] }));
  const svg = render(
    {
      legend: { data: series.map((x) => x.name), top: 0 },
      grid: { left: 80, right: 20, top: 40, bottom: 60 },
      xAxis: { type: "category", data: doc.workloads, axisLabel: { interval: 0, rotate: 30 } },
      yAxis: { type: "value", name: "exits / iteration" },
      series: series.map((x) => ({
        name: x.name,
        type: "bar",
        itemStyle: { color: x.color },
        data: doc.workloads.map((w) => measured(doc, w, x.stack)?.exitsPerIter[x.level] ?? null),
      })),
    },
    380,
  );
  return {
    id: "exits",
    title: "VM exits per iteration, by the level that handled them",
    series: series.map(({ name, color }) => ({ name, color })),
    svg,
  };
}
