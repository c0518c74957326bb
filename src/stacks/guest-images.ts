/**
 * Guest images a stack needs besides the one it is asked to run — the executed L1 hypervisor
 * (guests/images/l1hv.elf) of the nested stacks. The simulator core reads no files (it runs in a
 * browser Web Worker too), so the bytes come from a source its host registers: under Node,
 * `src/node-images.ts` reads guests/images/; the browser worker registers what it fetched.
 * `StackRunOptions.l1Image` overrides the source for one run.
 */
import { StackOptionError } from "./stack.js";

export type GuestImageName = "l1hv";

type ImageSource = (name: GuestImageName) => Uint8Array | undefined;

let source: ImageSource | undefined;

export function setGuestImageSource(fn: ImageSource): void {
  source = fn;
}

/** The named image, or a clear error saying the host supplied none. */
export function guestImage(name: GuestImageName, stack: string): Uint8Array {
  const bytes = source?.(name);
  if (bytes === undefined) {
    throw new StackOptionError(
      `the ${stack} stack runs the ${name} image, and none is available (build it with \`make -C guests\`, or give one with --l1-image FILE)`,
    );
  }
  return bytes;
}
