import { GPR_NAMES } from "../../src/x86/registers.js";
/**
 * The fixed addresses both sides of the difftest use. The native harness maps code and data at
 * exactly these addresses (MAP_FIXED_NOREPLACE) and the emulator's identity-mapped long mode
 * puts them at the same linear addresses, so registers holding addresses compare exactly.
 */

/** The code area (32 KiB mapped); a sequence starts at its beginning or straddles 0x1000 into it. */
export const CODE_ADDR = 0x10000000;
export const CODE_SIZE = 0x8000;
/** The data area: the scratch buffer followed by the stack. It straddles a 4 KiB page boundary on purpose. */
export const DATA_ADDR = 0x10010f00;
export const DATA_SIZE = 512;
/**
 * The two pages holding the data area are mapped on both sides; the rest of them is zeroed before
 * every case and compared by hash. The pages around them (and around the code) are unmapped on
 * both sides, so an access that runs off them page-faults natively and in the emulator.
 */
export const MAP_ADDR = 0x10010000;
export const MAP_SIZE = 0x2000;
/** Bytes [0, BUF_SIZE) of the data area are the scratch buffer, the rest is the stack area. */
export const BUF_SIZE = 256;
/** R15 holds this address for the whole sequence (the buffer base; never written). */
export const BASE_REG = 15;
export const BASE_VALUE = DATA_ADDR + 128;
/** RSP at the start of the sequence (in the stack area); pushes go down from here. */
export const RSP_INIT = DATA_ADDR + 448;
/** The deepest the generator lets balanced pushes go, in bytes. */
export const MAX_STACK_BYTES = 128;

export const RSP = 4;
export const REG_NAMES: readonly string[] = GPR_NAMES;
