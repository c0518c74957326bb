/**
 * Guest-level check of BMI1/BMI2/ADX/MOVBE/LZCNT: tests/cpu/bmi-guest.c compiled by gcc with
 * -O2 -mbmi -mbmi2 -madx -mmovbe -mlzcnt -mgeneral-regs-only (as a guest built for Haswell
 * would be), its flat .text run on nestlab's CPU in long mode, and its checksum compared with
 * the same object file linked into a host program and run on the host CPU. Skipped without gcc
 * or when the host lacks one of the features.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { STOP_HALT } from "../../src/cpu/cpu.js";
import { buildHarness } from "../../tools/difftest/native.js";
import { CODE_BASE, makeCpu64, reg, STACK_TOP, setReg } from "../helpers/machine.js";

const SRC = join(dirname(fileURLToPath(import.meta.url)), "bmi-guest.c");
const CFLAGS = [
  "-O2",
  "-mbmi",
  "-mbmi2",
  "-madx",
  "-mmovbe",
  "-mlzcnt",
  "-mgeneral-regs-only",
  "-ffreestanding",
  "-fno-pic",
  "-fno-jump-tables",
  "-fno-stack-protector",
  "-fcf-protection=none",
  "-fno-asynchronous-unwind-tables",
];
/** Every instruction the check is about: the compiled code must contain each. */
const MNEMONICS = [
  "adcx",
  "adox",
  "andn",
  "bextr",
  "blsi",
  "blsmsk",
  "blsr",
  "bzhi",
  "lzcnt",
  "movbe",
  "mulx",
  "pdep",
  "pext",
  "rorx",
  "sarx",
  "shlx",
  "shrx",
  "tzcnt",
];

function skipReason(): string {
  const h = buildHarness();
  if (typeof h === "string") return h;
  const f = h.features;
  if (!f.bmi1 || !f.bmi2 || !f.adx || !f.movbe || !f.lzcnt) return "the host lacks BMI1/BMI2/ADX/MOVBE/LZCNT";
  return "";
}
const SKIP = skipReason();

interface Built {
  text: Uint8Array;
  entry: number;
  disasm: string;
  host: string;
}

/** Compile the guest object, its flat .text, and a host program around the same object (cached). */
function build(): Built {
  const src = readFileSync(SRC);
  const key = createHash("sha1").update(src).update(CFLAGS.join(" ")).digest("hex").slice(0, 16);
  const dir = join(tmpdir(), "nestlab-bmi-guest", key);
  mkdirSync(dir, { recursive: true });
  const obj = join(dir, "guest.o");
  const bin = join(dir, "guest.bin");
  const host = join(dir, "host");
  if (!existsSync(host)) {
    execFileSync("gcc", [...CFLAGS, "-c", SRC, "-o", obj]);
    execFileSync("objcopy", ["-O", "binary", "-j", ".text", obj, bin]);
    const main = join(dir, "main.c");
    writeFileSync(
      main,
      `#include <stdio.h>\n#include <stdlib.h>\nunsigned long bmi_run(unsigned long, unsigned long);\n` +
        `int main(int c, char **v) { (void)c; printf("%lx\\n", bmi_run(strtoul(v[1], 0, 0), strtoul(v[2], 0, 0))); return 0; }\n`,
    );
    execFileSync("gcc", ["-O2", main, obj, "-o", host]);
  }
  const relocs = execFileSync("objdump", ["-r", obj], { encoding: "utf8" });
  if (/R_X86_64/.test(relocs)) throw new Error(`bmi-guest.o has relocations: the flat .text would not run\n${relocs}`);
  const sym = execFileSync("nm", [obj], { encoding: "utf8" }).match(/^([0-9a-f]+) T bmi_run$/m);
  if (!sym) throw new Error("bmi_run not found in bmi-guest.o");
  return {
    text: new Uint8Array(readFileSync(bin)),
    entry: Number.parseInt(sym[1], 16),
    disasm: execFileSync("objdump", ["-d", obj], { encoding: "utf8" }),
    host,
  };
}

/** Call bmi_run(seed, n) on the emulator: SysV arguments in RDI/RSI, return to a HLT. */
function emulate(b: Built, seed: bigint, n: number): { value: bigint; insns: number } {
  const c = makeCpu64();
  c.mem.writeBytes(CODE_BASE, b.text);
  const ret = CODE_BASE + 0x80000;
  c.mem.write8(ret, 0xf4);
  c.mem.write64(STACK_TOP - 8, ret, 0);
  c.lo[4] = STACK_TOP - 8;
  setReg(c, 7, seed);
  setReg(c, 6, BigInt(n));
  c.ripLo = CODE_BASE + b.entry;
  c.ripHi = 0;
  const stop = c.run(50_000_000);
  expect(stop).toBe(STOP_HALT);
  expect(c.ripLo >>> 0).toBe(ret + 1);
  return { value: reg(c, 0), insns: c.icount };
}

describe.skipIf(SKIP !== "")(`C built with -mbmi -mbmi2 -madx -mmovbe -mlzcnt ${SKIP}`, () => {
  it("the compiled code uses every instruction of the check", () => {
    const b = build();
    const used = MNEMONICS.filter((m) => new RegExp(`\\s${m}\\s`).test(b.disasm));
    expect(used).toEqual(MNEMONICS);
  });

  for (const [seed, n] of [
    [1n, 3000],
    [0x1234_5678_9abc_def1n, 3000],
    [0xffff_ffff_ffff_fffen, 500],
  ] as const) {
    it(`bmi_run(0x${seed.toString(16)}, ${n}) gives the host's result`, () => {
      const b = build();
      const want = BigInt(
        `0x${execFileSync(b.host, [`0x${seed.toString(16)}`, String(n)], { encoding: "utf8" }).trim()}`,
      );
      const got = emulate(b, seed, n);
      expect(got.value.toString(16)).toBe(want.toString(16));
      expect(got.insns).toBeGreaterThan(n * 50); // it really ran the loop
    });
  }
});
