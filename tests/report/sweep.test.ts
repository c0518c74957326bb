/** A sweep's grid, scaled profiles and the order-of-stacks analysis, without running cells. */
import { describe, expect, it } from "vitest";
import { loadProfile } from "../../src/cost/profile.js";
import type { CompareCell } from "../../src/report/cell.js";
import {
  assumedPrimitives,
  type SweepCell,
  type SweepGrid,
  sensitivity,
  stackOrder,
  sweepTasks,
  sweepVariants,
  type Variant,
  variantProfile,
} from "../../src/report/sweep.js";

const grid = (g: Partial<SweepGrid>): SweepGrid => ({
  stacks: ["native", "vm", "npv"],
  workloads: ["cpuid", "pio"],
  profiles: ["cascadelake-kvm"],
  npvMap: ["demand"],
  eptPages: ["4k"],
  scalings: [],
  sensitivity: false,
  ...g,
});
const base = { memory: 64 * 1024 * 1024, maxInstructions: 1e8 };

describe("a sweep's grid", () => {
  it("is variants × workloads × stacks, each scaling one at a time beside the unscaled variant", () => {
    const g = grid({
      profiles: ["cascadelake-kvm", "epyc-kvm"],
      npvMap: ["demand", "eager"],
      eptPages: ["4k", "2m"],
      scalings: [
        { primitive: "l0.cpuid", factor: 0.5 },
        { primitive: "l0.cpuid", factor: 2 },
      ],
    });
    expect(sweepVariants(g)).toHaveLength(2 * 2 * 2 * 3);
    const tasks = sweepTasks(g, base);
    expect(tasks).toHaveLength(24 * 2 * 3);
    expect(new Set(tasks.map((t) => t.key)).size).toBe(tasks.length);
    const t = tasks.find((x) => x.key === "epyc-kvm npv-map=eager ept-pages=2m l0.cpuid×2 pio npv")!;
    expect(t.opts.npvMap).toBe("eager");
    expect(t.opts.l0).toEqual({ eptPages: "2m" });
    expect(loadProfile(t.opts.profile).cost("l0.cpuid")).toBe(2 * loadProfile("epyc-kvm").cost("l0.cpuid"));
  });

  it("scales exactly the named primitive and says so in its source", () => {
    const v: Variant = {
      profile: "cascadelake-kvm",
      npvMap: "demand",
      eptPages: "4k",
      scale: { primitive: "vmx.exit", factor: 0.5 },
    };
    const scaled = loadProfile(variantProfile(v));
    const plain = loadProfile("cascadelake-kvm");
    for (const [name, entry] of Object.entries(plain.profile.costs)) {
      expect(scaled.profile.costs[name].cycles).toBe(name === "vmx.exit" ? entry.cycles / 2 : entry.cycles);
    }
    expect(scaled.profile.costs["vmx.exit"].source).toMatch(/scaled ×0\.5 by a sweep\)$/);
    expect(() => variantProfile({ ...v, scale: { primitive: "no.such", factor: 2 } })).toThrow(
      /no primitive "no.such"/,
    );
    expect(() => variantProfile({ ...v, scale: { primitive: "l0.cpuid", factor: 10_000 } })).toThrow(
      /must be <= 1000000/,
    );
  });

  it("with --sensitivity, scales every primitive whose source says assumption, ×0.5 and ×2", () => {
    const assumed = assumedPrimitives("cascadelake-kvm");
    const costs = loadProfile("cascadelake-kvm").profile.costs;
    expect(assumed).toEqual(
      Object.keys(costs)
        .filter((k) => costs[k].source.toLowerCase().includes("assumption"))
        .sort(),
    );
    expect(assumed).toContain("insn.base");
    expect(assumed).not.toContain("insn.cpuid"); // Turtles §4.3
    const variants = sweepVariants(grid({ sensitivity: true }));
    expect(variants).toHaveLength(1 + 2 * assumed.length);
    expect(variants.filter((v) => v.scale?.primitive === "insn.base").map((v) => v.scale?.factor)).toEqual([0.5, 2]);
  });
});

describe("the order of the stacks", () => {
  const v = (scale: Variant["scale"]): Variant => ({
    profile: "cascadelake-kvm",
    npvMap: "demand",
    eptPages: "4k",
    scale,
  });
  const cell = (stack: string, cyclesPerIter: number, variant: Variant, ok = true): SweepCell =>
    ({
      stack,
      workload: "cpuid",
      ok,
      iterations: 10,
      cyclesPerIter,
      key: "",
      variant,
      ratioToNative: null,
    }) as Partial<CompareCell> as SweepCell;

  it("lists stacks fastest first, joins equal ones and leaves out failed cells", () => {
    const u = v(null);
    expect(stackOrder([cell("vm", 1357, u), cell("native", 107, u), cell("npv", 1357, u)])).toBe("native < vm = npv");
    expect(stackOrder([cell("vm", 1357, u), cell("native", 107, u), cell("npv", 5, u, false)])).toBe("native < vm");
  });

  it("names the scalings that change it, per workload", () => {
    const a = { primitive: "l0.cpuid", factor: 0.5 };
    const b = { primitive: "vmx.exit", factor: 2 };
    const cells = [
      cell("native", 100, v(null)),
      cell("vm", 1000, v(null)),
      cell("npv", 900, v(null)),
      cell("native", 100, v(a)),
      cell("vm", 800, v(a)),
      cell("npv", 850, v(a)),
      cell("native", 100, v(b)),
      cell("vm", 2000, v(b)),
      cell("npv", 1900, v(b)),
    ];
    const rows = sensitivity(grid({ workloads: ["cpuid"], scalings: [a, b] }), cells);
    expect(rows).toEqual([
      {
        profile: "cascadelake-kvm",
        npvMap: "demand",
        eptPages: "4k",
        workload: "cpuid",
        baseOrder: "native < npv < vm",
        changes: [{ scale: "l0.cpuid×0.5", order: "native < vm < npv" }],
        unchanged: 1,
      },
    ]);
  });
});
