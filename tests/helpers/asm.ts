import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** True when GNU as and objcopy are available (they come with gcc/binutils). */
export const HAVE_AS = (() => {
  try {
    execFileSync("as", ["--version"], { stdio: "ignore" });
    execFileSync("objcopy", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const CACHE = join(tmpdir(), "nestlab-asm-cache");

/**
 * Assemble Intel-syntax source with GNU as into a flat binary (linked at address 0, so code
 * must be position-independent or use RIP-relative references). Results are cached by content.
 */
export function asm(source: string, bits: 32 | 64 = 64): Uint8Array {
  const text = `.intel_syntax noprefix\n.code${bits}\n${source}\n`;
  const key = createHash("sha1").update(`${bits}\n${text}`).digest("hex");
  const bin = join(CACHE, `${key}.bin`);
  if (existsSync(bin)) return new Uint8Array(readFileSync(bin));
  mkdirSync(CACHE, { recursive: true });
  const src = join(CACHE, `${key}.s`);
  const obj = join(CACHE, `${key}.o`);
  writeFileSync(src, text);
  execFileSync("as", [bits === 64 ? "--64" : "--32", "-o", obj, src]);
  execFileSync("objcopy", ["-O", "binary", "-j", ".text", obj, `${bin}.tmp`]);
  execFileSync("mv", [`${bin}.tmp`, bin]);
  return new Uint8Array(readFileSync(bin));
}
