/**
 * An L1 that is executed x86 code (assembly, booted by L0 through the direct 64-bit entry in the
 * L1 VM) drives the npv ABI with real VMCALLs: discovery by CPUID, VM_CREATE, MAP of the L2's
 * boot pages, VCPU_CREATE from a state page it writes itself, then a RUN loop that handles the
 * exits L0 returns (IO: advance RIP; MEMORY_FAULT: MAP a page; HALT: stop) and reports on its
 * own debug-exit port. Every count is exact: L1's exits to L0, L2's exits L0 handled or
 * forwarded, and the ledger's instructions at level 1 (L1's code) and level 2 (L2's code).
 */
import { describe, expect, it } from "vitest";
import * as ABI from "../../src/hypervisors/npv-abi.js";
import { loadGuest } from "../../src/stacks/vm.js";
import { asm, HAVE_AS } from "../helpers/asm.js";
import { elf64At1M } from "../helpers/elf.js";
import { L2_CODE, L2_GDT, L2_PML4, L2_STACK_TOP, NpvBed } from "../helpers/npv.js";

/** L1 pages (the L1 code is at 0x100000): state page, run page, L2 boot pages, a demand page. */
const STATE = 0x50000;
const RUN = 0x51000;
const L2_BOOT = 0x400000;
const L2_BOOT_PAGES = 0x40;
const DEMAND_L1 = 0x500000;
/** The L2 page L2 touches without a boot mapping (forwarded as MEMORY_FAULT). */
const DEMAND_L2 = 0x80000;

/**
 * L1 code that creates the L2: VM_CREATE (demand map; r12 = VM), MAP of the boot pages, the
 * initial-state page (long mode at L2_CODE), VCPU_CREATE (r13 = vCPU). A failure jumps to \`fail\`.
 */
const CREATE_L2 = `
  # VM_CREATE (demand map): r12 = VM handle
  mov eax, ${ABI.NPV_HC_VM_CREATE}
  xor ebx, ebx
  vmcall
  test rax, rax
  jnz fail
  mov r12, rbx

  # MAP the L2 boot pages RWX: L2 0 -> L1 ${hex(L2_BOOT)}
  mov eax, ${ABI.NPV_HC_MAP}
  mov rbx, r12
  xor ecx, ecx
  mov edx, ${L2_BOOT}
  mov rsi, ${L2_BOOT_PAGES + 7 * 2 ** 32}
  vmcall
  test rax, rax
  jnz fail

  # The initial-state page: long mode at L2_CODE
  mov edi, ${STATE}
  xor eax, eax
  mov ecx, ${ABI.NPV_STATE_SIZE / 8}
  rep stosq
  mov edi, ${STATE}
  mov qword ptr [rdi + ${ABI.NPV_STATE_RIP}], ${L2_CODE}
  mov qword ptr [rdi + ${ABI.NPV_STATE_RSP}], ${L2_STACK_TOP}
  mov qword ptr [rdi + ${ABI.NPV_STATE_RFLAGS}], 2
  mov eax, 0x80010031
  mov qword ptr [rdi + ${ABI.NPV_STATE_CR0}], rax
  mov qword ptr [rdi + ${ABI.NPV_STATE_CR3}], ${L2_PML4}
  mov qword ptr [rdi + ${ABI.NPV_STATE_CR4}], 0x20
  mov qword ptr [rdi + ${ABI.NPV_STATE_EFER}], 0x500
  mov qword ptr [rdi + ${ABI.NPV_STATE_GDTR_BASE}], ${L2_GDT}
  mov word ptr [rdi + ${ABI.NPV_STATE_GDTR_LIMIT}], 23
  mov word ptr [rdi + ${ABI.NPV_STATE_CS_SEL}], 0x08
  mov word ptr [rdi + ${ABI.NPV_STATE_SS_SEL}], 0x10
  mov word ptr [rdi + ${ABI.NPV_STATE_DS_SEL}], 0x10
  mov eax, ${ABI.NPV_HC_VCPU_CREATE}
  mov rbx, r12
  mov ecx, ${STATE}
  vmcall
  test rax, rax
  jnz fail
  mov r13, rbx
`;

/** L1's report: AL to the debug-exit port (status 2 × AL + 1); the label fail reports 0x7f. */
const REPORT = `
  out 0xf4, al
  hlt
fail:
  mov al, 0x7f
  out 0xf4, al
  hlt
`;

