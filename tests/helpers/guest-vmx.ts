/**
 * A bare CPU whose model advertises VMX, with the system test machine of sys.ts (GDT, TSS,
 * IDT of HLT stubs), and assembly macros for guest-software hypervisors: enable VMX, VMXON,
 * make a VMCS current, fill a VMCS for a tiny 64-bit L2 under an identity EPT, VMWRITE with a
 * failure check. Exceptions halt in the IDT stub of their vector (`stub(v)`).
 */
import type { Cpu } from "../../src/cpu/cpu.js";
import { STOP_BUDGET, STOP_REQUEST } from "../../src/cpu/cpu.js";
import { CpuModel } from "../../src/cpu/cpuid.js";
import { asm } from "./asm.js";
import { makeCpu64 } from "./machine.js";
import { CODE_BASE, GDT, IDT, KCODE, KDATA, setupSys, TSS, TSS_SEL } from "./sys.js";

/** Physical addresses the programs use (inside the 4 KiB-mapped data region). */
export const PTRS = 0x20f000; // [0] VMXON pointer, [8] VMCS A, [16] VMCS B, [24] scratch
export const VMXON_REGION = 0x210000;
export const VMCS_A = 0x211000;
export const VMCS_B = 0x212000;
export const SHADOW_VMCS = 0x213000;
export const VMREAD_BITMAP = 0x214000;
export const VMWRITE_BITMAP = 0x215000;
export const EPT_PML4 = 0x300000;
/** EPTP: WB, 4-level walk. */
export const EPTP = EPT_PML4 | 0x1e;
export const L2_STACK = 0x90000;

