/**
 * The emulator side of the difftest: one Cpu in 64-bit mode (identity-mapped long mode) reused
 * for every case. Per case the code (plus HLT) and the data area are written, the code cache is
 * dropped, registers and RFLAGS are loaded, and the CPU runs until HLT. Exceptions go through a
 * small IDT (on an IST stack outside the data area) to per-vector HLT stubs, so a fault is
 * reported with its vector, faulting RIP, and the registers/RFLAGS at the fault (from the frame).
 */
import { Cpu, STOP_BUDGET, STOP_HALT, STOP_SHUTDOWN } from "../../src/cpu/cpu.js";
import { type JitOptions, jitOptions } from "../../src/cpu/jit/options.js";
import { DEFAULT_LAYOUT, enterLongMode } from "../../src/machine/longmode.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { VECTOR_NAMES } from "../../src/x86/exceptions.js";
import type { TestCase } from "./generator.js";
import { CODE_ADDR, CODE_SIZE, DATA_ADDR, DATA_SIZE, MAP_ADDR, MAP_SIZE } from "./layout.js";

/** Outcome of one case on one side. `fault` is null when the sequence ran to its end. */
export interface SideResult {
  /** Description of how the run ended abnormally, or null. */
  fault: string | null;
  /**
   * Comparable fault signature: the Linux signal the exception maps to and the faulting
   * instruction's offset (e.g. "SIGFPE@0x1c"), or the description when not a guest exception.
   */
  faultSig: string | null;
  /** FNV-1a hash of the bytes of the data pages outside the data area (zeroed before the case). */
  outsideHash: number;
  regsLo: Int32Array;
  regsHi: Int32Array;
  /** RFLAGS (low 32 bits). */
  flags: number;
  data: Uint8Array;
}

const MEM_BYTES = 0x10020000;
const IDT_ADDR = 0x8000;
const STUB_ADDR = 0x9000;
const TSS_ADDR = 0xa000;
/** A 4 KiB page table for the 2 MiB region holding code and data: only those pages are present. */
const PT_ADDR = 0xd000;
const ZERO_PAGES = new Uint8Array(MAP_SIZE);
const DATA_OFF = DATA_ADDR - MAP_ADDR;

/** FNV-1a over the mapped data pages, skipping the data area itself (as the harness does). */
function outsideHash(pages: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < pages.length; k++) {
    if (k >= DATA_OFF && k < DATA_OFF + DATA_SIZE) continue;
    h = Math.imul(h ^ pages[k], 16777619);
  }
  return h >>> 0;
}
const IST_TOP = 0xc000;
/** The signal Linux delivers for each exception vector a user-level sequence can raise. */
const VECTOR_SIGNAL: Record<number, string> = {
  0: "SIGFPE",
  1: "SIGTRAP",
  3: "SIGTRAP",
  6: "SIGILL",
  12: "SIGBUS",
  13: "SIGSEGV",
  14: "SIGSEGV",
  16: "SIGFPE",
  17: "SIGBUS",
  19: "SIGFPE",
};
const VECTORS = 32;
const BUDGET = 100_000;
/** Instructions per run() call (the loop checks for HLT between calls). */
const STEP = 64;

export class EmulatorRunner {
  private cpu: Cpu;
  private readonly jit: JitOptions;
  /** Block-compiler statistics summed over every CPU this runner made. */
  readonly jitStats = { compiled: 0, blockRuns: 0 };

  /** Run each case twice and report the second run (see runOnce). */
  private readonly warm: boolean;

  /**
   * `jit`: the block compiler's settings. `warm`: run every case once to decode it, then again
   * from the same initial state with the decoded code kept, so that with a low threshold the
   * reported run is the sequence executing as compiled blocks.
   */
  constructor(jit?: Partial<JitOptions>, warm = false) {
    this.jit = jitOptions(jit);
    this.warm = warm;
    this.cpu = EmulatorRunner.makeCpu(this.jit);
  }

