/**
 * The nvmx stack's plumbing: an L1 image booted in a VM L0's nested-VMX engine offers VMX to,
 * its nested run counted per level (L2 exits to L0, L1 exits to L0, exits reflected to L1, world
 * switches), and clear errors for an L1 that fails or an image that is missing. The L1 here is
 * the assembly L1 of tests/helpers/nvmx-l1.ts (the executed l1hv is the stack's default).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { bundledImagePath } from "../../src/node-images.js";
import { bundledKernelPath } from "../../src/paths.js";
import { STACKS } from "../../src/stacks/index.js";
import { nvmxShadowStack, nvmxStack } from "../../src/stacks/nvmx.js";
import type { StackRunResult } from "../../src/stacks/stack.js";
import { StackOptionError } from "../../src/stacks/stack.js";
import { eventCount } from "../../src/stats/run-stats.js";
import * as V from "../../src/x86/vmx.js";
import { asm, HAVE_AS } from "../helpers/asm.js";
import { elf64At1M } from "../helpers/elf.js";
import { l1Image, TABLE } from "../helpers/nvmx-l1.js";

/** One event's count (0 when it never happened). */
const ev = (r: StackRunResult, family: string, name: string) => eventCount(r.events, family, name);

const kernel = new Uint8Array(readFileSync(bundledKernelPath()));
const MIB = 1024 * 1024;

function run(image: Uint8Array) {
  return nvmxStack.run({ image: kernel, cmdline: "", memory: 16 * MIB, maxInstructions: 1_000_000, l1Image: image });
}

