/**
 * VMCS shadowing L0 offers an L1 for its own L2 (nested-vmx/l2-vmcs-access.ts): the assembly L1
 * of tests/helpers/nvmx-l1.ts enables "VMCS shadowing" in VMCS12 with VMREAD/VMWRITE bitmaps and a
 * shadow VMCS12 in its memory, and its L2 executes VMREAD/VMWRITE. A bitmap bit clear: L0
 * emulates the access on the shadow VMCS12 (no exit to L1); set, or an encoding with bits 63:15:
 * the exit is reflected to L1; a read-only field is VMfailValid(13) and a missing one
 * VMfailValid(12) with the error in VMCS12; no link pointer is VMfailInvalid. Counts are exact.
 */
import { describe, expect, it } from "vitest";
import { loadProfile } from "../../src/cost/profile.js";
import { VMCS12_REVISION } from "../../src/hypervisors/l0/nested-vmx/caps.js";
import { FIELDS, VMCS12_FIELDS_OFFSET } from "../../src/hypervisors/l0/nested-vmx/vmcs12.js";
import { CF, ZF } from "../../src/x86/flags.js";
import * as V from "../../src/x86/vmx.js";
import * as C from "../../src/x86/vmx-controls.js";
import { HAVE_AS } from "../helpers/asm.js";
import { L1_DATA, nvmxBed, RESULTS, VMCS12_A, VMCS12_B } from "../helpers/nvmx.js";
import { COUNT, LOG, l1Source, placeL2 } from "../helpers/nvmx-l1.js";

/** L1 pages: the VMREAD and VMWRITE bitmaps (zero: every field shadowed); VMCS12_B is the shadow VMCS12. */
const READ_BITMAP = L1_DATA + 0x5000;
const WRITE_BITMAP = L1_DATA + 0x6000;
/** L2's results: L2 guest-physical 0x8000 is L1 physical 0x408000 (EPT12 maps L2's 0–2 MiB at 0x400000). */
const OUT = 0x8000;
const OUT_L1 = 0x400000 + OUT;
const PROC2 = C.CPU2_ENABLE_EPT | C.CPU2_VMCS_SHADOWING;

const vmwrite = (field: number, value: number) => `
  mov edx, ${field}
  mov eax, ${value}
  vmwrite rdx, rax
`;

/** VMCS12 with VMCS shadowing, the bitmaps and a link pointer (`link`; -1: none). */
const shadowing = (link: number) =>
  vmwrite(V.VMCS_PROC_BASED_CONTROLS2, PROC2) +
  vmwrite(V.VMCS_VMREAD_BITMAP, READ_BITMAP) +
  vmwrite(V.VMCS_VMWRITE_BITMAP, WRITE_BITMAP) +
  (link < 0 ? "mov edx, 0x2800\n mov rax, -1\n vmwrite rdx, rax\n" : vmwrite(V.VMCS_LINK_POINTER, link));

/** L2: record RFLAGS after the previous instruction in OUT + 8·slot. */
const flags = (slot: number) => `
  pushfq
  pop qword ptr [${OUT + 8 * slot}]
`;

/** Offset of a field in the VMCS12 layout. */
const fieldAt = (enc: number) => VMCS12_FIELDS_OFFSET + 8 * FIELDS.indexOf(enc);

