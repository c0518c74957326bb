/**
 * The refactoring guard: `nestlab compare` (the whole suite on every stack, N and 2N runs) must
 * give the same cycles per iteration, instructions and exits per iteration, cell for cell, as
 * the golden file recorded from `node bin/nestlab.js compare --json` (wall time aside). A cell
 * that moves is either a regression or a named fix that updates the golden in its own commit.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type CompareCell, runCell } from "../../src/cli/compare.js";
import { bundledKernelPath, packageRoot } from "../../src/paths.js";

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

/** A cell without its wall time. */
function comparable(c: CompareCell): Omit<CompareCell, "wallSeconds"> {
  const { wallSeconds: _, ...rest } = c;
  return rest;
}

describe("compare matches the golden cell for cell (cycles, instructions, exits)", () => {
  it("covers every stack × workload", () => {
    expect(golden.cells.length).toBe(golden.stacks.length * golden.workloads.length);
  });
  for (const want of golden.cells) {
    it(`${want.workload} on ${want.stack}`, () => {
      const got = runCell(want.stack, want.workload, opts, image);
      expect(comparable(got)).toEqual(comparable(want));
    });
  }
});
