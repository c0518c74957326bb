import { writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import "../node-images.js";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { PRIMITIVES } from "../cost/primitives.js";
import { bundledProfiles, DEFAULT_PROFILE, ProfileError, type ProfileSpec } from "../cost/profile.js";
import { resolveProfile } from "../cost/profile-file.js";
import { jitDefaults } from "../cpu/jit/options.js";
import { ImageError } from "../machine/elf.js";
import { DEFAULT_L0_POLICY, type L0Policy } from "../machine/tunables.js";
import type { Scaling } from "../report/sweep.js";
import { SUITE, UnknownWorkloadError, WORKLOADS } from "../report/workloads.js";
import { COMPARE_DEFAULT_STACKS, STACK_NAMES } from "../stacks/names.js";
import { StackOptionError, UnknownStackError } from "../stacks/stack.js";
import { DEFAULT_MAX_CYCLES, MAX_EXACT_CYCLES } from "../stacks/watchdog.js";
import { DEFAULT_TRACE_LIMIT } from "../trace/timeline.js";
import { EXIT, EXIT_CODES_HELP, InputError, OutputFileError, UsageError } from "./exit-codes.js";
import { l1EptPagesListOption, l1EptPagesOption } from "./l1-ept-pages.js";
import { guardOutput, OutputClosedError, writeOut } from "./output.js";
import { formatSize, parseSize } from "./sizes.js";

const VERSION = "0.1.0";

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

function portNumber(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError("expected a port number, 0 to 65535");
  return n;
}

/** A comma-separated list whose every item is one of `allowed`. */
function listOf<T extends string>(v: string, allowed: readonly T[], what: string): T[] {
  const items = commaList(v);
  const bad = items.filter((x) => !allowed.includes(x as T));
  if (bad.length > 0 || items.length === 0)
    throw new InvalidArgumentError(`unknown ${what} "${bad[0] ?? v}"; choose from ${allowed.join(", ")}`);
  return items as T[];
}

/** `PRIMITIVE=F1,F2`: that primitive scaled by each factor in turn. */
function parseScaling(v: string): Scaling[] {
  const m = /^([a-z0-9_.]+)=(.+)$/.exec(v.trim());
  if (!m || !PRIMITIVES.some(([name]) => name === m[1])) {
    throw new InvalidArgumentError(
      `expected PRIMITIVE=FACTOR[,FACTOR…] with a primitive from nestlab list, got "${v}"`,
    );
  }
  return commaList(m[2]).map((f) => {
    const factor = Number(f);
    if (!(factor > 0) || !Number.isFinite(factor))
      throw new InvalidArgumentError(`a scale factor must be positive, got "${f}"`);
    return { primitive: m[1], factor };
  });
}

const DECIMAL: Record<string, number> = { K: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/** Counts like 500M, 2G, 100G (decimal units), at most 2^53. */
function parseCount(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT])?$/i.exec(v.trim());
  const n = m ? Math.round(Number(m[1]) * (DECIMAL[(m[2] ?? "").toUpperCase()] ?? 1)) : Number.NaN;
  if (!Number.isSafeInteger(n) || n <= 0 || n > MAX_EXACT_CYCLES) {
    throw new InvalidArgumentError(`expected a positive count up to 2^53 such as 500M or 100G, got "${v}"`);
  }
  return n;
}

function formatCount(n: number): string {
  for (const u of ["T", "G", "M", "K"]) if (n % DECIMAL[u] === 0) return `${n / DECIMAL[u]}${u}`;
  return String(n);
}

/**
 * `--no-jit` / `--jit-threshold`: the block compiler's defaults for every CPU this process makes.
 * A threshold given also compiles from the first instruction on (no warm-up), so that a low one
 * exercises compiled code in short runs too.
 */
function applyJitFlags(opts: { jit?: boolean; jitThreshold?: number }): void {
  if (opts.jit === false) jitDefaults.enabled = false;
  if (opts.jitThreshold !== undefined) {
    jitDefaults.threshold = opts.jitThreshold;
    jitDefaults.warmup = 0;
  }
}

const commaList = (v: string) =>
  v
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);

/** `--stacks` of compare and bench workloads. */
function stacksOption(): Option {
  return new Option("--stacks <list>", `comma-separated stacks: ${STACK_NAMES.join(", ")}`)
    .argParser(commaList)
    .default([...COMPARE_DEFAULT_STACKS], COMPARE_DEFAULT_STACKS.join(","));
}

