/** Settings of the block compiler (`--no-jit`, `--jit-threshold`). */
export interface JitOptions {
  /** Compile hot blocks (false: interpret every instruction). */
  enabled: boolean;
  /** Entries into a block start address before it is compiled. */
  threshold: number;
  /** Cap on compiled guest instructions; reaching it drops every block (QEMU's tb_flush policy). */
  maxInstructions: number;
  /**
   * Instructions the CPU retires before it compiles its first block (0: from the start). A run
   * shorter than this never pays for compiling: the code generator's own first use in a
   * process (its code still cold in V8) and V8's tiering of new block functions cost more CPU
   * than such a run can win back (docs/jit.md, "Round of 2026-12-05 (branch jit)").
   */
  warmup: number;
}

/**
 * Defaults for every new CPU. The threshold is high because a new block function first runs in
 * V8's unoptimized tiers: compiling lukewarm code made the short runs of `compare` about 25%
 * slower in CPU time at 32 entries and left them even at 2000 (measured, docs/jit.md), while
 * loops that run long are compiled all the same. The CLI sets them once from its flags; a machine or stack can
 * still pass its own (MachineOptions.jit, StackRunOptions.jit). Results never depend on them:
 * simulated time is the same with the compiler on or off.
 */
export const jitDefaults: JitOptions = { enabled: true, threshold: 2000, maxInstructions: 1 << 18, warmup: 500_000 };

/** Fill unset fields of a partial setting from the defaults. */
export function jitOptions(partial: Partial<JitOptions> | undefined): JitOptions {
  return { ...jitDefaults, ...partial };
}
