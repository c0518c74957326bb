import { bareL1Stack } from "./bare-l1.js";
import { nativeStack } from "./native.js";
import { npvStack } from "./npv.js";
import { type Stack, UnknownStackError } from "./stack.js";
import { vmStack } from "./vm.js";

/** Every stack nestlab can run, by name. */
export const STACKS: ReadonlyMap<string, Stack> = new Map([
  [nativeStack.name, nativeStack],
  [vmStack.name, vmStack],
  [npvStack.name, npvStack],
  [bareL1Stack.name, bareL1Stack],
]);

export function getStack(name: string): Stack {
  const s = STACKS.get(name);
  if (s === undefined) {
    throw new UnknownStackError(`unknown stack "${name}"; known stacks: ${[...STACKS.keys()].join(", ")}`);
  }
  return s;
}
