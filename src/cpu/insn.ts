import type { Cpu } from "./cpu.js";

/** An instruction handler: executes one decoded instruction. RIP already points past it. */
export type Handler = (c: Cpu, i: Insn) => void;

/** Register number for AH/CH/DH/BH in 8-bit operands (no REX, reg 4..7): 16 + (reg - 4). */
export const HIGH8_BASE = 16;
/** Base register value meaning "RIP-relative". */
export const BASE_RIP = 16;
/** No base / no index. */
export const NONE = -1;

/**
 * One decoded instruction. Created once by the decoder and cached by physical address, so the
 * interpreter never allocates. Fields are plain numbers so V8 keeps one hidden class.
 */
export class Insn {
  exec: Handler;
  /** Length in bytes. */
  len = 0;
  /** Operand size in bytes: 1, 2, 4 or 8. */
  size = 4;
  /** Address size in bytes: 4 or 8. */
  asize = 8;
  /** ModRM.reg (+REX.R), or the register encoded in the opcode. High-8 registers are 16..19. */
  reg = 0;
  /** ModRM.mod === 3: r/m is a register (`rm`); otherwise a memory operand. */
  isMem = false;
  /** ModRM.rm (+REX.B) when a register operand. High-8 registers are 16..19. */
  rm = 0;
  /** VEX.vvvv: the register a VEX-encoded instruction names there (0..15). */
  vreg = 0;
  /** Memory operand: base register or NONE or BASE_RIP. */
  base = NONE;
  /** Memory operand: index register or NONE. */
  index = NONE;
  /** Memory operand: scale as a shift count 0..3. */
  scale = 0;
  /** Displacement, sign-extended to 64 bits: low half and high half. */
  disp = 0;
  dispHi = 0;
  /** Immediate (sign- or zero-extended as the opcode defines): low and high halves. */
  imm = 0;
  immHi = 0;
  /** Second immediate (ENTER's nesting level, far pointer selector). */
  imm2 = 0;
  /** Segment register of the memory operand (override or default). */
  seg = 3;
  /** 0 = none, 1 = REP/REPE (F3), 2 = REPNE (F2). */
  rep = 0;
  /** LOCK prefix present. */
  lock = false;
  /** Opcode-specific sub-operation (ALU kind, condition code, group extension…). */
  op = 0;
  /** The table entry's mnemonic, for traces and errors. */
  name = "";
  /** Raw opcode (map << 8 | byte), for VM-exit instruction information and disassembly. */
  opcode = 0;

  constructor(exec: Handler) {
    this.exec = exec;
  }
}
