/**
 * The VM-exit instruction-information field and exit qualification a VMX instruction's exit
 * carries (SDM vol. 3C, 27.2.5, tables 27-13 for INVEPT/INVVPID/VMCLEAR/VMPTRLD/VMPTRST/VMXON and
 * 27-14 for VMREAD/VMWRITE; the displacement rule of 27.2.1), so the hypervisor can find the
 * operand without decoding the instruction again.
 */

import * as VX from "../../x86/vmx.js";
import { BASE_RIP, type Insn, NONE } from "../insn.js";

/** Address-size code of bits 9:7 (0 16-bit, 1 32-bit, 2 64-bit). */
function asizeCode(i: Insn): number {
  return i.asize === 8 ? 2 : i.asize === 4 ? 1 : 0;
}

/**
 * Instruction information for VMX instruction `i` (Insn.op a VMXI_*). Memory operands: scaling,
 * address size, segment, index and base (each with its invalid bit); RIP-relative addressing
 * marks both invalid (the qualification then holds the whole offset). VMREAD/VMWRITE: bit 10
 * says register operand, bits 6:3 its register, bits 31:28 the other register. INVEPT/INVVPID:
 * bits 31:28 the register operand.
 */
export function vmxInstructionInfo(i: Insn): number {
  const rw = i.op === VX.VMXI_VMREAD || i.op === VX.VMXI_VMWRITE;
  let info = asizeCode(i) << 7;
  if (rw) info |= (i.reg & 15) << 28;
  else if (i.op === VX.VMXI_INVEPT || i.op === VX.VMXI_INVVPID) info |= (i.reg & 15) << 28;
  if (!i.isMem) {
    if (rw) info |= (1 << 10) | ((i.rm & 15) << 3);
    return info;
  }
  info |= (i.scale & 3) | ((i.seg & 7) << 15);
  if (i.index === NONE || i.base === BASE_RIP) info |= 1 << 22;
  else info |= (i.index & 15) << 18;
  if (i.base === NONE || i.base === BASE_RIP) info |= 1 << 27;
  else info |= (i.base & 15) << 23;
  return info >>> 0;
}
