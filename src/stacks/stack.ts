/**
 * A stack is one way of wiring the same guest and machine: bare metal (`native`), under L0
 * (`vm`), nested… Each stack takes a guest image and command line and returns what happened.
 */
import type { LedgerLine } from "../cost/ledger.js";
import type { JitOptions } from "../cpu/jit/options.js";
import type { BootProtocol } from "../machine/boot.js";
import type { RunOutcome } from "../machine/machine.js";
import type { GuestOutput } from "../machine/results.js";

export interface StackRunOptions {
  image: Uint8Array;
  cmdline: string;
  /** Guest RAM in bytes. */
  memory: number;
  maxInstructions: number;
  /** Boot protocol; default: direct64 for ELF64 images, multiboot otherwise. */
  protocol?: BootProtocol;
  /** Streams the guest's serial output as it is produced. */
  onSerial?: (text: string) => void;
  serialInput?: string;
  /** Cost profile name or path (default: the default profile). */
  profile?: string;
  /** `npv` stack only: L1 maps L2 memory eagerly (all at boot) or on demand (default). */
  npvMap?: "eager" | "demand";
  /** Block compiler settings (default: jitDefaults); simulated results are the same either way. */
  jit?: Partial<JitOptions>;
}

export interface StackRunResult {
  stack: string;
  protocol: BootProtocol;
  outcome: RunOutcome;
  /** Debug-exit status, or null when the guest did not exit that way. */
  exitStatus: number | null;
  serial: string;
  guest: GuestOutput;
  instructions: number;
  cycles: number;
  /** Every counter, flat: "cpu.decodes", "io.ports@0x3f8.writes", … */
  counters: Record<string, number>;
  /** Where the cycles went, by (level, category, reason); stacks with a cost model fill it. */
  ledger?: LedgerLine[];
  wallSeconds: number;
}

export interface Stack {
  name: string;
  description: string;
  run(opts: StackRunOptions): StackRunResult;
}

export class UnknownStackError extends Error {}
