/**
 * The native side of the difftest: compiles tools/difftest/native/harness.c with the system gcc
 * (cached by content hash in a temporary directory, never committed) and runs batches of cases
 * through it over stdin/stdout.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { SideResult } from "./emulator.js";
import type { TestCase } from "./generator.js";
import { CODE_ADDR, DATA_ADDR, DATA_SIZE } from "./layout.js";
import type { Features } from "./specs.js";

export interface Harness {
  path: string;
  features: Features;
  vendor: string;
}

const SIGNALS: Record<number, string> = { 4: "SIGILL", 5: "SIGTRAP", 7: "SIGBUS", 8: "SIGFPE", 11: "SIGSEGV" };

/** Locate harness.c from either the TypeScript sources or the compiled dist/ tree. */
export function harnessSource(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let k = 0; k < 6; k++) {
    const p = join(dir, "tools", "difftest", "native", "harness.c");
    if (existsSync(p)) return p;
    const q = join(dir, "native", "harness.c");
    if (existsSync(q)) return q;
    dir = dirname(dir);
  }
  throw new Error("difftest: cannot find tools/difftest/native/harness.c");
}

/** Compile (or reuse) the harness. Returns a skip reason string when it cannot run here. */
export function buildHarness(): Harness | string {
  if (process.platform !== "linux" || process.arch !== "x64")
    return `not an x86-64 Linux host (${process.platform}/${process.arch})`;
  const cc = process.env.DIFFTEST_CC || "gcc";
  const ver = spawnSync(cc, ["--version"], { encoding: "utf8" });
  if (ver.error || ver.status !== 0) return `${cc} not found`;
  const src = harnessSource();
  const text = readFileSync(src);
  const flags = ["-O2", "-std=gnu11", "-Wall"];
  const key = createHash("sha1").update(text).update(ver.stdout).update(flags.join(" ")).digest("hex").slice(0, 16);
  const dir = process.env.DIFFTEST_CACHE || join(tmpdir(), "nestlab-difftest");
  const bin = join(dir, `harness-${key}`);
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${bin}.${process.pid}.tmp`;
    const r = spawnSync(cc, [...flags, "-o", tmp, src], { encoding: "utf8" });
    if (r.error || r.status !== 0)
      return `${cc} failed to compile the harness: ${(r.stderr || String(r.error)).trim()}`;
    renameSync(tmp, bin);
  }
  const f = spawnSync(bin, ["features"], { encoding: "utf8" });
  if (f.error || f.status !== 0) return `the native harness does not run: ${(f.stderr || String(f.error)).trim()}`;
  const kv = new Map<string, string>();
  for (const part of f.stdout.trim().split(/\s+/)) {
    const [k, v] = part.split("=");
    kv.set(k, v);
  }
  const on = (k: string): boolean => kv.get(k) === "1";
  return {
    path: bin,
    vendor: kv.get("vendor") ?? "?",
    features: {
      popcnt: on("popcnt"),
      lzcnt: on("lzcnt"),
      bmi1: on("bmi1"),
      bmi2: on("bmi2"),
      movbe: on("movbe"),
      adx: on("adx"),
      lahf: on("lahf"),
    },
  };
}

function hex64(lo: number, hi: number): string {
  return hi === 0 ? `0x${lo.toString(16)}` : `0x${hi.toString(16)}${lo.toString(16).padStart(8, "0")}`;
}

const OUT_REC = 160 + DATA_SIZE;

/** Run a batch of cases natively (one process for the whole batch). */
export function runNative(h: Harness, cases: readonly TestCase[]): SideResult[] {
  let total = 0;
  for (const tc of cases) total += 8 + 136 + DATA_SIZE + tc.code.length;
  const input = Buffer.alloc(total);
  let p = 0;
  for (const tc of cases) {
    input.writeUInt32LE(tc.code.length, p);
    input.writeUInt32LE(tc.codeAddr - CODE_ADDR, p + 4);
    p += 8;
    for (let r = 0; r < 16; r++) {
      input.writeInt32LE(tc.regsLo[r], p);
      input.writeInt32LE(tc.regsHi[r], p + 4);
      p += 8;
    }
    input.writeUInt32LE(tc.flags >>> 0, p);
    input.writeUInt32LE(0, p + 4);
    p += 8;
    input.set(tc.data, p);
    p += DATA_SIZE;
    input.set(tc.code, p);
    p += tc.code.length;
  }
  const hx = (v: number): string => v.toString(16);
  const r = spawnSync(h.path, ["run", hx(CODE_ADDR), hx(DATA_ADDR), hx(DATA_SIZE)], {
    input,
    maxBuffer: cases.length * OUT_REC + (1 << 20),
  });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(
      `difftest: native harness failed (status ${r.status}, signal ${r.signal}): ${r.stderr.toString().trim()}`,
    );
  }
  const out = r.stdout;
  if (out.length !== cases.length * OUT_REC)
    throw new Error(`difftest: native harness returned ${out.length} bytes for ${cases.length} cases`);
  const res: SideResult[] = [];
  for (let k = 0; k < cases.length; k++) {
    const b = k * OUT_REC;
    const status = out.readUInt32LE(b);
    const regsLo = new Int32Array(16);
    const regsHi = new Int32Array(16);
    for (let i = 0; i < 16; i++) {
      regsLo[i] = out.readInt32LE(b + 8 + i * 8);
      regsHi[i] = out.readInt32LE(b + 12 + i * 8);
    }
    const flags = out.readInt32LE(b + 136);
    let fault: string | null = null;
    let faultSig: string | null = null;
    if (status !== 0) {
      const rip = out.readUInt32LE(b + 144) - cases[k].codeAddr;
      const sig = SIGNALS[status] ?? `signal ${status}`;
      // For SIGSEGV from a page fault si_addr is CR2 (0 for #GP): compare it too.
      const addr = sig === "SIGSEGV" ? hex64(out.readUInt32LE(b + 152), out.readUInt32LE(b + 156)) : "";
      fault = `${sig} at +0x${rip.toString(16)}${addr && addr !== "0x0" ? ` (address ${addr})` : ""}`;
      faultSig = `${sig}@0x${rip.toString(16)}${addr ? `:${addr}` : ""}`;
    }
    res.push({
      fault,
      faultSig,
      outsideHash: out.readUInt32LE(b + 4),
      regsLo,
      regsHi,
      flags,
      data: Uint8Array.from(out.subarray(b + 160, b + 160 + DATA_SIZE)),
    });
  }
  return res;
}