/** Macros: VW field, value (VMWRITE; jumps to `fail` on VMfail), and the setup blocks. */
export const MACROS = `
.macro VW f, v
  mov rdx, \\v
  mov rax, \\f
  vmwrite rax, rdx
  jbe fail
.endm
.macro VR dst, f
  mov rax, \\f
  vmread \\dst, rax
  jbe fail
.endm
/* IA32_FEATURE_CONTROL lock + VMXON outside SMX, CR4.VMXE, CR0.NE, revision ids, VMXON. */
.macro ENABLE_VMX
  mov ecx, 0x3a
  rdmsr
  or eax, 5
  wrmsr
  mov rax, cr4
  or eax, 0x2000
  mov cr4, rax
  mov rax, cr0
  or eax, 0x20
  mov cr0, rax
  mov ecx, 0x480
  rdmsr
  mov dword ptr [${VMXON_REGION}], eax
  mov dword ptr [${VMCS_A}], eax
  mov dword ptr [${VMCS_B}], eax
  or eax, 0x80000000
  mov dword ptr [${SHADOW_VMCS}], eax
  mov qword ptr [${PTRS}], ${VMXON_REGION}
  mov qword ptr [${PTRS + 8}], ${VMCS_A}
  mov qword ptr [${PTRS + 16}], ${VMCS_B}
  mov qword ptr [${PTRS + 24}], ${SHADOW_VMCS}
  vmxon [${PTRS}]
  jbe fail
.endm
/* VMCLEAR + VMPTRLD of VMCS A. */
.macro LOAD_VMCS_A
  vmclear [${PTRS + 8}]
  jbe fail
  vmptrld [${PTRS + 8}]
  jbe fail
.endm
/* Identity EPT over the first 8 MiB with 2 MiB pages (WB, RWX). */
.macro BUILD_EPT
  mov rdi, ${EPT_PML4}
  xor eax, eax
  mov ecx, 1536
  rep stosq
  mov qword ptr [${EPT_PML4}], ${EPT_PML4 + 0x1007}
  mov qword ptr [${EPT_PML4 + 0x1000}], ${EPT_PML4 + 0x2007}
  mov rax, 0xb7
  mov rdi, ${EPT_PML4 + 0x2000}
  mov ecx, 4
77:
  mov [rdi], rax
  add rax, 0x200000
  add rdi, 8
  loop 77b
.endm
/* Controls from the TRUE_ MSRs' must-be-1 bits plus extra proc (\\proc), proc2 (\\proc2). */
.macro CONTROLS proc, proc2
  mov ecx, 0x48d
  rdmsr
  VW 0x4000, rax
  mov ecx, 0x48e
  rdmsr
  or eax, \\proc
  VW 0x4002, rax
  VW 0x401e, \\proc2
  mov ecx, 0x48f
  rdmsr
  or eax, 0x200
  VW 0x400c, rax
  mov ecx, 0x490
  rdmsr
  or eax, 0x200
  VW 0x4012, rax
  VW 0x201a, ${EPTP}
.endm
/* Host state: this CPU's, continuing at \\handler. */
.macro HOST_STATE handler
  mov rdx, cr0
  VW 0x6c00, rdx
  mov rdx, cr3
  VW 0x6c02, rdx
  mov rdx, cr4
  VW 0x6c04, rdx
  VW 0x0c00, ${KDATA}
  VW 0x0c02, ${KCODE}
  VW 0x0c04, ${KDATA}
  VW 0x0c06, ${KDATA}
  VW 0x0c08, 0
  VW 0x0c0a, 0
  VW 0x0c0c, ${TSS_SEL}
  VW 0x6c0a, ${TSS}
  VW 0x6c0c, ${GDT}
  VW 0x6c0e, ${IDT}
  VW 0x6c14, rsp
  lea rdx, [rip + \\handler]
  VW 0x6c16, rdx
.endm
/* Guest state: a 64-bit L2 sharing the page tables, starting at \\entry. */
.macro GUEST_STATE entry
  mov rdx, cr0
  VW 0x6800, rdx
  mov rdx, cr3
  VW 0x6802, rdx
  mov rdx, cr4
  VW 0x6804, rdx
  VW 0x681a, 0x400
  VW 0x681c, ${L2_STACK}
  lea rdx, [rip + \\entry]
  VW 0x681e, rdx
  VW 0x6820, 2
  VW 0x0800, ${KDATA}
  VW 0x0802, ${KCODE}
  VW 0x0804, ${KDATA}
  VW 0x0806, ${KDATA}
  VW 0x4800, -1
  VW 0x4802, -1
  VW 0x4804, -1
  VW 0x4806, -1
  VW 0x4814, 0xc093
  VW 0x4816, 0xa09b
  VW 0x4818, 0xc093
  VW 0x481a, 0xc093
  VW 0x481c, 0x10000
  VW 0x481e, 0x10000
  VW 0x4820, 0x10000
  VW 0x080e, ${TSS_SEL}
  VW 0x6814, ${TSS}
  VW 0x480e, 0x67
  VW 0x4822, 0x8b
  VW 0x6816, ${GDT}
  VW 0x4810, 0x57
  VW 0x6818, ${IDT}
  VW 0x4812, 0xfff
  VW 0x2800, -1
.endm
`;

/** A system test CPU with VMX advertised (or not) and `source` (MACROS prepended) at CODE_BASE. */
export function vmxCpu(source: string, vmx = true): Cpu {
  const c = makeCpu64(8 << 20, new CpuModel({ vmx }));
  setupSys(c);
  c.mem.writeBytes(CODE_BASE, asm(`${MACROS}\n${source}\nfail:\n  mov r15, 0xbad\n  hlt\n`, 64));
  c.ripLo = CODE_BASE;
  c.ripHi = 0;
  return c;
}

/** Run through VM entries and exits (each ends a run) until HLT in root operation or shutdown. */
export function runVmx(c: Cpu, budget = 200_000): number {
  const end = c.icount + budget;
  for (;;) {
    const stop = c.run(end - c.icount);
    if ((stop !== STOP_REQUEST && stop !== STOP_BUDGET) || c.icount >= end) return stop;
  }
}
