/**
 * IA32_FEATURE_CONTROL, the VMX capability MSRs and CPUID.1:ECX.VMX as guest software sees them
 * (SDM vol. 3, 23.7 and appendix A), their agreement with what VM entry accepts, and the #UD/#GP
 * preconditions of VMXON (chapter 31).
 */
import { describe, expect, it } from "vitest";
import { writeCr4 } from "../../src/cpu/control-regs.js";
import type { Cpu } from "../../src/cpu/cpu.js";
import { FAULT, STOP_HALT } from "../../src/cpu/cpu.js";
import { CpuModel } from "../../src/cpu/cpuid.js";
import { readMsr, writeMsr } from "../../src/cpu/msr.js";
import { checkControls } from "../../src/cpu/vmx/entry-checks.js";
import { Vmcs } from "../../src/cpu/vmx/vmcs.js";
import { CR4_VMXE } from "../../src/x86/control.js";
import { GP, UD } from "../../src/x86/exceptions.js";
import * as M from "../../src/x86/msr.js";
import * as V from "../../src/x86/vmx.js";
import * as C from "../../src/x86/vmx-controls.js";
import { HAVE_AS } from "../helpers/asm.js";
import { runVmx, vmxCpu } from "../helpers/guest-vmx.js";
import { makeCpu64 } from "../helpers/machine.js";
import { stub } from "../helpers/sys.js";

function rdmsr(c: Cpu, idx: number): [number, number] | "GP" {
  const out = new Int32Array(2);
  try {
    readMsr(c, idx, out);
  } catch (e) {
    if (e !== FAULT) throw e;
    return "GP";
  }
  return [out[0] >>> 0, out[1] >>> 0];
}

function wrmsrFaults(c: Cpu, idx: number, lo: number, hi = 0): boolean {
  try {
    writeMsr(c, idx, lo, hi);
  } catch (e) {
    if (e !== FAULT) throw e;
    return true;
  }
  return false;
}

const vmxCpu64 = (): Cpu => makeCpu64(undefined, new CpuModel({ vmx: true }));

describe("VMX capability MSRs", () => {
  it("do not exist without CPUID.1:ECX.VMX; CR4.VMXE is then reserved", () => {
    const c = makeCpu64();
    for (let idx = M.MSR_IA32_VMX_BASIC; idx <= M.MSR_IA32_VMX_VMFUNC; idx++) expect(rdmsr(c, idx)).toBe("GP");
    expect(() => writeCr4(c, c.cr4 | CR4_VMXE, 0)).toThrow();
    // IA32_FEATURE_CONTROL stays the plain read/write MSR it was.
    expect(wrmsrFaults(c, M.MSR_IA32_FEATURE_CONTROL, 5)).toBe(false);
    expect(wrmsrFaults(c, M.MSR_IA32_FEATURE_CONTROL, 0)).toBe(false);
  });

  it("IA32_VMX_BASIC: revision id, 4 KiB regions, WB, TRUE_ controls", () => {
    const c = vmxCpu64();
    expect(rdmsr(c, M.MSR_IA32_VMX_BASIC)).toEqual([C.VMCS_REVISION_ID, 0x00981000]); // size 4096, WB (6) in 53:50, bit 55
    expect(wrmsrFaults(c, M.MSR_IA32_VMX_BASIC, 0)).toBe(true); // read-only
  });

  it("report the implemented controls: HLT/EPT/VPID/shadowing yes, MOV-DR exiting/unrestricted guest/VMFUNC no", () => {
    const c = vmxCpu64();
    expect(rdmsr(c, M.MSR_IA32_VMX_PROCBASED_CTLS)).toEqual([C.PROC_DEFAULT1, expect.any(Number)]);
    const proc = rdmsr(c, M.MSR_IA32_VMX_TRUE_PROCBASED_CTLS) as [number, number];
    expect(proc[0]).toBe(C.PROC_DEFAULT1 & ~(C.CPU_CR3_LOAD_EXITING | C.CPU_CR3_STORE_EXITING));
    expect(proc[1] & C.CPU_HLT_EXITING).toBe(C.CPU_HLT_EXITING);
    expect(proc[1] & C.CPU_MOV_DR_EXITING).toBe(0);
    const proc2 = rdmsr(c, M.MSR_IA32_VMX_PROCBASED_CTLS2) as [number, number];
    const want = C.CPU2_ENABLE_EPT | C.CPU2_ENABLE_VPID | C.CPU2_VMCS_SHADOWING;
    expect(proc2[1] & want).toBe(want);
    expect(proc2[1] & (C.CPU2_UNRESTRICTED_GUEST | C.CPU2_ENABLE_VMFUNC)).toBe(0);
    expect(rdmsr(c, M.MSR_IA32_VMX_VMFUNC)).toBe("GP"); // exists only with "enable VM functions"
    expect(rdmsr(c, M.MSR_IA32_VMX_CR0_FIXED0)).toEqual([0x80000021, 0]);
    expect(rdmsr(c, M.MSR_IA32_VMX_CR4_FIXED0)).toEqual([CR4_VMXE, 0]);
    const cr4f1 = rdmsr(c, M.MSR_IA32_VMX_CR4_FIXED1) as [number, number];
    expect(cr4f1[0] & CR4_VMXE).toBe(CR4_VMXE);
    // VMCS enum: the highest field index among supported fields (bits 9:1).
    expect((rdmsr(c, M.MSR_IA32_VMX_VMCS_ENUM) as [number, number])[0]).toBeGreaterThan(0);
  });

  it("agree with VM entry: must-be-1 settings pass, each bit whose allowed-1 is 0 fails, each must-be-1 bit cleared fails", () => {
    const c = vmxCpu64();
    const fields: [number, number][] = [
      [V.VMCS_PIN_BASED_CONTROLS, M.MSR_IA32_VMX_TRUE_PINBASED_CTLS],
      [V.VMCS_PROC_BASED_CONTROLS, M.MSR_IA32_VMX_TRUE_PROCBASED_CTLS],
      [V.VMCS_PROC_BASED_CONTROLS2, M.MSR_IA32_VMX_PROCBASED_CTLS2],
      [V.VMCS_EXIT_CONTROLS, M.MSR_IA32_VMX_TRUE_EXIT_CTLS],
      [V.VMCS_ENTRY_CONTROLS, M.MSR_IA32_VMX_TRUE_ENTRY_CTLS],
    ];
    const base = (): Vmcs => {
      const v = new Vmcs();
      for (const [f, msr] of fields) v.write(f, (rdmsr(c, msr) as [number, number])[0]);
      v.write(V.VMCS_PROC_BASED_CONTROLS, v.read(V.VMCS_PROC_BASED_CONTROLS) | C.CPU_SECONDARY_CONTROLS);
      return v;
    };
    expect(checkControls(c, base())).toBe(true);
    let rejected = 0;
    for (const [f, msr] of fields) {
      const [must1, may1] = rdmsr(c, msr) as [number, number];
      for (let b = 0; b < 32; b++) {
        const bit = (1 << b) >>> 0;
        if ((may1 & bit) === 0) {
          const v = base();
          v.write(f, v.read(f) | bit);
          expect(checkControls(c, v), `field ${f.toString(16)} bit ${b} set`).toBe(false);
          rejected++;
        }
        if ((must1 & bit) !== 0) {
          const v = base();
          v.write(f, v.read(f) & ~bit);
          expect(checkControls(c, v), `field ${f.toString(16)} bit ${b} clear`).toBe(false);
        }
      }
    }
    expect(rejected).toBeGreaterThan(60);
  });

  it("IA32_FEATURE_CONTROL: lock and VMXON-outside-SMX; locked it #GPs on write; SMX and reserved bits #GP", () => {
    const c = vmxCpu64();
    expect(rdmsr(c, M.MSR_IA32_FEATURE_CONTROL)).toEqual([0, 0]);
    expect(wrmsrFaults(c, M.MSR_IA32_FEATURE_CONTROL, C.FEATURE_CONTROL_VMXON_IN_SMX)).toBe(true);
    expect(wrmsrFaults(c, M.MSR_IA32_FEATURE_CONTROL, 1 << 8)).toBe(true);
    expect(wrmsrFaults(c, M.MSR_IA32_FEATURE_CONTROL, 5)).toBe(false);
    expect(rdmsr(c, M.MSR_IA32_FEATURE_CONTROL)).toEqual([5, 0]);
    expect(wrmsrFaults(c, M.MSR_IA32_FEATURE_CONTROL, 4)).toBe(true);
  });
});

