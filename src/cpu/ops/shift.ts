import type { OpDef } from "../opdef.js";

export const SHIFT_OPS: readonly OpDef[] = [];