/** `--workloads` of compare and bench workloads. */
function workloadsOption(): Option {
  return new Option("--workloads <list>", "comma-separated workloads (see nestlab list)")
    .argParser(commaList)
    .default(SUITE, `the suite: ${SUITE.join(",")}`);
}

function sizeOption(flags: string, what: string): Option {
  return new Option(flags, what).argParser(parseSize).default(256 * 1024 * 1024, formatSize(256 * 1024 * 1024));
}

/** A bundled profile's name or an existing .json file (read and checked now); anything else is a usage error. */
function profileName(v: string): ProfileSpec {
  const spec = resolveProfile(v);
  if (spec !== undefined) return spec;
  throw new InvalidArgumentError(
    `unknown profile "${v}"; bundled profiles: ${bundledProfiles().join(", ")} (or a path to a .json file)`,
  );
}

function profileOption(): Option {
  return new Option(
    "--profile <name>",
    `cost profile: ${bundledProfiles().join(", ")}, or a path to a JSON file (default: ${DEFAULT_PROFILE})`,
  ).argParser(profileName);
}

function maxCyclesOption(): Option {
  return new Option("--max-cycles <n>", "stop a run whose simulated clock passes this many cycles (K/M/G/T)")
    .argParser(parseCount)
    .default(DEFAULT_MAX_CYCLES, formatCount(DEFAULT_MAX_CYCLES));
}

function maxInstructionsOption(def: number): Option {
  return new Option("--max-instructions <n>", "stop a guest that retires more instructions (K/M/G)")
    .argParser(parseCount)
    .default(def, formatCount(def));
}

const npvMapOption = () =>
  new Option("--npv-map <mode>", "npv stack: L1 maps L2 memory eagerly or on demand")
    .choices(["eager", "demand"])
    .default("demand");

/** L0's policy options, the same for `run` and `compare` (defaults: DEFAULT_L0_POLICY). */
const l0PolicyOptions = (): Option[] => [
  new Option("--l0-intercept-ud", "L0 intercepts #UD in every vCPU it runs, as KVM does (default)").default(
    DEFAULT_L0_POLICY.interceptUd,
  ),
  new Option("--no-l0-intercept-ud", "L0 leaves #UD to the guest (no exception exit)"),
  new Option(
    "--vm-virtio <path>",
    "vm stack: virtio-mmio interrupt status/ACK in the userspace device model, or in L0's kernel (irqfd)",
  )
    .choices(["user", "kernel"])
    .default(DEFAULT_L0_POLICY.vmVirtio),
  new Option(
    "--ept-pages <size>",
    "largest EPT01 leaf for guest RAM where the backing allows it (contiguous and aligned, as THP)",
  )
    .choices(["4k", "2m", "1g"])
    .default(DEFAULT_L0_POLICY.eptPages),
];

/** `--cache-model`: the data-cache model behind page-walk charges (run, compare, sweep). */
const cacheModelOption = () =>
  new Option(
    "--cache-model <mode>",
    "on: each page-walk reference costs by the cache level that holds it; off: the profile's flat mmu.walk_ref each (faster to simulate)",
  )
    .choices(["on", "off"])
    .default("on");

/** The L0 policy a command's parsed options ask for. */
function l0PolicyOf(opts: {
  l0InterceptUd: boolean;
  vmVirtio: L0Policy["vmVirtio"];
  eptPages: L0Policy["eptPages"];
}): Partial<L0Policy> {
  return { interceptUd: opts.l0InterceptUd, vmVirtio: opts.vmVirtio, eptPages: opts.eptPages };
}

/**
 * Split `run`'s operands: what follows `--` is always kernel command line, so
 * `run --workload io -- blkirq=11` does not take `blkirq=11` for an image.
 */
function splitRunOperands(argv: string[], operands: string[]): { image?: string; cmdline: string[] } {
  const dd = argv.indexOf("--");
  const after = dd >= 0 ? argv.slice(dd + 1) : [];
  const before = operands.slice(0, operands.length - after.length);
  return { image: before[0], cmdline: [...before.slice(1), ...after] };
}