  /** Fold the current CPU's compiler statistics into jitStats (before it is replaced); returns them. */
  collectJitStats(): { compiled: number; blockRuns: number } {
    const s = this.cpu.jit?.stats;
    if (s !== undefined) {
      this.jitStats.compiled += s.compiled;
      this.jitStats.blockRuns += s.blockRuns;
      s.compiled = 0;
      s.blockRuns = 0;
    }
    return this.jitStats;
  }

  private static makeCpu(jit: JitOptions): Cpu {
    const mem = new PhysicalMemory(MEM_BYTES);
    const c = new Cpu(mem);
    c.setJit(jit);
    enterLongMode(c);
    for (let v = 0; v < VECTORS; v++) {
      const stub = STUB_ADDR + v * 16;
      // HLT; JMP back to it (so a core that runs on after HLT stays in the stub).
      mem.write8(stub, 0xf4);
      mem.write8(stub + 1, 0xeb);
      mem.write8(stub + 2, 0xfd);
      const g = IDT_ADDR + v * 16;
      mem.write(g, 4, ((stub & 0xffff) | (0x08 << 16)) >>> 0); // offset 15:0, selector 0x08
      mem.write(g + 4, 4, ((stub & 0xffff0000) | 0x8e00 | 1) >>> 0); // offset 31:16, P, interrupt gate, IST 1
      mem.write(g + 8, 4, 0);
      mem.write(g + 12, 4, 0);
    }
    c.idtrBaseLo = IDT_ADDR;
    c.idtrBaseHi = 0;
    c.idtrLimit = VECTORS * 16 - 1;
    // 64-bit TSS with IST1: exception frames go to their own stack, not into the data area.
    mem.write(TSS_ADDR + 36, 4, IST_TOP);
    mem.write(TSS_ADDR + 40, 4, 0);
    c.trBaseLo = TSS_ADDR;
    c.trBaseHi = 0;
    c.trLimit = 0x67;
    // Replace the 2 MiB identity page of the code/data region by 4 KiB pages: only the code area
    // and the two data pages are present, like the native harness's mappings.
    const region = CODE_ADDR - (CODE_ADDR % 0x200000);
    for (let k = 0; k < 512; k++) {
      const a = region + k * 0x1000;
      const present = (a >= CODE_ADDR && a < CODE_ADDR + CODE_SIZE) || (a >= MAP_ADDR && a < MAP_ADDR + MAP_SIZE);
      mem.write64(PT_ADDR + k * 8, present ? (a | 0x3) >>> 0 : 0, 0);
    }
    const gib = Math.floor(region / 2 ** 30);
    const pd = DEFAULT_LAYOUT.pageTables + 0x2000 + gib * 0x1000; // enterLongMode's page directories
    mem.write64(pd + ((region / 0x200000) % 512) * 8, PT_ADDR | 0x3, 0);
    c.flushTlb();
    return c;
  }

  run(tc: TestCase): SideResult {
    try {
      return this.runOnce(tc);
    } catch (e) {
      // The emulator threw something other than a guest fault: report it and start afresh.
      this.collectJitStats();
      this.cpu = EmulatorRunner.makeCpu(this.jit);
      const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      return {
        fault: `emulator threw ${msg}`,
        faultSig: `emulator threw ${msg}`,
        outsideHash: 0,
        regsLo: new Int32Array(16),
        regsHi: new Int32Array(16),
        flags: 0,
        data: new Uint8Array(DATA_SIZE),
      };
    }
  }

  private runOnce(tc: TestCase): SideResult {
    const c = this.cpu;
    const mem = c.mem;
    // HLT is the end marker. NOPs follow it so that a core that only notices `halted` at the next
    // interrupt check (rather than returning STOP_HALT at once) still stops in a known place.
    const code = new Uint8Array(tc.code.length + 1 + STEP);
    code.set(tc.code);
    code[tc.code.length] = 0xf4;
    code.fill(0x90, tc.code.length + 1);
    mem.writeBytes(tc.codeAddr, code);
    c.flushCodeCache();
    if (this.warm) {
      // The first run decodes the code (and counts block entries); the code is not rewritten
      // for the second, so its decoded instructions and any compiled blocks stay. A sequence
      // that patched its own code gets it back (which drops what was decoded on that page).
      this.execute(tc);
      c.stopReason = null;
      const now = mem.readBytes(tc.codeAddr, code.length);
      if (now.some((b, k) => b !== code[k])) mem.writeBytes(tc.codeAddr, code);
    }
    return this.execute(tc);
  }

