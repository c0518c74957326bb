/**
 * Canonical linear addresses (SDM vol. 1, 3.3.7.1; vol. 3, 4.5). nestlab implements 4-level
 * paging only for canonical checks: bits 63:47 must all equal bit 47. CPUID.7.0:ECX.LA57 is
 * therefore never advertised and CR4.LA57 is reserved (control-regs.ts), so the 57-bit rules
 * (the "5-Level Paging and 5-Level EPT" white paper, 2.3) never apply. The memory path keeps
 * its own inline copy of this test (Cpu.translate, Cpu.jump) for speed.
 */

/** True when the 64-bit address whose high half is `hi` is canonical (48-bit). */
export function isCanonical(hi: number): boolean {
  const top = hi >> 15;
  return top === 0 || top === -1;
}
