/**
 * The refactoring guard: `nestlab compare` (the whole suite on every stack, N and 2N runs) must
 * give the same cycles per iteration, instructions and exits per iteration, cell for cell, as
 * the golden file recorded from `node bin/nestlab.js compare --json` (wall time aside). A cell
 * that moves is either a regression or a named fix that updates the golden in its own commit.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bundledKernelPath, packageRoot } from "../../src/paths.js";
import { type CompareCell, measureCell } from "../../src/report/cell.js";

interface Golden {
  stacks: string[];
  workloads: string[];
  cells: CompareCell[];
}

const golden = JSON.parse(readFileSync(join(packageRoot(), "tests/golden/compare.json"), "utf8")) as Golden;
const image = new Uint8Array(readFileSync(bundledKernelPath()));
// The compare command's defaults (src/cli/main.ts).
const opts = {
  stacks: golden.stacks,
  workloads: golden.workloads,
  memory: 256 * 1024 * 1024,
  maxInstructions: 500_000_000,
};

/** The fields the golden recorded, without wall time (fields added to cells later are not compared). */
function comparable(c: CompareCell, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (k !== "wallSeconds") out[k] = (c as unknown as Record<string, unknown>)[k];
  return out;
}

describe("compare matches the golden cell for cell (cycles, instructions, exits)", () => {
  it("covers every stack × workload", () => {
    expect(golden.cells.length).toBe(golden.stacks.length * golden.workloads.length);
  });
  for (const want of golden.cells) {
    it(`${want.workload} on ${want.stack}`, () => {
      const got = measureCell(want.stack, want.workload, opts, image);
      const keys = Object.keys(want);
      expect(comparable(got, keys)).toEqual(comparable(want, keys));
    });
  }
});
