import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root (the folder with package.json), from both src/ (tests) and dist/ (CLI). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let k = 0; k < 6; k++) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "guests"))) return dir;
    dir = dirname(dir);
  }
  throw new Error("cannot find the nestlab package root (package.json next to guests/)");
}

/** The bundled guest kernel image (ELF64 with multiboot header and the nestlab 64-bit note). */
export function bundledKernelPath(): string {
  return join(packageRoot(), "guests", "images", "kernel.elf");
}
