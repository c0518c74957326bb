/**
 * Under Node, the guest images stacks need come from guests/images/ (read once, on first use).
 * Imported for its effect by every Node entry point that runs stacks (CLI, cell workers, tests).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "./paths.js";
import { type GuestImageName, setGuestImageSource } from "./stacks/guest-images.js";

const cache = new Map<GuestImageName, Uint8Array>();

export function bundledImagePath(name: GuestImageName): string {
  return join(packageRoot(), "guests", "images", `${name}.elf`);
}

setGuestImageSource((name) => {
  let bytes = cache.get(name);
  if (bytes === undefined) {
    const path = bundledImagePath(name);
    if (!existsSync(path)) return undefined;
    bytes = new Uint8Array(readFileSync(path));
    cache.set(name, bytes);
  }
  return bytes;
});
