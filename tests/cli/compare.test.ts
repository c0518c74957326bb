/**
 * `nestlab compare` through the built command: the same cells on one job and on two worker threads,
 * the reason for a FAIL, --iters, ns at the profile's clock, top exits, CSV; and `nestlab list`.
 */
import { spawn, spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit-codes.js";
import type { CompareCell } from "../../src/report/cell.js";
import type { CompareDocument } from "../../src/report/compare-doc.js";
import { BIN, type CliResult, ensureBuilt, nestlab } from "./cli-helpers.js";

const SMALL = ["compare", "--stacks", "native,vm,npv", "--workloads", "cpuid,pio", "--iters", "50"];
const cellsOf = (doc: CompareDocument) => doc.cells.map(({ wallSeconds, ...rest }) => rest);

describe("compare", () => {
  let one: CliResult;
  let two: CliResult;
  let doc: CompareDocument;
  beforeAll(() => {
    one = nestlab([...SMALL, "--json", "--jobs", "1"]);
    two = nestlab([...SMALL, "--json", "--jobs", "2"]);
    doc = JSON.parse(one.stdout) as CompareDocument;
  }, 180_000);
  const cell = (w: string, s: string) => doc.cells.find((c) => c.workload === w && c.stack === s) as CompareCell;

  it("gives identical cells on one job and on two worker threads", () => {
    expect(one.status).toBe(EXIT.ok);
    expect(two.status).toBe(EXIT.ok);
    expect(cellsOf(JSON.parse(two.stdout))).toEqual(cellsOf(doc));
    expect(doc.cells.map((c) => `${c.workload}/${c.stack}`)).toEqual([
      "cpuid/native",
      "cpuid/vm",
      "cpuid/npv",
      "pio/native",
      "pio/vm",
      "pio/npv",
    ]);
  });

  it("names the profile, runs --iters N then 2N, and gives ns at the profile's clock", () => {
    expect(doc.profile).toBe("cascadelake-kvm");
    expect(doc.ghz).toBe(2.5);
    expect(doc.iters).toBe(50);
    for (const c of doc.cells) {
      expect(c.ok).toBe(true);
      expect(c.iterations).toBe(50);
      expect(c.nsPerIter).toBe(Math.round((c.cyclesPerIter / 2.5) * 10) / 10);
    }
  });

  it("reports the top exit reasons per cell: CPUID under vm is one L0 cpuid exit per iteration", () => {
    expect(cell("cpuid", "native").topExits).toEqual([]);
    const vm = cell("cpuid", "vm");
    expect(vm.topExits[0]).toEqual({ level: "L0", reason: "cpuid", perIter: 1 });
    expect(vm.exitReasonsPerIter["L0.cpuid"]).toBe(1);
    expect(vm.exitsPerIter.L0).toBeGreaterThanOrEqual(1); // with the timer's exits in 50 iterations
    // pio under npv: L2's OUT exits to L0, which returns it to L1's device model (an npv `io` exit
    // of RUN); L1 RUNs again (its own VMCALL exit to L0). Exits are counted at the level that
    // handled them, as on every stack.
    const npv = cell("pio", "npv");
    expect(npv.topExits.map((e) => `${e.level}.${e.reason}`)).toEqual(
      expect.arrayContaining(["L0.io_instruction", "L0.vmcall", "L1.io"]),
    );
    expect(npv.ledgerPerIter.some((l) => l.level === 1 && l.cycles > 0)).toBe(true);
  });

  it("prints a table with fixed precision", () => {
    const t = nestlab([...SMALL, "--jobs", "1"]);
    expect(t.status).toBe(EXIT.ok);
    const lines = t.stdout.split("\n");
    expect(lines[0]).toMatch(/^workload\s+native c\/it\s+ns\/it\s+vm c\/it\s+ns\/it\s+×native\s+vm exits\/it/);
    const vm = cell("cpuid", "vm");
    const row = lines.find((l) => l.startsWith("cpuid"))!;
    expect(row).toMatch(new RegExp(`\\s${vm.cyclesPerIter}\\s+${vm.nsPerIter.toFixed(1)}\\s`));
    expect(row).toContain(`${(vm.cyclesPerIter / cell("cpuid", "native").cyclesPerIter).toFixed(2)}x`);
    expect(row).toContain(`L0 ${vm.exitsPerIter.L0.toFixed(2)}`);
    expect(t.stdout).toContain("profile cascadelake-kvm");
    expect(t.stdout).toMatch(/Top exit reasons per iteration:\n.*\n.*\n\s+cpuid\s+vm\s+L0\.cpuid 1\.00/);
  });

  // Its own test: each compare run blocks the worker (vitest's RPC times out at 60 s on a loaded machine).
  it("prints CSV with one row per cell", () => {
    const vm = cell("cpuid", "vm");
    const csv = nestlab([...SMALL, "--csv", "--jobs", "1"]);
    const rows = csv.stdout.trim().split("\n");
    expect(rows[0]).toBe(
      "workload,stack,ok,message,iterations,cycles_per_iter,ns_per_iter,ratio_to_native,exits_per_iter_L0,exits_per_iter_L1,top_exits,instructions",
    );
    expect(rows).toHaveLength(7);
    expect(rows[2]).toBe(
      `cpuid,vm,true,ok,50,${vm.cyclesPerIter},${vm.nsPerIter.toFixed(1)},${(vm.cyclesPerIter / cell("cpuid", "native").cyclesPerIter).toFixed(2)},${vm.exitsPerIter.L0.toFixed(2)},0.00,${vm.topExits.map((e) => `${e.level}.${e.reason}=${e.perIter.toFixed(2)}`).join(" ")},${vm.instructions}`,
    );
  });

  it("gives the reason for every FAIL cell, and exits 1", () => {
    const r = nestlab(["compare", "--stacks", "native,vm", "--workloads", "cpuid", "--max-instructions", "20K"]);
    expect(r.status).toBe(EXIT.guestFailed);
    expect(r.stdout).toMatch(/^cpuid\s+FAIL\[1\]\s+-\s+FAIL\[2\]/m);
    expect(r.stdout).toMatch(/\[1\] cpuid on native: instruction-limit: instruction limit \(20000\) reached/);
    expect(r.stdout).toMatch(/\[2\] cpuid on vm: instruction-limit: instruction limit \(20000\) reached/);
  });
});

describe("list", () => {
  it("lists stacks, workloads, profiles and every primitive with its source", () => {
    const r = nestlab(["list", "--json"]);
    expect(r.status).toBe(EXIT.ok);
    const doc = JSON.parse(r.stdout);
    expect(doc.stacks.map((s: { name: string }) => s.name)).toEqual([
      "native",
      "vm",
      "npv",
      "bare-l1",
      "nvmx",
      "nvmx-shadow",
      "nvmx-evmcs",
    ]);
    for (const s of doc.stacks) expect(s.description.length).toBeGreaterThan(10);
    expect(doc.workloads.map((w: { name: string }) => w.name)).toContain("pagefault");
    expect(doc.profiles.map((p: { name: string }) => p.name)).toEqual(["cascadelake-kvm", "epyc-kvm"]);
    const exit = doc.primitives.find((p: { name: string }) => p.name === "vmx.exit");
    expect(exit.costs["cascadelake-kvm"]).toEqual({ cycles: 130, source: expect.stringContaining("PVM paper") });
    expect(exit.costs["epyc-kvm"].cycles).toBe(675);
    for (const p of doc.primitives)
      for (const c of Object.values(p.costs)) expect((c as { source: string }).source.length).toBeGreaterThan(2);

    const text = nestlab(["list"]).stdout;
    expect(text).toMatch(/^Stacks .*\n\s+native\s+the guest kernel on the bare machine/);
    expect(text).toMatch(/vmx\.exit\s+130\s+hardware VM exit/);
    expect(text).toContain("cascadelake-kvm (default)");
  });
});

const HAVE_SCRIPT = spawnSync("script", ["--version"]).status === 0;

describe("the progress bar", () => {
  it.skipIf(!HAVE_SCRIPT)(
    "shows on a terminal and gives the terminal back on Ctrl-C (exit 130)",
    async () => {
      ensureBuilt();
      // util-linux `script` runs the command on a pseudo-terminal; a ^C typed into it is SIGINT
      const cmd = `${process.execPath} ${BIN} compare --stacks native,vm --jobs 1`;
      const child = spawn("script", ["-qfec", cmd, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      const sawBar = new Promise<void>((resolve) => {
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("compare [")) resolve();
        });
      });
      await sawBar;
      child.stdin.write("\x03");
      const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
      expect(code).toBe(EXIT.interrupted);
      expect(out).toContain("\x1b[?25l"); // the bar hid the cursor…
      const tail = out.slice(out.lastIndexOf("\x1b[?25l"));
      expect(tail).toContain("\x1b[?25h"); // …and showed it again
      expect(tail).toMatch(/nestlab: interrupted\r?\n$/);
    },
    60_000,
  );
});
