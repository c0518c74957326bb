/**
 * CLI: npm run difftest -- --cases N --seed S [options]
 *
 * Runs N generated instruction sequences on the host CPU (through a gcc-compiled harness) and on
 * the emulator, and prints `difftest: N cases, M mismatches`. Exits 1 when M > 0, 0 otherwise
 * (also when the difftest cannot run here, e.g. without gcc: it then prints the skip reason).
 */
import { initialState, listing } from "./compare.js";
import { describeRow, Generator } from "./generator.js";
import { buildHarness } from "./native.js";
import { parseSeed } from "./prng.js";
import { runDifftest, summaryLine } from "./runner.js";
import { REQUIRED_CLASSES } from "./specs.js";

const HELP = `usage: npm run difftest -- [options]
  --cases N      number of cases (default 10000)
  --seed S       seed (number or string, default 1)
  --case K       run only case K of the seed, and print its listing
  --start K      first case index (default 0)
  --len L        maximum items per sequence (default 12)
  --only RE      only instruction classes matching RE (e.g. 'SHL|ROL')
  --exclude RE   leave out instruction classes matching RE
  --quirks       also generate cases with model-specific outcomes (REP with 67h and ECX=0)
  --vendor-masks auto|always|never
                 mask vendor-specific outcomes (vendor.ts): auto = on a non-Intel host (default)
  --show N       print at most N mismatches in full (default 5)
  --chunk N      cases per native process (default 5000)
  --jit-threshold N
                 compile blocks after N entries; each case then runs twice on the emulator and
                 the second run is compared (with 1: the sequences run as compiled blocks)
  --no-jit       interpret only (default: the block compiler with its default threshold)
  --coverage     print which instruction classes/rows are generated and exit
  --quiet        no progress output`;

