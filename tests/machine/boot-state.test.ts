import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Cpu } from "../../src/cpu/cpu.js";
import { bootDirect64, loadDirect64 } from "../../src/machine/boot.js";
import { cpuBootState, loadBootState, resetBootState } from "../../src/machine/boot-state.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { bundledKernelPath } from "../../src/paths.js";

describe("boot states", () => {
  it("the reset boot state is the CPU's state at reset", () => {
    expect(cpuBootState(new Cpu(new PhysicalMemory(1 << 20)))).toEqual(resetBootState());
  });

  it("a loader needs no CPU; loading its state gives the CPU the loader's boot", () => {
    const kernel = new Uint8Array(readFileSync(bundledKernelPath()));
    const img = loadDirect64(kernel, "workload=cpuid", 64 << 20);
    expect(img.state.pages.length).toBeGreaterThan(0);
    const a = new Cpu(new PhysicalMemory(64 << 20));
    loadBootState(a, img.state);
    const b = new Cpu(new PhysicalMemory(64 << 20));
    bootDirect64(b, kernel, "workload=cpuid");
    expect(cpuBootState(a)).toEqual(cpuBootState(b));
    expect(cpuBootState(a).efer & 0x400).toBe(0x400); // long mode active
    for (const p of img.state.pages) expect(a.mem.readBytes(p.pfn * 4096, 4096)).toEqual(p.bytes);
  });
});