  /** Load the case's data, registers and flags and run it from its first instruction. */
  private execute(tc: TestCase): SideResult {
    const c = this.cpu;
    const mem = c.mem;
    mem.writeBytes(MAP_ADDR, ZERO_PAGES);
    mem.writeBytes(DATA_ADDR, tc.data);
    c.lo.set(tc.regsLo);
    c.hi.set(tc.regsHi);
    c.ripLo = tc.codeAddr;
    c.ripHi = 0;
    c.setFlags(tc.flags);
    c.halted = false;
    let stop = STOP_BUDGET;
    for (let done = 0; done < BUDGET && !c.halted; done += STEP) {
      stop = c.run(STEP);
      if (stop !== STOP_BUDGET) break;
    }
    if (c.halted && stop === STOP_BUDGET) stop = STOP_HALT;
    let fault: string | null = null;
    let faultSig: string | null = null;
    const regsLo = Int32Array.from(c.lo);
    const regsHi = Int32Array.from(c.hi);
    let flags = c.getFlags();
    const end = tc.codeAddr + tc.code.length + 1;
    const rip = c.ripLo >>> 0;
    if (stop === STOP_HALT) {
      if (c.ripHi !== 0 || rip < end || rip > end + STEP) {
        const v = Math.floor((rip - STUB_ADDR) / 16);
        if (c.ripHi === 0 && rip >= STUB_ADDR && v < VECTORS && (rip & 15) < 3) {
          // IST frame: [error code], RIP, CS, RFLAGS, RSP, SS.
          const hasErr = v === 8 || (v >= 10 && v <= 14) || v === 17;
          const f = (c.lo[4] >>> 0) + (hasErr ? 8 : 0);
          const at = mem.read(f, 4) - tc.codeAddr;
          flags = mem.read(f + 16, 4) | 0;
          regsLo[4] = mem.read(f + 24, 4) | 0;
          regsHi[4] = mem.read(f + 28, 4) | 0;
          const sig = VECTOR_SIGNAL[v] ?? VECTOR_NAMES[v] ?? `vector ${v}`;
          // SIGSEGV carries CR2 for #PF and 0 for #GP, as Linux's si_addr does.
          const cr2Hi = c.cr2Hi >>> 0;
          const cr2 =
            cr2Hi === 0
              ? `0x${(c.cr2Lo >>> 0).toString(16)}`
              : `0x${cr2Hi.toString(16)}${(c.cr2Lo >>> 0).toString(16).padStart(8, "0")}`;
          const addr = sig === "SIGSEGV" ? (v === 14 ? cr2 : "0x0") : "";
          fault = `${VECTOR_NAMES[v] ?? `vector ${v}`} exception at +0x${at.toString(16)}${v === 14 ? ` (CR2 ${cr2})` : ""}`;
          faultSig = `${sig}@0x${at.toString(16)}${addr ? `:${addr}` : ""}`;
        } else fault = `halted at unexpected rip 0x${rip.toString(16)}`;
      }
    } else if (stop === STOP_SHUTDOWN) fault = `shutdown: ${c.stopReason?.reason ?? "?"}`;
    else if (stop === STOP_BUDGET)
      fault = `did not reach the end within ${BUDGET} instructions (rip 0x${rip.toString(16)})`;
    else fault = `stopped (${stop}) at rip 0x${rip.toString(16)}`;
    if (fault !== null && faultSig === null) faultSig = fault;
    c.stopReason = null;
    const pages = mem.readBytes(MAP_ADDR, MAP_SIZE);
    return {
      fault,
      faultSig,
      outsideHash: outsideHash(pages),
      regsLo,
      regsHi,
      flags,
      data: pages.slice(DATA_OFF, DATA_OFF + DATA_SIZE),
    };
  }
}
