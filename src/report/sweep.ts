/**
 * A sweep: a grid of cells — stacks × workloads × variants, where a variant is a profile, the
 * options `--npv-map`, `--ept-pages` and `--l1-ept-pages`, and at most one named cost primitive scaled by a factor
 * — and, for `--sensitivity`, whether scaling an assumed primitive changes the order of the stacks.
 * Pure: the CLI runs the cells (on threads or through a queue) and writes the outputs.
 */
import { type CostProfile, loadProfile } from "../cost/profile.js";
import type { L0Policy } from "../machine/tunables.js";
import type { L1EptPages } from "../stacks/stack.js";
import type { CellOptions, CompareCell } from "./cell.js";

export type NpvMap = "eager" | "demand";
export type EptPages = L0Policy["eptPages"];

/** One primitive scaled by a factor (the variant's profile has that primitive's cycles × factor). */
export interface Scaling {
  primitive: string;
  factor: number;
}

export interface Variant {
  /** A bundled profile's name. */
  profile: string;
  npvMap: NpvMap;
  eptPages: EptPages;
  /** l1hv's EPT12 leaves (bare-l1, nvmx stacks); optional in documents written before it existed. */
  l1EptPages?: L1EptPages;
  scale: Scaling | null;
}

export interface SweepGrid {
  stacks: string[];
  workloads: string[];
  profiles: string[];
  npvMap: NpvMap[];
  eptPages: EptPages[];
  /** `--l1-ept-pages` values (absent: 4k only). */
  l1EptPages?: L1EptPages[];
  /** Scalings run besides the unscaled variant, one at a time; `sensitivity` adds every assumed primitive ×0.5 and ×2. */
  scalings: Scaling[];
  sensitivity: boolean;
}

/** Options every cell shares (the rest comes from its variant). */
export type SweepBase = Omit<CellOptions, "profile" | "npvMap" | "l1EptPages">;

export interface SweepTask {
  /** Stable across runs of the same sweep: a queue's job id, a resumed sweep's key. */
  key: string;
  variant: Variant;
  stack: string;
  workload: string;
  opts: CellOptions;
}

export interface SweepCell extends CompareCell {
  key: string;
  variant: Variant;
  /** Cycles per iteration over native's in the same variant (null when either did not measure). */
  ratioToNative: number | null;
}

export interface SensitivityRow {
  profile: string;
  npvMap: NpvMap;
  eptPages: EptPages;
  l1EptPages?: L1EptPages;
  workload: string;
  /** Stacks from fastest to slowest ("a < b = c"), unscaled. */
  baseOrder: string;
  /** The scalings that change it, with the order they give. */
  changes: { scale: string; order: string }[];
  /** Scalings that left it as it is. */
  unchanged: number;
}

export interface SweepDocument {
  version: string;
  commandLine: string;
  grid: SweepGrid;
  iters: number | null;
  /** Where the cells ran: "N threads" or the queue's address. */
  ranOn: string;
  wallSeconds: number;
  variants: number;
  cells: SweepCell[];
  sensitivity?: SensitivityRow[];
}

export const SENSITIVITY_FACTORS = [0.5, 2] as const;

/** Primitives whose source in `profile` says they are assumed (docs/cost-model.md marks them so). */
export function assumedPrimitives(profile: string): string[] {
  const p = loadProfile(profile).profile;
  return Object.keys(p.costs)
    .filter((k) => /\bassumption\b/i.test(p.costs[k].source))
    .sort();
}

export const scaleLabel = (s: Scaling | null): string => (s === null ? "unscaled" : `${s.primitive}×${s.factor}`);

/** The variant's options as words; `l1-ept-pages` only when not 4k, so 4k labels (and resume keys) stay as they were. */
export function optionsLabel(v: { npvMap: NpvMap; eptPages: EptPages; l1EptPages?: L1EptPages }): string {
  const l1 = v.l1EptPages !== undefined && v.l1EptPages !== "4k" ? ` l1-ept-pages=${v.l1EptPages}` : "";
  return `npv-map=${v.npvMap} ept-pages=${v.eptPages}${l1}`;
}

export function variantLabel(v: Variant): string {
  return `${v.profile} ${optionsLabel(v)} ${scaleLabel(v.scale)}`;
}

/** The profile a variant runs with: the bundled one, or a copy with one primitive scaled. */
export function variantProfile(v: Variant): string | CostProfile {
  if (v.scale === null) return v.profile;
  const base = loadProfile(v.profile).profile;
  const entry = base.costs[v.scale.primitive];
  if (entry === undefined) throw new RangeError(`profile ${v.profile} has no primitive "${v.scale.primitive}"`);
  const scaled: CostProfile = structuredClone(base);
  scaled.costs[v.scale.primitive] = {
    cycles: entry.cycles * v.scale.factor,
    source: `${entry.source} (scaled ×${v.scale.factor} by a sweep)`,
  };
  loadProfile(scaled); // a scaling that leaves the schema's bounds fails here, before any work
  return scaled;
}

