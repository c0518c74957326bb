/**
 * The opcode table: one list of rows (see OpDef), assembled from one module per instruction
 * family. The decoder indexes it; tests and the difftest generator enumerate it.
 */
import type { OpDef } from "./opdef.js";
import { ALU_OPS } from "./ops/alu.js";
import { BITS_OPS } from "./ops/bits.js";
import { BMI_OPS } from "./ops/bmi.js";
import { CONTROL_OPS } from "./ops/control.js";
import { FLAGOPS_OPS } from "./ops/flagops.js";
import { MOVE_OPS } from "./ops/move.js";
import { MULDIV_OPS } from "./ops/muldiv.js";
import { SHIFT_OPS } from "./ops/shift.js";
import { STRING_OPS } from "./ops/string.js";
import { SYSTEM_OPS } from "./ops/system.js";

export const OPCODES: readonly OpDef[] = [
  ...ALU_OPS,
  ...MOVE_OPS,
  ...CONTROL_OPS,
  ...MULDIV_OPS,
  ...SHIFT_OPS,
  ...BITS_OPS,
  ...BMI_OPS,
  ...STRING_OPS,
  ...FLAGOPS_OPS,
  ...SYSTEM_OPS,
];
