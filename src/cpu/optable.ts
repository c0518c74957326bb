/**
 * The opcode table: one list of rows (see OpDef), assembled from one module per instruction
 * family (the system instructions: one module per concern, cr-dr.ts … vmx.ts). The decoder
 * indexes it; tests and the difftest generator enumerate it.
 */
import type { OpDef } from "./opdef.js";
import { ALU_OPS } from "./ops/alu.js";
import { BITS_OPS } from "./ops/bits.js";
import { BMI_OPS } from "./ops/bmi.js";
import { CACHE_TLB_OPS } from "./ops/cache-tlb.js";
import { CONTROL_OPS } from "./ops/control.js";
import { CR_DR_OPS } from "./ops/cr-dr.js";
import { DESCRIPTOR_OPS } from "./ops/descriptors.js";
import { FAR_OPS } from "./ops/far.js";
import { FAST_SYSCALL_OPS } from "./ops/fast-syscall.js";
import { FLAGOPS_OPS } from "./ops/flagops.js";
import { INTERRUPT_OPS } from "./ops/interrupt-insns.js";
import { MOVE_OPS } from "./ops/move.js";
import { MSR_CPUID_OPS } from "./ops/msr-cpuid.js";
import { MULDIV_OPS } from "./ops/muldiv.js";
import { PORT_IO_OPS } from "./ops/port-io.js";
import { SEGMENT_REG_OPS } from "./ops/segment-regs.js";
import { SHIFT_OPS } from "./ops/shift.js";
import { STRING_OPS } from "./ops/string.js";
import { VMX_OPS } from "./ops/vmx.js";

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
  ...CR_DR_OPS,
  ...DESCRIPTOR_OPS,
  ...SEGMENT_REG_OPS,
  ...FAR_OPS,
  ...INTERRUPT_OPS,
  ...MSR_CPUID_OPS,
  ...PORT_IO_OPS,
  ...CACHE_TLB_OPS,
  ...FAST_SYSCALL_OPS,
  ...VMX_OPS,
];
