import { readFileSync } from "node:fs";
import { NPV_HC_NAMES } from "../hypervisors/npv-abi.js";
import { type BootModule, type BootProtocol, defaultProtocol } from "../machine/boot.js";
import { ImageError } from "../machine/elf.js";
import { bundledKernelPath } from "../paths.js";
import { getStack } from "../stacks/index.js";
import type { StackRunResult } from "../stacks/stack.js";

/** Workloads the bundled kernel knows (docs/guest-kernel.md). */
export const WORKLOADS = [
  "syscall",
  "pagefault",
  "fork",
  "ctxsw",
  "exec",
  "cpuid",
  "msr",
  "wrmsr",
  "exception",
  "pio",
  "io",
  "tlb",
  "compute",
  "all",
] as const;

export interface RunCommandOptions {
  stack: string;
  workload?: string;
  memory: number;
  json?: boolean;
  maxInstructions: number;
  protocol?: "multiboot" | "direct64";
  iters?: number;
  profile?: string;
  /** npv stack: eager or on-demand L2 memory mapping by L1. */
  npvMap?: "eager" | "demand";
  /** `--module "FILE [ARGS]"` values, in order. */
  module?: string[];
}

/**
 * Read `--module "FILE [ARGS]"` values: the file is the first word, the module's command line
 * the whole string (as GRUB's `module` passes it). Modules exist only in the multiboot protocol
 * and on the stacks that boot the image with it (native, vm).
 */
export function readModules(specs: readonly string[], protocol: BootProtocol, stack: string): BootModule[] {
  if (specs.length === 0) return [];
  if (protocol !== "multiboot") throw new Error("--module needs the multiboot protocol (--boot multiboot)");
  if (stack !== "native" && stack !== "vm")
    throw new Error(`--module is supported on the native and vm stacks, not ${stack}`);
  return specs.map((spec) => {
    const file = spec.trim().split(/\s+/)[0] ?? "";
    try {
      return { bytes: new Uint8Array(readFileSync(file)), cmdline: spec.trim() };
    } catch (e) {
      throw new Error(`cannot read module "${file}": ${(e as Error).message}`);
    }
  });
}

/**
 * `run --workload W -- pti=on`: commander hands the first word after `--` to the optional IMAGE
 * argument. With --workload, a first word that came after `--` is kernel command line, not an image.
 */
export function imageAndCmdline(
  image: string | undefined,
  cmdline: string[],
  argv: readonly string[],
  hasWorkload: boolean,
): [string | undefined, string[]] {
  const dd = argv.indexOf("--");
  if (hasWorkload && image !== undefined && dd >= 0 && argv[dd + 1] === image) return [undefined, [image, ...cmdline]];
  return [image, cmdline];
}

/** Parse sizes like 256M, 4G, 65536K, or plain bytes. */
export function parseSize(v: string): number {
  const m = /^(\d+)\s*([KMG]i?B?)?$/i.exec(v.trim());
  if (!m) throw new Error(`bad size "${v}" (try 256M or 4G)`);
  const unit = (m[2] ?? "").toUpperCase()[0];
  const mult = unit === "K" ? 1024 : unit === "M" ? 1024 ** 2 : unit === "G" ? 1024 ** 3 : 1;
  const n = Number(m[1]) * mult;
  if (n < 16 * 1024 * 1024 || n % 4096 !== 0)
    throw new Error(`memory must be at least 16M and a multiple of 4K, got "${v}"`);
  return n;
}

/** Build the kernel command line for a bundled workload. */
export function workloadCmdline(workload: string, iters?: number, extra = ""): string {
  const known = new Set<string>(WORKLOADS);
  for (const w of workload.split(",")) {
    if (!known.has(w)) throw new Error(`unknown workload "${w}"; known workloads: ${WORKLOADS.join(", ")}`);
  }
  return [`workload=${workload}`, iters ? `iters=${iters}` : "", extra].filter(Boolean).join(" ");
}