function buildProgram(argv: string[], setCode: (n: number) => void): Command {
  const program = new Command();
  program
    .name("nestlab")
    .description("A full-system simulator of nested x86-64 virtualization: what each hypervisor design costs, and why.")
    .version(VERSION)
    .option("--debug", "on an internal error, print the full stack trace")
    .exitOverride()
    .configureOutput({ writeOut: (s) => writeOut(s) })
    .addHelpText("after", `\n${EXIT_CODES_HELP}`);

  program
    .command("run")
    .description("boot a guest on a stack: the bundled kernel with --workload, or any multiboot/ELF64 IMAGE")
    .argument("[image]", "a multiboot (ELF32/ELF64) or ELF64 image; default: the bundled guest kernel")
    .argument("[cmdline...]", "kernel command line, after -- (e.g. -- blkirq=11 tick=0)")
    .addOption(new Option("--stack <name>", "which stack to run on").choices(STACK_NAMES).default("native"))
    .option("--workload <name>", `bundled workload, or a comma-separated list: ${WORKLOADS.join(", ")}`)
    .option("--iters <n>", "iterations for the workload (default: the workload's own)", positiveInt)
    .addOption(sizeOption("--memory <size>", "guest RAM (K/M/G)"))
    .addOption(
      new Option("--boot <protocol>", "boot protocol (default: direct64 for ELF64 images)").choices([
        "multiboot",
        "direct64",
      ]),
    )
    .addOption(maxInstructionsOption(2_000_000_000))
    .addOption(maxCyclesOption())
    .addOption(profileOption())
    .option("--json", "print one JSON document instead of the console and summary")
    .addOption(npvMapOption())
    .option(
      "--l1-image <file>",
      "nvmx stacks: the L1 hypervisor image L0 offers VMX to (default: guests/images/l1hv.elf)",
    )
    .addOption(l0PolicyOptions()[0])
    .addOption(l0PolicyOptions()[1])
    .addOption(l0PolicyOptions()[2])
    .addOption(l0PolicyOptions()[3])
    .addOption(l1EptPagesOption())
    .addOption(cacheModelOption())
    .option(
      "--module <file>",
      'a multiboot module, as QEMU\'s -initrd: "FILE [ARGS]" (the whole string is its command line); repeatable',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option("--cpu-vmx", "native stack: the CPU advertises VMX to the guest (a guest hypervisor, e.g. vmxtest.elf)")
    .option("--trace <file.json>", "write a timeline of the run (Perfetto / chrome://tracing JSON, simulated time)")
    .addOption(
      new Option("--trace-limit <n>", "at most this many trace events (the file says when it was cut)")
        .argParser(positiveInt)
        .default(DEFAULT_TRACE_LIMIT, `${DEFAULT_TRACE_LIMIT / 1000}k`),
    )
    .addOption(
      new Option(
        "--exit-code <style>",
        "nestlab: 0 success, 1 guest failure; qemu: (value << 1) | 1 as QEMU's isa-debug-exit",
      )
        .choices(["nestlab", "qemu"])
        .default("nestlab"),
    )
    .addHelpText("after", `\n${EXIT_CODES_HELP}`)
    .option("--no-jit", "interpret every instruction (no block compiler; simulated results are identical)")
    .option("--jit-threshold <n>", "entries into a block before it is compiled (given: no warm-up)", positiveInt)
    .action(async (image: string | undefined, cmdline: string[], opts) => {
      applyJitFlags(opts);
      const { runCommand } = await import("./run.js");
      const ops = splitRunOperands(argv, [...(image === undefined ? [] : [image]), ...cmdline]);
      setCode(runCommand(ops.image, ops.cmdline, { ...opts, protocol: opts.boot, l0: l0PolicyOf(opts) }));
    });

  program
    .command("compare")
    .description(
      "run the workload suite on each stack: cycles and ns per iteration, ratio to native, exits per iteration",
    )
    .addOption(stacksOption())
    .addOption(workloadsOption())
    .addOption(profileOption())
    .option(
      "--iters <n>",
      "iterations of the first run (the second runs 2N; default: each workload's own)",
      positiveInt,
    )
    .addOption(
      new Option("--jobs <n>", "cells in parallel on worker threads (identical results for any N)")
        .argParser(positiveInt)
        .default(availableParallelism(), `the core count, ${availableParallelism()}`),
    )
    .addOption(sizeOption("--memory <size>", "guest RAM (K/M/G)"))
    .addOption(maxInstructionsOption(500_000_000))
    .addOption(maxCyclesOption())
    .option("--json", "print one JSON document")
    .option("--csv", "print CSV, one row per cell")
    .option("--report <file.html>", "also write a self-contained HTML report with charts")
    .option("--kernel-args <words>", 'extra kernel command-line words for every run (e.g. "pti=on")')
    .addOption(npvMapOption())
    .option(
      "--l1-image <file>",
      "nvmx stacks: the L1 hypervisor image L0 offers VMX to (default: guests/images/l1hv.elf)",
    )
    .option("--no-jit", "interpret every instruction (no block compiler; simulated results are identical)")
    .option("--jit-threshold <n>", "entries into a block before it is compiled (given: no warm-up)", positiveInt)
    .addOption(l0PolicyOptions()[0])
    .addOption(l0PolicyOptions()[1])
    .addOption(l0PolicyOptions()[2])
    .addOption(l0PolicyOptions()[3])
    .addOption(l1EptPagesOption())
    .addOption(cacheModelOption())
    .action(async (opts) => {
      applyJitFlags(opts);
      const { compareCommand } = await import("./compare.js"); // charts and thread pool: loaded when used
      setCode(
        await compareCommand({
          ...opts,
          l0: l0PolicyOf(opts),
          commandLine: ["nestlab", ...argv.slice(2)].join(" "),
          version: VERSION,
        }),
      );
    });

  program
    .command("sweep")
    .description(
      "run a grid — stacks × workloads × profiles × --npv-map × --ept-pages × scaled primitives — on threads or through a Redis queue",
    )
    .addOption(stacksOption())
    .addOption(workloadsOption())
    .addOption(
      new Option("--profiles <list>", `comma-separated bundled profiles: ${bundledProfiles().join(", ")}`)
        .argParser((v) => listOf(v, bundledProfiles(), "profile"))
        .default([DEFAULT_PROFILE], DEFAULT_PROFILE),
    )
    .addOption(
      new Option("--npv-map <list>", "npv stack's L2 mapping modes to sweep: eager, demand")
        .argParser((v) => listOf(v, ["eager", "demand"], "npv-map mode"))
        .default(["demand"], "demand"),
    )
    .addOption(
      new Option("--ept-pages <list>", "largest EPT01 leaves to sweep: 4k, 2m, 1g")
        .argParser((v) => listOf(v, ["4k", "2m", "1g"], "EPT page size"))
        .default(["4k"], "4k"),
    )
    .addOption(l1EptPagesListOption())
    .addOption(
      new Option(
        "--scale <primitive=factors>",
        "also run with one primitive scaled, one factor at a time (e.g. l0.cpuid=0.5,2); repeatable",
      )
        .argParser((v: string, prev: Scaling[]) => [...prev, ...parseScaling(v)])
        .default([] as Scaling[], "none"),
    )
    .option(
      "--sensitivity",
      'scale every primitive whose source says "assumption" ×0.5 and ×2 in turn; report per workload whether the order of the stacks changes',
    )
    .option(
      "--iters <n>",
      "iterations of the first run (the second runs 2N; default: each workload's own)",
      positiveInt,
    )
    .addOption(
      new Option("--jobs <n>", "cells in parallel on worker threads")
        .argParser(positiveInt)
        .default(availableParallelism(), `the core count, ${availableParallelism()}`),
    )
    .option(
      "--queue <redis://host:port>",
      "enqueue the cells in Redis (BullMQ) for `nestlab worker` processes; rerun to resume",
    )
    .addOption(sizeOption("--memory <size>", "guest RAM (K/M/G)"))
    .addOption(maxInstructionsOption(500_000_000))
    .addOption(maxCyclesOption())
    .option("--kernel-args <words>", "extra kernel command-line words for every run")
    .addOption(l0PolicyOptions()[0])
    .addOption(l0PolicyOptions()[1])
    .addOption(l0PolicyOptions()[2])
    .addOption(cacheModelOption())
    .option("--json", "print one JSON document")
    .option("--csv", "print CSV, one row per cell")
    .option("--report <file.html>", "also write a self-contained HTML report")
    .action(async (opts) => {
      // Loaded when used: the queue client and the thread pool cost every other command's start-up.
      const { sweepCommand } = await import("./sweep.js");
      setCode(
        await sweepCommand({
          grid: {
            stacks: opts.stacks,
            workloads: opts.workloads,
            profiles: opts.profiles,
            npvMap: opts.npvMap,
            eptPages: opts.eptPages,
            l1EptPages: opts.l1EptPages,
            scalings: opts.scale,
            sensitivity: Boolean(opts.sensitivity),
          },
          base: {
            memory: opts.memory,
            maxInstructions: opts.maxInstructions,
            maxCycles: opts.maxCycles,
            iters: opts.iters,
            kernelArgs: opts.kernelArgs,
            l0: { interceptUd: opts.l0InterceptUd, vmVirtio: opts.vmVirtio },
            cacheModel: opts.cacheModel !== "off",
          },
          jobs: opts.jobs,
          queue: opts.queue,
          json: opts.json,
          csv: opts.csv,
          report: opts.report,
          commandLine: ["nestlab", ...argv.slice(2)].join(" "),
          version: VERSION,
        }),
      );
    });

  program
    .command("worker")
    .description("measure the cells `nestlab sweep --queue` puts in Redis, until Ctrl-C or SIGTERM")
    .requiredOption("--queue <redis://host:port>", "the Redis the sweep queues its cells in")
    .addOption(new Option("--jobs <n>", "cells at once, each on a worker thread").argParser(positiveInt).default(1))
    .action(async (opts: { queue: string; jobs: number }) => {
      const { workerCommand } = await import("./queue.js");
      setCode(await workerCommand(opts));
    });

  program
    .command("list")
    .description("what nestlab can run: stacks, workloads, cost profiles and every cost primitive with its source")
    .option("--json", "print one JSON document")
    .addOption(profileOption())
    .action(async (opts: { json?: boolean; profile?: ProfileSpec }) => {
      const { listCommand } = await import("./list.js");
      writeOut(listCommand(opts));
    });

  program
    .command("serve")
    .description("serve the browser page (the simulator runs in a Web Worker there; this only serves files)")
    .addOption(new Option("--port <n>", "TCP port (0: any free one)").argParser(portNumber).default(8080))
    .option("--host <address>", "address to listen on", "127.0.0.1")
    .option("--dir <folder>", "serve this built page instead of web/dist (see tools/build-web.ts)")
    .action(async (opts: { port: number; host: string; dir?: string }) => {
      const { serveCommand } = await import("./serve.js");
      setCode(await serveCommand(opts));
    });

  const bench = program.command("bench").description("measure the simulator itself");
  bench
    .command("cpu")
    .description("guest instructions per second on a tight integer loop (64-bit long mode)")
    .option("--iterations <n>", "loop iterations (about 11.5 instructions each)", positiveInt, 3_000_000)
    .option("--runs <n>", "repeat and report the best run", positiveInt, 3)
    .option("--json", "print one JSON document")
    .option("--no-jit", "interpret every instruction (no block compiler)")
    .option("--jit-threshold <n>", "entries into a block before it is compiled (given: no warm-up)", positiveInt)
    .option("--compare", "run with and without the block compiler in one sitting: both MIPS and their ratio")
    .action(
      async (opts: {
        iterations: number;
        runs: number;
        json?: boolean;
        jit?: boolean;
        jitThreshold?: number;
        compare?: boolean;
      }) => {
        applyJitFlags(opts);
        const { compareCpuBench, runCpuBench } = await import("../bench/cpu-bench.js");
        if (opts.compare) {
          const r = compareCpuBench(opts.iterations, opts.runs, opts.jitThreshold);
          if (opts.json) writeOut(`${JSON.stringify(r, null, 2)}\n`);
          else {
            writeOut(`cpu bench: ${r.instructions} guest instructions per run, best of ${opts.runs}\n`);
            writeOut(`  jit          ${r.jit.mips} MIPS (${r.jit.runs.join(", ")})\n`);
            writeOut(`  interpreter  ${r.interpreter.mips} MIPS (${r.interpreter.runs.join(", ")})\n`);
            writeOut(`  ratio        ${r.ratio}; simulated results identical: ${r.identical}\n`);
          }
          if (!r.identical) setCode(1);
          return;
        }
        const runs = [];
        for (let k = 0; k < opts.runs; k++) runs.push(runCpuBench(opts.iterations));
        const best = runs.reduce((a, b) => (b.mips > a.mips ? b : a));
        const doc = { ...best, mips: Number(best.mips.toFixed(2)), runs: runs.map((r) => Number(r.mips.toFixed(2))) };
        if (opts.json) writeOut(`${JSON.stringify(doc, null, 2)}\n`);
        else {
          writeOut(`cpu bench: ${doc.instructions} guest instructions in ${best.seconds.toFixed(3)} s\n`);
          writeOut(`           ${doc.mips} MIPS (best of ${opts.runs}: ${doc.runs.join(", ")})\n`);
        }
      },
    );
  bench
    .command("workloads")
    .description("MIPS of each workload on each stack with and without the block compiler, in one sitting")
    .addOption(stacksOption())
    .addOption(workloadsOption())
    .option("--iters <n>", "iterations per run (default: each workload's own)", positiveInt)
    .option("--runs <n>", "runs each way; the best is reported", positiveInt, 2)
    .addOption(sizeOption("--memory <size>", "guest RAM (K/M/G)"))
    .option("--jit-threshold <n>", "entries into a block before it is compiled (given: no warm-up)", positiveInt)
    .option("--json", "print one JSON document")
    .action(
      async (opts: {
        stacks: string[];
        workloads: string[];
        iters?: number;
        runs: number;
        memory: number;
        jitThreshold?: number;
        json?: boolean;
      }) => {
        applyJitFlags(opts);
        const { benchWorkloads, checkWorkloadBench } = await import("../report/workload-bench.js");
        checkWorkloadBench(opts);
        if (!opts.json) {
          writeOut(`${"stack".padEnd(8)}${"workload".padEnd(11)}${"instructions".padStart(13)}`);
          writeOut(`${"jit MIPS".padStart(10)}${"interp MIPS".padStart(13)}${"ratio".padStart(7)}  identical\n`);
        }
        const rows = benchWorkloads(opts, (r) => {
          if (opts.json) return;
          writeOut(`${r.stack.padEnd(8)}${r.workload.padEnd(11)}${String(r.instructions).padStart(13)}`);
          writeOut(
            `${String(r.jit).padStart(10)}${String(r.interpreter).padStart(13)}${String(r.ratio).padStart(7)}  ${r.identical}\n`,
          );
        });
        if (opts.json) writeOut(`${JSON.stringify({ runs: opts.runs, iters: opts.iters ?? null, rows }, null, 2)}\n`);
        if (rows.some((r) => !r.identical)) setCode(1);
      },
    );
  return program;
}

/** One line for an internal error; the trace goes to a file unless --debug asks for it. */
function reportInternalError(e: unknown, debug: boolean): number {
  const err = e instanceof Error ? e : new Error(String(e));
  const trace = err.stack ?? err.message;
  if (debug) {
    process.stderr.write(`nestlab: internal error:\n${trace}\n`);
    return EXIT.internal;
  }
  let where = "";
  try {
    const file = join(tmpdir(), `nestlab-error-${process.pid}.txt`);
    writeFileSync(file, `${trace}\n`);
    where = `the full trace is in ${file}`;
  } catch {
    where = "the trace could not be saved";
  }
  process.stderr.write(`nestlab: internal error: ${err.message} (${where}; --debug prints it)\n`);
  return EXIT.internal;
}

/** The exit code for an error thrown by a command. */
export function errorExitCode(e: unknown, debug: boolean): number {
  if (e instanceof OutputClosedError) return e.code;
  if (e instanceof CommanderError) {
    // commander has printed its message; help and --version are not errors
    if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help")
      return EXIT.ok;
    return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (e instanceof OutputFileError) {
    process.stderr.write(`nestlab: ${e.message}\n`);
    return EXIT.outputError;
  }
  const usage =
    e instanceof UsageError ||
    e instanceof UnknownStackError ||
    e instanceof UnknownWorkloadError ||
    e instanceof StackOptionError;
  const input = e instanceof InputError || e instanceof ProfileError || e instanceof ImageError;
  if (usage || input) {
    process.stderr.write(`nestlab: ${(e as Error).message}\n`);
    return usage ? EXIT.usage : EXIT.badInput;
  }
  return reportInternalError(e, debug);
}

export async function main(argv: string[]): Promise<number> {
  guardOutput();
  let code: number = EXIT.ok;
  const program = buildProgram(argv, (n) => {
    code = n;
  });
  try {
    await program.parseAsync(argv);
  } catch (e) {
    return errorExitCode(e, argv.includes("--debug"));
  }
  return code;
}