/** Run L1 with `prelaunch` and L2 `code`; the shadow VMCS12 at VMCS12_B holds guest RIP 0x1234, RSP 0x5678. */
function run(
  code: string,
  prelaunch: string,
  onExit = "",
  bits: { read?: number[]; write?: number[]; plainRegion?: boolean } = {},
) {
  const b = nvmxBed(l1Source(prelaunch, onExit));
  placeL2(b, code);
  const m = b.vm.memory;
  m.write32(VMCS12_B, bits.plainRegion === true ? VMCS12_REVISION : (VMCS12_REVISION | C.VMCS_SHADOW_INDICATOR) >>> 0);
  m.write32(VMCS12_B + fieldAt(V.VMCS_GUEST_RIP), 0x1234);
  m.write32(VMCS12_B + fieldAt(V.VMCS_GUEST_RSP), 0x5678);
  for (const f of bits.read ?? []) m.writeBytes(READ_BITMAP + (f >>> 3), Uint8Array.of(1 << (f & 7)));
  for (const f of bits.write ?? []) m.writeBytes(WRITE_BITMAP + (f >>> 3), Uint8Array.of(1 << (f & 7)));
  const stop = b.run(400_000);
  const s = b.engine.state(b.vcpu);
  const log = Array.from({ length: b.r32(COUNT) }, (_, i) => b.r32(LOG + i * 8));
  const reflected = s.reflected
    .list()
    .filter((e) => e.code === V.EXIT_VMREAD || e.code === V.EXIT_VMWRITE)
    .map((e) => [e.code, e.count]);
  const out = (slot: number) => b.r32(OUT_L1 + 8 * slot);
  return { b, stop, s, log, reflected, out };
}

