/**
 * The VMX instructions (SDM vol. 3, chapter 31): decoded here, Insn.op a VMXI_* constant. In
 * non-root operation they exit (25.1.2) unless VMCS shadowing serves a VMREAD/VMWRITE
 * (vmx/shadow.ts); in root operation the CPU's own VMX for guest software gives them meaning
 * (vmx/instructions.ts; #UD unless CPUID advertises VMX and, but for VMXON, the CPU is in VMX
 * operation), or a hook a test installs in Cpu.vmx.
 */
import * as VX from "../../x86/vmx.js";
import {
  VMXI_INVEPT,
  VMXI_INVVPID,
  VMXI_VMCALL,
  VMXI_VMCLEAR,
  VMXI_VMFUNC,
  VMXI_VMLAUNCH,
  VMXI_VMPTRLD,
  VMXI_VMPTRST,
  VMXI_VMREAD,
  VMXI_VMRESUME,
  VMXI_VMWRITE,
  VMXI_VMXOFF,
  VMXI_VMXON,
} from "../../x86/vmx.js";
import type { Cpu } from "../cpu.js";
import { BASE_RIP, type Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";
import { vmxInstructionInfo } from "../vmx/insn-info.js";
import { checkMode, vmxInstruction } from "../vmx/instructions.js";
import { shadowAccess } from "../vmx/shadow.js";

/** Exit reason of each VMX instruction in non-root operation (25.1.2), by VMXI_* op. */
const VMX_EXIT_REASON: Record<number, number> = {
  [VX.VMXI_VMCALL]: VX.EXIT_VMCALL,
  [VX.VMXI_VMLAUNCH]: VX.EXIT_VMLAUNCH,
  [VX.VMXI_VMRESUME]: VX.EXIT_VMRESUME,
  [VX.VMXI_VMXOFF]: VX.EXIT_VMXOFF,
  [VX.VMXI_VMFUNC]: VX.EXIT_VMFUNC,
  [VX.VMXI_VMPTRLD]: VX.EXIT_VMPTRLD,
  [VX.VMXI_VMCLEAR]: VX.EXIT_VMCLEAR,
  [VX.VMXI_VMXON]: VX.EXIT_VMXON,
  [VX.VMXI_VMPTRST]: VX.EXIT_VMPTRST,
  [VX.VMXI_VMREAD]: VX.EXIT_VMREAD,
  [VX.VMXI_VMWRITE]: VX.EXIT_VMWRITE,
  [VX.VMXI_INVEPT]: VX.EXIT_INVEPT,
  [VX.VMXI_INVVPID]: VX.EXIT_INVVPID,
};

/** VMX instructions with an operand the exit describes (27.2.1, 27.2.5); the others carry none. */
function hasVmxOperand(op: number): boolean {
  return op >= VX.VMXI_VMPTRLD;
}

function vmxInsn(c: Cpu, i: Insn): void {
  // In VMX non-root operation every VMX instruction (and VMCALL) exits to the hypervisor, with
  // the operand in the instruction-information field and the displacement in the qualification,
  // but VMREAD/VMWRITE that VMCS shadowing serves (vmx/shadow.ts).
  if (c.nonRoot) {
    if (i.op !== VX.VMXI_VMCALL && i.op !== VX.VMXI_VMFUNC) checkMode(c);
    if (shadowAccess(c, i)) return;
    const reason = VMX_EXIT_REASON[i.op];
    if (!hasVmxOperand(i.op) || !i.isMem)
      c.vmxUnit.exitNow(reason, 0, 0, i.len, hasVmxOperand(i.op) ? vmxInstructionInfo(i) : 0);
    let qlo = i.disp;
    let qhi = i.dispHi;
    if (i.base === BASE_RIP) {
      // RIP-relative: the qualification is displacement + RIP of the next instruction (27.2.1).
      const lo = (c.ripLo >>> 0) + (qlo >>> 0);
      qhi = (qhi + c.ripHi + (lo > 0xffffffff ? 1 : 0)) | 0;
      qlo = lo | 0;
    }
    c.vmxUnit.exitNow(reason, qlo, qhi, i.len, vmxInstructionInfo(i));
  }
  const v = c.vmx;
  if (v === null)
    vmxInstruction(c, i); // the CPU's own VMX (#UD unless CPUID advertises it)
  else v.vmxInstruction(c, i);
}

export const VMX_OPS: readonly OpDef[] = [
  { name: "vmcall", map: 1, code: 0x01, ext: 0, rmExt: 1, modrm: true, size: "v", op: VMXI_VMCALL, exec: vmxInsn },
  { name: "vmlaunch", map: 1, code: 0x01, ext: 0, rmExt: 2, modrm: true, size: "v", op: VMXI_VMLAUNCH, exec: vmxInsn },
  { name: "vmresume", map: 1, code: 0x01, ext: 0, rmExt: 3, modrm: true, size: "v", op: VMXI_VMRESUME, exec: vmxInsn },
  { name: "vmxoff", map: 1, code: 0x01, ext: 0, rmExt: 4, modrm: true, size: "v", op: VMXI_VMXOFF, exec: vmxInsn },
  { name: "vmfunc", map: 1, code: 0x01, ext: 2, rmExt: 4, modrm: true, size: "v", op: VMXI_VMFUNC, exec: vmxInsn },
  {
    name: "vmptrld",
    map: 1,
    code: 0xc7,
    ext: 6,
    prefix: 0,
    form: "mem",
    modrm: true,
    size: "q",
    op: VMXI_VMPTRLD,
    exec: vmxInsn,
  },
  {
    name: "vmclear",
    map: 1,
    code: 0xc7,
    ext: 6,
    prefix: 0x66,
    form: "mem",
    modrm: true,
    size: "q",
    op: VMXI_VMCLEAR,
    exec: vmxInsn,
  },
  {
    name: "vmxon",
    map: 1,
    code: 0xc7,
    ext: 6,
    prefix: 0xf3,
    form: "mem",
    modrm: true,
    size: "q",
    op: VMXI_VMXON,
    exec: vmxInsn,
  },
  {
    name: "vmptrst",
    map: 1,
    code: 0xc7,
    ext: 7,
    prefix: 0,
    form: "mem",
    modrm: true,
    size: "q",
    op: VMXI_VMPTRST,
    exec: vmxInsn,
  },
  { name: "vmread", map: 1, code: 0x78, prefix: 0, modrm: true, size: "f64", op: VMXI_VMREAD, exec: vmxInsn },
  { name: "vmwrite", map: 1, code: 0x79, prefix: 0, modrm: true, size: "f64", op: VMXI_VMWRITE, exec: vmxInsn },
  {
    name: "invept",
    map: 2,
    code: 0x80,
    prefix: 0x66,
    form: "mem",
    modrm: true,
    size: "f64",
    op: VMXI_INVEPT,
    exec: vmxInsn,
  },
  {
    name: "invvpid",
    map: 2,
    code: 0x81,
    prefix: 0x66,
    form: "mem",
    modrm: true,
    size: "f64",
    op: VMXI_INVVPID,
    exec: vmxInsn,
  },
];
