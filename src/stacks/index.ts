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
 * The stacks `compare` runs by default: those on which every workload passes with the bundled
 * images. The nvmx stacks join once the executed L1 (guests/images/l1hv.elf) runs every workload.
 */
export const COMPARE_DEFAULT_STACKS: readonly string[] = [
  nativeStack.name,
  vmStack.name,
  npvStack.name,
  bareL1Stack.name,
];

export function getStack(name: string): Stack {
  const s = STACKS.get(name);
  if (s === undefined) {
    throw new UnknownStackError(`unknown stack "${name}"; known stacks: ${[...STACKS.keys()].join(", ")}`);
  }
  return s;
}
