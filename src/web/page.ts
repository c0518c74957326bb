/**
 * The browser page: pick a stack, a workload and a profile; the simulator runs in a Web Worker
 * (worker.ts) and this draws what it streams — the guest console, the layers with their exits
 * (live counts by level and reason), a rolling timeline of the latest slices, and the ledger.
 */
import type { LedgerLine } from "../cost/ledger.js";
import type { LiveExit, LiveSlice, LiveSnapshot } from "./live-recorder.js";
import type { Catalog, RunRequest, RunSummary, WorkerMessage } from "./protocol.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const CATEGORY_COLORS: Record<string, string> = {
  run: "#4e79a7",
  entry: "#9c9c9c",
  exit: "#e15759",
  handler: "#f28e2b",
  hypercall: "#76b7b2",
  "world-switch": "#b07aa1",
  engine: "#59a14f",
  charged: "#edc948",
};
const LEVEL_NAMES: Record<number, string> = {
  0: "L0 — the host hypervisor (KVM-like)",
  1: "L1 — its guest",
  2: "L2 — the nested guest",
};

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

function el(tag: string, attrs: Record<string, string> = {}, text?: string): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fillSelect(sel: HTMLSelectElement, items: { name: string; description?: string }[], chosen: string): void {
  sel.replaceChildren(
    ...items.map((it) => {
      const o = el("option", { value: it.name }, it.name) as HTMLOptionElement;
      if (it.description) o.title = it.description;
      o.selected = it.name === chosen;
      return o;
    }),
  );
}

/** Exits so far by level of the guest that took them, then reason (most frequent first). */
function exitsByLevel(exits: readonly LiveExit[]): Map<number, [string, number][]> {
  const out = new Map<number, [string, number][]>();
  for (const e of exits) {
    const list = out.get(e.takenAt) ?? [];
    list.push([e.reason, e.count]);
    out.set(e.takenAt, list);
  }
  for (const list of out.values()) list.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return out;
}

/** The layers, top (the innermost guest) to bottom (L0), each with the exits its guest took. */
function drawLayers(s: LiveSnapshot): void {
  const byLevel = exitsByLevel(s.exits);
  const levels = new Set<number>([0, ...byLevel.keys()]);
  for (const k of Object.keys(s.ledger)) levels.add(Number(k.split("/")[0]));
  const boxes = [...levels]
    .sort((a, b) => b - a)
    .map((level) => {
      const box = el("div", { class: `layer level-${level}`, "data-level": `L${level}` });
      box.append(el("h3", {}, LEVEL_NAMES[level] ?? `L${level}`));
      const list = byLevel.get(level) ?? [];
      if (level > 0) {
        const total = list.reduce((a, [, n]) => a + n, 0);
        box.append(el("p", { class: "exit-total" }, `${fmt(total)} VM exits to L0`));
        const max = Math.max(1, ...list.map(([, n]) => n));
        const table = el("table", { class: "exits" });
        for (const [reason, n] of list) {
          const tr = el("tr", { "data-exit": `L${level}.${reason}`, "data-count": String(n) });
          tr.append(el("td", {}, reason), el("td", { class: "n" }, fmt(n)));
          const bar = el("td", { class: "bar" });
          bar.append(el("span", { style: `width:${(100 * n) / max}%` }));
          tr.append(bar);
          table.append(tr);
        }
        box.append(table);
      } else {
        const handled = s.exits.reduce((a, e) => a + e.count, 0);
        box.append(el("p", { class: "exit-total" }, `handled ${fmt(handled)} exits`));
      }
      return box;
    });
  $("layers").replaceChildren(...boxes);
}

