/**
 * KPTI in the guest kernel (boot option pti=on, docs/guest-kernel.md): the page tables really
 * separate, the entry/exit paths add exactly two CR3 writes per syscall, and every workload still
 * passes on native, vm and npv.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";
import { getStack } from "../../src/stacks/index.js";
import type { StackRunResult } from "../../src/stacks/stack.js";
import { ensureBuilt, nestlab } from "../cli/cli-helpers.js";

const kernel = new Uint8Array(readFileSync(join(packageRoot(), "guests/images/kernel.elf")));

function run(stack: string, cmdline: string): StackRunResult {
  return getStack(stack).run({ image: kernel, cmdline, memory: 256 * 1024 * 1024, maxInstructions: 200_000_000 });
}

/** The kernel's `KREAD what=W ... present=P expected=E ok|FAIL` lines, by what was read. */
function kreadLines(serial: string): Record<string, { present: number; ok: boolean }> {
  const out: Record<string, { present: number; ok: boolean }> = {};
  for (const m of serial.matchAll(/^KREAD what=(\w+) .* present=(\d) expected=\d (ok|FAIL)$/gm)) {
    out[m[1]] = { present: Number(m[2]), ok: m[3] === "ok" };
  }
  return out;
}

describe("KPTI: a user read of a kernel address faults through the user page table", () => {
  it("pti=on: kernel data is not present in the user table, the entry text is (supervisor-only)", () => {
    const r = run("native", "workload=kread pti=on");
    expect(r.serial).toContain("pti=on");
    expect(kreadLines(r.serial)).toEqual({
      kernel_data: { present: 0, ok: true },
      entry_text: { present: 1, ok: true },
    });
    expect(r.exitStatus).toBe(1);
  });
  it("pti off (default): the same read hits a present supervisor page (protection fault)", () => {
    const r = run("native", "workload=kread");
    expect(r.serial).toContain("pti=off");
    expect(kreadLines(r.serial)).toEqual({
      kernel_data: { present: 1, ok: true },
      entry_text: { present: 1, ok: true },
    });
    expect(r.exitStatus).toBe(1);
  });
  it("pti=on under vm: the guest's own tables separate the same way", () => {
    const r = run("vm", "workload=kread pti=on");
    expect(kreadLines(r.serial).kernel_data).toEqual({ present: 0, ok: true });
    expect(r.exitStatus).toBe(1);
  });
});

describe("KPTI: CR3 writes per syscall on native", () => {
  const cr3Writes = (r: StackRunResult) => r.counters["mmu.inval_cr3"] + r.counters["mmu.inval_cr3_noflush"];
  /** CR3 writes per getpid, measured between an N- and a 2N-iteration run (boot cancels out). */
  const perSyscall = (args: string) => {
    const n = 1000;
    const a = run("native", `workload=syscall iters=${n} ${args}`);
    const b = run("native", `workload=syscall iters=${2 * n} ${args}`);
    expect(a.exitStatus).toBe(1);
    expect(b.exitStatus).toBe(1);
    return (cr3Writes(b) - cr3Writes(a)) / n;
  };
  it("go up by exactly 2 (switch to the kernel table on entry, to the user table on exit)", () => {
    const off = perSyscall("");
    const on = perSyscall("pti=on");
    expect(off).toBe(0);
    expect(on - off).toBe(2);
  });
  it("with PCID both switches keep the TLB (no-flush bit 63): no flushing CR3 writes per syscall", () => {
    const n = 1000;
    const a = run("native", `workload=syscall iters=${n} pti=on`);
    const b = run("native", `workload=syscall iters=${2 * n} pti=on`);
    expect(a.serial).toContain("pcid=1");
    expect(b.counters["mmu.inval_cr3"] - a.counters["mmu.inval_cr3"]).toBe(0);
    expect(b.counters["mmu.inval_cr3_noflush"] - a.counters["mmu.inval_cr3_noflush"]).toBe(2 * n);
  });
});

describe("KPTI: every workload passes with pti=on", () => {
  for (const stack of ["native", "vm", "npv"]) {
    it(stack, () => {
      const r = run(stack, "workload=all pti=on");
      expect(r.outcome.kind, r.outcome.message).toBe("debug-exit");
      expect(r.guest.failures).toEqual([]);
      expect(r.guest.results.map((x) => x.name)).toEqual([
        "cpuid",
        "msr",
        "wrmsr",
        "exception",
        "pio",
        "syscall",
        "pagefault",
        "fork",
        "ctxsw",
        "exec",
        "tlb",
        "compute",
        "io",
      ]);
      expect(r.exitStatus).toBe(1);
    });
  }
});

describe("nestlab run --workload W -- ARGS: words after -- are kernel command line", () => {
  it("with --workload, the first word after -- reaches the kernel (not taken for an image)", () => {
    ensureBuilt();
    const r = nestlab(["run", "--workload", "kread", "--", "pti=on"]);
    expect(r.stdout).toContain("pti=on");
    expect(r.stdout).toMatch(/KREAD what=kernel_data .* present=0 expected=0 ok/);
  });
});
