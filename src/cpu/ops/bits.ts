import type { OpDef } from "../opdef.js";

export const BITS_OPS: readonly OpDef[] = [];