/** The L1 program. On success it writes the number of exits it handled to port 0xf4 (status 2n + 1); on failure 0x7f. */
const L1 = `
  mov eax, ${ABI.NPV_CPUID_SIGNATURE_LEAF}
  xor ecx, ecx
  cpuid
  cmp ebx, ${sigWord(0)}
  jne fail
  cmp ecx, ${sigWord(4)}
  jne fail
  cmp edx, ${sigWord(8)}
  jne fail
  mov eax, ${ABI.NPV_CPUID_FEATURES_LEAF}
  xor ecx, ecx
  cpuid
  cmp eax, ${ABI.NPV_ABI_VERSION}
  jne fail

${CREATE_L2}  xor r14d, r14d               # exits handled

run:
  mov eax, ${ABI.NPV_HC_RUN}
  mov rbx, r13
  mov ecx, ${RUN}
  vmcall
  test rax, rax
  jnz fail
  inc r14
  mov edi, ${RUN}
  mov eax, dword ptr [rdi + ${ABI.NPV_RUN_EXIT_REASON}]
  cmp eax, ${ABI.NPV_EXIT_IO}
  je io
  cmp eax, ${ABI.NPV_EXIT_MEMORY_FAULT}
  je memfault
  cmp eax, ${ABI.NPV_EXIT_HALT}
  je done
  jmp fail

io:                             # complete the OUT: RIP += length, registers dirty
  mov eax, dword ptr [rdi + ${ABI.NPV_RUN_INSN_LEN}]
  add qword ptr [rdi + ${ABI.NPV_RUN_RIP}], rax
  mov dword ptr [rdi + ${ABI.NPV_RUN_FLAGS}], ${ABI.NPV_RUN_F_REGS_DIRTY}
  jmp run

memfault:                       # map the faulting page RW onto the demand page
  mov rcx, qword ptr [rdi + ${ABI.NPV_RUN_DATA}]
  and rcx, -4096
  mov eax, ${ABI.NPV_HC_MAP}
  mov rbx, r12
  mov edx, ${DEMAND_L1}
  mov rsi, ${1 + 3 * 2 ** 32}
  vmcall
  test rax, rax
  jnz fail
  jmp run

done:
  mov eax, r14d
${REPORT}`;

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function sigWord(off: number): string {
  const s = ABI.NPV_SIGNATURE;
  let w = 0;
  for (let i = 3; i >= 0; i--) w = w * 256 + s.charCodeAt(off + i);
  return hex(w);
}

/** The tiny L2: CPUID (L0 answers), OUT (IO to L1), a load from an unmapped page (MEMORY_FAULT), OUT, HLT. */
const L2 = `
  mov eax, 1
  cpuid
  out 0x10, al
  mov eax, dword ptr [${DEMAND_L2}]
  out 0x11, al
  hlt
`;

function instructionsByLevel(b: NpvBed): Record<number, number> {
  const out: Record<number, number> = {};
  for (const l of b.l0.ledger.lines())
    if (l.category === "guest" && l.reason === "instructions") out[l.level] = (out[l.level] ?? 0) + l.count;
  return out;
}

/** The L2's boot pages in L1 RAM, as the L1 image carries them: page tables, GDT, code. */
function writeL2Boot(b: NpvBed, code: string): void {
  const boot = (l2: number): number => L2_BOOT + l2;
  b.w64(boot(L2_PML4), 0x2000 | 3);
  b.w64(boot(0x2000), 0x3000 | 3);
  for (let i = 0; i < 512; i++) b.w64(boot(0x3000) + i * 8, i * 0x200000 + 0x83);
  b.w64(boot(L2_GDT + 8), 0x00af9b000000ffffn);
  b.w64(boot(L2_GDT + 16), 0x00cf93000000ffffn);
  b.bytes(boot(L2_CODE), asm(code, 64));
}

function bed() {
  const b = new NpvBed();
  writeL2Boot(b, L2);
  b.w32(DEMAND_L1, 0x1234);
  loadGuest(b.l0, b.vcpu, { image: elf64At1M(asm(L1)), cmdline: "", memory: 16 * 2 ** 20, maxInstructions: 0 });
  return b;
}

