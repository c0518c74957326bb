/**
 * `nestlab sweep` on this machine's threads: the unscaled variant's cells are compare's cells,
 * a scaled primitive moves exactly the cells that charge it, and the JSON, CSV and HTML agree.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProfile } from "../../src/cost/profile.js";
import type { CompareDocument } from "../../src/report/compare-doc.js";
import type { SweepDocument } from "../../src/report/sweep.js";
import { nestlab, nestlabAsync } from "./cli-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "nestlab-sweep-"));
const report = join(tmp, "sweep.html");
const grid = ["--stacks", "native,vm", "--workloads", "cpuid,pio", "--iters", "10"];
let sweep: SweepDocument;
let compare: CompareDocument;
const withoutWall = <T extends { wallSeconds: number }>(c: T) => ({ ...c, wallSeconds: 0 });

beforeAll(async () => {
  const r = await nestlabAsync([
    "sweep",
    ...grid,
    "--scale",
    "l0.cpuid=0.5",
    "--jobs",
    "2",
    "--json",
    "--report",
    report,
  ]);
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  sweep = JSON.parse(r.stdout) as SweepDocument;
  compare = JSON.parse((await nestlabAsync(["compare", ...grid, "--jobs", "1", "--json"])).stdout) as CompareDocument;
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("nestlab sweep", () => {
  it("measures its unscaled variant exactly as compare does", () => {
    expect(sweep.variants).toBe(2);
    expect(sweep.cells).toHaveLength(8);
    const unscaled = sweep.cells.filter((c) => c.variant.scale === null);
    expect(unscaled.map(({ key, variant, ratioToNative, ...c }) => withoutWall(c))).toEqual(
      compare.cells.map(withoutWall),
    );
    expect(sweep.ranOn).toBe("2 thread(s)");
  });

  it("moves only the cells that charge the scaled primitive, by its scaled cost per exit (wiring)", () => {
    const l0cpuid = loadProfile("cascadelake-kvm").cost("l0.cpuid");
    const find = (w: string, s: string, scaled: boolean) =>
      sweep.cells.find((c) => c.workload === w && c.stack === s && (c.variant.scale !== null) === scaled)!;
    expect(find("cpuid", "vm", false).cyclesPerIter - find("cpuid", "vm", true).cyclesPerIter).toBe(l0cpuid / 2);
    for (const [w, s] of [
      ["cpuid", "native"],
      ["pio", "native"],
      ["pio", "vm"],
    ])
      expect(find(w, s, true).cyclesPerIter).toBe(find(w, s, false).cyclesPerIter);
    expect(sweep.sensitivity?.map((r) => [r.workload, r.baseOrder, r.changes.length])).toEqual([
      ["cpuid", "native < vm", 0],
      ["pio", "native < vm", 0],
    ]);
  });

  it("writes CSV with a row per cell and an HTML report with every cell", async () => {
    const csv = await nestlabAsync(["sweep", ...grid, "--stacks", "native", "--csv", "--jobs", "1"]);
    expect(csv.status).toBe(0);
    const lines = csv.stdout.trim().split("\n");
    expect(lines[0]).toBe(
      "profile,npv_map,ept_pages,l1_ept_pages,scaled,workload,stack,ok,cycles_per_iter,ns_per_iter,ratio_to_native,exits_per_iter,message",
    );
    const cpuid = sweep.cells.find((c) => c.workload === "cpuid" && c.stack === "native")!;
    expect(lines[1]).toBe(
      `cascadelake-kvm,demand,4k,4k,,cpuid,native,1,${cpuid.cyclesPerIter},${cpuid.nsPerIter},1,,ok`,
    );
    const html = readFileSync(report, "utf8");
    expect(html).not.toMatch(/<script/i);
    expect(html.match(/<tr><td>cascadelake-kvm npv-map=demand ept-pages=4k /g)).toHaveLength(8);
    expect(html).toContain('id="sensitivity"');
    expect(html).toContain('id="chart-v0-cycles"');
  });

  it("refuses a bad grid before any work", () => {
    const bad = nestlab(["sweep", "--ept-pages", "4k,3m"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown EPT page size "3m"; choose from 4k, 2m, 1g/);
    const scale = nestlab(["sweep", "--scale", "l0.nothing=2"]);
    expect(scale.status).toBe(2);
    expect(scale.stderr).toMatch(/PRIMITIVE=FACTOR/);
  });
});
