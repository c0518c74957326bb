import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Cpu } from "../../src/cpu/cpu.js";
import {
  bootDirect64,
  bootMultiboot,
  entry64FromNote,
  findMultibootHeader,
  NLBI_MAGIC,
} from "../../src/machine/boot.js";
import { ImageError, parseElf } from "../../src/machine/elf.js";
import { parseGuestOutput } from "../../src/machine/results.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { packageRoot } from "../../src/paths.js";

const kernel = new Uint8Array(readFileSync(join(packageRoot(), "guests/images/kernel.elf")));
const kernel32 = new Uint8Array(readFileSync(join(packageRoot(), "guests/images/kernel32.elf")));

function cpu(mb = 64): Cpu {
  return new Cpu(new PhysicalMemory(mb * 1024 * 1024));
}

describe("ELF reader", () => {
  it("reads the bundled kernel: ELF64, loadable segments, the nestlab entry note", () => {
    const elf = parseElf(kernel);
    expect(elf.class).toBe(64);
    expect(elf.segments.filter((s) => s.type === 1).length).toBeGreaterThan(2);
    const e = entry64FromNote(elf);
    expect(e).toBeGreaterThanOrEqual(0x100000);
    expect(e).toBeLessThan(0x200000);
  });
  it("rejects non-ELF, truncated and inconsistent images with a clear message", () => {
    expect(() => parseElf(new Uint8Array(100))).toThrow(/not an ELF file/);
    expect(() => parseElf(kernel.slice(0, 40))).toThrow(/truncated/);
    const bad = kernel.slice();
    new DataView(bad.buffer).setUint32(32, 0x7fff0000, true); // e_phoff far past the end
    expect(() => parseElf(bad)).toThrow(ImageError);
  });
});

describe("direct 64-bit boot", () => {
  it("loads by physical address and hands over in long mode with RSI = boot-info", () => {
    const c = cpu();
    const r = bootDirect64(c, kernel, "workload=cpuid iters=3");
    expect(r.protocol).toBe("direct64");
    expect(c.mode64).toBe(true);
    expect(c.cpl).toBe(0);
    expect(c.ripLo >>> 0).toBe(entry64FromNote(parseElf(kernel)));
    const bi = c.lo[6] >>> 0;
    const m = c.mem;
    expect(m.read(bi, 4)).toBe(NLBI_MAGIC);
    expect(m.read(bi + 4, 4)).toBe(1); // version
    expect(m.read(bi + 8, 4)).toBe(48); // size
    const cmd = m.read(bi + 16, 4);
    const len = m.read(bi + 24, 4);
    expect(new TextDecoder().decode(m.readBytes(cmd, len))).toBe("workload=cpuid iters=3");
    const mmap = m.read(bi + 32, 4);
    const count = m.read(bi + 40, 4);
    expect(m.read(bi + 44, 4)).toBe(24);
    let usable = 0;
    for (let k = 0; k < count; k++) if (m.read(mmap + k * 24 + 16, 4) === 1) usable += m.read(mmap + k * 24 + 8, 4);
    expect(usable).toBe(64 * 1024 * 1024 - (0x100000 - 0x9fc00));
    // The first kernel byte is where p_paddr says.
    const seg = parseElf(kernel).segments.find((s) => s.type === 1 && s.filesz > 0)!;
    expect(m.read(seg.paddr, 1)).toBe(kernel[seg.offset]);
  });
  it("refuses an ELF32 image and segments outside RAM", () => {
    expect(() => bootDirect64(cpu(), kernel32, "")).toThrow(/needs an ELF64/);
    expect(() => bootDirect64(new Cpu(new PhysicalMemory(1024 * 1024)), kernel, "")).toThrow(/outside guest RAM/);
  });
});

describe("multiboot v1 boot", () => {
  it("finds the header and builds the information structure", () => {
    expect(findMultibootHeader(kernel32)).toBeGreaterThanOrEqual(0);
    const c = cpu();
    bootMultiboot(c, kernel32, "workload=pio");
    expect(c.lo[0] >>> 0).toBe(0x2badb002);
    expect(c.mode64).toBe(false);
    const mbi = c.lo[3] >>> 0;
    const m = c.mem;
    expect(m.read(mbi, 4) & 0x45).toBe(0x45); // MEM | CMDLINE | MMAP
    expect(m.read(mbi + 4, 4)).toBe(639); // KiB of conventional memory
    expect(m.read(mbi + 8, 4)).toBe(63 * 1024);
    const cmd = m.read(mbi + 16, 4);
    expect(new TextDecoder().decode(m.readBytes(cmd, 12))).toBe("workload=pio");
    expect(m.read(cmd + 12, 1)).toBe(0);
  });
  it("says so when there is no multiboot header", () => {
    expect(() => bootMultiboot(cpu(), new Uint8Array(16384), "")).toThrow(/no multiboot header/);
  });
});

describe("guest output", () => {
  it("parses RESULT and FAIL lines", () => {
    const out = parseGuestOutput(
      "boot\nRESULT name=cpuid iterations=10 cycles=1350 cycles_per_iter=135\nFAIL name=io reason=bad-data\n",
    );
    expect(out.results).toEqual([
      { name: "cpuid", fields: { name: "cpuid", iterations: 10, cycles: 1350, cycles_per_iter: 135 } },
    ]);
    expect(out.failures[0].fields.reason).toBe("bad-data");
  });
});
