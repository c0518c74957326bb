/**
 * The run watchdog (src/stacks/watchdog.ts) and the profile bounds that keep the simulated clock
 * exact. The watchdog is driven here by a body that only charges time, as a hypervisor loop would;
 * tests/cli/exit-codes.test.ts checks the cycle limit on a real run.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkProfile } from "../../src/cost/profile.js";
import { Cpu } from "../../src/cpu/cpu.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { MAX_EXACT_CYCLES, MAX_STALLED_CHARGES, watchRun } from "../../src/stacks/watchdog.js";

const newCpu = () => new Cpu(new PhysicalMemory(1 << 20));

describe("run watchdog", () => {
  it("stops a loop that charges time without the guest retiring an instruction", () => {
    const cpu = newCpu();
    const keys = Object.keys(cpu);
    let charges = 0;
    const stop = watchRun(cpu, 1e15, () => {
      for (;;) {
        cpu.charge(10);
        charges++;
      }
    });
    expect(stop).toEqual({
      kind: "no-progress",
      message: expect.stringMatching(/^no guest progress: 1,000,000 hypervisor charges in a row/),
    });
    expect(charges).toBe(MAX_STALLED_CHARGES - 1); // the last charge threw before the count
    // The CPU is left as it was: unwatched, with the same own properties (no per-object method).
    expect(cpu.chargeWatch).toBe(null);
    expect(Object.hasOwn(cpu, "charge")).toBe(false);
    expect(Object.keys(cpu)).toEqual(keys);
  });

  it("lets a guest that retires instructions between charges run to the cycle limit", () => {
    const cpu = newCpu();
    let exits = 0;
    const stop = watchRun(cpu, 1_000_000, () => {
      for (;;) {
        cpu.icount += 1;
        cpu.charge(999); // with the instruction: 1,000 cycles per "exit"
        exits++;
      }
    });
    expect(stop).toMatchObject({ kind: "cycle-limit" });
    expect((stop as { message: string }).message).toMatch(
      /cycle limit \(1,000,000 cycles\) reached after 1,001 guest instructions/,
    );
    expect(exits).toBe(1000);
  });

  it("keeps a watch armed around it (nested runs) and restores it afterwards", () => {
    const cpu = newCpu();
    let outerCalls = 0;
    const outerWatch = () => {
      outerCalls++;
    };
    cpu.chargeWatch = outerWatch;
    const stop = watchRun(cpu, 5000, () => {
      for (;;) {
        cpu.icount += 1;
        cpu.charge(999);
      }
    });
    expect(stop).toMatchObject({ kind: "cycle-limit" });
    expect(outerCalls).toBe(6); // the 6th charge (6,000 cycles) passes the limit; the outer watch saw it too
    expect(cpu.chargeWatch).toBe(outerWatch);
  });

  it("returns the body's own result when no limit is reached", () => {
    const cpu = newCpu();
    expect(watchRun(cpu, 1000, () => ({ kind: "debug-exit", message: "done" }))).toEqual({
      kind: "debug-exit",
      message: "done",
    });
  });

  it("refuses a cycle limit past 2^53 and stops a clock that would pass it", () => {
    expect(() => watchRun(newCpu(), MAX_EXACT_CYCLES * 2, () => 0)).toThrow(RangeError);
    const cpu = newCpu();
    const stop = watchRun(cpu, MAX_EXACT_CYCLES, () => {
      cpu.icount += 1;
      cpu.charge(MAX_EXACT_CYCLES);
      return "not reached";
    });
    expect(stop).toMatchObject({ kind: "error", message: expect.stringMatching(/2\^53 cycles/) });
  });
});

describe("profile bounds (src/cost/profile-schema.json)", () => {
  const base = () => JSON.parse(readFileSync(join("src", "cost", "profiles", "cascadelake-kvm.json"), "utf8"));
  const reject = (edit: (p: ReturnType<typeof base>) => void, msg: RegExp) => {
    const p = base();
    edit(p);
    expect(() => checkProfile(p, "test")).toThrow(msg);
  };

  it("accepts the bundled profile", () => {
    expect(checkProfile(base(), "test").name).toBe("cascadelake-kvm");
  });
  it("bounds every primitive at 1,000,000 cycles", () => {
    reject((p) => {
      p.costs["vmx.exit"].cycles = 1_000_001;
    }, /costs\/vmx\.exit\/cycles must be <= 1000000/);
  });
  it("needs a base instruction cost above 0 and at most 100", () => {
    reject((p) => {
      p.costs["insn.base"].cycles = 0;
    }, /insn\.base\/cycles must be > 0/);
    reject((p) => {
      p.costs["insn.base"].cycles = 101;
    }, /insn\.base\/cycles must be <= 100/);
    reject((p) => {
      delete p.costs["insn.base"].source;
    }, /insn\.base must have required property 'source'/);
  });
  it("bounds the clock at 10 GHz", () => {
    reject((p) => {
      p.machine.ghz = 50;
    }, /machine\/ghz must be <= 10/);
  });
});
