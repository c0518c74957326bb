/**
 * nestlab's exit codes (README "Exit codes" and `--help` list them). QEMU's isa-debug-exit makes
 * QEMU exit with (value << 1) | 1; `run --exit-code qemu` keeps that for scripts written for it.
 */
import type { StackOutcome } from "../stacks/stack.js";

export const EXIT = {
  /** The guest wrote 0 to the debug-exit port (`compare`: every cell passed). */
  ok: 0,
  /** The guest wrote a non-zero value (`compare`: a cell failed). */
  guestFailed: 1,
  /** Bad command line (unknown option, stack, workload; a bad value). */
  usage: 2,
  /** An image or profile file nestlab cannot use. */
  badInput: 3,
  /** The guest crashed: triple fault / shutdown, or the hypervisor could not go on with it. */
  guestCrashed: 4,
  /** The guest hung: instruction or cycle limit, no progress, or a halt nothing can wake. */
  guestHung: 5,
  /** Output could not be written (disk full, I/O error). */
  outputError: 6,
  /** A bug in nestlab (the full trace goes to a file; --debug prints it). */
  internal: 7,
  /** The reader closed the pipe (`| head`): as a process killed by SIGPIPE, 128 + 13. */
  brokenPipe: 141,
  /** Interrupted by Ctrl-C: 128 + SIGINT. */
  interrupted: 130,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0    the guest wrote 0 to the debug-exit port (compare: every cell passed)
  1    the guest wrote another value (compare: some cell failed)
  2    usage error
  3    bad image or profile file
  4    the guest crashed (triple fault) or the hypervisor could not go on
  5    the guest hung (instruction/cycle limit, no progress, halted for good)
  6    output could not be written (e.g. disk full)
  7    internal error in nestlab (one line; the trace goes to a file, --debug prints it)
  130  interrupted (Ctrl-C); 141 the reader closed the pipe
  run --exit-code qemu: a debug-exit value v exits with QEMU's (v << 1) | 1 instead of 0/1.`;

/** A command-line mistake: exit 2. */
export class UsageError extends Error {}
/** A file nestlab cannot use: exit 3. */
export class InputError extends Error {}
/** A file nestlab cannot write (the report): exit 6. */
export class OutputFileError extends Error {}

/** The exit code of a finished run. */
export function runExitCode(outcome: StackOutcome, exitStatus: number | null, mode: "nestlab" | "qemu"): number {
  switch (outcome.kind) {
    case "debug-exit": {
      const status = exitStatus ?? outcome.status ?? 1;
      if (mode === "qemu") return status & 0xff;
      return status === 1 ? EXIT.ok : EXIT.guestFailed;
    }
    case "triple-fault":
    case "error":
      return EXIT.guestCrashed;
    case "halted":
    case "instruction-limit":
    case "cycle-limit":
    case "no-progress":
      return EXIT.guestHung;
  }
}
