/**
 * What a REP string instruction is charged (wiring: expected values are computed from the same
 * profile the CPU charges). Start-up once per instruction, 64-byte lines for fast strings, one
 * charge per element otherwise; a resumed instruction (REP_CAP, interrupt window) pays no second
 * start-up.
 */
import { describe, expect, it } from "vitest";
import { CostLedger } from "../../src/cost/ledger.js";
import { P } from "../../src/cost/primitives.js";
import { loadProfile } from "../../src/cost/profile.js";
import type { Cpu } from "../../src/cpu/cpu.js";
import { REP_CAP } from "../../src/cpu/ops/string.js";
import { HAVE_AS } from "../helpers/asm.js";
import { DATA_BASE } from "../helpers/machine.js";
import { RAX, RCX, RDI, RSI, runRegs } from "../helpers/x86ref.js";

const profile = loadProfile("cascadelake-kvm");
const cost = (name: keyof typeof P) => profile.cycles[P[name]];

/** Runs `src` with the profile and returns the rep_string ledger line (cycles, count). */
function repCharge(src: string, regs: Record<number, bigint>): { cycles: number; count: number } {
  const ledger = new CostLedger();
  runRegs(src, regs, 0, (c: Cpu) => c.setCostModel(profile.cycles, ledger, 0, 1));
  const l = ledger.lines().filter((x) => x.reason === "rep_string");
  return { cycles: l.reduce((a, x) => a + x.cycles, 0), count: l.reduce((a, x) => a + x.count, 0) };
}

describe.skipIf(!HAVE_AS)("REP string cost (wiring)", () => {
  it("rep stosq of 4 KiB: start-up + 64 lines", () => {
    const r = repCharge("rep stosq", { [RDI]: BigInt(DATA_BASE), [RCX]: 512n, [RAX]: 0n });
    expect(r.cycles).toBe(cost("insn.rep_startup") + 64 * cost("insn.rep_fast_line"));
    expect(r.count).toBe(1 + 64);
  });

  it("a partial line is charged as a line; a count of 0 costs nothing extra", () => {
    expect(
      repCharge("rep movsb", { [RSI]: BigInt(DATA_BASE), [RDI]: BigInt(DATA_BASE + 0x1000), [RCX]: 65n }).cycles,
    ).toBe(cost("insn.rep_startup") + 2 * cost("insn.rep_fast_line"));
    expect(repCharge("rep movsb", { [RCX]: 0n }).cycles).toBe(0);
  });

  it("a copy longer than REP_CAP resumes without a second start-up", () => {
    const n = REP_CAP * 3 + 5; // bytes
    const r = repCharge("rep movsb", {
      [RSI]: BigInt(DATA_BASE),
      [RDI]: BigInt(DATA_BASE + 0x10000),
      [RCX]: BigInt(n),
    });
    expect(r.cycles).toBe(cost("insn.rep_startup") + Math.ceil(n / 64) * cost("insn.rep_fast_line"));
  });

  it("DF = 1 and the compare/scan forms charge per element", () => {
    const down = repCharge("std\nrep stosb\ncld", { [RDI]: BigInt(DATA_BASE + 100), [RCX]: 10n });
    expect(down.cycles).toBe(cost("insn.rep_startup") + 10 * cost("insn.rep_iteration"));
    // REPE CMPSB over equal bytes stops at the count; two separate instructions pay two start-ups.
    const two = repCharge("repe cmpsb\nmov rcx, 3\nrep lodsb", {
      [RSI]: BigInt(DATA_BASE),
      [RDI]: BigInt(DATA_BASE + 0x1000),
      [RCX]: 7n,
    });
    expect(two.cycles).toBe(2 * cost("insn.rep_startup") + 10 * cost("insn.rep_iteration"));
  });
});
