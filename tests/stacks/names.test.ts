import { describe, expect, it } from "vitest";
import { STACKS } from "../../src/stacks/index.js";
import { COMPARE_DEFAULT_STACKS, STACK_NAMES } from "../../src/stacks/names.js";

describe("stack names without the stacks' code", () => {
  it("STACK_NAMES lists STACKS, in order", () => {
    expect(STACK_NAMES).toEqual([...STACKS.keys()]);
  });
  it("compare's default runs every stack once", () => {
    expect([...COMPARE_DEFAULT_STACKS].sort()).toEqual([...STACK_NAMES].sort());
  });
});
