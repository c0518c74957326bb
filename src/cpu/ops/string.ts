import type { OpDef } from "../opdef.js";

export const STRING_OPS: readonly OpDef[] = [];
