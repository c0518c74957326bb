/**
 * L0's checks at L1's VMLAUNCH (checks.ts, KVM nested_vmx_check_host_state / _guest_state) and of
 * L1's INVEPT/INVVPID operands, each case on the synthetic L1 of tests/helpers/nvmx-l1.ts: a bad
 * host-state field is VMfailValid(8) and L2 is not entered; a bad VMCS link pointer is a VM-entry
 * failure exit (reason 0x80000021, qualification 4) at L1's host RIP with the launch state still
 * clear; INVEPT/INVVPID operands the SDM rejects are VMfailValid(28). Expected values are the
 * SDM's (vol. 3C 26.2.2–26.2.4, 26.3.1.5, 26.8; vol. 2 INVEPT/INVVPID), not the engine's.
 */
import { describe, expect, it } from "vitest";
import * as V from "../../src/x86/vmx.js";
import * as C from "../../src/x86/vmx-controls.js";
import { HAVE_AS } from "../helpers/asm.js";
import { nvmxBed, RESULTS, VMCS12_B } from "../helpers/nvmx.js";
import { COUNT, EPT12_PD, LOG, l1Source, placeL2 } from "../helpers/nvmx-l1.js";

const R = RESULTS + 0x200;
const DESC = RESULTS + 0x300;
const EPTP12 = 0x310000 | 6 | (3 << 3);

/** VMWRITE `bad` to `field`, VMLAUNCH, keep RFLAGS and the VM-instruction error in slot `slot`, restore. */
const badHost = (field: number, bad: string, slot: number) => `
  mov edx, ${field}
  vmread r12, rdx
  mov rax, ${bad}
  vmwrite rdx, rax
  vmlaunch
  pushfq
  pop qword ptr [${R + slot * 16}]
  mov edx, ${V.VMCS_VM_INSTRUCTION_ERROR}
  vmread [${R + slot * 16 + 8}], rdx
  mov edx, ${field}
  vmwrite rdx, r12
`;

/**
 * INVEPT/INVVPID (`insn`) of `type` on descriptor (lo, hi); RFLAGS and the VM-instruction error
 * (meaningful after a VMfailValid only) into slot `slot`; RAX (the exit reason in a handler) kept.
 */
const inv = (insn: string, type: number, lo: string, hi: string, slot: number) => `
  mov r13, rax
  mov rax, ${lo}
  mov qword ptr [${DESC}], rax
  mov rax, ${hi}
  mov qword ptr [${DESC + 8}], rax
  mov eax, ${type}
  ${insn} rax, [${DESC}]
  pushfq
  pop qword ptr [${R + slot * 16}]
  mov edx, ${V.VMCS_VM_INSTRUCTION_ERROR}
  vmread [${R + slot * 16 + 8}], rdx
  mov rax, r13
`;

/** [RFLAGS.ZF|CF, error] per slot; the error only after a VMfailValid (ZF), else 0. */
const results = (b: ReturnType<typeof nvmxBed>, n: number) =>
  Array.from({ length: n }, (_, i) => {
    const f = b.r32(R + i * 16) & 0x41;
    return [f, f === 0x40 ? b.r32(R + i * 16 + 8) : 0];
  });

/**
 * L1 runs `prelaunch` then VMLAUNCH, which must fail the entry (0x80000021): its handler keeps the
 * qualification in [R] (the guest RIP in [R + 8]), runs `repair` and launches again; L2 then runs
 * its CPUID, OUT and HLT. Checks that log and returns the bed.
 */
function failedLaunchThenRun(prelaunch: string, repair: string): ReturnType<typeof nvmxBed> {
  const onExit = `
      cmp eax, 0x80000021
      jne 7f
      mov edx, ${V.VMCS_EXIT_QUALIFICATION}
      vmread [${R}], rdx
      mov edx, ${V.VMCS_GUEST_RIP}
      vmread [${R + 8}], rdx
      ${repair}
      vmlaunch
      mov al, 5
      out 0xf4, al
    7:`;
  const b = nvmxBed(l1Source(prelaunch, onExit));
  placeL2(b);
  const stop = b.run(300_000);
  expect(stop.kind, stop.message).toBe("debug-exit");
  expect(b.vm.exitStatus).toBe(1);
  const log = Array.from({ length: b.r32(COUNT) }, (_, i) => b.r32(LOG + i * 8) >>> 0);
  expect(log).toEqual([0x80000021, V.EXIT_CPUID, V.EXIT_IO_INSTRUCTION, V.EXIT_HLT]);
  return b;
}

/** VMWRITE of an immediate. */
const vmw = (field: number, value: number) => `
      mov edx, ${field}
      mov eax, ${value}
      vmwrite rdx, rax`;

