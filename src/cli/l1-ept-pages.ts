/**
 * `--l1-ept-pages 4k|2m` (run, compare; a list for sweep): the largest EPT12 leaf l1hv's vmx back
 * end maps L2's RAM with (docs/l1hv.md), beside `--ept-pages`, which sets L0's EPT01. Only the
 * stacks whose L1 is that back end take it (`Stack.l1EptPages`): bare-l1 and the nvmx stacks.
 * main.ts builds the options before the simulator is loaded, so the checks take the stacks from
 * their callers (which have loaded them) instead of importing stacks/index.ts here.
 */
import { InvalidArgumentError, Option } from "commander";
import { L1_EPT_PAGES, type L1EptPages, type Stack } from "../stacks/stack.js";
import { UsageError } from "./exit-codes.js";

const WHAT = "largest EPT12 leaf l1hv (bare-l1, nvmx stacks) maps L2 RAM with, where L1's memory allows";

export const l1EptPagesOption = (): Option => new Option("--l1-ept-pages <size>", WHAT).choices(L1_EPT_PAGES);

/** sweep's: a list of sizes to sweep. */
export const l1EptPagesListOption = (): Option =>
  new Option("--l1-ept-pages <list>", `${WHAT}: 4k, 2m to sweep`)
    .argParser((v) => {
      const items = v.split(",").map((x) => x.trim());
      const bad = items.find((x) => !L1_EPT_PAGES.includes(x as L1EptPages));
      if (bad !== undefined) throw new InvalidArgumentError(`unknown EPT12 page size "${bad}"; choose from 4k, 2m`);
      return items as L1EptPages[];
    })
    .default(["4k"], "4k");

type Stacks = ReadonlyMap<string, Stack>;

function refuse(stacks: Stacks, where: string): never {
  const takers = [...stacks.values()].filter((s) => s.l1EptPages).map((s) => s.name);
  throw new UsageError(
    `--l1-ept-pages sets the EPT12 leaves of l1hv's vmx back end: stacks ${takers.join(", ")}, not ${where} ` +
      "(npv: L1 maps L2 memory through the nested-PV ABI in 4 KiB pages; L0 builds EPT02)",
  );
}

/** `run`: the option given at all on a stack without l1hv's vmx back end is an error. */
export function checkRunL1EptPages(stacks: Stacks, stack: string, pages: L1EptPages | undefined): void {
  if (pages !== undefined && !stacks.get(stack)?.l1EptPages) refuse(stacks, stack);
}

/** compare, sweep: 2m asked for, but no stack of the list takes it. */
export function checkListL1EptPages(stacks: Stacks, names: readonly string[], pages: readonly L1EptPages[]): void {
  if (pages.includes("2m") && !names.some((s) => stacks.get(s)?.l1EptPages)) refuse(stacks, names.join(", "));
}
