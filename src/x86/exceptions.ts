/** Exception vectors (SDM vol. 3, table 6-1). */
export const DE = 0,
  DB = 1,
  NMI = 2,
  BP = 3,
  OF_ = 4,
  BR = 5,
  UD = 6,
  NM = 7,
  DF_ = 8;
export const TS = 10,
  NP = 11,
  SS_ = 12,
  GP = 13,
  PF_ = 14,
  MF = 16,
  AC_ = 17,
  MC = 18,
  XM = 19;
export const VECTOR_NAMES: Record<number, string> = {
  0: "#DE",
  1: "#DB",
  2: "NMI",
  3: "#BP",
  4: "#OF",
  5: "#BR",
  6: "#UD",
  7: "#NM",
  8: "#DF",
  10: "#TS",
  11: "#NP",
  12: "#SS",
  13: "#GP",
  14: "#PF",
  16: "#MF",
  17: "#AC",
  18: "#MC",
  19: "#XM",
};
/** Vectors that push an error code (SDM vol. 3, 6.13). */
export function hasErrorCode(vector: number): boolean {
  return vector === 8 || (vector >= 10 && vector <= 14) || vector === 17 || vector === 21;
}
/**
 * Exceptions of the fault class (SDM vol. 3, table 6-1, "Type" column): the RFLAGS image their
 * delivery pushes has RF = 1 (SDM vol. 3, 18.3.1.1). #DB is a fault only for instruction
 * breakpoints, which push RF as it was, so it is not listed.
 */
export function isFaultClass(vector: number): boolean {
  return (
    (vector >= 5 && vector <= 7) ||
    (vector >= 10 && vector <= 14) ||
    vector === 0 ||
    (vector >= 16 && vector <= 21 && vector !== 18)
  );
}
/** Contributory exceptions for the double-fault rules (SDM vol. 3, table 6-4). */
export function isContributory(vector: number): boolean {
  return vector === 0 || (vector >= 10 && vector <= 13);
}
/** #PF error-code bits (SDM vol. 3, 4.7). */
export const PFEC_P = 1,
  PFEC_W = 2,
  PFEC_U = 4,
  PFEC_RSVD = 8,
  PFEC_I = 16,
  PFEC_PK = 32;
/** Selector error-code bits (SDM vol. 3, 6.13): EXT, IDT, TI. */
export const ERR_EXT = 1,
  ERR_IDT = 2,
  ERR_TI = 4;
