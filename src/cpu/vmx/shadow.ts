/**
 * VMCS shadowing (SDM vol. 3, 24.6.15 and 25.1.3; VMREAD/VMWRITE in chapter 31): with the
 * secondary control "VMCS shadowing", VMREAD and VMWRITE in non-root operation whose field's bit
 * is clear in the VMREAD/VMWRITE bitmap access the VMCS the link pointer names, without a VM exit.
 */

import { CR0_PE } from "../../x86/control.js";
import { GP, UD } from "../../x86/exceptions.js";
import * as V from "../../x86/vmx.js";
import { CPU2_VMCS_SHADOWING } from "../../x86/vmx-controls.js";
import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import { activeVmcs, vmread, vmwrite } from "./instructions.js";
import type { Vmcs } from "./vmcs.js";

/**
 * Execute a VMREAD/VMWRITE of non-root operation on the shadow VMCS when the controls and the
 * bitmaps allow. Returns false when the instruction must exit instead.
 */
export function shadowAccess(c: Cpu, i: Insn): boolean {
  const read = i.op === V.VMXI_VMREAD;
  if (!read && i.op !== V.VMXI_VMWRITE) return false;
  const u = c.vmxUnit;
  if ((u.proc2 & CPU2_VMCS_SHADOWING) === 0) return false;
  if ((c.cr0 & CR0_PE) === 0 || (c.getFlags() & (1 << 17)) !== 0 || ((c.efer & 0x400) !== 0 && !c.mode64)) c.raise(UD);
  // Bits 63:15 of the field encoding set, or the field's bit set in the bitmap: VM exit.
  const enc = c.getReg(i.reg, i.size);
  if ((i.size === 8 && c.vHi !== 0) || (enc & ~0x7fff) !== 0) return false;
  const v = u.vmcs as Vmcs;
  const bitmap = v.readNumber(read ? V.VMCS_VMREAD_BITMAP : V.VMCS_VMWRITE_BITMAP);
  if ((c.mem.read(bitmap + (enc >>> 3), 1) & (1 << (enc & 7))) !== 0) return false;
  if (c.cpl !== 0) c.raise(GP, 0);
  const shadow = shadowVmcs(c, v);
  if (read) vmread(c, i, shadow);
  else vmwrite(c, i, shadow);
  return true;
}

/** The VMCS the link pointer names (cached by the processor), or null when it is all ones. */
function shadowVmcs(c: Cpu, v: Vmcs): Vmcs | null {
  if (v.read(V.VMCS_LINK_POINTER) === -1 && v.readHi(V.VMCS_LINK_POINTER) === -1) return null;
  return activeVmcs(c, v.readNumber(V.VMCS_LINK_POINTER));
}
