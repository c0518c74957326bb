/**
 * A stack is one way of wiring the same guest and machine: bare metal (`native`), under L0
 * (`vm`), nested… Each stack takes a guest image and command line and returns what happened.
 */
import type { LedgerLine } from "../cost/ledger.js";
import type { ProfileSpec } from "../cost/profile.js";
import type { JitOptions } from "../cpu/jit/options.js";
import type { BootModule, BootProtocol } from "../machine/boot.js";
import type { GuestOutput } from "../machine/results.js";
import type { StopReason } from "../machine/stop.js";
import type { L0Policy, Tunables } from "../machine/tunables.js";
import type { EventCount, ExitCount } from "../stats/run-stats.js";
import type { TimelineRecorder } from "../trace/timeline.js";

export interface StackRunOptions {
  image: Uint8Array;
  /** The nested stacks' L1 hypervisor image (`--l1-image`; default: the registered `l1hv`, guest-images.ts). */
  l1Image?: Uint8Array;
  cmdline: string;
  /** Guest RAM in bytes. */
  memory: number;
  maxInstructions: number;
  /** Multiboot modules (`--module`): multiboot protocol only. */
  modules?: BootModule[];
  /** Boot protocol; default: direct64 for ELF64 images, multiboot otherwise. */
  protocol?: BootProtocol;
  /** Streams the guest's serial output as it is produced. */
  onSerial?: (text: string) => void;
  serialInput?: string;
  /** Cost profile: a bundled profile's name or a checked document (default: the default profile). */
  profile?: ProfileSpec;
  /** `npv` stack only: L1 maps L2 memory eagerly (all at boot) or on demand (default). */
  npvMap?: "eager" | "demand";
  /**
   * Stacks that run the executed L1 (bare-l1, nvmx*, npv): L1's own scheduler tick (default on).
   * Off, L1's timer only wakes it from idle, so a run's path cannot depend on simulated timing.
   */
  l1Tick?: boolean;
  /**
   * Stacks whose L1 is l1hv's vmx back end (bare-l1, nvmx*: `Stack.l1EptPages`): the largest
   * EPT12 leaf L1 maps L2's RAM with (`--l1-ept-pages`; default 4k). Other stacks ignore it.
   */
  l1EptPages?: L1EptPages;
  /** nvmx stacks: the L1 image's own command line (for an L1 other than l1hv). */
  l1Cmdline?: string;
  /** Block compiler settings (default: jitDefaults); simulated results are the same either way. */
  jit?: Partial<JitOptions>;
  /** L0 policy overrides (`--l0-intercept-ud`, `--vm-virtio`); the same defaults on every stack. */
  l0?: Partial<L0Policy>;
  /** Simulation tunables to override (slices, fault batch, memory reservations). */
  tunables?: Partial<Tunables>;
  /** Stop a run whose simulated clock passes this many cycles (default `DEFAULT_MAX_CYCLES`). */
  maxCycles?: number;
  /**
   * `native` stack only (`--cpu-vmx`): the bare machine's CPU advertises VMX to the guest
   * (CPUID.1:ECX.VMX, the capability MSRs; docs/vmx.md), so the guest may be a hypervisor.
   */
  cpuVmx?: boolean;
  /**
   * `--cache-model off` (false): no data-cache model; every page-walk reference is charged the
   * profile's flat `mmu.walk_ref` instead of by the cache level that held it (default true).
   */
  cacheModel?: boolean;
  /** Record a timeline of the run here (`run --trace`); the stack binds it and finishes it. */
  trace?: TimelineRecorder;
}

/** Why a stack's run ended: the machine's outcomes, or a limit the run watchdog enforced. */
export type StackOutcome = StopReason | { kind: "cycle-limit" | "no-progress"; message: string; status?: undefined };

// VM exits by (handling level, taking level, reason) and engine events by (family, name): the
// stats registry's structured records (src/stats/run-stats.ts).
export type { EventCount, ExitCount } from "../stats/run-stats.js";

export interface StackRunResult {
  stack: string;
  protocol: BootProtocol;
  outcome: StackOutcome;
  /** Debug-exit status, or null when the guest did not exit that way. */
  exitStatus: number | null;
  serial: string;
  guest: GuestOutput;
  instructions: number;
  cycles: number;
  /**
   * Every counter, flat: "cpu.decodes", "exits.L0.cpuid", "npv.hypercalls.run", … — made once from
   * the structured fields below by `flatCounters` (stats/run-stats.ts), for readers of the names.
   */
  counters: Record<string, number>;
  /** VM exits by the level that handled them, the level that took them, and reason: the one source. */
  exits: ExitCount[];
  /** Nested-engine and hypervisor events by declared family and name (npv, nvmx, l0.ept01, …). */
  events: EventCount[];
  /** Where the cycles went, by (level, category, reason); stacks with a cost model fill it. */
  ledger?: LedgerLine[];
  wallSeconds: number;
}

/** The largest EPT12 leaf l1hv's vmx back end builds (docs/l1hv.md, "2 MiB EPT12 leaves"). */
export type L1EptPages = "4k" | "2m";
export const L1_EPT_PAGES: readonly L1EptPages[] = ["4k", "2m"];

export interface Stack {
  name: string;
  description: string;
  /** Its L1 is l1hv's vmx back end, whose EPT12 leaf size `StackRunOptions.l1EptPages` chooses. */
  l1EptPages?: true;
  run(opts: StackRunOptions): StackRunResult;
  /** Throws StackOptionError when the stack cannot run with these options (before any work). */
  preflight?(opts: Pick<StackRunOptions, "l1Image">): void;
}

export class UnknownStackError extends Error {}

/** Options a stack cannot run with (e.g. more memory than its layout allows): the user's to fix. */
export class StackOptionError extends RangeError {}