describe.skipIf(!HAVE_AS)("nested VMX: L0's VM-entry checks and INVEPT/INVVPID operands", () => {
  it("each bad host-state field is VMfailValid(8) and L2 is not entered; the valid VMCS12 then runs", () => {
    const b = nvmxBed(
      l1Source(
        badHost(V.VMCS_HOST_TR_SELECTOR, "0", 0) + // TR null (26.2.3)
          badHost(V.VMCS_HOST_CS_SELECTOR, "0", 1) + // CS null
          badHost(V.VMCS_HOST_DS_SELECTOR, "0x13", 2) + // RPL 3
          badHost(V.VMCS_HOST_SS_SELECTOR, "0x14", 3) + // TI 1
          badHost(V.VMCS_HOST_FS_BASE, "0x0000800000000000", 4) + // not canonical
          badHost(V.VMCS_HOST_RIP, "0x8000000000000000", 5) +
          badHost(V.VMCS_HOST_CR3, "0x0010000000000000", 6) + // beyond MAXPHYADDR (26.2.2)
          badHost(V.VMCS_HOST_CR4, "0x2000", 7) + // IA-32e host without CR4.PAE (26.2.4)
          badHost(V.VMCS_HOST_CR0, "0x80000011", 8), // CR0.NE clear (IA32_VMX_CR0_FIXED0)
      ),
    );
    placeL2(b);
    const stop = b.run(300_000);
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe(1); // the VMLAUNCH after the nine runs L2 to its HLT
    expect(results(b, 9)).toEqual(Array(9).fill([0x40, V.VMXERR_ENTRY_INVALID_HOST_STATE]));
    expect(b.engine.state(b.vcpu).entries).toBe(3); // the one VMLAUNCH + 2 VMRESUMEs
  });

  it("a VMCS link pointer to a page that is no VMCS12 is an entry failure (0x80000021, qualification 4); launch state stays clear", () => {
    const b = failedLaunchThenRun(
      `mov dword ptr [${VMCS12_B}], 0x12345
       mov edx, ${V.VMCS_LINK_POINTER}
       mov eax, ${VMCS12_B}
       vmwrite rdx, rax`,
      `mov edx, ${V.VMCS_LINK_POINTER}
       mov rax, -1
       vmwrite rdx, rax`,
    );
    expect(b.r32(R)).toBe(4);
    const s = b.engine.state(b.vcpu);
    expect(s.entries).toBe(3); // the failed VMLAUNCH entered nothing; the second VMLAUNCH worked
    expect(s.reflected.count(2, 33)).toBe(1); // reason 33 (entry failure, bit 31 set), counted by its basic reason
  });

  it("an NMI injected with virtual NMIs while VMCS12 has blocking by NMI is an entry failure (0x80000021, qualification 0; 26.3.1.5)", () => {
    // The repair: clear the blocking bit and the injection.
    const b = failedLaunchThenRun(
      vmw(V.VMCS_PIN_BASED_CONTROLS, 0x17 | C.PIN_NMI_EXITING | C.PIN_VIRTUAL_NMIS) +
        vmw(V.VMCS_GUEST_INTERRUPTIBILITY, C.INTERRUPTIBILITY_NMI) +
        vmw(V.VMCS_ENTRY_INTR_INFO, (C.INTR_INFO_VALID | C.INTR_TYPE_NMI | 2) >>> 0),
      vmw(V.VMCS_GUEST_INTERRUPTIBILITY, 0) + vmw(V.VMCS_ENTRY_INTR_INFO, 0),
    );
    expect(b.r32(R)).toBe(0);
    expect(b.engine.state(b.vcpu).entries).toBe(3);
  });

  it("INVEPT/INVVPID: an invalid EPTP, VPID 0, reserved descriptor bits, a non-canonical address are VMfailValid(28)", () => {
    const b = nvmxBed(
      l1Source(
        inv("invept", 1, "0", "0", 0) + // single-context, EPTP 0: not WB / 4 levels
          inv("invept", 0, String(EPTP12), "0", 1) + // type 0 is not an INVEPT type
          inv("invept", 1, String(EPTP12), "0", 2) + // a valid EPTP: VMsucceed
          inv("invvpid", 1, "0", "0", 3) + // single-context, VPID 0
          inv("invvpid", 2, "0x10000", "0", 4) + // all-context, bits 63:16 set
          inv("invvpid", 0, "1", "0x0000800000000000", 5) + // individual address, not canonical
          inv("invvpid", 3, "1", "0", 6) + // single-context retaining globals: offered, VMsucceed
          inv("invvpid", 4, "1", "0", 7), // no type 4
      ),
    );
    placeL2(b);
    const stop = b.run(300_000);
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe(1);
    const E = V.VMXERR_INVALID_OPERAND;
    expect(results(b, 8)).toEqual([
      [0x40, E],
      [0x40, E],
      [0, 0],
      [0x40, E],
      [0x40, E],
      [0x40, E],
      [0, 0],
      [0x40, E],
    ]);
  });

  it("single-context INVEPT drops EPT02 only when it names the EPT12 EPT02 shadows; all-context always", () => {
    // At L2's CPUID exit EPT02 holds what L2 touched; a single-context INVEPT of another (valid)
    // EPTP leaves it, one of EPTP12 drops it, all-context drops it again after the next misses.
    const onExit = `
      cmp eax, ${V.EXIT_CPUID}
      jne 7f
      ${inv("invept", 1, String(EPT12_PD | 6 | (3 << 3)), "0", 0)}
      ${inv("invept", 1, String(EPTP12), "0", 1)}
    7:
      cmp eax, ${V.EXIT_IO_INSTRUCTION}
      jne 8f
      ${inv("invept", 2, "0", "0", 2)}
    8:`;
    const b = nvmxBed(l1Source("", onExit));
    placeL2(b);
    const stop = b.run(300_000);
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe(1);
    expect(results(b, 3)).toEqual([
      [0, 0],
      [0, 0],
      [0, 0],
    ]);
    const e = b.engine.state(b.vcpu).ept02;
    expect(e?.zaps).toBe(2);
    // 4 leaves before the first drop (code, three L2 page-table pages), re-built after each drop.
    expect(e?.built).toBeGreaterThan(4);
  });
});
