/**
 * Every exit code of `nestlab` (src/cli/exit-codes.ts), through the built command as a user runs
 * it, and the quiet ends of a closed pipe and a full disk.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit-codes.js";
import { errorExitCode } from "../../src/cli/main.js";
import { elf64 } from "../helpers/elf.js";
import { BIN, ensureBuilt, nestlab } from "./cli-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "nestlab-cli-"));
const NO_TRACE = /\n\s+at |Error:.*\n.*\.js:\d+/;

describe("run: the guest's verdict", () => {
  it("0 when the guest wrote 0 to the debug-exit port", () => {
    const r = nestlab(["run", "--workload", "cpuid", "--iters", "10"]);
    expect(r.stdout).toContain("RESULT name=cpuid iterations=10");
    expect(r.status).toBe(EXIT.ok);
  });

  it("1 when the guest reports failure (the kernel's segv self-test)", () => {
    const r = nestlab(["run", "--workload", "segv"]);
    expect(r.stdout).toContain("FAIL name=segv");
    expect(r.status).toBe(EXIT.guestFailed);
  });

  it("--exit-code qemu keeps QEMU's (value << 1) | 1: the crash self-test writes 1, exits 3", () => {
    expect(nestlab(["run", "--workload", "crash"]).status).toBe(EXIT.guestFailed);
    expect(nestlab(["run", "--workload", "crash", "--exit-code", "qemu"]).status).toBe(3);
    expect(nestlab(["run", "--workload", "cpuid", "--iters", "10", "--exit-code", "qemu"]).status).toBe(1);
  });
});

describe("usage errors exit 2 with one line, commander's included", () => {
  const cases: [string, string[], RegExp][] = [
    ["unknown option", ["run", "--bogus"], /unknown option '--bogus'/],
    ["unknown command", ["frobnicate"], /unknown command/],
    ["bad stack choice", ["run", "--stack", "nope", "--workload", "cpuid"], /Allowed choices are native, vm, npv/],
    ["unknown workload", ["run", "--workload", "nope"], /unknown workload "nope"/],
    ["bad number", ["run", "--workload", "cpuid", "--iters", "x"], /positive integer/],
    ["bad size", ["run", "--workload", "cpuid", "--memory", "12Q"], /bad size "12Q"/],
    ["unknown profile", ["run", "--workload", "cpuid", "--profile", "nope"], /unknown profile "nope"/],
    ["nothing to run", ["run"], /give an IMAGE or --workload/],
    [
      "more memory than npv's L2 can have",
      ["run", "--stack", "npv", "--workload", "cpuid", "--memory", "4G"],
      /npv stack runs an L2 of at most/,
    ],
    ["cycle limit past 2^53", ["run", "--workload", "cpuid", "--max-cycles", "10000T"], /up to 2\^53/],
    ["--json with --csv", ["compare", "--json", "--csv", "--stacks", "native", "--workloads", "cpuid"], /not both/],
  ];
  for (const [name, args, msg] of cases) {
    it(name, () => {
      const r = nestlab(args);
      expect(r.status).toBe(EXIT.usage);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    });
  }

  it("--help and --version exit 0, and help lists the exit codes and human-unit defaults", () => {
    const h = nestlab(["run", "--help"]);
    expect(h.status).toBe(EXIT.ok);
    expect(h.stdout).toContain("(default: 256M)");
    expect(h.stdout).toContain("(default: 2G)");
    expect(h.stdout).toMatch(/choices: "native", "vm", "npv"/);
    expect(h.stdout).toMatch(/141 the reader closed the pipe/);
    expect(nestlab(["--version"]).status).toBe(EXIT.ok);
  });
});

describe("bad input files exit 3", () => {
  it("an image that is not one", () => {
    const f = join(tmp, "not-an-image");
    writeFileSync(f, "hello\n");
    const r = nestlab(["run", f]);
    expect(r.status).toBe(EXIT.badInput);
    expect(r.stderr).toMatch(/^nestlab: bad image: /);
  });

  it("an image that does not exist", () => {
    const r = nestlab(["run", join(tmp, "missing.elf")]);
    expect(r.status).toBe(EXIT.badInput);
    expect(r.stderr).toMatch(/cannot read image .*ENOENT/);
  });

  it("a profile file that breaks the schema (a cost above the bound)", () => {
    const p = JSON.parse(readFileSync(join("src", "cost", "profiles", "cascadelake-kvm.json"), "utf8"));
    p.costs["l0.cpuid"].cycles = 5_000_000;
    const f = join(tmp, "huge.json");
    writeFileSync(f, JSON.stringify(p));
    const r = nestlab(["run", "--workload", "cpuid", "--profile", f]);
    expect(r.status).toBe(EXIT.badInput);
    expect(r.stderr).toMatch(/costs\/l0\.cpuid\/cycles must be <= 1000000/);
  });
});

describe("a guest that crashes or hangs", () => {
  // LIDT with a zero limit, then UD2: #UD → #GP (IDT limit) → #DF → triple fault.
  const tripleFault = elf64([0x0f, 0x01, 0x1d, 0x02, 0, 0, 0, 0x0f, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const image = join(tmp, "triple.elf");
  writeFileSync(image, tripleFault);

  for (const stack of ["native", "vm"]) {
    it(`exits 4 when the guest triple-faults (${stack})`, () => {
      const r = nestlab(["run", image, "--stack", stack]);
      expect(r.status).toBe(EXIT.guestCrashed);
      expect(r.stderr).toMatch(/triple|shutdown/i);
    });
  }

  it("exits 5 at the instruction limit", () => {
    const r = nestlab(["run", "--workload", "all", "--max-instructions", "1M"]);
    expect(r.status).toBe(EXIT.guestHung);
    expect(r.stderr).toMatch(/instruction limit \(1000000\) reached/);
  });

  it("exits 5 at the cycle limit, with the limit in the message", () => {
    const r = nestlab(["run", "--workload", "cpuid", "--stack", "vm", "--max-cycles", "1M"]);
    expect(r.status).toBe(EXIT.guestHung);
    expect(r.stderr).toMatch(/cycle limit \(1,000,000 cycles\) reached after [\d,]+ guest instructions/);
    expect(r.stdout).toContain("cycle limit");
  });
});

describe("output that cannot be written", () => {
  it("a closed pipe (`run … | head -1`) ends quietly with 141", async () => {
    ensureBuilt();
    const child = spawn(process.execPath, [BIN, "run", "--workload", "all"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const first = await new Promise<string>((resolve) => {
      let got = "";
      child.stdout.on("data", (d: Buffer) => {
        got += d.toString();
        if (!got.includes("\n")) return;
        child.stdout.destroy(); // what `head -1` does after its line
        resolve(got.slice(0, got.indexOf("\n")));
      });
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    expect(first).toContain("nestlab-kernel");
    expect(code).toBe(EXIT.brokenPipe);
    expect(stderr).toBe("");
  });

  it("a report that cannot be written exits 6 before any work", () => {
    const r = nestlab([
      "compare",
      "--stacks",
      "native",
      "--workloads",
      "cpuid",
      "--report",
      join(tmp, "no", "such", "dir.html"),
    ]);
    expect(r.status).toBe(EXIT.outputError);
    expect(r.stderr).toMatch(/^nestlab: cannot write the report .*dir\.html: ENOENT\n$/);
    expect(r.stdout).toBe("");
  });

  it.skipIf(!existsSync("/dev/full"))("a full disk (`> /dev/full`) prints one line and exits 6", () => {
    const fd = openSync("/dev/full", "w");
    try {
      for (const args of [
        ["run", "--workload", "cpuid", "--iters", "10"],
        ["list", "--json"],
      ]) {
        const r = nestlab(args, { stdio: ["ignore", fd, "pipe"] });
        expect(r.status).toBe(EXIT.outputError);
        expect(r.stderr).toBe("nestlab: cannot write the output: ENOSPC\n");
      }
    } finally {
      closeSync(fd);
    }
  });
});

describe("internal errors: one line and where the trace went", () => {
  it("exits 7, saves the trace to a file and names it", () => {
    const lines: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((s: string) => lines.push(s)) as typeof process.stderr.write;
    let code: number;
    try {
      code = errorExitCode(new TypeError("cannot read properties of undefined"), false);
    } finally {
      process.stderr.write = write;
    }
    expect(code).toBe(EXIT.internal);
    expect(lines).toHaveLength(1);
    const m =
      /^nestlab: internal error: cannot read properties of undefined \(the full trace is in (\S+); --debug prints it\)\n$/.exec(
        lines[0],
      );
    expect(m).not.toBeNull();
    expect(readFileSync(m![1], "utf8")).toMatch(/TypeError: cannot read properties of undefined\n\s+at /);
    expect(lines[0]).not.toMatch(NO_TRACE);
  });

  it("--debug prints the trace instead", () => {
    const lines: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((s: string) => lines.push(s)) as typeof process.stderr.write;
    try {
      expect(errorExitCode(new Error("boom"), true)).toBe(EXIT.internal);
    } finally {
      process.stderr.write = write;
    }
    expect(lines.join("")).toMatch(/internal error:\nError: boom\n\s+at /);
  });
});
