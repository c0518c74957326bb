import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runJson } from "../../src/cli/run.js";
import { packageRoot } from "../../src/paths.js";
import { EVERY_WORKLOAD } from "../../src/report/workloads.js";
import { nativeStack } from "../../src/stacks/native.js";
import type { StackRunResult } from "../../src/stacks/stack.js";

const root = packageRoot();
const kernel = new Uint8Array(readFileSync(join(root, "guests/images/kernel.elf")));
const kernel32 = new Uint8Array(readFileSync(join(root, "guests/images/kernel32.elf")));

function run(cmdline: string, image = kernel): StackRunResult {
  return nativeStack.run({ image, cmdline, memory: 256 * 1024 * 1024, maxInstructions: 100_000_000 });
}

/** Every workload that reports one RESULT: compare's suite and wrmsr. */
const WORKLOADS = EVERY_WORKLOAD;

describe("native stack: every workload completes with its self-checks passing", () => {
  for (const w of WORKLOADS) {
    it(w, () => {
      const r = run(`workload=${w}`);
      expect(r.outcome.kind, r.outcome.message).toBe("debug-exit");
      expect(r.exitStatus).toBe(1); // (0 << 1) | 1: every self-check passed
      expect(r.guest.failures).toEqual([]);
      const res = r.guest.results.find((x) => x.name === w);
      expect(res, r.serial).toBeDefined();
      expect(res!.fields.iterations as number).toBeGreaterThan(0);
      expect(res!.fields.cycles_per_iter as number).toBeGreaterThan(0);
      expect(r.serial).toContain("DONE status=0");
    });
  }
});

describe("native stack: boot protocols and determinism", () => {
  it("boots through multiboot (ELF32) and through the direct 64-bit entry", () => {
    const a = run("workload=cpuid", kernel32);
    const b = run("workload=cpuid");
    expect(a.protocol).toBe("multiboot");
    expect(b.protocol).toBe("direct64");
    expect(a.serial).toContain("boot=multiboot");
    expect(b.serial).toContain("boot=direct64");
    expect(a.exitStatus).toBe(1);
    expect(b.exitStatus).toBe(1);
  });
  it("gives identical JSON (counters, cycles, results) on two runs", () => {
    const strip = (r: StackRunResult) => {
      const j = runJson(r, "x") as Record<string, unknown>;
      delete j.wallSeconds;
      return JSON.stringify(j);
    };
    const a = strip(run("workload=fork,tlb"));
    const b = strip(run("workload=fork,tlb"));
    expect(a).toBe(b);
  });
});

const HAVE_QEMU = (() => {
  try {
    execFileSync("qemu-system-x86_64", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!HAVE_QEMU)("native stack against QEMU (TCG) as the reference", () => {
  it("prints the same result lines (cycle values aside) for every workload", () => {
    const cmd = "workload=all";
    let out = "";
    try {
      out = execFileSync(
        "qemu-system-x86_64",
        [
          "-machine",
          "pc,accel=tcg",
          "-m",
          "256M",
          "-kernel",
          join(root, "guests/images/kernel32.elf"),
          "-append",
          cmd,
          "-serial",
          "stdio",
          "-display",
          "none",
          "-monitor",
          "none",
          "-device",
          "isa-debug-exit,iobase=0xf4,iosize=0x04",
          "-no-reboot",
        ],
        { timeout: 120_000, encoding: "utf8" },
      );
    } catch (e) {
      // isa-debug-exit makes QEMU exit with (v << 1) | 1, which execFileSync reports as an error.
      const err = e as { status?: number; stdout?: string };
      expect(err.status).toBe(1);
      out = err.stdout ?? "";
    }
    const shape = (s: string) =>
      s
        .split(/\r?\n/)
        .filter((l) => l.startsWith("RESULT") || l.startsWith("FAIL") || l.startsWith("DONE"))
        .map((l) => l.replace(/ cycles=\d+/, "").replace(/ cycles_per_iter=\d+/, ""));
    const ours = run(cmd, kernel32).serial;
    // QEMU's pc machine has no virtio-mmio device, so the io workload reports skipped=1 there.
    const q = shape(out).filter((l) => !l.startsWith("RESULT name=io"));
    const n = shape(ours).filter((l) => !l.startsWith("RESULT name=io"));
    expect(q.length).toBeGreaterThan(10);
    expect(n).toEqual(q);
  });
});