export function runCommand(image: string | undefined, cmdlineArgs: string[], opts: RunCommandOptions): number {
  const stack = getStack(opts.stack);
  let bytes: Uint8Array;
  let cmdline: string;
  if (image !== undefined) {
    try {
      bytes = readFileSync(image);
    } catch (e) {
      throw new Error(`cannot read image "${image}": ${(e as Error).message}`);
    }
    cmdline = cmdlineArgs.join(" ");
    if (opts.workload) cmdline = `${workloadCmdline(opts.workload, opts.iters)} ${cmdline}`.trim();
  } else {
    if (!opts.workload) throw new Error("give an IMAGE or --workload NAME (see --help)");
    bytes = readFileSync(bundledKernelPath());
    cmdline = `${workloadCmdline(opts.workload, opts.iters)} ${cmdlineArgs.join(" ")}`.trim();
  }
  let result: StackRunResult;
  try {
    result = stack.run({
      image: bytes,
      cmdline,
      memory: opts.memory,
      maxInstructions: opts.maxInstructions,
      protocol: opts.protocol,
      profile: opts.profile,
      npvMap: opts.npvMap,
      modules: readModules(opts.module ?? [], opts.protocol ?? defaultProtocol(bytes), opts.stack),
      onSerial: opts.json ? undefined : (s) => process.stdout.write(s),
    });
  } catch (e) {
    if (e instanceof ImageError) throw new Error(`bad image: ${e.message}`);
    throw e;
  }
  if (opts.json) {
    console.log(JSON.stringify(runJson(result, cmdline), null, 2));
  } else {
    printSummary(result);
  }
  if (result.outcome.kind !== "debug-exit") {
    if (!opts.json) console.error(`nestlab: ${result.outcome.message}`);
    return 4; // the guest never reached the debug-exit port (2 is for usage errors)
  }
  return result.exitStatus ?? 0;
}

export function runJson(r: StackRunResult, cmdline: string): object {
  return {
    stack: r.stack,
    protocol: r.protocol,
    cmdline,
    outcome: r.outcome,
    exitStatus: r.exitStatus,
    results: r.guest.results.map((x) => x.fields),
    failures: r.guest.failures.map((x) => x.fields),
    instructions: r.instructions,
    cycles: r.cycles,
    counters: r.counters,
    ledger: r.ledger,
    wallSeconds: Number(r.wallSeconds.toFixed(3)),
  };
}

/**
 * Nested stacks that report `npv.l2_exits.{l0,l1}.<reason>` and `npv.hypercalls.<name>`: L2's exits
 * handled by L0 alone vs forwarded to L1, and L1's hypercalls to L0 by number.
 */
export function npvSummary(counters: Record<string, number>): string {
  const pick = (prefix: string) =>
    Object.entries(counters)
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, v]) => [k.slice(prefix.length), v] as [string, number])
      .sort((a, b) => b[1] - a[1]);
  const alone = pick("npv.l2_exits.l0.");
  const fwd = pick("npv.l2_exits.l1.");
  const hc = pick("npv.hypercalls.");
  if (alone.length === 0 && fwd.length === 0 && hc.length === 0) return "";
  const total = (xs: [string, number][]) => xs.reduce((n, [, v]) => n + v, 0);
  const list = (xs: [string, number][]) => xs.map(([k, v]) => `${k} ${v.toLocaleString("en-US")}`).join(", ") || "none";
  const nr = new Map(Object.entries(NPV_HC_NAMES).map(([n, name]) => [name, Number(n)]));
  const hcs = hc.map(([k, v]) => [nr.has(k) ? `0x${nr.get(k)!.toString(16)} ${k}` : k, v] as [string, number]);
  return (
    `   L2 exits handled by L0 alone: ${total(alone).toLocaleString("en-US")} (${list(alone)})\n` +
    `   L2 exits forwarded to L1:     ${total(fwd).toLocaleString("en-US")} (${list(fwd)})\n` +
    `   L1→L0 hypercalls:             ${total(hcs).toLocaleString("en-US")} (${list(hcs)})\n`
  );
}

function printSummary(r: StackRunResult): void {
  const w = process.stdout;
  const mips = r.instructions / Math.max(r.wallSeconds, 1e-9) / 1e6;
  w.write(`\n── nestlab: stack ${r.stack}, boot ${r.protocol}: ${r.outcome.message}\n`);
  w.write(
    `   ${r.instructions.toLocaleString("en-US")} instructions, ${r.cycles.toLocaleString("en-US")} simulated cycles, ${r.wallSeconds.toFixed(2)} s wall (${mips.toFixed(1)} MIPS)\n`,
  );
  const keys = Object.keys(r.counters).filter((k) => k !== "cpu.instructions" && k !== "cpu.cycles");
  for (const k of keys) w.write(`   ${k.padEnd(34)} ${r.counters[k].toLocaleString("en-US")}\n`);
  const npv = npvSummary(r.counters);
  if (npv !== "") w.write(npv);
  if (r.ledger && r.ledger.length > 0) {
    w.write("   where the cycles went (level/category/reason):\n");
    for (const l of r.ledger.slice(0, 20)) {
      w.write(
        `   L${l.level} ${`${l.category}/${l.reason}`.padEnd(30)} ${Math.round(l.cycles).toLocaleString("en-US").padStart(16)} cycles  ${l.count.toLocaleString("en-US").padStart(10)} events\n`,
      );
    }
  }
}
