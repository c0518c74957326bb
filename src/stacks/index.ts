import { bareL1Stack } from "./bare-l1.js";
import { nativeStack } from "./native.js";
import { npvStack } from "./npv.js";
import { nvmxEvmcsStack, nvmxShadowStack, nvmxStack } from "./nvmx.js";
import { type Stack, UnknownStackError } from "./stack.js";
import { vmStack } from "./vm.js";

/** Every stack nestlab can run, by name (names.ts lists the names for code that must not load the stacks). */
export const STACKS: ReadonlyMap<string, Stack> = new Map([
  [nativeStack.name, nativeStack],
  [vmStack.name, vmStack],
  [npvStack.name, npvStack],
  [bareL1Stack.name, bareL1Stack],
  [nvmxStack.name, nvmxStack],
  [nvmxShadowStack.name, nvmxShadowStack],
  [nvmxEvmcsStack.name, nvmxEvmcsStack],
]);

export { COMPARE_DEFAULT_STACKS } from "./names.js";

export function getStack(name: string): Stack {
  const s = STACKS.get(name);
  if (s === undefined) {
    throw new UnknownStackError(`unknown stack "${name}"; known stacks: ${[...STACKS.keys()].join(", ")}`);
  }
  return s;
}
