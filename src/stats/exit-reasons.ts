/**
 * The spaces exit reasons are numbered in: Intel's basic exit reasons (SDM vol. 3D, appendix C;
 * the numbers in x86/vmx.ts), declared here, for exits of VMX hardware and L0's nested VMX; an
 * interface declares its own (npv's exit codes: hypervisors/l0/npv/stats.ts).
 */
import * as V from "../x86/vmx.js";

export type ReasonSpaceId = "vmx" | "npv";

export interface ReasonSpace {
  readonly id: ReasonSpaceId;
  /** Codes 0..size-1 are counted densely; anything else in one overflow slot. */
  readonly size: number;
  name(code: number): string;
}

/**
 * Names by basic exit reason, made from x86/vmx.ts's EXIT_* constants on first use: walking the
 * module namespace at import was a start-up cost of every process, most of which name no exit
 * (issue 11).
 */
let vmxNames: string[] | null = null;

function vmxReasonNames(): string[] {
  if (vmxNames === null) {
    vmxNames = [];
    for (const [k, v] of Object.entries(V)) {
      if (k.startsWith("EXIT_") && typeof v === "number" && k !== "EXIT_REASON_ENTRY_FAILURE")
        vmxNames[v] = k.slice(5).toLowerCase();
    }
  }
  return vmxNames;
}

/** Lower-case name of a basic exit reason ("cpuid", "ept_violation", …). */
export function exitReasonName(reason: number): string {
  return vmxReasonNames()[reason] ?? `reason_${reason}`;
}

/** Basic exit reasons are 16-bit; the SDM numbers them below 128. */
export const VMX_EXIT_REASONS: ReasonSpace = { id: "vmx", size: 128, name: exitReasonName };
