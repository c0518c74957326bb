/**
 * RUN end to end with tiny 64-bit L2s: what L0 answers alone (CPUID from the policy, LAPIC,
 * EPT02 composition), what it forwards (I/O, memory faults, MMIO, HLT), and that UNMAP/PROTECT
 * take effect before the hypercall returns (EPT02 and the L2's TLB entries invalidated).
 */
import { describe, expect, it } from "vitest";
import * as ABI from "../../src/hypervisors/npv-abi.js";
import { HAVE_AS } from "../helpers/asm.js";
import { L2_CODE, NpvBed, RUN_PAGE } from "../helpers/npv.js";

const RAX = 0;

describe.skipIf(!HAVE_AS)("npv RUN", () => {
  it("CPUID from the policy without L1, OUT forwarded as IO, faults on unmapped/unmapped-again/read-only pages", () => {
    const b = new NpvBed();
    const { vm, vcpu } = b.tinyL2(
      `
      mov eax, 0x40000000
      cpuid
      out 0x10, eax
      mov rax, qword ptr [0x80000]
      out 0x11, eax
      mov rax, qword ptr [0x80000]
      mov dword ptr [0x80000], 0x77
      out 0x12, eax
      mov dword ptr [0x80000], 0x88
      out 0x13, eax
      hlt
      `,
      { cpuid: [{ leaf: 0x40000000, regs: [0x1234, 1, 2, 3] }] },
    );
    // (1) CPUID answered by L0 from the policy; the OUT is the first thing L1 sees.
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_IO);
    expect(b.data32(0) & 0xffff).toBe(0x10);
    expect((b.data32(0) >>> 16) & 0xff).toBe(4);
    expect(b.data32(0) >>> 24).toBe(0);
    expect(b.data32(4)).toBe(0x1234);
    expect(b.r32(RUN_PAGE + ABI.NPV_RUN_INSN_LEN)).toBe(2);
    expect(b.r64(RUN_PAGE + ABI.NPV_RUN_RIP)).toBe(L2_CODE + 7);
    let st = b.engine.stats();
    expect(st["npv.l2_exits.l0.cpuid"]).toBe(1);
    expect(st["npv.l2_exits.l1.io"]).toBe(1);
    // (2) An unmapped L2 page: MEMORY_FAULT with the GPA and the access.
    b.advance();
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_MEMORY_FAULT);
    expect(b.data64(0)).toBe(0x80000);
    expect(b.data32(8)).toBe(ABI.NPV_PERM_R);
    // L1 maps it; the access is retried and succeeds.
    b.w64(0x200000, 0x55aa);
    expect(b.map(vm, 0x80000, 0x200000, 1, 3)).toBe(0);
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_IO);
    expect(b.data32(0) & 0xffff).toBe(0x11);
    expect(b.data32(4)).toBe(0x55aa);
    // (3) UNMAP: the next access faults again (EPT02 leaf gone, TLB invalidated).
    expect(b.unmap(vm, 0x80000, 1)).toBe(0);
    b.advance();
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_MEMORY_FAULT);
    expect(b.data64(0)).toBe(0x80000);
    expect(b.map(vm, 0x80000, 0x200000, 1, 3)).toBe(0);
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_IO);
    expect(b.data32(0) & 0xffff).toBe(0x12);
    expect(b.r32(0x200000)).toBe(0x77);
    // (4) PROTECT to read-only: the write faults with access W.
    expect(b.protect(vm, 0x80000, 1, ABI.NPV_PERM_R)).toBe(0);
    b.advance();
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_MEMORY_FAULT);
    expect(b.data64(0)).toBe(0x80000);
    expect(b.data32(8)).toBe(ABI.NPV_PERM_W);
    expect(b.r32(0x200000)).toBe(0x77);
    expect(b.protect(vm, 0x80000, 1, 3)).toBe(0);
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_IO);
    expect(b.data32(0) & 0xffff).toBe(0x13);
    expect(b.r32(0x200000)).toBe(0x88);
    // (5) HLT with interrupts off: HALT to L1.
    b.advance();
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_HALT);
    st = b.engine.stats();
    expect(st["npv.l2_exits.l1.memory_fault"]).toBe(3);
    expect(b.engine.checkInvariants()).toEqual([]);
    expect(b.gpr(RAX)).toBeGreaterThanOrEqual(0);
  });
});

