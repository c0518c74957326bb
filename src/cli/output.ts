/**
 * Output that fails quietly: a closed pipe (`nestlab run … | head -1`) or a full disk
 * (`> /dev/full`) ends the process with its exit code and at most one line, never a stack trace.
 */
import { EXIT } from "./exit-codes.js";

/** Thrown from a write callback (the guest console) to abandon a run whose output is gone. */
export class OutputClosedError extends Error {
  constructor(readonly code: number) {
    super("output closed");
  }
}

let outputFailed: number | null = null;

/** The exit code to end with if stdout failed (EPIPE → 141, else 6), or null. */
export function outputFailure(): number | null {
  return outputFailed;
}

function onError(err: NodeJS.ErrnoException): void {
  const code = err.code === "EPIPE" ? EXIT.brokenPipe : EXIT.outputError;
  if (outputFailed !== null) return;
  outputFailed = code;
  if (code === EXIT.outputError) {
    try {
      process.stderr.write(`nestlab: cannot write the output: ${err.code ?? err.message}\n`);
    } catch {
      // stderr is gone too: nothing left to tell
    }
  }
  process.exit(code);
}

/** Route write errors on stdout and stderr to a quiet exit. */
export function guardOutput(): void {
  process.stdout.on("error", onError);
  process.stderr.on("error", () => process.exit(outputFailed ?? EXIT.outputError));
}

/**
 * Write to stdout; throws OutputClosedError once stdout has failed, so a long run stops early.
 * (The stream records the error at once; its 'error' event waits for the event loop, which a
 * running simulation does not reach.)
 */
export function writeOut(text: string): void {
  const err = process.stdout.errored as NodeJS.ErrnoException | null;
  if (err) {
    onError(err);
    throw new OutputClosedError(outputFailed ?? EXIT.outputError);
  }
  process.stdout.write(text);
}
