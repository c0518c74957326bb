import { bareL1Stack } from "./bare-l1.js";
import { nativeStack } from "./native.js";
import { npvStack } from "./npv.js";
import { nvmxEvmcsStack, nvmxShadowStack, nvmxStack } from "./nvmx.js";
import { type Stack, UnknownStackError } from "./stack.js";
import { vmStack } from "./vm.js";

/** Every stack nestlab can run, by name. */
export const STACKS: ReadonlyMap<string, Stack> = new Map([
  [nativeStack.name, nativeStack],
  [vmStack.name, vmStack],
  [npvStack.name, npvStack],
  [bareL1Stack.name, bareL1Stack],
  [nvmxStack.name, nvmxStack],
  [nvmxShadowStack.name, nvmxShadowStack],
  [nvmxEvmcsStack.name, nvmxEvmcsStack],
]);

/**
 * The stacks `compare` runs by default: every stack, in the order of issue 10's table (the machine
 * alone, one level, the executed L1 on the bare VMX machine, the three nested-VMX variants, then
 * the nested paravirtual interface), so the comparison the project exists for is the default.
 */
export const COMPARE_DEFAULT_STACKS: readonly string[] = [
  nativeStack.name,
  vmStack.name,
  bareL1Stack.name,
  nvmxStack.name,
  nvmxShadowStack.name,
  nvmxEvmcsStack.name,
  npvStack.name,
];

export function getStack(name: string): Stack {
  const s = STACKS.get(name);
  if (s === undefined) {
    throw new UnknownStackError(`unknown stack "${name}"; known stacks: ${[...STACKS.keys()].join(", ")}`);
  }
  return s;
}