const l1Pages = (grid: SweepGrid): L1EptPages[] => grid.l1EptPages ?? ["4k"];
/** `l1EptPages` as a variant or cell option: absent for 4k, so 4k cells hash (sweep ids) as before. */
const l1Opt = (p: L1EptPages | undefined): { l1EptPages?: L1EptPages } =>
  p === undefined || p === "4k" ? {} : { l1EptPages: p };

/** Every variant of the grid, profile-major, unscaled first. */
export function sweepVariants(grid: SweepGrid): Variant[] {
  const out: Variant[] = [];
  for (const profile of grid.profiles) {
    const scalings: (Scaling | null)[] = [null, ...grid.scalings];
    if (grid.sensitivity) {
      for (const primitive of assumedPrimitives(profile))
        for (const factor of SENSITIVITY_FACTORS) scalings.push({ primitive, factor });
    }
    for (const npvMap of grid.npvMap)
      for (const eptPages of grid.eptPages)
        for (const l1EptPages of l1Pages(grid))
          for (const scale of scalings) out.push({ profile, npvMap, eptPages, ...l1Opt(l1EptPages), scale });
  }
  return out;
}

/** The grid's cells in order: variant, then workload, then stack. */
export function sweepTasks(grid: SweepGrid, base: SweepBase): SweepTask[] {
  const tasks: SweepTask[] = [];
  for (const variant of sweepVariants(grid)) {
    const profile = variantProfile(variant);
    const opts: CellOptions = {
      ...base,
      profile,
      npvMap: variant.npvMap,
      l0: { ...base.l0, eptPages: variant.eptPages },
      ...l1Opt(variant.l1EptPages),
    };
    for (const workload of grid.workloads) {
      for (const stack of grid.stacks) {
        tasks.push({ key: `${variantLabel(variant)} ${workload} ${stack}`, variant, stack, workload, opts });
      }
    }
  }
  return tasks;
}

const sameVariant = (a: Variant, b: Variant) => variantLabel(a) === variantLabel(b);

/** Attach each measured cell to its task, with its ratio to native in the same variant. */
export function sweepCells(tasks: SweepTask[], cells: CompareCell[]): SweepCell[] {
  const out: SweepCell[] = tasks.map((t, i) => ({ ...cells[i], key: t.key, variant: t.variant, ratioToNative: null }));
  for (const c of out) {
    const nat = out.find((n) => n.stack === "native" && n.workload === c.workload && sameVariant(n.variant, c.variant));
    if (c.ok && c.iterations > 0 && nat?.ok && nat.cyclesPerIter > 0) {
      c.ratioToNative = Math.round((c.cyclesPerIter / nat.cyclesPerIter) * 1000) / 1000;
    }
  }
  return out;
}

/** Stacks from fastest to slowest by cycles per iteration; equal ones joined by "=". */
export function stackOrder(cells: SweepCell[]): string {
  const measured = cells.filter((c) => c.ok && c.iterations > 0).sort((a, b) => a.cyclesPerIter - b.cyclesPerIter);
  let out = "";
  for (let i = 0; i < measured.length; i++) {
    if (i > 0) out += measured[i].cyclesPerIter === measured[i - 1].cyclesPerIter ? " = " : " < ";
    out += measured[i].stack;
  }
  return out;
}

/** Per profile, options and workload: the unscaled order of the stacks and the scalings that change it. */
export function sensitivity(grid: SweepGrid, cells: SweepCell[]): SensitivityRow[] {
  const rows: SensitivityRow[] = [];
  for (const profile of grid.profiles)
    for (const npvMap of grid.npvMap)
      for (const eptPages of grid.eptPages)
        for (const l1EptPages of l1Pages(grid))
          for (const workload of grid.workloads) {
            const opts = optionsLabel({ npvMap, eptPages, l1EptPages });
            const group = cells.filter(
              (c) => c.workload === workload && c.variant.profile === profile && optionsLabel(c.variant) === opts,
            );
            const byScale = new Map<string, SweepCell[]>();
            for (const c of group) {
              const k = scaleLabel(c.variant.scale);
              byScale.set(k, [...(byScale.get(k) ?? []), c]);
            }
            const baseOrder = stackOrder(byScale.get("unscaled") ?? []);
            const row: SensitivityRow = {
              profile,
              npvMap,
              eptPages,
              ...l1Opt(l1EptPages),
              workload,
              baseOrder,
              changes: [],
              unchanged: 0,
            };
            for (const [scale, cs] of byScale) {
              if (scale === "unscaled") continue;
              const order = stackOrder(cs);
              if (order === baseOrder) row.unchanged++;
              else row.changes.push({ scale, order });
            }
            rows.push(row);
          }
  return rows;
}