/** Run `source` and return the vector whose IDT stub halted, or -1. */
function faultVector(source: string, vmx = true): number {
  const c = vmxCpu(source, vmx);
  expect(runVmx(c)).toBe(STOP_HALT);
  const rip = c.ripLo >>> 0;
  for (let v = 0; v < 32; v++) if (rip === stub(v) + 1) return v;
  return -1;
}

describe.skipIf(!HAVE_AS)("VMXON and VMX-operation preconditions", () => {
  it("VMXON without CR4.VMXE is #UD; VMX instructions outside VMX operation are #UD", () => {
    expect(faultVector(`mov qword ptr [0x20f000], 0x210000\nvmxon [0x20f000]\nmov r15, 1`)).toBe(UD);
    expect(faultVector(`mov eax, 0x4402\nvmread rbx, rax\nmov r15, 1`)).toBe(UD);
  });
  it("on a CPU without VMX, VMXON is #UD", () => {
    expect(faultVector(`vmxon [0x20f000]\nmov r15, 1`, false)).toBe(UD);
  });
  it("VMXON with IA32_FEATURE_CONTROL unlocked is #GP; CR4.VMXE and CR0.NE cannot be cleared in VMX operation", () => {
    const unlocked = `mov rax, cr4\nor eax, 0x2000\nmov cr4, rax\nmov rax, cr0\nor eax, 0x20\nmov cr0, rax\nvmxon [0x20f000]\nmov r15, 1`;
    expect(faultVector(unlocked)).toBe(GP);
    expect(faultVector(`ENABLE_VMX\nmov rax, cr4\nand eax, ~0x2000\nmov cr4, rax\nmov r15, 1`)).toBe(GP);
    expect(faultVector(`ENABLE_VMX\nmov rax, cr0\nand eax, ~0x20\nmov cr0, rax\nmov r15, 1`)).toBe(GP); // CR0.NE
    expect(faultVector(`ENABLE_VMX\nvmxoff\nmov rax, cr4\nand eax, ~0x2000\nmov cr4, rax\nhlt`)).toBe(-1); // after VMXOFF
  });
  it("VMXON with a wrong revision in the region is VMfailInvalid (CF)", () => {
    const c = vmxCpu(
      `ENABLE_VMX\nvmxoff\nmov dword ptr [0x210000], 7\nvmxon [0x20f000]\npushfq\npop r14\nmov r15, 0x600d\nhlt`,
    );
    expect(runVmx(c)).toBe(STOP_HALT);
    expect(c.lo[15]).toBe(0x600d);
    expect(c.lo[14] & 0x8d5).toBe(1);
    expect(c.vmxUnit.software.inVmx).toBe(false);
  });
});