describe.skipIf(!HAVE_AS)("nvmx stack", () => {
  it("is registered", () => {
    expect(STACKS.get("nvmx")).toBe(nvmxStack);
  });

  it("runs an L1 image under nested VMX and reports exits and world switches per level", () => {
    const r = run(l1Image());
    expect(r.outcome.kind, r.outcome.message).toBe("debug-exit");
    expect(r.exitStatus).toBe(1); // L1 wrote 0: it saw L2's HLT last
    const c = r.counters;
    // L2 → L0: CPUID, OUT, HLT (reflected) + 4 EPT02 misses (code page, three L2 page-table pages).
    expect(ev(r, "nvmx", "exits.l2_to_l0")).toBe(7);
    expect(ev(r, "nvmx", "exits.reflected_to_l1")).toBe(3);
    expect(ev(r, "nvmx", "ept02.built")).toBe(4);
    expect(r.exits.filter((e) => e.handledBy === 1).map((e) => [e.reason, e.count])).toEqual([
      ["cpuid", 1],
      ["hlt", 1],
      ["io_instruction", 1],
    ]);
    // L1 → L0: its VMX instructions (all trapped without shadowing), CR4.VMXE, the VMX_BASIC and
    // EFER reads, and its EPT01 first touches.
    const vmwrites = TABLE.length + 8 + 2;
    expect(ev(r, "nvmx.emulated", "vmwrite")).toBe(vmwrites);
    expect(ev(r, "nvmx.emulated", "vmread")).toBe(3 + 2 * 2);
    expect([ev(r, "nvmx.emulated", "vmlaunch"), ev(r, "nvmx.emulated", "vmresume")]).toEqual([1, 2]);
    expect(ev(r, "nvmx", "nested_entries")).toBe(3);
    // Which fields the trapped VMREADs were for: the exit reason at each of 3 exits, the
    // instruction length and guest RIP at the 2 skips; VMWRITEs of guest RIP: the table's + 2.
    expect(ev(r, "nvmx.trapped.vmread", "0x4402")).toBe(3);
    expect(ev(r, "nvmx.trapped.vmread", "0x440c")).toBe(2);
    expect(ev(r, "nvmx.trapped.vmread", "0x681e")).toBe(2);
    expect(ev(r, "nvmx.trapped.vmwrite", "0x681e")).toBe(3);
    expect(ev(r, "nvmx", "vmcs_switches")).toBe(6);
    const l0Total = r.exits.filter((e) => e.handledBy === 0).reduce((a, e) => a + e.count, 0);
    expect(ev(r, "nvmx", "exits.l1_to_l0")).toBe(l0Total - 7);
    expect(ev(r, "world_switches", "L2-L0")).toBe(7);
    expect(ev(r, "world_switches", "L1-L0")).toBe(l0Total - 7);
    // Level 2 in the ledger is L2's own: its page walks (each of its three instructions exits
    // to L0 before it retires, so none is an L2 instruction).
    // Each walk reference is priced by where the data caches find it (walk_l1d … walk_dram);
    // each walk adds the STLB lookup that missed and the page-miss handler (stlb_miss, pmh_*).
    const l2 = (r.ledger ?? []).filter((l) => l.level === 2);
    expect(l2.every((l) => l.category === "mmu" && /^(walk_|pmh_|stlb_miss$)/.test(l.reason))).toBe(true);
    const l2Count = (re: RegExp) => l2.filter((l) => re.test(l.reason)).reduce((a, l) => a + l.count, 0);
    expect(l2Count(/^walk_/)).toBe(26);
    expect(l2Count(/^pmh_walk$/)).toBe(l2Count(/^stlb_miss$/));
    expect(l2Count(/^pmh_walk$/)).toBeGreaterThan(0);
    expect(c["level2.cycles"]).toBe(l2.reduce((a, l) => a + l.cycles, 0));
    expect(c["level2.instructions"]).toBeUndefined();
    expect(c["level1.instructions"]).toBeGreaterThan(0);
    expect(c["level0.cycles"] + c["level1.cycles"] + c["level2.cycles"]).toBe(r.cycles);
  });

  it("nvmx-shadow runs the same L1 with fewer L1 exits (its VMREADs and shadowed VMWRITEs stay in L1)", () => {
    const plain = run(l1Image());
    const shadow = nvmxShadowStack.run({
      image: kernel,
      cmdline: "",
      memory: 16 * MIB,
      maxInstructions: 1_000_000,
      l1Image: l1Image(),
    });
    expect(shadow.outcome.kind, shadow.outcome.message).toBe("debug-exit");
    expect(shadow.exitStatus).toBe(1);
    expect(ev(shadow, "nvmx", "exits.l2_to_l0")).toBe(ev(plain, "nvmx", "exits.l2_to_l0"));
    expect(ev(shadow, "nvmx.emulated", "vmread")).toBe(0);
    expect(ev(shadow, "nvmx", "shadow.syncs")).toBe(7);
    expect(ev(plain, "nvmx", "exits.l1_to_l0") - ev(shadow, "nvmx", "exits.l1_to_l0")).toBe(
      7 + (ev(plain, "nvmx.emulated", "vmwrite") - ev(shadow, "nvmx.emulated", "vmwrite")),
    );
  });

  it("is deterministic", () => {
    const a = run(l1Image());
    const b = run(l1Image());
    expect(a.cycles).toBe(b.cycles);
    expect(a.counters).toEqual(b.counters);
  });

  it("an L1 that fails ends with a message naming the L1 and the stack", () => {
    // VMLAUNCH with no current VMCS is VMfailInvalid; this L1 then executes UD2 (#UD, no IDT).
    const r = run(elf64At1M(asm("mov rax, cr4\n or eax, 0x2000\n mov cr4, rax\n vmlaunch\n ud2\n")));
    expect(r.outcome.kind).not.toBe("debug-exit");
    expect(r.outcome.message).toMatch(/^L1 hypervisor under nvmx: /);
  });

  it("without --l1-image and no built l1hv, the error says what to do", () => {
    if (readFileSyncSafe(bundledImagePath("l1hv"))) return; // l1hv is built: nothing to check here
    expect(() => nvmxStack.run({ image: kernel, cmdline: "", memory: 16 * MIB, maxInstructions: 10 })).toThrow(
      StackOptionError,
    );
    expect(() => nvmxStack.preflight?.({})).toThrow(/--l1-image/);
  });

  it("exit reasons the L1 logs are the architectural numbers", () => {
    expect([V.EXIT_CPUID, V.EXIT_IO_INSTRUCTION, V.EXIT_HLT]).toEqual([10, 30, 12]);
  });
});

function readFileSyncSafe(path: string): boolean {
  try {
    readFileSync(path);
    return true;
  } catch {
    return false;
  }
}
