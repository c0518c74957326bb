/**
 * The layer rules of DESIGN.md §3, enforced on every import in src/: arrows point down only,
 * x86/ imports nothing, and hypervisors reach the CPU only through the VmxHost interface and its
 * types (never cpu/cpu.ts or the VMX unit's internals in cpu/vmx/vmx.ts).
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";

const SRC = join(packageRoot(), "src");

/** Folder → the folders (under src/) its files may import. Every folder may import itself. */
const ALLOWED: Record<string, string[]> = {
  x86: [],
  cost: [],
  // The stats registry: counter lists and exit tables; exit-reason numbers from x86/.
  stats: ["x86"],
  mmu: ["x86"],
  cpu: ["x86", "mmu", "cost"],
  devices: ["x86", "cpu/ports.ts"],
  machine: ["x86", "cpu", "mmu", "devices", "cost"],
  hypervisors: [
    "x86",
    "mmu",
    "devices",
    "machine",
    "cost",
    "stats",
    "trace",
    // The CPU only through the narrow interface and the types it speaks in.
    "cpu/vmx/host.ts",
    "cpu/vmx/vmcs.ts",
    "cpu/ports.ts",
    "cpu/cpuid.ts",
  ],
  stacks: ["x86", "cpu", "mmu", "devices", "machine", "hypervisors", "cost", "stats", "trace"],
  // Timelines: what the ledger and L0's core tell them, in cost's and x86's terms only.
  trace: ["cost", "x86"],
  bench: ["x86", "cpu", "mmu", "machine", "cost"],
  report: ["x86", "cpu", "mmu", "devices", "machine", "hypervisors", "stacks", "cost", "stats", "paths.ts"],
  // The browser page: the simulator's stacks and reports, never Node-only modules (no paths.ts).
  web: ["x86", "machine", "stacks", "cost", "stats", "report", "trace"],
  cli: [
    "x86",
    "cpu",
    "mmu",
    "devices",
    "machine",
    "hypervisors",
    "stacks",
    "cost",
    "stats",
    "bench",
    "report",
    "trace",
    "paths.ts",
  ],
};

function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...files(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out;
}

/** Relative imports of a file, as paths under src/ ("cpu/vmx/host.ts"). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) {
    const target = resolve(dirname(file), m[1]).replace(/\.js$/, ".ts");
    out.push(relative(SRC, target).split("\\").join("/"));
  }
  return out;
}

function allowed(from: string, to: string): boolean {
  const folder = from.split("/")[0];
  if (!from.includes("/")) return true; // src/paths.ts and other root files
  if (!to.includes("/")) return folder !== "x86"; // root utilities (paths.ts) serve every layer but x86/
  if (to.split("/")[0] === folder) return true;
  const rules = ALLOWED[folder];
  if (rules === undefined) return false;
  return rules.some((r) => (r.endsWith(".ts") ? to === r : to === r || to.startsWith(`${r}/`)));
}

describe("import rules (DESIGN.md §3)", () => {
  const all = files(SRC).map((f) => relative(SRC, f).split("\\").join("/"));

  it("knows every folder of src/", () => {
    const folders = new Set(all.filter((f) => f.includes("/")).map((f) => f.split("/")[0]));
    expect([...folders].filter((f) => ALLOWED[f] === undefined)).toEqual([]);
  });

  it("every import points down the layers", () => {
    const bad: string[] = [];
    for (const f of all) {
      for (const to of importsOf(join(SRC, f))) if (!allowed(f, to)) bad.push(`${f} → ${to}`);
    }
    expect(bad).toEqual([]);
  });

  it("x86/ imports nothing, not even itself", () => {
    const bad = all.filter((f) => f.startsWith("x86/") && importsOf(join(SRC, f)).length > 0);
    expect(bad).toEqual([]);
  });

  it("catches a forbidden import (the rule can fail)", () => {
    expect(allowed("hypervisors/l0/l0.ts", "cpu/cpu.ts")).toBe(false);
    expect(allowed("hypervisors/l0/l0.ts", "cpu/vmx/vmx.ts")).toBe(false);
    expect(allowed("x86/vmx.ts", "x86/flags.ts")).toBe(true); // the folder rule; the test above forbids it
    expect(allowed("devices/lapic.ts", "machine/machine.ts")).toBe(false);
    expect(allowed("hypervisors/l0/l0.ts", "cpu/vmx/host.ts")).toBe(true);
  });
});