describe.skipIf(!HAVE_AS)("nested VMX: VMCS shadowing L1 sets for its L2", () => {
  it("bitmap bits clear: L0 emulates L2's VMREAD/VMWRITE on the shadow VMCS12, L1 sees no exit", () => {
    const l2 = `
      mov edx, ${V.VMCS_GUEST_RIP}
      vmread rax, rdx
      mov qword ptr [${OUT}], rax
      ${flags(1)}
      vmread qword ptr [${OUT + 16}], rdx
      mov edx, ${V.VMCS_GUEST_RSP}
      mov eax, 0xabcd
      vmwrite rdx, rax
      ${flags(3)}
      hlt
    `;
    const { b, stop, s, log, reflected, out } = run(l2, shadowing(VMCS12_B));
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe(1);
    expect(log).toEqual([V.EXIT_HLT]);
    expect(reflected).toEqual([]);
    expect([out(0), out(1) & (CF | ZF), out(2), out(3) & (CF | ZF)]).toEqual([0x1234, 0, 0x1234, 0]);
    expect(s.l2VmcsAccesses).toBe(3);
    expect(s.l2VmreadFields.get(V.VMCS_GUEST_RIP)).toBe(2);
    expect(s.l2VmwriteFields.get(V.VMCS_GUEST_RSP)).toBe(1);
    // L2's VMWRITE reached the shadow VMCS12 in L1 memory (written back at the nested exit);
    // L1's own VMCS12 did not change.
    expect(b.r32(VMCS12_B + fieldAt(V.VMCS_GUEST_RSP))).toBe(0xabcd);
    expect(s.current.get32(V.VMCS_GUEST_RSP)).not.toBe(0xabcd);
    // Wiring (the charge is the profile's own primitive): one nvmx.vmx_insn per emulated access,
    // and one VMCS12 copy each way for the shadow VMCS12 (load at entry, write-back at exit).
    const lines = b.l0.ledger.lines();
    const line = (r: string) => lines.find((e) => e.reason === r);
    const insn = loadProfile().cost("nvmx.vmx_insn");
    expect([line("nvmx_vmread_for_l2")?.count, line("nvmx_vmread_for_l2")?.cycles]).toEqual([2, 2 * insn]);
    expect([line("nvmx_vmwrite_for_l2")?.count, line("nvmx_vmwrite_for_l2")?.cycles]).toEqual([1, insn]);
    expect([line("nvmx_shadow_vmcs12_load")?.count, line("nvmx_shadow_vmcs12_flush")?.count]).toEqual([1, 1]);
  });

  it("a bitmap bit set, or an encoding with bits 63:15 set, reflects the exit to L1 (reasons 23, 25)", () => {
    const l2 = `
      mov edx, ${V.VMCS_GUEST_RIP}
      vmread rax, rdx
      mov edx, ${V.VMCS_GUEST_RSP}
      vmwrite rdx, rax
      mov edx, ${0x8000 | V.VMCS_GUEST_RSP}
      vmread rax, rdx
      hlt
    `;
    // L1 skips each reflected VMREAD/VMWRITE (3 bytes) as it does CPUID and OUT.
    const skipVmx = [V.EXIT_VMREAD, V.EXIT_VMWRITE].map((r) => `cmp eax, ${r}\n je skip\n`).join("");
    const { b, stop, s, log, reflected } = run(l2, shadowing(VMCS12_B), skipVmx, {
      read: [V.VMCS_GUEST_RIP],
      write: [V.VMCS_GUEST_RSP],
    });
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe(1);
    expect(log).toEqual([V.EXIT_VMREAD, V.EXIT_VMWRITE, V.EXIT_VMREAD, V.EXIT_HLT]);
    expect(reflected).toEqual([
      [V.EXIT_VMREAD, 2],
      [V.EXIT_VMWRITE, 1],
    ]);
    expect(s.l2VmcsAccesses).toBe(0);
  });

  it("a read-only field is VMfailValid(13), a field VMCS12 lacks VMfailValid(12), the error in VMCS12", () => {
    const l2 = `
      mov edx, ${V.VMCS_EXIT_REASON}
      vmwrite rdx, rax
      ${flags(0)}
      hlt
    `;
    const ro = run(l2, shadowing(VMCS12_B));
    expect(ro.stop.kind, ro.stop.message).toBe("debug-exit");
    expect(ro.log).toEqual([V.EXIT_HLT]);
    expect(ro.out(0) & (CF | ZF)).toBe(ZF);
    expect(ro.s.current.get32(V.VMCS_VM_INSTRUCTION_ERROR)).toBe(V.VMXERR_VMWRITE_READONLY);
    const missing = run(`mov edx, 0x6c7e\n vmread rax, rdx\n ${flags(0)}\n hlt\n`, shadowing(VMCS12_B));
    expect(missing.log).toEqual([V.EXIT_HLT]);
    expect(missing.out(0) & (CF | ZF)).toBe(ZF);
    expect(missing.s.current.get32(V.VMCS_VM_INSTRUCTION_ERROR)).toBe(V.VMXERR_UNSUPPORTED_FIELD);
    expect([ro.s.l2VmcsAccesses, missing.s.l2VmcsAccesses]).toEqual([1, 1]);
  });

  it("no link pointer: L2's VMREAD the bitmap lets through is VMfailInvalid, without an exit", () => {
    const { stop, log, out, s } = run(
      `mov edx, ${V.VMCS_GUEST_RIP}\n vmread rax, rdx\n ${flags(0)}\n hlt\n`,
      shadowing(-1),
    );
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(log).toEqual([V.EXIT_HLT]);
    expect(out(0) & (CF | ZF)).toBe(CF);
    expect(s.l2VmcsAccesses).toBe(1);
  });

  it("VMPTRLD of a shadow-indicator region succeeds when shadowing is offered; VMLAUNCH of it is VMfailInvalid", () => {
    const R = RESULTS + 0x200;
    const probe = `
      mov qword ptr [${RESULTS + 0x110}], ${VMCS12_B}
      vmptrld [${RESULTS + 0x110}]
      pushfq
      pop qword ptr [${R}]
      vmlaunch
      pushfq
      pop qword ptr [${R + 8}]
      vmptrld [${RESULTS + 0x108}]
    `;
    const offered = run("hlt\n", probe);
    expect(offered.stop.kind, offered.stop.message).toBe("debug-exit");
    expect(offered.log).toEqual([V.EXIT_HLT]);
    expect([offered.b.r32(R) & (CF | ZF), offered.b.r32(R + 8) & (CF | ZF)]).toEqual([0, CF]);
    expect(offered.s.current.gpa).toBe(VMCS12_A);
  });

  it("VMCS shadowing with a link pointer to a region without the shadow indicator: entry failure, qualification 4", () => {
    const R = RESULTS + 0x200;
    const { stop, b, log, s } = run(
      "hlt\n",
      shadowing(VMCS12_B),
      `mov edx, ${V.VMCS_EXIT_QUALIFICATION}
       vmread qword ptr [${R}], rdx
       jmp done`,
      { plainRegion: true },
    );
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe(1);
    expect(log).toEqual([(V.EXIT_REASON_ENTRY_FAILURE | V.EXIT_INVALID_GUEST_STATE) >>> 0]);
    expect(b.r32(R)).toBe(4);
    expect([s.entries, s.l2VmcsAccesses]).toEqual([0, 0]);
  });

  it("VMCS shadowing with a VMREAD bitmap address not 4 KiB-aligned is VMfailValid(7)", () => {
    const R = RESULTS + 0x200;
    const { stop, b, log } = run(
      "hlt\n",
      `${shadowing(VMCS12_B)}
       ${vmwrite(V.VMCS_VMREAD_BITMAP, READ_BITMAP + 8)}
       vmlaunch
       pushfq
       pop qword ptr [${R}]
       mov edx, ${V.VMCS_VM_INSTRUCTION_ERROR}
       vmread [${R + 8}], rdx
       ${vmwrite(V.VMCS_VMREAD_BITMAP, READ_BITMAP)}`,
    );
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(log).toEqual([V.EXIT_HLT]);
    expect(b.r32(R) & (CF | ZF)).toBe(ZF);
    expect(b.r32(R + 8)).toBe(V.VMXERR_ENTRY_INVALID_CONTROLS);
  });
});

