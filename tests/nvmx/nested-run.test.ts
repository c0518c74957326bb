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
import * as C from "../../src/x86/vmx-controls.js";
import { HAVE_AS } from "../helpers/asm.js";
import { nvmxBed, RESULTS } from "../helpers/nvmx.js";
import { COUNT, EPT12_PD, L2_EPT12, L2_SECOND, LOG, l1Source, placeL2, TABLE } from "../helpers/nvmx-l1.js";

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
    expect(Object.fromEntries(s.reflected.list(2).map((e) => [e.code, e.count]))).toEqual({
      [V.EXIT_CPUID]: 1,
      [V.EXIT_IO_INSTRUCTION]: 1,
      [V.EXIT_HLT]: 1,
    });
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
        mov eax, ${0x2 | C.CPU2_ENABLE_VMFUNC}
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

  it("VMCS12 execution-field checks: a CR3-target count, an EPTP with reserved bit 7 set, a bad entry event are VMfailValid(7)", () => {
    const R = RESULTS + 0x200;
    const attempt = (field: number, bad: number, good: number, slot: number) => `
        mov edx, ${field}
        mov eax, ${bad}
        vmwrite rdx, rax
        vmlaunch
        mov edx, ${V.VMCS_VM_INSTRUCTION_ERROR}
        vmread [${R + slot * 8}], rdx
        mov edx, ${field}
        mov eax, ${good}
        vmwrite rdx, rax
      `;
    const eptp = 0x310000 | 6 | (3 << 3);
    const b = nvmxBed(
      l1Source(
        attempt(V.VMCS_CR3_TARGET_COUNT, 1, 0, 0) +
          attempt(V.VMCS_EPT_POINTER, eptp | 0x80, eptp, 1) +
          attempt(V.VMCS_ENTRY_INTR_INFO, 0x80000106, 0, 2),
      ),
    );
    placeL2(b);
    const stop = b.run(200_000);
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe(1); // the VMLAUNCH after the three still runs L2 to its HLT
    expect([0, 1, 2].map((i) => b.r32(R + i * 8))).toEqual([7, 7, 7]);
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