/** The latest slices on one row per track, over the time they span. */
function drawTimeline(s: LiveSnapshot): void {
  const canvas = $<HTMLCanvasElement>("timeline");
  const ctx = canvas.getContext("2d");
  if (ctx === null || s.slices.length === 0) return;
  const tracks = s.tracks.filter((t) => s.slices.some((x) => x.pid === t.pid && x.tid === t.tid));
  tracks.sort((a, b) => b.pid - a.pid || a.tid - b.tid);
  const rowH = 22;
  const labelW = 130;
  canvas.height = Math.max(1, tracks.length) * rowH + 18;
  const w = canvas.width - labelW;
  const t0 = Math.min(...s.slices.map((x) => x.start));
  const t1 = Math.max(...s.slices.map((x) => x.start + x.dur));
  const scale = w / Math.max(1, t1 - t0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "11px system-ui, sans-serif";
  tracks.forEach((t, row) => {
    const y = row * rowH;
    ctx.fillStyle = "#333";
    ctx.fillText(t.name, 2, y + 15);
    const on = (x: LiveSlice) => x.pid === t.pid && x.tid === t.tid;
    for (const x of s.slices.filter(on)) {
      ctx.fillStyle = CATEGORY_COLORS[x.cat] ?? "#bab0ac";
      ctx.fillRect(labelW + (x.start - t0) * scale, y + 3, Math.max(1, x.dur * scale), rowH - 6);
    }
  });
  ctx.fillStyle = "#555";
  ctx.fillText(`${fmt(t1 - t0)} cycles: ${fmt(t0)} … ${fmt(t1)}`, labelW, tracks.length * rowH + 13);
}

function drawLedger(ledger: Record<string, number>): void {
  const rows = Object.entries(ledger)
    .filter(([, c]) => c > 0)
    .sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((a, [, c]) => a + c, 0);
  const table = $("ledger");
  table.replaceChildren(el("tr", {}, ""));
  table.firstElementChild?.append(
    el("th", {}, "level"),
    el("th", {}, "category"),
    el("th", {}, "cycles"),
    el("th", {}, "share"),
  );
  for (const [k, c] of rows) {
    const [level, category] = k.split("/");
    const tr = el("tr", { "data-ledger": k, "data-cycles": String(c) });
    const bar = el("td", { class: "bar" });
    bar.append(el("span", { style: `width:${(100 * c) / Math.max(1, total)}%` }));
    tr.append(el("td", {}, `L${level}`), el("td", {}, category), el("td", { class: "n" }, fmt(c)), bar);
    table.append(tr);
  }
}

function drawSnapshot(s: LiveSnapshot): void {
  $("clock").textContent = `${fmt(s.cycles)} simulated cycles`;
  drawLayers(s);
  drawTimeline(s);
  drawLedger(s.ledger);
}

/** Exits by the level that handled them, as `nestlab run` reports them. */
function drawSummary(r: RunSummary): void {
  const sum = $("summary");
  sum.replaceChildren(
    el(
      "p",
      { class: r.ok ? "ok" : "fail", "data-outcome": r.outcome },
      `${r.workload} on ${r.stack} (${r.profile}): ${r.message}. ${fmt(r.instructions)} instructions, ${fmt(r.cycles)} cycles (${(r.cycles / r.ghz / 1e6).toFixed(3)} ms simulated at ${r.ghz} GHz) in ${r.wallSeconds.toFixed(2)} s wall.`,
    ),
  );
  const table = el("table", { id: "handled-exits" });
  table.append(el("tr", {}, ""));
  table.firstElementChild?.append(
    el("th", {}, "handled by"),
    el("th", {}, "taken by"),
    el("th", {}, "reason"),
    el("th", {}, "exits"),
  );
  for (const e of r.exits) {
    const tr = el("tr", {
      "data-handled": `L${e.handledBy}.${e.reason}`,
      "data-taken": `L${e.takenAt}`,
      "data-count": String(e.count),
    });
    tr.append(
      el("td", {}, `L${e.handledBy}`),
      el("td", {}, `L${e.takenAt}`),
      el("td", {}, e.reason),
      el("td", { class: "n" }, fmt(e.count)),
    );
    table.append(tr);
  }
  sum.append(table);
  const byLevelCategory: Record<string, number> = {};
  for (const l of r.ledger as LedgerLine[]) {
    const k = `${l.level}/${l.category}`;
    byLevelCategory[k] = (byLevelCategory[k] ?? 0) + l.cycles;
  }
  drawLedger(byLevelCategory);
}

function start(): void {
  const worker = new Worker(new URL("worker.js", import.meta.url), { type: "module" });
  const runButton = $<HTMLButtonElement>("run");
  const status = $("status");
  const consoleEl = $("console");
  worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
    const m = e.data;
    switch (m.type) {
      case "catalog":
        fillCatalog(m.catalog);
        runButton.disabled = false;
        status.textContent = "ready";
        break;
      case "serial":
        consoleEl.textContent += m.text;
        consoleEl.scrollTop = consoleEl.scrollHeight;
        break;
      case "live":
        drawSnapshot(m.snapshot);
        break;
      case "done":
        drawSummary(m.summary);
        status.textContent = `done: ${m.summary.message}`;
        status.dataset.state = "done";
        runButton.disabled = false;
        break;
      case "error":
        status.textContent = `error: ${m.message}`;
        status.dataset.state = "error";
        runButton.disabled = false;
        break;
    }
  };
  worker.onerror = (e) => {
    status.textContent = `the simulator worker failed: ${e.message}`;
    status.dataset.state = "error";
  };
  runButton.onclick = () => {
    const iters = Number($<HTMLInputElement>("iters").value);
    const req: RunRequest = {
      type: "run",
      stack: $<HTMLSelectElement>("stack").value,
      workload: $<HTMLSelectElement>("workload").value,
      profile: $<HTMLSelectElement>("profile").value,
      npvMap: $<HTMLSelectElement>("npv-map").value as RunRequest["npvMap"],
      ...(iters > 0 ? { iters } : {}),
    };
    consoleEl.textContent = "";
    $("summary").replaceChildren();
    status.textContent = `running ${req.workload} on ${req.stack}…`;
    status.dataset.state = "running";
    runButton.disabled = true;
    worker.postMessage(req);
  };
}

function fillCatalog(c: Catalog): void {
  fillSelect($("stack"), c.stacks, c.stacks.find((s) => s.name === "npv")?.name ?? c.stacks[0].name);
  fillSelect($("workload"), c.workloads, "cpuid");
  fillSelect(
    $("profile"),
    c.profiles.map((name) => ({ name })),
    c.defaultProfile,
  );
  const legend = $("legend");
  legend.replaceChildren(
    ...Object.entries(CATEGORY_COLORS).map(([cat, color]) => {
      const s = el("span", { class: "key" }, cat);
      s.prepend(el("i", { style: `background:${color}` }));
      return s;
    }),
  );
}

start();
