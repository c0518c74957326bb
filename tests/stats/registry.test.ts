/** The stats registry (src/stats): declared lists, dense exit tables, keyed counts, the flat map. */
import { describe, expect, it } from "vitest";
import { CounterSet, declareCounters, KeyedCounts } from "../../src/stats/counters.js";
import { exitReasonName, VMX_EXIT_REASONS } from "../../src/stats/exit-reasons.js";
import { ExitTable } from "../../src/stats/exit-table.js";
import { type ExitCount, exitCount, exitsFrom, flatCounters, sortExits } from "../../src/stats/run-stats.js";
import * as V from "../../src/x86/vmx.js";

describe("declared counter lists", () => {
  it("interns ids once and counts by index", () => {
    const schema = declareCounters("eng", ["a", "b.c", "d"]);
    expect(schema.id).toEqual({ a: 0, "b.c": 1, d: 2 });
    const set = new CounterSet(schema);
    set.bump(schema.id["b.c"], 3);
    set.bump(schema.id.a);
    expect(set.get("b.c")).toBe(3);
    expect(set.nonZero()).toEqual([
      { name: "a", count: 1 },
      { name: "b.c", count: 3 },
    ]);
    expect(set.all().map((x) => x.count)).toEqual([1, 3, 0]);
  });

  it("refuses a list that names a counter twice", () => {
    expect(() => declareCounters("eng", ["a", "a"])).toThrow(/twice/);
  });

  it("keyed counts: dense over a range, one slot for the rest", () => {
    const k = new KeyedCounts(0x100, 4, (n) => `hc${n.toString(16)}`, "unknown");
    k.bump(0x101);
    k.bump(0x101);
    k.bump(0x200);
    k.bump(-1);
    expect(k.get(0x101)).toBe(2);
    expect(k.nonZero()).toEqual([
      { key: 0x101, name: "hc101", count: 2 },
      { name: "unknown", count: 2 },
    ]);
  });
});

describe("exit tables", () => {
  it("count by (level, Intel basic exit reason) and list in first-seen order", () => {
    const t = new ExitTable(VMX_EXIT_REASONS);
    t.bump(2, V.EXIT_IO_INSTRUCTION);
    t.bump(1, V.EXIT_CPUID);
    t.bump(2, V.EXIT_CPUID, 4);
    t.bump(1, 200); // no basic exit reason is that high: the overflow slot
    expect(t.count(2, V.EXIT_CPUID)).toBe(4);
    expect(t.levels()).toEqual([1, 2]);
    expect(t.list().map((r) => [r.level, r.reason, r.count])).toEqual([
      [2, "io_instruction", 1],
      [1, "cpuid", 1],
      [2, "cpuid", 4],
      [1, "reason_other", 1],
    ]);
    expect(t.merged().map((r) => [r.reason, r.count])).toEqual([
      ["io_instruction", 1],
      ["cpuid", 5],
      ["reason_other", 1],
    ]);
    expect(exitReasonName(V.EXIT_EPT_VIOLATION)).toBe("ept_violation");
  });

  it("a stack's exit list: by handling level, the reason's total, then the tie rule; the flat map from it", () => {
    const t = new ExitTable(VMX_EXIT_REASONS);
    t.bump(1, V.EXIT_HLT, 2);
    t.bump(1, V.EXIT_CPUID, 1);
    t.bump(2, V.EXIT_CPUID, 1);
    t.bump(2, V.EXIT_IO_INSTRUCTION, 3);
    const rows = exitsFrom(t, 0);
    const l1: ExitCount = { handledBy: 1, takenAt: 2, space: "npv", code: 1, reason: "io", count: 3 };
    const bySeen = sortExits([l1, ...rows], () => "first-seen");
    expect(bySeen.map((e) => `${e.handledBy}.${e.takenAt}.${e.reason}`)).toEqual([
      "0.2.io_instruction",
      "0.1.hlt",
      "0.1.cpuid",
      "0.2.cpuid",
      "1.2.io",
    ]);
    const byName = sortExits(rows, () => "name");
    expect(byName.map((e) => e.reason)).toEqual(["io_instruction", "cpuid", "cpuid", "hlt"]);
    expect(exitCount(bySeen, 0, "cpuid")).toBe(2);
    expect(exitCount(bySeen, 0, "cpuid", 2)).toBe(1);
    const flat = flatCounters({ "cpu.x": 1 }, bySeen, [{ family: "nvmx.emulated", name: "vmread", count: 7 }]);
    expect(flat).toEqual({
      "cpu.x": 1,
      "exits.L0.io_instruction": 3,
      "exits.L0.hlt": 2,
      "exits.L0.cpuid": 2,
      "exits.L1.io": 3,
      "exits.taken.L2.io_instruction": 3,
      "exits.taken.L1.hlt": 2,
      "exits.taken.L1.cpuid": 1,
      "exits.taken.L2.cpuid": 1,
      "npv.l2_exits.l1.io": 3,
      "nvmx.emulated.vmread": 7,
    });
  });
});
