import { Command, InvalidArgumentError } from "commander";
import { runCpuBench } from "../bench/cpu-bench.js";
import { STACKS } from "../stacks/index.js";
import { compareCommand, SUITE } from "./compare.js";
import { imageAndCmdline, parseSize, runCommand } from "./run.js";

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

function npvMap(v: string): "eager" | "demand" {
  if (v !== "eager" && v !== "demand") throw new InvalidArgumentError(`expected eager or demand, got "${v}"`);
  return v;
}

const program = new Command();
program
  .name("nestlab")
  .description("A full-system simulator of nested x86-64 virtualization: what each hypervisor design costs, and why.")
  .version("0.1.0");

program
  .command("run")
  .description("boot a guest on a stack: the bundled kernel with --workload, or any multiboot/ELF64 IMAGE")
  .argument("[image]", "a multiboot (ELF32/ELF64) or ELF64 image; default: the bundled guest kernel")
  .argument("[cmdline...]", "kernel command line (after --)")
  .option("--stack <name>", "which stack to run on", "native")
  .option(
    "--workload <name>",
    "bundled workload (syscall, pagefault, fork, ctxsw, exec, cpuid, msr, exception, pio, io, tlb, compute, all)",
  )
  .option("--iters <n>", "iterations for the workload", positiveInt)
  .option("--memory <size>", "guest RAM (e.g. 256M, 4G)", parseSize, 256 * 1024 * 1024)
  .option("--boot <protocol>", "multiboot or direct64 (default: direct64 for ELF64 images)")
  .option("--max-instructions <n>", "stop a guest that runs longer than this", positiveInt, 2_000_000_000)
  .option("--profile <name>", "cost profile (name or path to a JSON file)")
  .option("--json", "print one JSON document instead of the console and summary")
  .option("--npv-map <mode>", "npv stack: L1 maps L2 memory eager or demand (default demand)", npvMap)
  .option(
    "--module <file>",
    'a multiboot module, as QEMU\'s -initrd: "FILE [ARGS]" (the whole string is its command line); repeatable',
    (v: string, prev: string[]) => [...prev, v],
    [] as string[],
  )
  .action((image: string | undefined, cmdline: string[], opts) => {
    if (opts.boot !== undefined && opts.boot !== "multiboot" && opts.boot !== "direct64") {
      throw new InvalidArgumentError(`--boot must be multiboot or direct64, got "${opts.boot}"`);
    }
    const [img, args] = imageAndCmdline(image, cmdline, process.argv, opts.workload !== undefined);
    process.exitCode = runCommand(img, args, { ...opts, protocol: opts.boot });
  });

const list = (v: string) =>
  v
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);

program
  .command("compare")
  .description(
    "run the workload suite on each stack: cycles per iteration, ratio to native, exits per iteration by level",
  )
  .option("--stacks <list>", "comma-separated stacks", list, [...STACKS.keys()])
  .option("--workloads <list>", "comma-separated workloads", list, SUITE)
  .option("--profile <name>", "cost profile (name or path to a JSON file)")
  .option("--memory <size>", "guest RAM (e.g. 256M)", parseSize, 256 * 1024 * 1024)
  .option("--max-instructions <n>", "per-run instruction limit", positiveInt, 500_000_000)
  .option("--json", "print one JSON document")
  .option("--npv-map <mode>", "npv stack: L1 maps L2 memory eager or demand (default demand)", npvMap)
  .option("--kernel-args <args>", 'extra guest kernel command line for every run (e.g. "pti=on")')
  .action((opts) => {
    process.exitCode = compareCommand(opts);
  });

const bench = program.command("bench").description("measure the simulator itself");
bench
  .command("cpu")
  .description("guest instructions per second on a tight integer loop (64-bit long mode)")
  .option("--iterations <n>", "loop iterations (about 11.5 instructions each)", positiveInt, 3_000_000)
  .option("--runs <n>", "repeat and report the best run", positiveInt, 3)
  .option("--json", "print one JSON document")
  .action((opts: { iterations: number; runs: number; json?: boolean }) => {
    const runs = [];
    for (let k = 0; k < opts.runs; k++) runs.push(runCpuBench(opts.iterations));
    const best = runs.reduce((a, b) => (b.mips > a.mips ? b : a));
    const doc = { ...best, mips: Number(best.mips.toFixed(2)), runs: runs.map((r) => Number(r.mips.toFixed(2))) };
    if (opts.json) console.log(JSON.stringify(doc, null, 2));
    else {
      console.log(`cpu bench: ${doc.instructions} guest instructions in ${best.seconds.toFixed(3)} s`);
      console.log(`           ${doc.mips} MIPS (best of ${opts.runs}: ${doc.runs.join(", ")})`);
    }
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  console.error(`nestlab: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(2);
});
