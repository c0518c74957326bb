/**
 * Multiboot modules (Multiboot Specification 0.6.96 §3.3): flags bit 3, mods_count at +20,
 * mods_addr at +24; each entry mod_start, mod_end, string, reserved; modules page-aligned after
 * the kernel image. The CLI's `--module` reads them (multiboot only).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readModules } from "../../src/cli/run.js";
import { Cpu } from "../../src/cpu/cpu.js";
import { bootMultiboot } from "../../src/machine/boot.js";
import { ImageError } from "../../src/machine/elf.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { packageRoot } from "../../src/paths.js";
import { getStack } from "../../src/stacks/index.js";

const kernel32 = new Uint8Array(readFileSync(join(packageRoot(), "guests/images/kernel32.elf")));
const text = (s: string) => new TextEncoder().encode(s);

/** Build guests/tools/direct64-shim (gcc -m32) into a temporary directory; null when the toolchain cannot. */
function buildShim(): string | null {
  const dir = mkdtempSync(join(tmpdir(), "nestlab-shim-"));
  try {
    execFileSync("make", ["-s", "-C", join(packageRoot(), "guests"), "shim", `BUILD=${dir}`], { stdio: "pipe" });
    return join(dir, "direct64-shim.elf");
  } catch {
    return null;
  }
}

function cString(c: Cpu, addr: number): string {
  let s = "";
  for (let a = addr; c.mem.read(a, 1) !== 0; a++) s += String.fromCharCode(c.mem.read(a, 1));
  return s;
}

describe("multiboot modules", () => {
  it("are placed page-aligned after the image and described in the information structure", () => {
    const c = new Cpu(new PhysicalMemory(64 * 1024 * 1024));
    const a = text("first module\n");
    const b = new Uint8Array(5000).map((_, k) => k & 0xff);
    const r = bootMultiboot(c, kernel32, "workload=pio", [
      { bytes: a, cmdline: "/boot/a.txt env=1" },
      { bytes: b, cmdline: "b.bin" },
    ]);
    const mbi = c.lo[3] >>> 0;
    const m = c.mem;
    expect(m.read(mbi, 4) & 0x8).toBe(0x8);
    expect(m.read(mbi + 20, 4)).toBe(2);
    const list = m.read(mbi + 24, 4);
    const mods = [0, 1].map((k) => ({
      start: m.read(list + k * 16, 4) >>> 0,
      end: m.read(list + k * 16 + 4, 4) >>> 0,
      cmd: cString(c, m.read(list + k * 16 + 8, 4)),
      reserved: m.read(list + k * 16 + 12, 4),
    }));
    expect(mods[0].start % 4096).toBe(0);
    expect(mods[0].start).toBeGreaterThanOrEqual(r.imageEnd);
    expect(mods[0].end - mods[0].start).toBe(a.length);
    expect(mods[1].start).toBe(mods[0].start + 4096);
    expect(mods[1].end - mods[1].start).toBe(5000);
    expect(m.readBytes(mods[0].start, a.length)).toEqual(a);
    expect(m.readBytes(mods[1].start, 5000)).toEqual(b);
    expect(mods.map((x) => x.cmd)).toEqual(["/boot/a.txt env=1", "b.bin"]);
    expect(mods.map((x) => x.reserved)).toEqual([0, 0]);
  });

  it("without modules, flags bit 3 stays clear", () => {
    const c = new Cpu(new PhysicalMemory(64 * 1024 * 1024));
    bootMultiboot(c, kernel32, "");
    expect(c.mem.read(c.lo[3] >>> 0, 4) & 0x8).toBe(0);
  });

  it("a module that does not fit in guest RAM is a clear error", () => {
    const c = new Cpu(new PhysicalMemory(16 * 1024 * 1024));
    expect(() => bootMultiboot(c, kernel32, "", [{ bytes: new Uint8Array(16 * 1024 * 1024), cmdline: "big" }])).toThrow(
      ImageError,
    );
  });

  it("--module reads files, needs multiboot and a stack that boots with it", () => {
    const dir = mkdtempSync(join(tmpdir(), "nestlab-mod-"));
    const f = join(dir, "env.txt");
    writeFileSync(f, "HOME=/\n");
    const mods = readModules([`${f} arg=1`], "multiboot", "native");
    expect(mods[0].cmdline).toBe(`${f} arg=1`);
    expect(new TextDecoder().decode(mods[0].bytes)).toBe("HOME=/\n");
    expect(() => readModules([f], "direct64", "native")).toThrow(/multiboot/);
    expect(() => readModules([f], "multiboot", "npv")).toThrow(/native and vm/);
    expect(() => readModules([join(dir, "missing")], "multiboot", "native")).toThrow(/cannot read module/);
    expect(readModules([], "direct64", "npv")).toEqual([]);
  });

  it("the bundled kernel boots with a module and ignores it (native and vm)", () => {
    for (const stack of ["native", "vm"]) {
      const r = getStack(stack).run({
        image: kernel32,
        cmdline: "workload=cpuid iters=3",
        memory: 64 * 1024 * 1024,
        maxInstructions: 50_000_000,
        protocol: "multiboot",
        modules: [{ bytes: text("payload"), cmdline: "payload" }],
      });
      expect(r.outcome.kind).toBe("debug-exit");
      expect(r.guest.failures).toEqual([]);
    }
  });
});

const shim = buildShim();

describe.skipIf(shim === null)("multiboot modules end to end", () => {
  it("the direct64 shim boots kernel.elf handed to it as a module, as under QEMU's -initrd", () => {
    const r = getStack("native").run({
      image: new Uint8Array(readFileSync(shim as string)),
      cmdline: "",
      memory: 64 * 1024 * 1024,
      maxInstructions: 100_000_000,
      protocol: "multiboot",
      modules: [
        {
          bytes: new Uint8Array(readFileSync(join(packageRoot(), "guests/images/kernel.elf"))),
          cmdline: "kernel.elf workload=cpuid iters=5",
        },
      ],
    });
    expect(r.serial).toContain("boot=direct64");
    expect(r.serial).toContain("cmdline: kernel.elf workload=cpuid iters=5");
    expect(r.outcome.kind).toBe("debug-exit");
    expect(r.exitStatus).toBe(1); // status 0: all checks passed
    expect(r.guest.results.map((x) => x.name)).toEqual(["cpuid"]);
  }, 60_000);
});
