/**
 * A nested run under L0's nested-VMX engine: an L1 written in assembly does VMXON, VMCLEAR,
 * VMPTRLD, VMWRITEs a VMCS12 (controls, EPT12, L2 guest state, its own host state) and
 * VMLAUNCHes a tiny 64-bit L2. L2 executes CPUID (always an exit to L1), an OUT (L1 asked for
 * unconditional I/O exiting) and HLT (L1 asked for HLT exiting); L1's exit handler VMREADs the
 * exit reason, advances L2's RIP and VMRESUMEs. L2 runs on EPT02, built by L0 on misses from
 * EPT12 in L1 memory. Exit counts are asserted at each level.
 */
import { describe, expect, it } from "vitest";
import * as V from "../../src/x86/vmx.js";
import { asm, HAVE_AS } from "../helpers/asm.js";
import { ENABLE_VMX, nvmxBed, RESULTS, VMCS12_A, VMXON_REGION } from "../helpers/nvmx.js";

/** L2's memory: L2 guest-physical 0–2 MiB is L1 physical 0x400000 (one 2 MiB EPT12 leaf). */
const L2_BASE = 0x400000;
const EPT12_PML4 = 0x310000;
const EPT12_PDPT = 0x311000;
const EPT12_PD = 0x312000;
const EPTP12 = EPT12_PML4 | 6 | (3 << 3); // WB, 4-level walk
const L2_PML4 = 0x1000;
const L2_CODE = 0x10000;
const LOG = RESULTS + 0x400; // exit reasons L1 saw
const COUNT = RESULTS + 0x3f8;

/** VMCS12 fields the L1 writes from a table: [encoding, value]. */
const TABLE: [number, number | bigint][] = [
  [V.VMCS_PIN_BASED_CONTROLS, 0x17], // default1 + external-interrupt exiting
  [V.VMCS_PROC_BASED_CONTROLS, 0x850061f2], // TRUE default1 + HLT, unconditional I/O, secondary
  [V.VMCS_PROC_BASED_CONTROLS2, 0x2], // EPT
  [V.VMCS_EXIT_CONTROLS, 0x236fff], // default1 + host address-space size + load EFER
  [V.VMCS_ENTRY_CONTROLS, 0x93ff], // default1 + IA-32e mode guest + load EFER
  [V.VMCS_EPT_POINTER, EPTP12],
  [V.VMCS_LINK_POINTER, -1n],
  [V.VMCS_GUEST_CR0, 0x80000031],
  [V.VMCS_GUEST_CR3, L2_PML4],
  [V.VMCS_GUEST_CR4, 0x20],
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
];

const L2 = `
  cpuid
  out 0x80, al
  hlt
`;

/** L2 for the EPT12-write test: touches its second 2 MiB page around L1's EPT12 edits. */
const L2_EPT12 = `
  cpuid
  mov byte ptr [0x200000], 1
  out 0x80, al
  mov byte ptr [0x200000], 2
  hlt
`;
/** L1 physical memory behind L2's second 2 MiB page. */
const L2_SECOND = 0x600000;

