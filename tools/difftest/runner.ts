/**
 * The difftest driver: generates cases in chunks, runs each chunk natively (one harness process)
 * and on the emulator, compares, and collects reports for the first mismatches.
 */
import type { JitOptions } from "../../src/cpu/jit/options.js";
import { compareResults, type Difference, formatMismatch } from "./compare.js";
import { EmulatorRunner, type SideResult } from "./emulator.js";
import { Generator, type TestCase } from "./generator.js";
import { buildHarness, type Harness, runNative } from "./native.js";
import { MODEL_VENDOR, VENDOR_BEHAVIOURS, type VendorBehaviour, vendorDiffers } from "./vendor.js";

export interface DifftestOptions {
  cases: number;
  seed: number;
  /** First case index (cases are numbered, each reproducible from seed and index). */
  start?: number;
  maxLen?: number;
  only?: string;
  exclude?: string;
  quirks?: boolean;
  /** How many mismatches to report in full. */
  show?: number;
  /** Cases per native process. */
  chunk?: number;
  /** Hook for tests: alter a native result before comparison (to check that comparison can fail). */
  tamper?: (tc: TestCase, native: SideResult) => void;
  /** Apply the vendor masks even on a host of the model's vendor (for tests), or never. */
  vendorMasks?: "auto" | "always" | "never";
  /** Progress output (e.g. for long runs). */
  progress?: (done: number, mismatches: number) => void;
  /** The emulator's block compiler (default: jitDefaults). */
  jit?: Partial<JitOptions>;
  /** Run each case twice on the emulator and compare the second run (compiled with a low threshold). */
  warm?: boolean;
}

export interface MismatchReport {
  tc: TestCase;
  diffs: Difference[];
  text: string;
}

export interface DifftestResult {
  /** Why the difftest did not run (gcc missing, not x86-64 Linux…), or null. */
  skipped: string | null;
  cases: number;
  mismatches: number;
  /** Cases whose vendor-specific parts were masked (or that were skipped whole), by behaviour. */
  masked: number;
  maskedBy: Partial<Record<VendorBehaviour, number>>;
  /** Of the masked cases, how many differed in the masked part (what the masks hid). */
  maskedDiffered: number;
  hostVendor: string;
  reports: MismatchReport[];
  /** Blocks the emulator compiled and block runs (how much of the run was compiled code). */
  jit: { compiled: number; blockRuns: number };
  elapsedMs: number;
  generator: Generator | null;
  harness: Harness | null;
}

export function runDifftest(opts: DifftestOptions): DifftestResult {
  const t0 = performance.now();
  const h = buildHarness();
  if (typeof h === "string") {
    return {
      skipped: h,
      cases: 0,
      mismatches: 0,
      masked: 0,
      maskedBy: {},
      maskedDiffered: 0,
      hostVendor: "?",
      reports: [],
      jit: { compiled: 0, blockRuns: 0 },
      elapsedMs: 0,
      generator: null,
      harness: null,
    };
  }
  const gen = new Generator({
    features: h.features,
    maxLen: opts.maxLen,
    only: opts.only,
    exclude: opts.exclude,
    quirks: opts.quirks,
  });
  const emu = new EmulatorRunner(opts.jit, opts.warm ?? false);
  const show = opts.show ?? 5;
  const chunk = opts.chunk ?? 5000;
  const start = opts.start ?? 0;
  const reports: MismatchReport[] = [];
  let mismatches = 0;
  let masked = 0;
  let maskedDiffered = 0;
  const maskedBy: Partial<Record<VendorBehaviour, number>> = {};
  const mode = opts.vendorMasks ?? "auto";
  const useMasks = mode === "always" || (mode === "auto" && vendorDiffers(h.vendor));
  for (let base = 0; base < opts.cases; base += chunk) {
    const n = Math.min(chunk, opts.cases - base);
    const cases: TestCase[] = [];
    for (let k = 0; k < n; k++) cases.push(gen.generate(opts.seed, start + base + k));
    const native = runNative(h, cases);
    for (let k = 0; k < n; k++) {
      const tc = cases[k];
      const nat = native[k];
      if (opts.tamper) opts.tamper(tc, nat);
      const got = emu.run(tc);
      const diffs = compareResults(tc, nat, got, useMasks);
      if (useMasks && tc.vendor.length > 0) {
        masked++;
        for (const n of tc.vendor) maskedBy[n.kind] = (maskedBy[n.kind] ?? 0) + 1;
        if (diffs.length === 0 && compareResults(tc, nat, got, false).length > 0) maskedDiffered++;
      }
      if (diffs.length > 0) {
        mismatches++;
        if (reports.length < show) reports.push({ tc, diffs, text: formatMismatch(tc, diffs) });
      }
    }
    opts.progress?.(base + n, mismatches);
  }
  return {
    skipped: null,
    cases: opts.cases,
    mismatches,
    masked,
    maskedBy,
    maskedDiffered,
    hostVendor: h.vendor,
    reports,
    jit: emu.collectJitStats(),
    elapsedMs: performance.now() - t0,
    generator: gen,
    harness: h,
  };
}

/**
 * The summary line: `difftest: N cases, M mismatches` then, on a host of another vendor than the
 * model, how many cases had vendor-specific parts masked, by behaviour.
 */
export function summaryLine(r: DifftestResult): string {
  const base = `difftest: ${r.cases} cases, ${r.mismatches} mismatches`;
  if (r.skipped !== null) return `${base} (skipped: ${r.skipped})`;
  const kinds = Object.entries(r.maskedBy)
    .map(([k, n]) => `${VENDOR_BEHAVIOURS[k as VendorBehaviour].what}: ${n}`)
    .join("; ");
  const host = `host ${r.hostVendor}, model ${MODEL_VENDOR}`;
  if (r.masked === 0) return `${base}, 0 masked (${host})`;
  return `${base}, ${r.masked} masked (${host}; ${r.maskedDiffered} of them differ in the masked part; ${kinds})`;
}