describe.skipIf(!HAVE_AS)("npv RUN: MMIO, LAPIC, MSRs, interrupts, stops", () => {
  it("an MMIO write in an L1 region is retired by L0 and forwarded with its value; a read completes with L1's value", () => {
    const b = new NpvBed();
    const { vm, vcpu } = b.tinyL2(`
      mov dword ptr [0x10000010], 0xabcd1234
      mov eax, dword ptr [0x10000020]
      out 0x20, eax
      mov rbx, 0x1122334455667788
      mov qword ptr [0x10000008], rbx
      hlt
    `);
    expect(b.hc(ABI.NPV_HC_MMIO_REGION, vm, 0x10000000, 1, 0).status).toBe(0);
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_MMIO);
    expect(b.data64(0)).toBe(0x10000010);
    expect(b.r8(RUN_PAGE + ABI.NPV_RUN_DATA + 8)).toBe(4);
    expect(b.r8(RUN_PAGE + ABI.NPV_RUN_DATA + 9)).toBe(1);
    expect(b.data64(16)).toBe(0xabcd1234);
    // Retired: RIP is past the write.
    expect(b.r64(RUN_PAGE + ABI.NPV_RUN_RIP)).toBe(L2_CODE + 11);
    // The read: forwarded without retiring; L1 supplies the value at data+0x10.
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_MMIO);
    expect(b.data64(0)).toBe(0x10000020);
    expect(b.r8(RUN_PAGE + ABI.NPV_RUN_DATA + 8)).toBe(4);
    expect(b.r8(RUN_PAGE + ABI.NPV_RUN_DATA + 9)).toBe(0);
    expect(b.r64(RUN_PAGE + ABI.NPV_RUN_RIP)).toBe(L2_CODE + 11);
    b.w64(RUN_PAGE + ABI.NPV_RUN_DATA + 0x10, 0x5a5a);
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_IO);
    expect(b.data32(4)).toBe(0x5a5a);
    b.advance();
    // An 8-byte write arrives whole.
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_MMIO);
    expect(b.data64(0)).toBe(0x10000008);
    expect(b.r8(RUN_PAGE + ABI.NPV_RUN_DATA + 8)).toBe(8);
    expect(b.r32(RUN_PAGE + ABI.NPV_RUN_DATA + 16)).toBe(0x55667788);
    expect(b.r32(RUN_PAGE + ABI.NPV_RUN_DATA + 20)).toBe(0x11223344);
    expect(b.engine.stats()["npv.l2_exits.l1.mmio"]).toBe(3);
  });

  it("a read-modify-write MMIO instruction: the read goes to L1, then its write is forwarded too", () => {
    const b = new NpvBed();
    const { vm, vcpu } = b.tinyL2(`
      add dword ptr [0x10000040], 5
      out 0x21, al
    `);
    expect(b.hc(ABI.NPV_HC_MMIO_REGION, vm, 0x10000000, 1, 0).status).toBe(0);
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_MMIO);
    expect(b.data64(0)).toBe(0x10000040);
    expect(b.r8(RUN_PAGE + ABI.NPV_RUN_DATA + 9)).toBe(0);
    b.w64(RUN_PAGE + ABI.NPV_RUN_DATA + 0x10, 10);
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_MMIO);
    expect(b.data64(0)).toBe(0x10000040);
    expect(b.r8(RUN_PAGE + ABI.NPV_RUN_DATA + 9)).toBe(1);
    expect(b.data64(16)).toBe(15);
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_IO);
    expect(b.data32(0) & 0xffff).toBe(0x21);
  });

  it("LAPIC MMIO, the LAPIC timer and HLT are handled in L0; the timer interrupt is delivered without L1", () => {
    const b = new NpvBed();
    // IDT at 0x5000 with vector 0x40 → handler that counts in r15, EOIs, and IRETs.
    const { vcpu } = b.tinyL2(`
      lea rax, [rip + handler]
      mov rdi, 0x5000 + 0x40 * 16
      mov word ptr [rdi], ax
      mov word ptr [rdi + 2], 0x08
      mov word ptr [rdi + 4], 0x8e00
      shr rax, 16
      mov word ptr [rdi + 6], ax
      mov dword ptr [rdi + 8], 0
      mov dword ptr [rdi + 12], 0
      sub rsp, 16
      mov word ptr [rsp], 0xfff
      mov qword ptr [rsp + 2], 0x5000
      lidt [rsp]
      add rsp, 16
      mov rsi, 0xfee00000
      mov eax, dword ptr [rsi + 0x30]
      out 0x30, eax
      mov dword ptr [rsi + 0xf0], 0x1ff
      mov dword ptr [rsi + 0x3e0], 0xb
      mov dword ptr [rsi + 0x320], 0x40
      mov dword ptr [rsi + 0x380], 100000
      xor r15, r15
      sti
    wait:
      hlt
      cmp r15, 1
      jb wait
      out 0x31, eax
      cli
      hlt
    handler:
      inc r15
      mov dword ptr [rsi + 0xb0], 0
      iretq
    `);
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_IO);
    expect(b.data32(0) & 0xffff).toBe(0x30);
    expect(b.data32(4)).toBe(0x00050014);
    b.advance();
    const c0 = b.cpu.cycles();
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_IO);
    expect(b.data32(0) & 0xffff).toBe(0x31);
    expect(b.gpr(15)).toBe(1);
    expect(b.cpu.cycles() - c0).toBeGreaterThanOrEqual(100000);
    const st = b.engine.stats();
    expect(st["npv.l2_exits.l0.hlt"]).toBeGreaterThanOrEqual(1);
    expect(st["npv.l2_exits.l0.lapic_mmio"]).toBeGreaterThanOrEqual(5);
    expect(st["npv.l2_interrupts_injected"]).toBe(1);
    // L2's HLT idle is L2's time (its VMCS's level), not its L1's.
    const idle = b.l0.ledger.lines().filter((l) => l.category === "idle");
    expect(idle.length).toBeGreaterThan(0);
    expect(idle.map((l) => l.level)).toEqual(idle.map(() => 2));
    b.advance();
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_HALT);
  });

  it("INJECT delivers a vector when L2 enables interrupts", () => {
    const b = new NpvBed();
    const { vcpu } = b.tinyL2(`
      lea rax, [rip + handler]
      mov rdi, 0x5000 + 0x50 * 16
      mov word ptr [rdi], ax
      mov word ptr [rdi + 2], 0x08
      mov word ptr [rdi + 4], 0x8e00
      shr rax, 16
      mov word ptr [rdi + 6], ax
      mov dword ptr [rdi + 8], 0
      mov dword ptr [rdi + 12], 0
      sub rsp, 16
      mov word ptr [rsp], 0xfff
      mov qword ptr [rsp + 2], 0x5000
      lidt [rsp]
      add rsp, 16
      out 0x40, al
      sti
      nop
      out 0x41, al
      hlt
    handler:
      mov r14, 0x99
      iretq
    `);
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_IO);
    expect(b.hc(ABI.NPV_HC_INJECT, vcpu, 0x50, 0).status).toBe(0);
    b.advance();
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_IO);
    expect(b.data32(0) & 0xffff).toBe(0x41);
    expect(b.gpr(14)).toBe(0x99);
  });

  it("MSR policy: VALUE answered by L0, FORWARD goes to L1, others #GP; LAPIC MSRs by L0", () => {
    const b = new NpvBed();
    const { vm, vcpu } = b.tinyL2(`
      mov ecx, 0x10
      rdmsr
      out 0x50, eax
      mov ecx, 0x1234
      mov eax, 7
      xor edx, edx
      wrmsr
      mov ecx, 0x1b
      rdmsr
      out 0x51, eax
      hlt
    `);
    expect(
      b.setMsrs(vm, [
        { index: 0x10, mode: ABI.NPV_MSR_VALUE, value: 0xfeed },
        { index: 0x1234, mode: ABI.NPV_MSR_FORWARD },
      ]),
    ).toBe(0);
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_IO);
    expect(b.data32(4)).toBe(0xfeed);
    b.advance();
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_MSR);
    expect(b.data32(0)).toBe(0x1234);
    expect(b.r8(RUN_PAGE + ABI.NPV_RUN_DATA + 4)).toBe(1);
    expect(b.data64(8)).toBe(7);
    expect(b.r32(RUN_PAGE + ABI.NPV_RUN_INSN_LEN)).toBe(2);
    b.advance();
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_IO);
    expect((b.data32(4) & 0xfffff000) >>> 0).toBe(0xfee00000);
  });

  it("L2's VMCALL is forwarded as HYPERCALL; a triple fault is SHUTDOWN; clearing CR0.PG is MODE", () => {
    const b = new NpvBed();
    const a = b.tinyL2(`
      mov eax, 42
      vmcall
      mov rax, cr0
      btr rax, 31
      mov cr0, rax
    `);
    expect(b.run(a.vcpu)).toBe(ABI.NPV_EXIT_HYPERCALL);
    expect(b.gpr(RAX)).toBe(42);
    expect(b.r32(RUN_PAGE + ABI.NPV_RUN_INSN_LEN)).toBe(3);
    b.advance();
    expect(b.run(a.vcpu)).toBe(ABI.NPV_EXIT_MODE);
    expect(b.run(a.vcpu)).toBe(ABI.NPV_EXIT_MODE); // stopped for good
    const c = b.tinyL2(`
      ud2
    `);
    expect(b.run(c.vcpu)).toBe(ABI.NPV_EXIT_SHUTDOWN);
  });

  it("eager VMs get their EPT02 leaves at MAP: no compose on first touch", () => {
    const b = new NpvBed();
    const { vm, vcpu } = b.tinyL2(`out 0x60, al`, { flags: 1 });
    const l1 = b.engine.l1(b.vm)!;
    expect(l1.vms.get(vm)!.ept.leaves).toBe(0x40);
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_IO);
    expect(b.engine.stats()["npv.l2_exits.l0.ept02_compose"]).toBeUndefined();
    expect(b.engine.checkInvariants()).toEqual([]);
  });

  it("TIMESLICE after the engine's instruction budget", () => {
    const b = new NpvBed();
    const { vcpu } = b.tinyL2(`spin: jmp spin`);
    b.engine.sliceInstructions = 5000;
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_TIMESLICE);
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_TIMESLICE);
  });
});