function l1Source(prelaunch = "", onExit = ""): string {
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
  mov edx, ${V.VMCS_HOST_CR0}
  mov rax, cr0
  vmwrite rdx, rax
  mov edx, ${V.VMCS_HOST_CR3}
  mov rax, cr3
  vmwrite rdx, rax
  mov edx, ${V.VMCS_HOST_CR4}
  mov rax, cr4
  vmwrite rdx, rax
  mov edx, ${V.VMCS_HOST_CS_SELECTOR}
  mov eax, cs
  vmwrite rdx, rax
  mov edx, ${V.VMCS_HOST_SS_SELECTOR}
  mov eax, ss
  vmwrite rdx, rax
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
function placeL2(b: ReturnType<typeof nvmxBed>, code = L2): void {
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

describe.skipIf(!HAVE_AS)("nested VMX: L1 launches an L2", () => {
  it("L2's CPUID, OUT and HLT are reflected to L1, its EPT02 misses are L0's; exact counts per level", () => {
    const b = nvmxBed(l1Source());
    placeL2(b);
    const stop = b.run(200_000);
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe(1); // status 0: L1 saw HLT last
    expect([0, 1, 2].map((i) => b.r32(LOG + i * 8))).toEqual([V.EXIT_CPUID, V.EXIT_IO_INSTRUCTION, V.EXIT_HLT]);
    expect(b.r32(COUNT)).toBe(3);
    const s = b.engine.state(b.vcpu);
    expect(s.entries).toBe(3); // VMLAUNCH + 2 VMRESUME
    expect(Object.fromEntries(s.reflected)).toEqual({ [V.EXIT_CPUID]: 1, [V.EXIT_IO_INSTRUCTION]: 1, [V.EXIT_HLT]: 1 });
    // L2 → L0 exits: the 3 reflected + EPT02 misses (code page, three L2 page-table pages).
    expect(s.ept02?.built).toBe(4);
    expect(s.l2Exits).toBe(3 + 4);
    // L1 → L0 exits for VMX instructions.
    const n = (r: number) => s.emulated.get(r) ?? 0;
    const vmwrites = TABLE.length + 8 + 2; // the table, 8 host fields, 2 RIP advances
    expect([n(V.EXIT_VMXON), n(V.EXIT_VMCLEAR), n(V.EXIT_VMPTRLD), n(V.EXIT_VMWRITE)]).toEqual([1, 1, 1, vmwrites]);
    expect([n(V.EXIT_VMLAUNCH), n(V.EXIT_VMRESUME), n(V.EXIT_VMREAD)]).toEqual([1, 2, 3 + 2 * 2]);
    const line = (r: string) => b.l0.ledger.lines().find((e) => e.reason === r)?.count;
    expect(line("nvmx_ept02_fault")).toBe(4);
    expect(line("nvmx_sync_vmcs12")).toBe(3);
    expect(line("nvmx_prepare_vmcs02")).toBe(3);
  });

  it("is deterministic: two runs give the same cycles", () => {
    const cycles = () => {
      const b = nvmxBed(l1Source());
      placeL2(b);
      b.run(200_000);
      return b.l0.host.cycles();
    };
    expect(cycles()).toBe(cycles());
  });

  it("VMRESUME of a VMCS12 never launched is VMfailValid(5); a control L0 does not offer is VMfailValid(7)", () => {
    const R = RESULTS + 0x200;
    const b = nvmxBed(
      l1Source(`
        vmresume
        pushfq
        pop qword ptr [${R}]
        mov edx, ${V.VMCS_VM_INSTRUCTION_ERROR}
        vmread [${R + 8}], rdx
        mov edx, ${V.VMCS_PROC_BASED_CONTROLS2}
        mov eax, 0x4002
        vmwrite rdx, rax
        vmlaunch
        pushfq
        pop qword ptr [${R + 16}]
        mov edx, ${V.VMCS_VM_INSTRUCTION_ERROR}
        vmread [${R + 24}], rdx
        mov edx, ${V.VMCS_PROC_BASED_CONTROLS2}
        mov eax, 2
        vmwrite rdx, rax
      `),
    );
    placeL2(b);
    const stop = b.run(200_000);
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe(1); // the real VMLAUNCH afterwards still runs L2 to its HLT
    expect(b.r32(R) & 0x41).toBe(0x40); // ZF: VMfailValid
    expect(b.r32(R + 8)).toBe(V.VMXERR_VMRESUME_NONLAUNCHED);
    expect(b.r32(R + 16) & 0x41).toBe(0x40);
    expect(b.r32(R + 24)).toBe(V.VMXERR_ENTRY_INVALID_CONTROLS);
    expect(b.engine.state(b.vcpu).entries).toBe(3);
  });

  it("L1's EPT12 writes are tracked: a new entry drops nothing, a weakened one drops its EPT02 leaf", () => {
    const pd1 = EPT12_PD + 8;
    const leaf = (perms: number) => L2_SECOND | 0x80 | (6 << 3) | perms;
    const b = nvmxBed(
      l1Source(
        "",
        `
        cmp eax, ${V.EXIT_CPUID}
        jne 5f
        mov qword ptr [${pd1}], ${leaf(3)}
      5:
        cmp eax, ${V.EXIT_IO_INSTRUCTION}
        jne 6f
        mov qword ptr [${pd1}], ${leaf(1)}
      6:
        cmp eax, ${V.EXIT_EPT_VIOLATION}
        jne 7f
        mov qword ptr [${pd1}], ${leaf(7)}
        jmp resume
      7:
      `,
      ),
    );
    placeL2(b, L2_EPT12);
    const stop = b.run(200_000);
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe(1);
    expect([0, 1, 2, 3].map((i) => b.r32(LOG + i * 8))).toEqual([
      V.EXIT_CPUID,
      V.EXIT_IO_INSTRUCTION,
      V.EXIT_EPT_VIOLATION,
      V.EXIT_HLT,
    ]);
    const s = b.engine.state(b.vcpu);
    const ept02 = s.ept02 as NonNullable<typeof s.ept02>;
    // Three L1 stores to the tracked EPT12 page: new entry (nothing dropped), write → read-only
    // (the one leaf built from it dropped), read-only → RWX (no leaf came from it any more). Each
    // 8-byte store reaches the notifier as two 4-byte writes (the CPU's MMIO path splits it).
    expect(ept02.trackedWrites).toBe(6);
    expect(ept02.leavesDropped).toBe(1);
    // EPT02 leaves: code + 3 L2 page-table pages, then 0x200000 twice (before and after the drop).
    expect(ept02.built).toBe(6);
    expect(s.l2Exits).toBe(4 + 6);
    expect(b.r32(L2_SECOND) & 0xff).toBe(2); // L2's second write landed after L1 restored the rights
    expect(b.l0.ledger.lines().find((e) => e.reason === "tracked_write")?.count).toBe(3);
  });
});