describe.skipIf(!HAVE_AS)("npv: an L1 that is executed code", () => {
  it("discovers, creates, maps and RUNs an L2; exact exits per level and instructions per level", () => {
    const b = bed();
    const stop = b.l0.runVcpu(b.vcpu, 1_000_000);
    expect(stop.kind).toBe("debug-exit");
    // RUN returned IO, MEMORY_FAULT, IO, HALT: 4 exits handled by L1.
    expect(stop.status).toBe(2 * 4 + 1);
    const st = b.engine.stats();
    expect(st["npv.hypercalls.vm_create"]).toBe(1);
    expect(st["npv.hypercalls.vcpu_create"]).toBe(1);
    expect(st["npv.hypercalls.map"]).toBe(2);
    expect(st["npv.hypercalls.run"]).toBe(4);
    expect(st["npv.l2_exits.l1.io"]).toBe(2);
    expect(st["npv.l2_exits.l1.memory_fault"]).toBe(1);
    expect(st["npv.l2_exits.l1.halt"]).toBe(1);
    expect(st["npv.l2_exits.l0.cpuid"]).toBe(1);
    expect(b.engine.checkInvariants()).toEqual([]);
    // L1's own exits: 2 CPUIDs (discovery), 8 VMCALLs (VM_CREATE, MAP, VCPU_CREATE, 4 RUNs, the
    // demand MAP), its debug-exit OUT, and the first touches of its pages (3 page-table pages,
    // code, state page, run page).
    expect(b.l0.exitCountsAt(1)).toEqual([
      { reason: "vmcall", count: 8 },
      { reason: "ept_violation", count: 6 },
      { reason: "cpuid", count: 2 },
      { reason: "io_instruction", count: 1 },
    ]);
    // L2's: 4 EPT02 compositions on boot pages (code, PML4, PDPT, PD), the unmapped page (forwarded)
    // and its composition after L1's MAP; 2 OUTs and the HLT (forwarded); the CPUID (L0's policy).
    expect(b.l0.exitCountsAt(2)).toEqual([
      { reason: "ept_violation", count: 6 },
      { reason: "io_instruction", count: 2 },
      { reason: "cpuid", count: 1 },
      { reason: "hlt", count: 1 },
    ]);
    expect(st["npv.l2_exits.l0.ept02_compose"]).toBe(5);
    // The ledger: L1's code retired 113 instructions (+ its REP STOSQ) at level 1, L2's 2 at level 2
    // (an exiting instruction L0 or L1 completes is not retired by the CPU).
    expect(instructionsByLevel(b)).toEqual({ 1: 113, 2: 2 });
    expect(b.cpu.icount).toBe(115);
  });

  it("L1's own LAPIC timer ends a RUN (TIMESLICE) and L1 takes its interrupt", () => {
    const b = new NpvBed();
    writeL2Boot(b, "1: inc rbx\n jmp 1b");
    loadGuest(b.l0, b.vcpu, { image: elf64At1M(asm(TIMER_L1)), cmdline: "", memory: 16 * 2 ** 20, maxInstructions: 0 });
    const stop = b.l0.runVcpu(b.vcpu, 1_000_000);
    // Status 2n+1 with n = the RUN's exit reason × 16 + timer interrupts taken by L1.
    expect(stop.kind).toBe("debug-exit");
    expect(((stop.status ?? 0) - 1) / 2).toBe(ABI.NPV_EXIT_TIMESLICE * 16 + 1);
    expect(b.engine.stats()["npv.l1_timer_preemptions"]).toBe(1);
    expect(b.engine.stats()["npv.l2_exits.l1.timeslice"]).toBe(1);
    // The RUN ended at L1's deadline (50,000 ticks after L1 armed it), far inside L0's slice: L2
    // left through its VMX-preemption timer, programmed for L1's deadline.
    expect(b.l0.exitCountsAt(2)).toEqual([
      { reason: "ept_violation", count: 4 },
      { reason: "preemption_timer", count: 1 },
    ]);
    const l2 = instructionsByLevel(b)[2];
    // (The exact count follows the cycles L1 spent before its RUN: 30,784 before the data-cache model
    // priced walks, 29,312 before each walk paid the STLB lookup and the page-miss handler.)
    expect(l2).toBe(29216);
    expect(l2).toBeLessThan(b.engine.sliceInstructions);
    // L1's xAPIC writes (4) are EPT misconfigurations L0 emulates, as KVM's MMIO fast path.
    expect(b.l0.exitCountsAt(1).find((e) => e.reason === "ept_misconfig")?.count).toBe(4);
  });
});

/** An L1 that arms its LAPIC timer (one-shot, vector 0x40), then RUNs an L2 that never exits. */
const TIMER_L1 = `
  # IDT at 0x60000: vector 0x40 -> tick
  lea rax, [rip + tick]
  mov edi, ${0x60000 + 0x40 * 16}
  mov word ptr [rdi], ax
  mov word ptr [rdi + 2], 0x08
  mov word ptr [rdi + 4], 0x8e00
  shr rax, 16
  mov word ptr [rdi + 6], ax
  shr rax, 16
  mov dword ptr [rdi + 8], eax
  mov dword ptr [rdi + 12], 0
  mov word ptr [rip + idtr], 0xfff
  mov dword ptr [rip + idtr + 2], 0x60000
  lidt [rip + idtr]
  xor r15d, r15d
${CREATE_L2}  # LAPIC: software-enable, timer one-shot vector 0x40, divide by 1, count 50000
  mov edi, 0xfee00000
  mov dword ptr [rdi + 0xf0], 0x1ff
  mov dword ptr [rdi + 0x3e0], 0xb
  mov dword ptr [rdi + 0x320], 0x40
  mov dword ptr [rdi + 0x380], 50000
  sti
  mov eax, ${ABI.NPV_HC_RUN}
  mov rbx, r13
  mov ecx, ${RUN}
  vmcall
  cli
  mov eax, dword ptr [${RUN} + ${ABI.NPV_RUN_EXIT_REASON}]
  shl eax, 4
  add eax, r15d
${REPORT}tick:
  inc r15d
  push rdi
  mov edi, 0xfee000b0
  mov dword ptr [rdi], 0
  pop rdi
  iretq
idtr:
  .word 0
  .quad 0
`;
