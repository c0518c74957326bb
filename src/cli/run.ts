import { readFileSync } from "node:fs";
import type { ProfileSpec } from "../cost/profile.js";
import { type BootModule, type BootProtocol, defaultProtocol } from "../machine/boot.js";
import { ImageError } from "../machine/elf.js";
import type { L0Policy } from "../machine/tunables.js";
import { bundledKernelPath } from "../paths.js";
import { runJson, runSummary } from "../report/run-summary.js";
import { workloadCmdline } from "../report/workloads.js";
import { getStack, STACKS } from "../stacks/index.js";
import type { L1EptPages, StackRunResult } from "../stacks/stack.js";
import { DEFAULT_TRACE_LIMIT } from "../trace/timeline.js";
import { InputError, runExitCode, UsageError } from "./exit-codes.js";
import { checkRunL1EptPages } from "./l1-ept-pages.js";
import { writeOut } from "./output.js";
import { openTrace, saveTrace } from "./trace-file.js";

// Kept here for callers that imported them from the CLI before the reporting module existed.
export { npvSummary, runJson } from "../report/run-summary.js";
export { WORKLOADS, workloadCmdline } from "../report/workloads.js";

export interface RunCommandOptions {
  stack: string;
  workload?: string;
  memory: number;
  json?: boolean;
  maxInstructions: number;
  maxCycles?: number;
  protocol?: "multiboot" | "direct64";
  iters?: number;
  profile?: ProfileSpec;
  /** npv stack: eager or on-demand L2 memory mapping by L1. */
  npvMap?: "eager" | "demand";
  /** `--l0-intercept-ud` / `--vm-virtio`: L0 policy overrides. */
  l0?: Partial<L0Policy>;
  /** `--cache-model on|off` (default on). */
  cacheModel?: "on" | "off";
  /** nvmx stacks: the L1 hypervisor image file. */
  l1Image?: string;
  /** `--l1-ept-pages`: l1hv's EPT12 leaves (bare-l1, nvmx stacks only). */
  l1EptPages?: L1EptPages;
  /** `--module "FILE [ARGS]"` values, in order. */
  module?: string[];
  /** "nestlab" (0 success, 1 failure) or "qemu" ((value << 1) | 1). */
  exitCode?: "nestlab" | "qemu";
  /** Write a Perfetto / chrome://tracing timeline of the run (simulated time) to this file. */
  trace?: string;
  /** At most this many trace events (default DEFAULT_TRACE_LIMIT). */
  traceLimit?: number;
  /** `--cpu-vmx`: the native stack's CPU advertises VMX to the guest. */
  cpuVmx?: boolean;
}

/**
 * Read `--module "FILE [ARGS]"` values: the file is the first word, the module's command line
 * the whole string (as GRUB's `module` passes it). Modules exist only in the multiboot protocol
 * and on the stacks that boot the image with it (native, vm).
 */
export function readModules(specs: readonly string[], protocol: BootProtocol, stack: string): BootModule[] {
  if (specs.length === 0) return [];
  if (protocol !== "multiboot") throw new UsageError("--module needs the multiboot protocol (--boot multiboot)");
  if (stack !== "native" && stack !== "vm")
    throw new UsageError(`--module is supported on the native and vm stacks, not ${stack}`);
  return specs.map((spec) => {
    const file = spec.trim().split(/\s+/)[0] ?? "";
    try {
      return { bytes: new Uint8Array(readFileSync(file)), cmdline: spec.trim() };
    } catch (e) {
      throw new InputError(`cannot read module "${file}": ${(e as Error).message}`);
    }
  });
}

/** Read the image to run: the bundled kernel when none is given. */
export function readImage(image: string | undefined): Uint8Array {
  const path = image ?? bundledKernelPath();
  try {
    return readFileSync(path);
  } catch (e) {
    throw new InputError(`cannot read image "${path}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export function runCommand(image: string | undefined, cmdlineArgs: string[], opts: RunCommandOptions): number {
  const stack = getStack(opts.stack);
  if (image === undefined && !opts.workload) throw new UsageError("give an IMAGE or --workload NAME (see --help)");
  if (opts.cpuVmx && opts.stack !== "native")
    throw new UsageError(`--cpu-vmx gives VMX to the bare machine's guest: native stack only, not ${opts.stack}`);
  checkRunL1EptPages(STACKS, opts.stack, opts.l1EptPages);
  const prefix = opts.workload ? workloadCmdline(opts.workload, opts.iters) : "";
  const cmdline = `${prefix} ${cmdlineArgs.join(" ")}`.trim();
  const bytes = readImage(image);
  // The console goes out a line at a time (one write per line, not per byte).
  let pending = "";
  const console_ = (s: string) => {
    pending += s;
    const nl = pending.lastIndexOf("\n");
    if (nl < 0) return;
    writeOut(pending.slice(0, nl + 1));
    pending = pending.slice(nl + 1);
  };
  const trace = opts.trace === undefined ? undefined : openTrace(opts.trace, opts.traceLimit ?? DEFAULT_TRACE_LIMIT);
  let result: StackRunResult;
  try {
    result = stack.run({
      image: bytes,
      cmdline,
      memory: opts.memory,
      maxInstructions: opts.maxInstructions,
      maxCycles: opts.maxCycles,
      protocol: opts.protocol,
      profile: opts.profile,
      npvMap: opts.npvMap,
      cpuVmx: opts.cpuVmx,
      l0: opts.l0,
      cacheModel: opts.cacheModel !== "off",
      l1EptPages: opts.l1EptPages,
      l1Image: opts.l1Image === undefined ? undefined : readImage(opts.l1Image),
      modules: readModules(opts.module ?? [], opts.protocol ?? defaultProtocol(bytes), opts.stack),
      onSerial: opts.json ? undefined : console_,
      trace,
    });
  } catch (e) {
    if (e instanceof ImageError) throw new InputError(`bad image: ${e.message}`);
    throw e;
  }
  if (pending !== "") writeOut(pending);
  if (trace !== undefined && opts.trace !== undefined)
    saveTrace(opts.trace, trace, opts.profile, { stack: opts.stack, cmdline });
  if (opts.json) writeOut(`${JSON.stringify(runJson(result, cmdline), null, 2)}\n`);
  else writeOut(runSummary(result));
  if (result.outcome.kind !== "debug-exit" && !opts.json) console.error(`nestlab: ${result.outcome.message}`);
  return runExitCode(result.outcome, result.exitStatus, opts.exitCode ?? "nestlab");
}