interface Args {
  cases: number;
  seed: number;
  start: number;
  single: boolean;
  len?: number;
  only?: string;
  exclude?: string;
  quirks: boolean;
  vendorMasks: "auto" | "always" | "never";
  show: number;
  chunk: number;
  coverage: boolean;
  quiet: boolean;
  jit: boolean;
  jitThreshold?: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    cases: 10000,
    seed: 1,
    start: 0,
    single: false,
    show: 5,
    chunk: 5000,
    quirks: false,
    vendorMasks: "auto",
    coverage: false,
    quiet: false,
    jit: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    const num = (): number => {
      const s = v();
      const n = Number(s.replace(/_/g, ""));
      if (!Number.isFinite(n) || n < 0) throw new Error(`${k}: not a number: ${s}`);
      return Math.floor(n);
    };
    switch (k) {
      case "--cases":
        a.cases = num();
        break;
      case "--seed":
        a.seed = parseSeed(v());
        break;
      case "--case":
        a.start = num();
        a.cases = 1;
        a.single = true;
        break;
      case "--start":
        a.start = num();
        break;
      case "--len":
        a.len = Math.max(1, num());
        break;
      case "--only":
        a.only = v();
        break;
      case "--exclude":
        a.exclude = v();
        break;
      case "--quirks":
        a.quirks = true;
        break;
      case "--vendor-masks": {
        const m = v();
        if (m !== "auto" && m !== "always" && m !== "never")
          throw new Error(`--vendor-masks: auto, always or never, not ${m}`);
        a.vendorMasks = m;
        break;
      }
      case "--show":
        a.show = num();
        break;
      case "--chunk":
        a.chunk = Math.max(1, num());
        break;
      case "--coverage":
        a.coverage = true;
        break;
      case "--quiet":
        a.quiet = true;
        break;
      case "--jit-threshold":
        a.jitThreshold = Math.max(1, num());
        break;
      case "--no-jit":
        a.jit = false;
        break;
      case "-h":
      case "--help":
        console.log(HELP);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${k}\n${HELP}`);
    }
  }
  return a;
}

function coverage(a: Args): void {
  const h = buildHarness();
  const features = typeof h === "string" ? undefined : h.features;
  if (typeof h === "string") console.log(`(native harness unavailable: ${h}; assuming all CPU features)`);
  else console.log(`host: ${h.vendor}, features ${JSON.stringify(h.features)}`);
  const g = new Generator({ features, only: a.only, exclude: a.exclude, maxLen: a.len });
  for (const [cls, ts] of [...g.classes.entries()].sort((x, y) => x[0].localeCompare(y[0]))) {
    console.log(`${cls} (${ts.length} rows)`);
    for (const t of ts) console.log(`    ${t.desc}`);
  }
  const pops = g.popTemplates();
  if (pops.length)
    console.log(`POP (used to balance pushes; ${pops.length} rows)\n${pops.map((t) => `    ${t.desc}`).join("\n")}`);
  console.log(`
rows the generator does not know (not generated): ${g.unknownRows.length}`);
  for (const r of g.unknownRows) console.log(`    ${describeRow(r)}`);
  if (g.featureSkipped.length)
    console.log(`rows skipped for missing host CPU features: ${g.featureSkipped.map((r) => r.name).join(" ")}`);
  const missing = g.missingRequired();
  console.log(`required classes absent from the opcode table: ${missing.length ? missing.join(", ") : "none"}`);
  console.log(`required classes present: ${REQUIRED_CLASSES.length - missing.length}/${REQUIRED_CLASSES.length}`);
}

function main(): number {
  let a: Args;
  try {
    a = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`difftest: ${(e as Error).message}`);
    return 2;
  }
  if (a.coverage) {
    coverage(a);
    return 0;
  }
  const progress = !a.quiet && a.cases >= 50000 && process.stderr.isTTY;
  const r = runDifftest({
    cases: a.cases,
    seed: a.seed,
    start: a.start,
    maxLen: a.len,
    only: a.only,
    exclude: a.exclude,
    quirks: a.quirks,
    vendorMasks: a.vendorMasks,
    show: a.single ? 1 : a.show,
    chunk: a.chunk,
    jit: a.jit
      ? a.jitThreshold === undefined
        ? { enabled: true }
        : { enabled: true, threshold: a.jitThreshold, warmup: 0 }
      : { enabled: false },
    warm: a.jit && a.jitThreshold !== undefined,
    progress: progress
      ? (done, mm) => process.stderr.write(`\rdifftest: ${done}/${a.cases} cases, ${mm} mismatches`)
      : undefined,
  });
  if (progress) process.stderr.write("\n");
  if (r.skipped !== null) {
    console.log(`difftest: skipped (${r.skipped})`);
    return 0;
  }
  if (a.single && r.mismatches === 0 && r.generator) {
    const tc = r.generator.generate(a.seed, a.start);
    console.log(
      `case ${a.start} (seed ${a.seed}): native and emulator agree\ncode at 0x${tc.codeAddr.toString(16)}:\n${listing(tc)}\ninitial state:\n${initialState(tc)}`,
    );
  }
  for (const m of r.reports) console.log(`${m.text}\n`);
  const secs = r.elapsedMs / 1000;
  const missing = r.generator?.missingRequired() ?? [];
  if (missing.length)
    console.log(
      `difftest: required instruction classes absent from the opcode table (not tested): ${missing.join(", ")}`,
    );
  console.log(
    `difftest: ${r.cases} cases in ${secs.toFixed(1)} s (${Math.round(r.cases / Math.max(secs, 1e-3))} cases/s), seed ${a.seed}`,
  );
  console.log(summaryLine(r));
  console.log(
    a.jit
      ? `difftest: block compiler on (threshold ${a.jitThreshold ?? "default"}): ${r.jit.compiled} blocks compiled, ${r.jit.blockRuns} block runs`
      : "difftest: block compiler off (--no-jit)",
  );
  return r.mismatches > 0 ? 1 : 0;
}

process.exitCode = main();
