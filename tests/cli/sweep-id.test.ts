/**
 * The id a resumed `sweep --queue` finds its cells by (cli/queue.ts `sweepId`): every option that
 * changes a cell's result must change it, so a resumed sweep never collects cells measured under
 * other settings; equal settings must give it again, however the options object was built.
 */
import { describe, expect, it } from "vitest";
import { bundledImages, type CellTask, sweepId } from "../../src/cli/queue.js";
import { loadProfile } from "../../src/cost/profile.js";
import { type SweepBase, type SweepGrid, sweepTasks } from "../../src/report/sweep.js";

const GRID: SweepGrid = {
  stacks: ["native", "vm"],
  workloads: ["cpuid"],
  profiles: ["cascadelake-kvm"],
  npvMap: ["demand"],
  eptPages: ["4k"],
  scalings: [],
  sensitivity: false,
};
// As the CLI builds it from its defaults (cli/main.ts, sweep).
const BASE: SweepBase = {
  memory: 256 * 1024 * 1024,
  maxInstructions: 500_000_000,
  maxCycles: 100e9,
  iters: 12,
  l0: { interceptUd: false, vmVirtio: false },
  cacheModel: true,
};
const images = bundledImages();

function id(grid: Partial<SweepGrid> = {}, base: Partial<SweepBase> = {}): string {
  const tasks: CellTask[] = sweepTasks({ ...GRID, ...grid }, { ...BASE, ...base }).map((t) => ({
    stack: t.stack,
    workload: t.workload,
    opts: t.opts,
  }));
  return sweepId(tasks, images);
}

describe("sweep --queue: the resume key", () => {
  it("is the same for the same sweep", () => {
    expect(id()).toBe(id());
    expect(id()).toMatch(/^[0-9a-f]{16}$/);
  });

  it("differs for every option that changes results", () => {
    const ids = [
      id(),
      id({}, { cacheModel: false }),
      id({}, { iters: 13 }),
      id({}, { memory: 128 * 1024 * 1024 }),
      id({}, { maxInstructions: 1_000_000 }),
      id({}, { maxCycles: 1e9 }),
      id({}, { kernelArgs: "pti=on" }),
      id({}, { l0: { interceptUd: true, vmVirtio: false } }),
      id({}, { l0: { interceptUd: false, vmVirtio: true } }),
      id({ npvMap: ["eager"] }),
      id({ eptPages: ["2m"] }),
      id({ profiles: ["epyc-kvm"] }),
      id({ scalings: [{ primitive: "vmx.exit", factor: 2 }] }),
      id({ stacks: ["native", "npv"] }),
      id({ workloads: ["syscall"] }),
    ];
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("keys the profile by its numbers: the same document by name or inline, another cost another id", () => {
    const tasks = (profile: CellTask["opts"]["profile"]): CellTask[] => [
      { stack: "vm", workload: "cpuid", opts: { ...BASE, profile } },
    ];
    const doc = loadProfile("cascadelake-kvm").profile;
    expect(sweepId(tasks(structuredClone(doc)), images)).toBe(sweepId(tasks("cascadelake-kvm"), images));
    const changed = structuredClone(doc);
    changed.costs["l0.cpuid"].cycles += 1;
    expect(sweepId(tasks(changed), images)).not.toBe(sweepId(tasks("cascadelake-kvm"), images));
  });

  it("does not depend on the order the options were written in", () => {
    const a: CellTask = { stack: "vm", workload: "cpuid", opts: { memory: 1 << 28, maxInstructions: 5e8, iters: 4 } };
    const b: CellTask = { workload: "cpuid", opts: { iters: 4, maxInstructions: 5e8, memory: 1 << 28 }, stack: "vm" };
    expect(sweepId([b], images)).toBe(sweepId([a], images));
  });

  it("differs when a guest image differs", () => {
    const kernel = images.kernel.slice();
    kernel[kernel.length - 1] ^= 1;
    expect(sweepId([], { ...images, kernel })).not.toBe(sweepId([], images));
  });
});
