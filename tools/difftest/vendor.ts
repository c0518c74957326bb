/**
 * Behaviour that differs between x86 vendors (or that the architecture leaves undefined and the
 * vendors resolve differently). nestlab models an Intel processor (CPUID vendor "GenuineIntel");
 * on an Intel host every case is compared in full, on any other host the parts of a case that
 * depend on one of these behaviours are masked (or the case is skipped) and counted, so that a
 * difference there is not reported as an emulator bug and a difference anywhere else still is.
 *
 * The generator attaches a VendorNote to every case that exercises one of them.
 */
import { STATUS } from "./specs.js";

/** The vendor nestlab's CPU models (src/cpu/cpuid.ts leaf 0). */
export const MODEL_VENDOR = "GenuineIntel";

export type VendorBehaviour = "de-flags" | "call-noncanonical-push" | "movsxd16-width";

/** What each behaviour is, what the model does, and why. */
export const VENDOR_BEHAVIOURS: Record<VendorBehaviour, { what: string; model: string }> = {
  "de-flags": {
    what: "status flags after a #DE from DIV/IDIV",
    // SDM vol. 2A DIV/IDIV "Flags Affected": CF OF SF ZF AF PF undefined. A faulting instruction
    // completes nothing, and Intel processors leave RFLAGS as it was; AMD hosts were seen here
    // (EPYC) to change PF before delivering #DE.
    model: "RFLAGS unchanged (Intel)",
  },
  "call-noncanonical-push": {
    what: "the stack slot below RSP after a near CALL to a non-canonical target faults",
    // SDM 253666-024 vol. 2A CALL pseudo-code, near call with 64-bit operand size: tempRIP <- DEST,
    // stack check, Push(RIP), RIP <- tempRIP, with no canonical check before the push; Intel then
    // reports the non-canonical target as #GP on the CALL itself (RIP and RSP of the CALL), so the
    // return address is left in memory below RSP. Earlier difftest runs on an Intel host agreed
    // with this; AMD (APM vol. 3 CALL near) checks the target first and writes nothing.
    model: "return address written at RSP-8, RSP restored, #GP(0) at the CALL (Intel)",
  },
  "movsxd16-width": {
    what: "bytes read by MOVSXD r16, m (66 63 /r)",
    // SDM vol. 2B MOVSX/MOVSXD: "66 63 /r MOVSXD r16, r/m16" reads a word. AMD's APM lists
    // MOVSXD with a 32-bit source only, and AMD hosts read 4 bytes: the outcome differs when
    // bytes 2..3 of the operand are unmapped.
    model: "reads 2 bytes (Intel)",
  },
};

export interface VendorNote {
  kind: VendorBehaviour;
  /** Status flags whose value at the end depends on the vendor. */
  flags?: number;
  /** Data bytes [memAddr, memAddr + memLen) whose value at the end depends on the vendor. */
  memAddr?: number;
  memLen?: number;
  /** The whole outcome depends on the vendor (a fault on one, none on the other): not compared. */
  skip?: boolean;
}

export const DE_FLAGS_NOTE: VendorNote = { kind: "de-flags", flags: STATUS };

/** Whether a host of this vendor needs the vendor masks (it is not the vendor nestlab models). */
export function vendorDiffers(hostVendor: string): boolean {
  return hostVendor !== MODEL_VENDOR;
}
