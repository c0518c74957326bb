/**
 * The stacks' names without their code: the CLI parses and checks its options (--stack choices,
 * --stacks default, --help) before it loads the simulator, and `--version` or `--help` never
 * loads it. STACKS (index.ts) holds the stacks themselves; tests/stacks/names.test.ts checks the
 * two agree.
 */
export const STACK_NAMES: readonly string[] = ["native", "vm", "npv", "bare-l1", "nvmx", "nvmx-shadow", "nvmx-evmcs"];

/**
 * The stacks `compare` runs by default: every stack, in the order of issue 10's table (the machine
 * alone, one level, the executed L1 on the bare VMX machine, the three nested-VMX variants, then
 * the nested paravirtual interface), so the comparison the project exists for is the default.
 */
export const COMPARE_DEFAULT_STACKS: readonly string[] = [
  "native",
  "vm",
  "bare-l1",
  "nvmx",
  "nvmx-shadow",
  "nvmx-evmcs",
  "npv",
];
