/**
 * The VMX conformance guest (guests/vmxtest, docs/vmx.md) on the `native` stack with a VMX CPU
 * (`--cpu-vmx`): every check line is PASS and the summary counts are exact. Expected values live
 * in the guest (from the SDM), not here: this test pins how many checks ran and that none failed.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/cli/exit-codes.js";
import { runCommand } from "../../src/cli/run.js";
import { packageRoot } from "../../src/paths.js";
import { nativeStack } from "../../src/stacks/native.js";

const root = packageRoot();
const IMAGE = join(root, "guests/images/vmxtest.elf");
const image = new Uint8Array(readFileSync(IMAGE));
/** Checks the guest runs on nestlab's bare VMX CPU (its capability MSRs decide a few). */
const CHECKS = 237; // 236 on vmxconf alone; l1hv offers the preemption timer to guest software: one more check runs

function run(cpuVmx: boolean) {
  return nativeStack.run({ image, cmdline: "", memory: 64 * 1024 * 1024, maxInstructions: 5_000_000, cpuVmx });
}

describe("vmxtest on native with --cpu-vmx", () => {
  const r = run(true);
  const lines = r.serial.split("\n");
  const checks = lines.filter((l) => /^(PASS|FAIL) /.test(l));

  it("ends through the debug-exit port with 0 failures", () => {
    expect(r.outcome.kind, r.outcome.message).toBe("debug-exit");
    expect(r.exitStatus).toBe(1); // (0 << 1) | 1
  });
  it("every check line is PASS", () => {
    expect(
      checks.filter((l) => !l.startsWith("PASS ")),
      r.serial,
    ).toEqual([]);
    expect(lines.some((l) => l.startsWith("FAIL"))).toBe(false);
  });
  it(`runs exactly ${CHECKS} checks and says so in its summary`, () => {
    expect(checks.length).toBe(CHECKS);
    expect(lines).toContain(`SUMMARY passed=${CHECKS} failed=0`);
    expect(new Set(checks).size).toBe(CHECKS); // check names are unique
  });
  it("is deterministic: the same serial output, instructions and cycles twice", () => {
    const again = run(true);
    expect(again.serial).toBe(r.serial);
    expect(again.instructions).toBe(r.instructions);
    expect(again.cycles).toBe(r.cycles);
  });
});

describe("vmxtest without VMX", () => {
  it("reports CPUID.1:ECX.VMX = 0 as its one failure", () => {
    const r = run(false);
    expect(r.serial).toContain("FAIL cpuid-vmx");
    expect(r.serial).toContain("SUMMARY passed=0 failed=1");
    expect(r.exitStatus).toBe(3); // (1 << 1) | 1
  });
  it("--cpu-vmx is refused on other stacks with a usage error", () => {
    expect(() => runCommand(IMAGE, [], { stack: "vm", memory: 64 << 20, maxInstructions: 1000, cpuVmx: true })).toThrow(
      UsageError,
    );
  });
});

const HAVE_GCC = spawnSync("gcc", ["--version"]).status === 0 && spawnSync("make", ["--version"]).status === 0;

describe.skipIf(!HAVE_GCC)("guests/images/vmxtest.elf matches its sources", () => {
  it("rebuilding guests/vmxtest gives the committed image byte for byte", () => {
    const dir = mkdtempSync(join(tmpdir(), "vmxtest-"));
    try {
      cpSync(join(root, "guests/Makefile"), join(dir, "Makefile"));
      cpSync(join(root, "guests/vmxtest"), join(dir, "vmxtest"), { recursive: true });
      execFileSync("make", ["-s", "-C", dir, "images/vmxtest.elf"], { stdio: "pipe" });
      expect(Buffer.compare(readFileSync(join(dir, "images/vmxtest.elf")), readFileSync(IMAGE))).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
