/**
 * VMCS shadowing for an L1 (`nvmx-shadow`, nested-vmx/shadow.ts): the assembly L1 of
 * tests/helpers/nvmx-l1.ts run with and without a shadow VMCS. Shadowed fields' VMREADs (the exit
 * reason, L2's RIP, the exit instruction length) and VMWRITEs (L2's RIP, the guest-state and
 * control fields KVM shadows) run without an exit; unshadowed fields' still trap; the shadow
 * VMCS and VMCS12 are synced at VMPTRLD, VMLAUNCH/VMRESUME and each reflected exit.
 */
import { describe, expect, it } from "vitest";
import { NestedVmxEngine, type NestedVmxOptions } from "../../src/hypervisors/l0/nested-vmx/index.js";
import { SHADOW_RO, SHADOW_RW } from "../../src/hypervisors/l0/nested-vmx/shadow.js";
import * as V from "../../src/x86/vmx.js";
import { HAVE_AS } from "../helpers/asm.js";
import { nvmxBed, RESULTS } from "../helpers/nvmx.js";
import { COUNT, LOG, l1Source, placeL2, TABLE } from "../helpers/nvmx-l1.js";

function run(options: NestedVmxOptions, prelaunch = "", onExit = "") {
  const b = nvmxBed(l1Source(prelaunch, onExit), true, options);
  placeL2(b);
  const stop = b.run(200_000);
  const s = b.engine.state(b.vcpu);
  const n = (r: number) => s.emulated.get(r) ?? 0;
  const log = Array.from({ length: b.r32(COUNT) }, (_, i) => b.r32(LOG + i * 8));
  return { b, stop, s, n, log };
}

const shadowed = (f: number) => SHADOW_RW.includes(f);

describe.skipIf(!HAVE_AS)("nvmx-shadow: L1's VMREAD/VMWRITE of shadowed fields do not exit", () => {
  it("the same L2 run; VMREAD/VMWRITE exits drop to the unshadowed fields' accesses", () => {
    const plain = run({ shadowVmcs: false });
    const shadow = run({ shadowVmcs: true });
    for (const r of [plain, shadow]) {
      expect(r.stop.kind, r.stop.message).toBe("debug-exit");
      expect(r.b.vm.exitStatus).toBe(1);
      expect(r.log).toEqual([V.EXIT_CPUID, V.EXIT_IO_INSTRUCTION, V.EXIT_HLT]);
      expect(r.s.entries).toBe(3);
    }
    // Without shadowing: every VMWRITE (the table, 8 host fields, 2 RIP advances) and VMREAD
    // (3 exit reasons, 2 × (instruction length + RIP)) exits.
    const vmwrites = TABLE.length + 8 + 2;
    expect([plain.n(V.EXIT_VMWRITE), plain.n(V.EXIT_VMREAD)]).toEqual([vmwrites, 7]);
    // With shadowing: the table's shadowed RW fields (and L2's RIP, written twice more) don't exit,
    // nor any of the 7 VMREADs (exit reason and instruction length are RO-shadowed, RIP RW).
    const tableShadowed = TABLE.filter(([f]) => shadowed(f)).length;
    // None of the 8 host fields the L1 writes (CR0/3/4, CS, SS, EFER, RSP, RIP) is shadowed.
    expect(shadow.n(V.EXIT_VMWRITE)).toBe(TABLE.length - tableShadowed + 8);
    expect(shadow.n(V.EXIT_VMREAD)).toBe(0);
    // Syncs: VMPTRLD (VMCS12 → shadow), each of 3 entries (shadow → VMCS12), each of 3
    // reflected exits (VMCS12 → shadow).
    expect(shadow.s.shadow?.syncs).toBe(1 + 3 + 3);
    expect(plain.s.shadow).toBeNull();
    // Each sync and its fields are charged under their own handler attributions.
    const count = (reason: string) =>
      shadow.b.l0.ledger.lines().find((l) => l.category === "handler" && l.reason === reason)?.count ?? 0;
    expect([count("nvmx_shadow_from_vmcs12"), count("nvmx_shadow_to_vmcs12")]).toEqual([1 + 3, 3]);
    expect(count("nvmx_shadow_from_vmcs12_field") + count("nvmx_shadow_to_vmcs12_field")).toBe(
      shadow.s.shadow?.fieldsCopied,
    );
    expect(count("nvmx_shadow_to_vmcs12_field")).toBeGreaterThan(0);
  });

  it("a shadowed VMWRITE reaches VMCS12 at the next entry; a VMREAD sees the exit information", () => {
    const R = RESULTS + 0x200;
    const { stop, b } = run(
      { shadowVmcs: true },
      "",
      `
      mov edx, ${V.VMCS_EXIT_QUALIFICATION}
      vmread rbx, rdx
      mov rcx, qword ptr [${COUNT}]
      mov qword ptr [${R} + rcx * 8], rbx
    `,
    );
    expect(stop.kind, stop.message).toBe("debug-exit");
    // The OUT to port 0x80 (byte, out imm8): qualification port << 16 | size-1 = 0x800000 | 0x40 (immediate).
    expect(b.r32(R + 2 * 8)).toBe((0x80 << 16) | 0x40);
    // L2 ran past CPUID and OUT: L1's RIP advances, written to the shadow VMCS only, reached VMCS02.
    expect(b.engine.state(b.vcpu).current.getNumber(V.VMCS_GUEST_RIP)).toBe(0x10000 + 2 + 2);
  });

  it("unshadowed accesses still trap: VMWRITE of a read-only field is VMfail(13), VMREAD of the error field exits", () => {
    const R = RESULTS + 0x300;
    const base = run({ shadowVmcs: true });
    const r = run(
      { shadowVmcs: true },
      `
      mov edx, ${V.VMCS_EXIT_REASON}
      xor eax, eax
      vmwrite rdx, rax
      mov edx, ${V.VMCS_VM_INSTRUCTION_ERROR}
      vmread qword ptr [${R}], rdx
    `,
    );
    expect(r.stop.kind, r.stop.message).toBe("debug-exit");
    expect(r.b.r32(R)).toBe(V.VMXERR_VMWRITE_READONLY);
    expect(r.n(V.EXIT_VMWRITE)).toBe(base.n(V.EXIT_VMWRITE) + 1);
    expect(r.n(V.EXIT_VMREAD)).toBe(1);
  });

  it("the shadowed field lists are KVM's (restricted to VMCS12's fields) and RO/RW disjoint", () => {
    expect(SHADOW_RO).toContain(V.VMCS_EXIT_REASON);
    expect(SHADOW_RO).toContain(V.VMCS_EXIT_QUALIFICATION);
    expect(SHADOW_RW).toContain(V.VMCS_GUEST_RIP);
    expect(SHADOW_RW).not.toContain(V.VMCS_VM_INSTRUCTION_ERROR);
    expect(SHADOW_RO.filter((f) => SHADOW_RW.includes(f))).toEqual([]);
  });

  it("is deterministic", () => {
    const c = () => run({ shadowVmcs: true }).b.l0.host.cycles();
    expect(c()).toBe(c());
  });

  it("the engine offers shadowing only when asked", () => {
    const b = nvmxBed("hlt\n");
    expect(b.engine).toBeInstanceOf(NestedVmxEngine);
    expect(b.engine.options.shadowVmcs).toBe(false);
  });
});
