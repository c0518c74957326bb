/**
 * Lazy-flag kinds. An arithmetic instruction records its operands and result; the six status
 * flags are computed only when something reads them (Jcc, SETcc, PUSHF…), as QEMU's cc_op and
 * Bochs' lazy flags do. Values are stored masked to the operand size (size 8 uses both halves).
 */
export const LF_NONE = 0; // status flags are materialized in flagsBase
export const LF_ADD = 1;
export const LF_ADC = 2; // aux = carry in
export const LF_SUB = 3;
export const LF_SBB = 4; // aux = borrow in
export const LF_INC = 5; // aux = CF before (INC preserves CF); src = 1
export const LF_DEC = 6; // aux = CF before; src = 1
/** ZF/SF/PF from the result; CF, OF and AF given explicitly in aux (as RFLAGS bits). */
export const LF_RES = 7;

/** Parity flag lookup: PARITY[b] = PF bit (0x04) when b has an even number of set bits. */
export const PARITY = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  let n = 0;
  for (let k = 0; k < 8; k++) n += (b >> k) & 1;
  PARITY[b] = (n & 1) === 0 ? 4 : 0;
}

/** Mask of an operand of `size` bytes in the low half (size 8 uses the whole low half). */
export function sizeMask(size: number): number {
  return size === 1 ? 0xff : size === 2 ? 0xffff : -1;
}
