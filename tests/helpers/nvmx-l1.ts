/**
 * An L1 hypervisor in assembly for L0's nested-VMX engine (tests/nvmx, tests/stacks/nvmx): VMXON,
 * VMCLEAR, VMPTRLD, VMWRITEs of a VMCS12 from a table (controls, EPT12, L2 guest state) and of its
 * own host state, VMLAUNCH of a tiny 64-bit L2; its exit handler VMREADs the exit reason, logs it,
 * advances L2's RIP past CPUID and OUT, VMRESUMEs, and ends with debug-exit status 0 at L2's HLT.
 */
import * as V from "../../src/x86/vmx.js";
import { asm } from "./asm.js";
import { elf64At1M } from "./elf.js";
import { ENABLE_VMX, type nvmxBed, RESULTS, VMCS12_A, VMXON_REGION } from "./nvmx.js";

/** L2's memory: L2 guest-physical 0–2 MiB is L1 physical 0x400000 (one 2 MiB EPT12 leaf). */
const L2_BASE = 0x400000;
const EPT12_PML4 = 0x310000;
const EPT12_PDPT = 0x311000;
export const EPT12_PD = 0x312000;
const EPTP12 = EPT12_PML4 | 6 | (3 << 3); // WB, 4-level walk
const L2_PML4 = 0x1000;
const L2_CODE = 0x10000;
export const LOG = RESULTS + 0x400; // exit reasons L1 saw
export const COUNT = RESULTS + 0x3f8;

/** VMCS12 fields the L1 writes from a table: [encoding, value]. */
export const TABLE: [number, number | bigint][] = [
  [V.VMCS_PIN_BASED_CONTROLS, 0x17], // default1 + external-interrupt exiting
  [V.VMCS_PROC_BASED_CONTROLS, 0x850061f2], // TRUE default1 + HLT, unconditional I/O, secondary
  [V.VMCS_PROC_BASED_CONTROLS2, 0x2], // EPT
  [V.VMCS_EXIT_CONTROLS, 0x236fff], // default1 + host address-space size + load EFER
  [V.VMCS_ENTRY_CONTROLS, 0x93ff], // default1 + IA-32e mode guest + load EFER
  [V.VMCS_EPT_POINTER, EPTP12],
  [V.VMCS_LINK_POINTER, -1n],
  [V.VMCS_GUEST_CR0, 0x80000031],
  [V.VMCS_GUEST_CR3, L2_PML4],
  [V.VMCS_GUEST_CR4, 0x2020], // PAE + VMXE (IA32_VMX_CR4_FIXED0: 26.3.1.1)
  [V.VMCS_GUEST_IA32_EFER, 0x500],
  [V.VMCS_GUEST_CS_SELECTOR, 0x08],
  [V.VMCS_GUEST_CS_LIMIT, 0xffffffff],
  [V.VMCS_GUEST_CS_AR, 0xa09b],
  [V.VMCS_GUEST_SS_SELECTOR, 0x10],
  [V.VMCS_GUEST_SS_LIMIT, 0xffffffff],
  [V.VMCS_GUEST_SS_AR, 0xc093],
  [V.VMCS_GUEST_DS_SELECTOR, 0x10],
  [V.VMCS_GUEST_DS_LIMIT, 0xffffffff],
  [V.VMCS_GUEST_DS_AR, 0xc093],
  [V.VMCS_GUEST_ES_SELECTOR, 0x10],
  [V.VMCS_GUEST_ES_LIMIT, 0xffffffff],
  [V.VMCS_GUEST_ES_AR, 0xc093],
  [V.VMCS_GUEST_FS_AR, 0x1c000],
  [V.VMCS_GUEST_GS_AR, 0x1c000],
  [V.VMCS_GUEST_LDTR_AR, 0x10000],
  [V.VMCS_GUEST_TR_SELECTOR, 0x18],
  [V.VMCS_GUEST_TR_LIMIT, 0x67],
  [V.VMCS_GUEST_TR_AR, 0x8b],
  [V.VMCS_GUEST_GDTR_LIMIT, 0xffff],
  [V.VMCS_GUEST_IDTR_LIMIT, 0xffff],
  [V.VMCS_GUEST_RIP, L2_CODE],
  [V.VMCS_GUEST_RSP, 0x20000],
  [V.VMCS_GUEST_RFLAGS, 2],
  [V.VMCS_GUEST_DR7, 0x400],
  [V.VMCS_HOST_TR_SELECTOR, 0x18], // not null (26.2.3); L1 runs no TSS-dependent code
];

export const L2 = `
  cpuid
  out 0x80, al
  hlt
`;

/** L2 for the EPT12-write test: touches its second 2 MiB page around L1's EPT12 edits. */
export const L2_EPT12 = `
  cpuid
  mov byte ptr [0x200000], 1
  out 0x80, al
  mov byte ptr [0x200000], 2
  hlt
`;
/** L1 physical memory behind L2's second 2 MiB page. */
export const L2_SECOND = 0x600000;