describe.skipIf(!HAVE_AS)("nested VMX: memory operands that reach no L1 RAM stop the vCPU with a clear error", () => {
  it("L2's VMREAD to a page its tables map but EPT12 does not", () => {
    // L2's second 2 MiB page is in its page tables (placeL2) but not in EPT12.
    const { stop, s } = run(
      `mov edx, ${V.VMCS_GUEST_RIP}\n vmread qword ptr [0x200000], rdx\n hlt\n`,
      shadowing(VMCS12_B),
    );
    expect(stop.kind).toBe("error");
    expect(stop.message).toMatch(/nested VMX L2: the VMREAD operand at linear 0x200000 is not mapped to RAM/);
    expect(s.l2VmcsAccesses).toBe(1);
  });

  it("L1's VMPTRST to an address its page tables map outside its RAM", () => {
    const { stop } = run("hlt\n", "vmptrst qword ptr [0x4000000]\n");
    expect(stop.kind).toBe("error");
    expect(stop.message).toMatch(/the VMPTRST operand at linear 0x4000000 is not mapped to RAM/);
  });
});

describe.skipIf(!HAVE_AS)("nested VMX with the eVMCS-filtered capabilities", () => {
  it("VMCS shadowing is not offered: a shadow-indicator region is VMfail(11) at VMPTRLD", () => {
    const R = RESULTS + 0x200;
    const b = nvmxBed(
      l1Source(`
        mov qword ptr [${RESULTS + 0x110}], ${VMCS12_B}
        vmptrld [${RESULTS + 0x110}]
        pushfq
        pop qword ptr [${R}]
        mov edx, ${V.VMCS_VM_INSTRUCTION_ERROR}
        vmread [${R + 8}], rdx
      `),
      true,
      { shadowVmcs: false, evmcs: true },
    );
    placeL2(b, "hlt\n");
    b.vm.memory.write32(VMCS12_B, (VMCS12_REVISION | C.VMCS_SHADOW_INDICATOR) >>> 0);
    const stop = b.run(400_000);
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.r32(R) & (CF | ZF)).toBe(ZF);
    expect(b.r32(R + 8)).toBe(V.VMXERR_VMPTRLD_BAD_REVISION);
  });
});
