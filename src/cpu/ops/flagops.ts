import type { OpDef } from "../opdef.js";

export const FLAGOPS_OPS: readonly OpDef[] = [];