/** L1's own control registers and selectors as VMCS12's host state. */
const hostFromRegisters = (
  [
    [V.VMCS_HOST_CR0, "rax", "cr0"],
    [V.VMCS_HOST_CR3, "rax", "cr3"],
    [V.VMCS_HOST_CR4, "rax", "cr4"],
    [V.VMCS_HOST_CS_SELECTOR, "eax", "cs"],
    [V.VMCS_HOST_SS_SELECTOR, "eax", "ss"],
  ] as const
)
  .map(([f, r, src]) => `  mov edx, ${f}\n  mov ${r}, ${src}\n  vmwrite rdx, rax`)
  .join("\n");

export function l1Source(prelaunch = "", onExit = ""): string {
  const table = TABLE.map(([f, v]) => `  .quad ${f}, ${typeof v === "bigint" ? v.toString() : v}`).join("\n");
  return `
  ${ENABLE_VMX}
  mov ecx, 0x480
  rdmsr
  mov dword ptr [${VMXON_REGION}], eax
  mov dword ptr [${VMCS12_A}], eax
  mov qword ptr [${RESULTS + 0x100}], ${VMXON_REGION}
  mov qword ptr [${RESULTS + 0x108}], ${VMCS12_A}
  vmxon [${RESULTS + 0x100}]
  vmclear [${RESULTS + 0x108}]
  vmptrld [${RESULTS + 0x108}]
  lea rsi, [rip + table]
1:
  mov rdx, qword ptr [rsi]
  cmp rdx, -1
  je 2f
  mov rax, qword ptr [rsi + 8]
  vmwrite rdx, rax
  add rsi, 16
  jmp 1b
2:
${hostFromRegisters}
  mov ecx, 0xc0000080
  rdmsr
  mov edx, ${V.VMCS_HOST_IA32_EFER}
  vmwrite rdx, rax
  mov edx, ${V.VMCS_HOST_RSP}
  mov rax, rsp
  vmwrite rdx, rax
  mov edx, ${V.VMCS_HOST_RIP}
  lea rax, [rip + on_exit]
  vmwrite rdx, rax
  ${prelaunch}
  vmlaunch
  mov al, 2
  out 0xf4, al
on_exit:
  mov edx, ${V.VMCS_EXIT_REASON}
  vmread rax, rdx
  mov rcx, qword ptr [${COUNT}]
  mov qword ptr [${LOG} + rcx * 8], rax
  inc qword ptr [${COUNT}]
  ${onExit}
  cmp eax, ${V.EXIT_HLT}
  je done
  cmp eax, ${V.EXIT_CPUID}
  je skip
  cmp eax, ${V.EXIT_IO_INSTRUCTION}
  je skip
  mov al, 3
  out 0xf4, al
skip:
  mov edx, ${V.VMCS_EXIT_INSTRUCTION_LENGTH}
  vmread rcx, rdx
  mov edx, ${V.VMCS_GUEST_RIP}
  vmread rbx, rdx
  add rbx, rcx
  vmwrite rdx, rbx
resume:
  vmresume
  mov al, 4
  out 0xf4, al
done:
  mov al, 0
  out 0xf4, al
table:
${table}
  .quad -1
`;
}

/** Place L2's code, its page tables (2 MiB identity page) and EPT12 in L1 memory (L1's image). */
export function placeL2(b: ReturnType<typeof nvmxBed>, code = L2): void {
  const m = b.vm.memory;
  m.writeBytes(L2_BASE + L2_CODE, asm(code));
  m.write64(L2_BASE + 0x3000 + 8, 0x200000 | 0x83); // L2's second 2 MiB page (EPT12 maps it later)
  m.write64(L2_BASE + L2_PML4, 0x2000 | 3);
  m.write64(L2_BASE + 0x2000, 0x3000 | 3);
  m.write64(L2_BASE + 0x3000, 0 | 0x83); // 2 MiB, present, writable
  m.write64(EPT12_PML4, EPT12_PDPT | 7);
  m.write64(EPT12_PDPT, EPT12_PD | 7);
  m.write64(EPT12_PD, L2_BASE | 0x80 | (6 << 3) | 7); // 2 MiB leaf, WB, RWX
}

/**
 * The same L1 as an image that places L2 itself (for a stack, where nothing writes L1 memory
 * before it boots): L2's code, its page tables and EPT12, then `l1Source`.
 */
export function l1Image(code = L2, prelaunch = "", onExit = ""): Uint8Array {
  const bytes = [...asm(code)].join(", ");
  const q = (addr: number, value: number) => `  mov rax, ${value}\n  mov qword ptr [${addr}], rax\n`;
  const place = `
  lea rsi, [rip + l2code]
  mov edi, ${L2_BASE + L2_CODE}
  mov ecx, l2end - l2code
  rep movsb
${q(L2_BASE + 0x3000 + 8, 0x200000 | 0x83)}${q(L2_BASE + L2_PML4, 0x2000 | 3)}${q(L2_BASE + 0x2000, 0x3000 | 3)}${q(L2_BASE + 0x3000, 0x83)}${q(EPT12_PML4, EPT12_PDPT | 7)}${q(EPT12_PDPT, EPT12_PD | 7)}${q(EPT12_PD, L2_BASE | 0x80 | (6 << 3) | 7)}
  jmp 9f
l2code:
  .byte ${bytes}
l2end:
9:
`;
  return elf64At1M(asm(place + l1Source(prelaunch, onExit)));
}
