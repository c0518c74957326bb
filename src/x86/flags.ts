/** RFLAGS bits (SDM vol. 1, 3.4.3). */
export const CF = 1 << 0;
export const FIXED1 = 1 << 1; // reserved, always 1
export const PF = 1 << 2;
export const AF = 1 << 4;
export const ZF = 1 << 6;
export const SF = 1 << 7;
export const TF = 1 << 8;
export const IF = 1 << 9;
export const DF = 1 << 10;
export const OF = 1 << 11;
export const IOPL = 3 << 12;
export const NT = 1 << 14;
export const RF = 1 << 16;
export const VM = 1 << 17;
export const AC = 1 << 18;
export const VIF = 1 << 19;
export const VIP = 1 << 20;
export const ID = 1 << 21;
/** The six status flags that arithmetic computes. */
export const ARITH = CF | PF | AF | ZF | SF | OF;
/** Bits POPF may change at CPL 0 in 64-bit mode (VM and VIF/VIP excluded: no virtual-8086 mode here). */
export const POPF_MASK_CPL0 = ARITH | TF | IF | DF | OF | IOPL | NT | AC | ID;
