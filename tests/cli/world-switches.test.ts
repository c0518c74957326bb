/** compare's table and CSV show the world switches per iteration of the cells that count them (nvmx*). */
import { describe, expect, it } from "vitest";
import type { CompareCell } from "../../src/report/cell.js";
import type { CompareDocument } from "../../src/report/compare-doc.js";
import { renderCsv, renderTable } from "../../src/report/table.js";

function cell(stack: string, ws?: Record<string, number>): CompareCell {
  return {
    stack,
    workload: "cpuid",
    ok: true,
    message: "ok",
    iterations: 10,
    cyclesPerIter: 100,
    nsPerIter: 40,
    exitsPerIter: { L0: 1 },
    exitReasonsPerIter: {},
    instructions: 1,
    wallSeconds: 0,
    stop: "debug-exit",
    topExits: [],
    ledgerPerIter: [],
    ...(ws === undefined ? {} : { worldSwitchesPerIter: ws }),
  };
}

const doc: CompareDocument = {
  stacks: ["vm", "nvmx"],
  workloads: ["cpuid"],
  profile: "p",
  ghz: 2.5,
  iters: null,
  wallSeconds: 0,
  cells: [cell("vm"), cell("nvmx", { "L2-L0": 1.02, "L1-L0": 9.14 })],
};

describe("world switches in compare's output", () => {
  it("the table lists them for the cells that have them", () => {
    const t = renderTable(doc);
    expect(t).toContain("World switches per iteration");
    const row = t.split("\n").find((l) => /^\s+cpuid\s+nvmx\s/.test(l));
    expect(row?.trim().split(/\s+/)).toEqual(["cpuid", "nvmx", "9.14", "1.02"]);
    expect(t.split("\n").some((l) => /^\s+cpuid\s+vm\s/.test(l))).toBe(false);
  });
  it("the CSV has a column per kind, empty for cells without", () => {
    const [header, vm, nvmx] = renderCsv(doc).trim().split("\n");
    const cols = header.split(",");
    const i = cols.indexOf("world_switches_per_iter_L1-L0");
    expect(cols[i + 1]).toBe("world_switches_per_iter_L2-L0");
    expect(vm.split(",")[i]).toBe("");
    expect(nvmx.split(",").slice(i, i + 2)).toEqual(["9.14", "1.02"]);
  });
});
