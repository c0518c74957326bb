/**
 * CLI: npm run fuzz:npv -- --calls N --seed S [--show K] [--quiet]
 *
 * Drives L0's npv engine with N random and hostile hypercalls from two L1s (tools/fuzz-npv/fuzz.ts),
 * checking L0's consistency and the EPT02 rules after every call, and prints
 * `fuzz: N calls, M violations`. Exits 1 when M > 0.
 */
import { fuzz, parseSeed } from "./fuzz.js";

const HELP = `usage: npm run fuzz:npv -- [options]
  --calls N   hypercalls to issue (default 100000)
  --seed S    seed (number or string, default 1)
  --show K    print at most K violations (default 20)
  --quiet     no progress or summary, only the result line`;

function main(argv: string[]): number {
  let calls = 100_000;
  let seed = 1;
  let show = 20;
  let quiet = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--calls") calls = Number(val());
    else if (a === "--seed") seed = parseSeed(val());
    else if (a === "--show") show = Number(val());
    else if (a === "--quiet") quiet = true;
    else if (a === "--help" || a === "-h") {
      console.log(HELP);
      return 0;
    } else {
      console.error(`unknown option ${a}\n${HELP}`);
      return 2;
    }
  }
  if (!Number.isSafeInteger(calls) || calls < 0) {
    console.error("--calls must be a non-negative integer");
    return 2;
  }
  const r = fuzz({
    calls,
    seed,
    maxMessages: show,
    onProgress: quiet ? undefined : (n) => process.stderr.write(`\r${n} calls…`),
  });
  if (!quiet) {
    process.stderr.write("\r");
    const st = Object.entries(r.statuses)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    console.log(`statuses: ${st}`);
    console.log(
      `runs: ${r.runs} (exits: ${Object.entries(r.exits)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")})`,
    );
    console.log(`mediated blk: ${r.blk.requests} requests, ${r.blk.ioErrors} IOERR, ${r.blk.stopped} devices stopped`);
    console.log(`time: ${r.seconds.toFixed(1)} s`);
  }
  for (const m of r.messages) console.log(`violation: ${m}`);
  console.log(`fuzz: ${r.calls} calls, ${r.violations} violations`);
  return r.violations > 0 ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
