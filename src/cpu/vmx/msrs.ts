/**
 * IA32_FEATURE_CONTROL and the VMX capability MSRs (0x480–0x491) as guest software reads them
 * (SDM vol. 3, 23.7 and appendix A). They exist only when the CPU model advertises VMX
 * (CPUID.1:ECX[5]); otherwise the capability MSRs #GP and IA32_FEATURE_CONTROL stays the plain
 * read/write MSR of msr.ts. Values come from caps.ts, the one list of what VMX implements.
 */

import { F1C_VMX } from "../../x86/cpuid.js";
import { GP } from "../../x86/exceptions.js";
import * as M from "../../x86/msr.js";
import * as C from "../../x86/vmx-controls.js";
import { cr4Allowed } from "../control-regs.js";
import type { Cpu } from "../cpu.js";
import {
  basicMsr,
  CONTROL_CAPS,
  CR0_FIXED0,
  CR4_FIXED0,
  EPT_VPID_CAP_HI,
  EPT_VPID_CAP_LO,
  MISC_LO,
  vmcsEnum,
} from "./caps.js";
import { supportedVmcsFields } from "./vmcs.js";

const q = new Int32Array(4);

/** Whether the CPU model gives guest software VMX (CPUID.1:ECX.VMX). */
export function vmxAdvertised(c: Cpu): boolean {
  c.model.query(1, 0, q);
  return (q[2] & F1C_VMX) !== 0;
}

/**
 * The control capability MSRs as [allowed-0 settings (must be 1), allowed-1 settings]. Without
 * TRUE_, the primary controls report every default1 bit as must-be-1 (A.3.2); the others' TRUE_
 * and plain values agree. IA32_VMX_PROCBASED_CTLS2 exists because the primary controls allow
 * "activate secondary controls" (A.3.3).
 */
const CONTROL_MSRS = new Map<number, readonly [number, number]>([
  [M.MSR_IA32_VMX_PINBASED_CTLS, [CONTROL_CAPS.pin.must1, CONTROL_CAPS.pin.may1]],
  [M.MSR_IA32_VMX_TRUE_PINBASED_CTLS, [CONTROL_CAPS.pin.must1, CONTROL_CAPS.pin.may1]],
  [M.MSR_IA32_VMX_PROCBASED_CTLS, [C.PROC_DEFAULT1, CONTROL_CAPS.proc.may1]],
  [M.MSR_IA32_VMX_TRUE_PROCBASED_CTLS, [CONTROL_CAPS.proc.must1, CONTROL_CAPS.proc.may1]],
  [M.MSR_IA32_VMX_PROCBASED_CTLS2, [CONTROL_CAPS.proc2.must1, CONTROL_CAPS.proc2.may1]],
  [M.MSR_IA32_VMX_EXIT_CTLS, [CONTROL_CAPS.exit.must1, CONTROL_CAPS.exit.may1]],
  [M.MSR_IA32_VMX_TRUE_EXIT_CTLS, [CONTROL_CAPS.exit.must1, CONTROL_CAPS.exit.may1]],
  [M.MSR_IA32_VMX_ENTRY_CTLS, [CONTROL_CAPS.entry.must1, CONTROL_CAPS.entry.may1]],
  [M.MSR_IA32_VMX_TRUE_ENTRY_CTLS, [CONTROL_CAPS.entry.must1, CONTROL_CAPS.entry.may1]],
]);

/** Bits of IA32_FEATURE_CONTROL software may set: lock and VMXON outside SMX (no SMX here). */
const FEATURE_CONTROL_WRITABLE = C.FEATURE_CONTROL_LOCK | C.FEATURE_CONTROL_VMXON_OUTSIDE_SMX;

/** RDMSR of a VMX MSR into out[0..1]; false when `idx` is not one (or VMX is not advertised). */
export function readVmxMsr(c: Cpu, idx: number, out: Int32Array): boolean {
  if (idx !== M.MSR_IA32_FEATURE_CONTROL && (idx < M.MSR_IA32_VMX_BASIC || idx > M.MSR_IA32_VMX_VMFUNC)) return false;
  if (!vmxAdvertised(c)) return false;
  let lo = 0;
  let hi = 0;
  switch (idx) {
    case M.MSR_IA32_FEATURE_CONTROL:
      lo = c.vmxUnit.software.featureControl;
      break;
    case M.MSR_IA32_VMX_BASIC:
      [lo, hi] = basicMsr();
      break;
    case M.MSR_IA32_VMX_MISC:
      lo = MISC_LO;
      break;
    case M.MSR_IA32_VMX_CR0_FIXED0:
      lo = CR0_FIXED0;
      break;
    case M.MSR_IA32_VMX_CR0_FIXED1:
      lo = -1;
      break;
    case M.MSR_IA32_VMX_CR4_FIXED0:
      lo = CR4_FIXED0;
      break;
    case M.MSR_IA32_VMX_CR4_FIXED1:
      lo = cr4Allowed(c);
      break;
    case M.MSR_IA32_VMX_VMCS_ENUM:
      lo = vmcsEnum(supportedVmcsFields());
      break;
    case M.MSR_IA32_VMX_EPT_VPID_CAP:
      lo = EPT_VPID_CAP_LO;
      hi = EPT_VPID_CAP_HI;
      break;
    default: {
      const caps = CONTROL_MSRS.get(idx);
      if (caps !== undefined) {
        lo = caps[0];
        hi = caps[1];
        break;
      }
      // IA32_VMX_VMFUNC exists only with "enable VM functions" allowed-1 (A.11): it is not.
      c.raise(GP, 0);
    }
  }
  out[0] = lo;
  out[1] = hi;
  return true;
}

/** WRMSR of a VMX MSR; false when `idx` is not one (or VMX is not advertised). */
export function writeVmxMsr(c: Cpu, idx: number, lo: number, hi: number): boolean {
  if (idx !== M.MSR_IA32_FEATURE_CONTROL && (idx < M.MSR_IA32_VMX_BASIC || idx > M.MSR_IA32_VMX_VMFUNC)) return false;
  if (!vmxAdvertised(c)) return false;
  if (idx !== M.MSR_IA32_FEATURE_CONTROL) c.raise(GP, 0); // the capability MSRs are read-only
  const s = c.vmxUnit.software;
  // A locked IA32_FEATURE_CONTROL #GPs on write until reset (23.7); so do reserved bits.
  if ((s.featureControl & C.FEATURE_CONTROL_LOCK) !== 0 || hi !== 0 || (lo & ~FEATURE_CONTROL_WRITABLE) !== 0)
    c.raise(GP, 0);
  s.featureControl = lo;
  return true;
}
