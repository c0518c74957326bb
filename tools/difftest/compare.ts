/**
 * Comparison of the native and emulated outcome of a case, and the report of a mismatch:
 * listing (bytes, text, table row), initial state, and every differing register, flag and byte.
 */
import type { SideResult } from "./emulator.js";
import { bytesHex } from "./encoder.js";
import type { TestCase } from "./generator.js";
import { DATA_ADDR, REG_NAMES } from "./layout.js";
import { DF, FLAG_NAMES, flagsText, STATUS } from "./specs.js";

export interface Difference {
  what: string;
  expected: string;
  got: string;
}

function h64(lo: number, hi: number): string {
  return `0x${(hi >>> 0).toString(16).padStart(8, "0")}_${(lo >>> 0).toString(16).padStart(8, "0")}`;
}

/** Flags compared: the six status flags and DF, minus those left undefined by the sequence. */
export function comparedFlags(tc: TestCase): number {
  return (STATUS | DF) & ~tc.undef;
}

/**
 * Differences between the native (expected) and emulated (got) outcome; empty when they agree.
 * With `vendorMasks` (a host of another vendor than the model: vendor.ts), the flags and bytes
 * the case's vendor notes name are left out, and a case whose whole outcome is vendor-specific
 * is not compared.
 */
export function compareResults(tc: TestCase, native: SideResult, emu: SideResult, vendorMasks = false): Difference[] {
  const d: Difference[] = [];
  let flagMask = 0;
  const memMask: [number, number][] = [];
  if (vendorMasks) {
    for (const n of tc.vendor) {
      if (n.skip) return d;
      if (n.flags) flagMask |= n.flags;
      if (n.memLen) memMask.push([n.memAddr as number, (n.memAddr as number) + n.memLen]);
    }
  }
  const memMasked = (a: number) => memMask.some(([lo, hi]) => a >= lo && a < hi);
  // Both ran to the end, or both faulted the same way at the same instruction (then the state
  // at the fault is compared: registers, RFLAGS from the signal context / exception frame, memory).
  if (native.faultSig !== emu.faultSig) {
    d.push({ what: "outcome", expected: native.fault ?? "ran to the end", got: emu.fault ?? "ran to the end" });
    return d;
  }
  for (let r = 0; r < 16; r++) {
    if (native.regsLo[r] !== emu.regsLo[r] || native.regsHi[r] !== emu.regsHi[r]) {
      d.push({
        what: REG_NAMES[r],
        expected: h64(native.regsLo[r], native.regsHi[r]),
        got: h64(emu.regsLo[r], emu.regsHi[r]),
      });
    }
  }
  const mask = comparedFlags(tc) & ~flagMask;
  const fx = native.flags & mask;
  const fg = emu.flags & mask;
  if (fx !== fg) {
    const bad = FLAG_NAMES.filter(([b]) => ((fx ^ fg) & b) !== 0).map(([, n]) => n);
    d.push({
      what: `rflags (${bad.join(" ")})`,
      expected: `0x${fx.toString(16)} [${flagsText(fx)}]`,
      got: `0x${fg.toString(16)} [${flagsText(fg)}]`,
    });
  }
  if (native.outsideHash !== emu.outsideHash) {
    d.push({
      what: "data pages outside the data area (hash)",
      expected: `0x${native.outsideHash.toString(16)}`,
      got: `0x${emu.outsideHash.toString(16)}`,
    });
  }
  for (let i = 0; i < native.data.length; i++) {
    if (native.data[i] !== emu.data[i] && !memMasked(DATA_ADDR + i)) {
      d.push({
        what: `mem[0x${(DATA_ADDR + i).toString(16)}] (data+0x${i.toString(16)})`,
        expected: `0x${native.data[i].toString(16).padStart(2, "0")}`,
        got: `0x${emu.data[i].toString(16).padStart(2, "0")}`,
      });
    }
  }
  return d;
}

/** The listing of a case: offset, bytes, text and the opcode-table row each instruction came from. */
export function listing(tc: TestCase): string {
  const out: string[] = [];
  for (const l of tc.lines) {
    out.push(
      `  +${l.off.toString(16).padStart(4, "0")}  ${bytesHex(l.bytes).padEnd(44)} ${l.text.padEnd(48)} [${l.row}]`,
    );
  }
  return out.join("\n");
}

export function initialState(tc: TestCase): string {
  const out: string[] = [];
  for (let r = 0; r < 16; r += 4) {
    const row: string[] = [];
    for (let k = r; k < r + 4; k++) row.push(`${REG_NAMES[k].padStart(3)}=${h64(tc.regsLo[k], tc.regsHi[k])}`);
    out.push(`  ${row.join("  ")}`);
  }
  out.push(
    `  rflags=0x${tc.flags.toString(16)} [${flagsText(tc.flags)}]   undefined at end (masked): [${flagsText(tc.undef & STATUS)}]`,
  );
  const dataLines: string[] = [];
  for (let i = 0; i < tc.data.length; i += 32)
    dataLines.push(`  data+0x${i.toString(16).padStart(3, "0")}: ${bytesHex(tc.data.subarray(i, i + 32))}`);
  out.push(...dataLines);
  return out.join("\n");
}

export function formatMismatch(tc: TestCase, diffs: Difference[], maxDiffs = 24): string {
  const out: string[] = [];
  out.push(
    `mismatch in case ${tc.index} (seed ${tc.seed}); rerun with: npm run difftest -- --seed ${tc.seed} --case ${tc.index}`,
  );
  out.push(`code at 0x${tc.codeAddr.toString(16)}:`);
  out.push(listing(tc));
  out.push("initial state:");
  out.push(initialState(tc));
  out.push("differences (expected = native CPU, got = emulator):");
  for (const d of diffs.slice(0, maxDiffs))
    out.push(`  ${d.what.padEnd(34)} expected ${d.expected.padEnd(30)} got ${d.got}`);
  if (diffs.length > maxDiffs) out.push(`  … ${diffs.length - maxDiffs} more`);
  return out.join("\n");
}
