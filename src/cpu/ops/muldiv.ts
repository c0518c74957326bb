import type { OpDef } from "../opdef.js";

export const MULDIV_OPS: readonly OpDef[] = [];
