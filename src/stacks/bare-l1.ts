/**
 * The `bare-l1` stack: the executed L1 hypervisor (guests/images/l1hv.elf, docs/l1hv.md) on the
 * bare machine with a VMX CPU, running the guest kernel as its L2 through the vmx back end. No L0:
 * L1 is root-mode code (level 1), L2 runs in non-root operation (level 2), and every exit L2 takes
 * is handled by L1's executed instructions.
 *
 * The L2 image is placed in the machine's RAM at `L2_IMAGE_ADDR` (a loaded blob, as a boot loader
 * places a multiboot module) and named on L1's command line; L2's command line follows " -- ".
 */
import { CpuModel } from "../cpu/cpuid.js";
import { bootDirect64, RAM_HOLE_START } from "../machine/boot.js";
import { ImageError } from "../machine/elf.js";
import { VMX_EXIT_REASONS } from "../stats/exit-reasons.js";
import { ExitTable } from "../stats/exit-table.js";
import { eventRows, exitsFrom, sortExits } from "../stats/run-stats.js";
import { guestImage } from "./guest-images.js";
import { bareMachine, machineCounters } from "./native.js";
import { levelCounters } from "./results.js";
import { type L1EptPages, type Stack, StackOptionError, type StackRunOptions, type StackRunResult } from "./stack.js";

/** Where the loader puts L2's image in L1's RAM (above L1's own image and .bss). */
export const L2_IMAGE_ADDR = 0x1000000;
/** L1's RAM beyond L2's: its image, the L2 image, EPT12, VMCS, bitmaps, its allocator. */
export const L1_OWN_MEMORY = 48 * 1024 * 1024;

/**
 * L1's command line: back end (with `,ept=2m` for 2 MiB EPT12 leaves, StackRunOptions.l1EptPages),
 * where L2's image is, L2's RAM, the map mode, `l1tick=0` when L1's own scheduler tick is off
 * (StackRunOptions.l1Tick), then L2's command line.
 */
export function l1Cmdline(
  backend: "vmx" | "vmx-evmcs" | "npv",
  imageLen: number,
  l2MiB: number,
  map: string,
  l2: string,
  l1Tick = true,
  l1EptPages: L1EptPages = "4k",
): string {
  const tick = l1Tick ? "" : " l1tick=0";
  // l1hv reads the leaf size from the back-end word, which its default path parses anyway (main.c)
  const be = l1EptPages === "2m" ? `${backend},ept=2m` : backend;
  return `backend=${be} l2image=0x${L2_IMAGE_ADDR.toString(16)},${imageLen} l2mem=${l2MiB} map=${map}${tick} -- ${l2}`;
}

export const bareL1Stack: Stack = {
  name: "bare-l1",
  description:
    "the guest kernel as L2 of the executed L1 hypervisor (guests/l1hv, vmx back end) on the bare VMX machine",
  l1EptPages: true,
  run(opts: StackRunOptions): StackRunResult {
    const l2MiB = Math.ceil(opts.memory / (1024 * 1024));
    const ram = l2MiB * 1024 * 1024 + L1_OWN_MEMORY;
    if (ram > RAM_HOLE_START) {
      throw new StackOptionError(
        `the bare-l1 stack runs an L2 of at most ${(RAM_HOLE_START - L1_OWN_MEMORY) / 1048576} MiB (L1's RAM must fit below the MMIO hole)`,
      );
    }
    const bm = bareMachine(opts, ram, 1, new CpuModel({ vmx: true }));
    const { m, ledger } = bm;
    if (opts.protocol === "multiboot") throw new ImageError("bare-l1 boots L2 through the direct 64-bit entry");
    const l1image = opts.l1Image ?? guestImage("l1hv", "bare-l1");
    const map = opts.npvMap ?? "demand";
    // L1 runs in root operation (level 1); the VMCS it launches L2 with names level 2.
    bootDirect64(
      m.cpu,
      l1image,
      l1Cmdline("vmx", opts.image.length, l2MiB, map, opts.cmdline, opts.l1Tick, opts.l1EptPages),
    );
    m.mem.writeBytes(L2_IMAGE_ADDR, opts.image);
    return bm.run("bare-l1", "direct64", () => {
      const base = machineCounters(m);
      // Instructions and cycles by level (1: L1 in root operation, 2: L2), from the CPU's per-run attribution.
      levelCounters(ledger.lines(), base);
      // Every exit L2 (level 2) took went to L1 (level 1), by basic exit reason: the hardware's table.
      const table = new ExitTable(VMX_EXIT_REASONS);
      m.cpu.vmxUnit.exitCounts.forEach((n, r) => {
        if (n > 0) table.bump(2, r, n);
      });
      const exits = sortExits(exitsFrom(table, 1), () => "name");
      const sw = m.cpu.vmxUnit.software;
      const events = eventRows("l1", [
        { name: "vmreads", count: sw.vmreads },
        { name: "vmwrites", count: sw.vmwrites },
      ]);
      return { base, exits, events };
    });
  },
};
