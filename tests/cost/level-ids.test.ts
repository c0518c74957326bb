/**
 * Ledger ids per level are interned once (src/cpu/cpu.ts idsOfLevel, src/cost/ledger.ts
 * LevelIds): switching the non-root level between L1 and L2, as every nested entry and exit does,
 * interns nothing and still attributes each charge to the level running.
 */
import { describe, expect, it, vi } from "vitest";
import { CostLedger, LevelIds } from "../../src/cost/ledger.js";
import { loadProfile } from "../../src/cost/profile.js";
import { CHARGE_CPUID } from "../../src/cpu/charges.js";
import { Cpu } from "../../src/cpu/cpu.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";

const cpuidLines = (ledger: CostLedger) =>
  ledger
    .lines()
    .filter((l) => l.reason === "cpuid")
    .map((l) => [l.level, l.count])
    .sort((a, b) => a[0] - b[0]);

describe("ledger ids per level", () => {
  it("switches the non-root level without interning, attributing to the level running", () => {
    const cpu = new Cpu(new PhysicalMemory(1 << 20));
    const ledger = new CostLedger();
    cpu.setCostModel(loadProfile().cycles, ledger, 0, 1);
    cpu.setNonRootLevel(2);
    cpu.setNonRootLevel(1);
    const id = vi.spyOn(ledger, "id");
    cpu.nonRoot = true;
    for (let i = 0; i < 10; i++) {
      cpu.setNonRootLevel(2);
      cpu.chargeEvent(CHARGE_CPUID, 2);
      cpu.setNonRootLevel(1);
      cpu.chargeEvent(CHARGE_CPUID);
    }
    cpu.nonRoot = false;
    cpu.chargeEvent(CHARGE_CPUID, 5);
    expect(id).not.toHaveBeenCalled();
    expect(cpuidLines(ledger)).toEqual([
      [0, 5],
      [1, 10],
      [2, 20],
    ]);
  });

  it("interns afresh for a new ledger", () => {
    const cpu = new Cpu(new PhysicalMemory(1 << 20));
    cpu.setCostModel(loadProfile().cycles, new CostLedger(), 0, 1);
    cpu.setNonRootLevel(2);
    const second = new CostLedger();
    cpu.setCostModel(loadProfile().cycles, second, 1, 2);
    cpu.nonRoot = true;
    cpu.chargeEvent(CHARGE_CPUID, 3);
    cpu.nonRoot = false;
    cpu.chargeEvent(CHARGE_CPUID);
    expect(cpuidLines(second)).toEqual([
      [1, 1],
      [2, 3],
    ]);
  });

  it("LevelIds interns each level once per ledger", () => {
    const a = new CostLedger();
    const ids = new LevelIds("idle", "hlt");
    const idA = vi.spyOn(a, "id");
    expect(ids.of(a, 2)).toBe(ids.of(a, 2));
    expect(ids.of(a, 1)).not.toBe(ids.of(a, 2));
    expect(idA).toHaveBeenCalledTimes(2);
    const b = new CostLedger();
    b.id(0, "guest", "instructions");
    expect(ids.of(b, 2)).toBe(1); // b's own id, not a's
    b.add(ids.of(b, 2), 7);
    expect(b.lines()).toEqual([{ level: 2, category: "idle", reason: "hlt", cycles: 7, count: 1 }]);
  });
});
