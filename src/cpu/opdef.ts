import type { Handler } from "./insn.js";

/**
 * Operand-size kinds (SDM vol. 2, appendix A.2.5 notation):
 * - `b`: byte; `w`: word; `d`: dword; `q`: qword
 * - `v`: 16/32/64 by 66h and REX.W
 * - `d64`: defaults to 64 in 64-bit mode (66h gives 16) — PUSH/POP, near indirect branches
 * - `f64`: forced 64 in 64-bit mode (66h ignored) — Jcc, CALL/JMP rel, RET
 * - `y`: 32 or 64 by REX.W only (66h ignored) — MOV CR/DR operands, MOVNTI…
 */
export type SizeKind = "b" | "w" | "d" | "q" | "v" | "d64" | "f64" | "y";

/**
 * Immediate kinds:
 * - `ib` zero-extended imm8; `ibs` imm8 sign-extended to the operand size; `iw` imm16
 * - `iz` imm16 (16-bit operand) or imm32 sign-extended to 64
 * - `iv` imm16/imm32/imm64 by operand size (MOV r, imm)
 * - `rel8`/`relz` branch displacements, sign-extended; `moffs` an address of address-size width
 * - `ptr` far pointer (offset then selector); `iwib` ENTER's imm16 + imm8
 */
export type ImmKind = "none" | "ib" | "ibs" | "iw" | "iz" | "iv" | "rel8" | "relz" | "moffs" | "ptr" | "iwib";

/** One row of the opcode table. */
export interface OpDef {
  /** Mnemonic (lowercase, as objdump prints it). */
  name: string;
  /** Opcode map: 0 primary, 1 = 0F, 2 = 0F 38, 3 = 0F 3A. */
  map: number;
  /** Opcode byte. With `plusReg`, the first of eight (register in bits 2:0). */
  code: number;
  /** ModRM.reg opcode extension for group opcodes, or undefined. */
  ext?: number;
  /** ModRM.rm extension (mod must be 3), for opcodes such as 0F 01 /0 C1 (VMCALL). */
  rmExt?: number;
  /** Mandatory prefix: 0x66, 0xF3 or 0xF2; 0 = must be absent (F2/F3), undefined = don't care. */
  prefix?: number;
  /** Has a ModRM byte. */
  modrm: boolean;
  /** Register encoded in the low 3 opcode bits (+REX.B). */
  plusReg?: boolean;
  size: SizeKind;
  imm?: ImmKind;
  /** Sub-operation passed in Insn.op (ALU kind, condition code…). */
  op?: number;
  /** Only the register form (mod = 3) or only the memory form is valid. */
  form?: "reg" | "mem";
  /** ModRM.mod is ignored and r/m always names a register (MOV to/from CRn/DRn, SDM vol. 2 MOV CR). */
  modIgnored?: boolean;
  /** The r/m operand is a byte even though the operation size is larger (MOVZX/MOVSX Eb). */
  rmByte?: boolean;
  /** The r/m operand is a word (MOVZX/MOVSX Ew, MOV Sreg). */
  rmWord?: boolean;
  /** Invalid in 64-bit mode (`no64`) or only valid there (`only64`). */
  mode?: "no64" | "only64";
  /**
   * VEX-encoded (SDM vol. 2, 2.3): `map` is VEX.mmmmm, `prefix` is VEX.pp (0 = none) and must
   * match exactly, REX.W is VEX.W, VEX.L must be 0. `v`: VEX.vvvv names a register (Insn.vreg);
   * `nov`: VEX.vvvv is unused and must be 1111b (#UD otherwise).
   */
  vex?: "v" | "nov";
  /** LOCK prefix allowed (with a memory destination). */
  lockable?: boolean;
  exec: Handler;
}
