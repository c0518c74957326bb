/** Guest RAM sizes on the command line (--memory): 256M, 4G, 65536K or plain bytes. */
import { UsageError } from "./exit-codes.js";

const UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** Parse sizes like 256M, 4G, 65536K, or plain bytes. */
export function parseSize(v: string): number {
  const m = /^(\d+)\s*([KMG]i?B?)?$/i.exec(v.trim());
  if (!m) throw new UsageError(`bad size "${v}" (try 256M or 4G)`);
  const n = Number(m[1]) * (UNITS[(m[2] ?? "").toUpperCase()[0]] ?? 1);
  if (n < 16 * 1024 * 1024 || n % 4096 !== 0)
    throw new UsageError(`memory must be at least 16M and a multiple of 4K, got "${v}"`);
  return n;
}

/** A size in the units --help shows (256M, 4G). */
export function formatSize(bytes: number): string {
  for (const u of ["G", "M", "K"]) if (bytes % UNITS[u] === 0) return `${bytes / UNITS[u]}${u}`;
  return String(bytes);
}
