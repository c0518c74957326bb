/**
 * EPT-on-EPT (ept02.ts) on the synthetic L1 of tests/helpers/nvmx-l1.ts: EPT12's accessed and
 * dirty flags when L1 enables them in EPTP12 (SDM vol. 3C, "Accessed and Dirty Flags for EPT":
 * every EPT12 entry a translation uses gets A, the leaf gets D on a write, and with the flags on
 * the processor's accesses to L2's paging structures are writes), and EPT02 kept read-only over a
 * clean EPT12 leaf until L2 writes (KVM paging_tmpl.h: FNAME(protect_clean_gpte)). Expected bits
 * and counts are the SDM's and KVM's behaviour, not read back from the engine.
 */
import { describe, expect, it } from "vitest";
import * as V from "../../src/x86/vmx.js";
import { HAVE_AS } from "../helpers/asm.js";
import { nvmxBed, RESULTS } from "../helpers/nvmx.js";
import { EPT12_PD, L2_SECOND, LOG, l1Source, placeL2 } from "../helpers/nvmx-l1.js";

const EPT12_PML4 = 0x310000;
const EPT12_PDPT = 0x311000;
const EPTP12 = EPT12_PML4 | 6 | (3 << 3);
const R = RESULTS + 0x200;
/** EPT entry bits (SDM vol. 3C table 29-x): R/W/X, large page, accessed (8), dirty (9). */
const RWX = 7;
const A = 1 << 8;
const D = 1 << 9;
/** EPT12's second PD entry: L2 2–4 MiB → L1 L2_SECOND, a 2 MiB WB leaf. */
const PD1 = EPT12_PD + 8;
const leaf2m = (l1: number, perms: number) => l1 | 0x80 | (6 << 3) | perms;

/** L2: reads its second 2 MiB page, CPUID (exit to L1), writes it, OUT (exit to L1), HLT. */
const L2_READ_THEN_WRITE = `
  mov al, byte ptr [0x200000]
  cpuid
  mov byte ptr [0x200000], 1
  out 0x80, al
  hlt
`;

/** L1's exit handler: at CPUID keep EPT12's PD[1] in slot 0, at OUT in slot 1. */
const KEEP_PD1 = `
  cmp eax, ${V.EXIT_CPUID}
  jne 5f
  mov rbx, qword ptr [${PD1}]
  mov qword ptr [${R}], rbx
5:
  cmp eax, ${V.EXIT_IO_INSTRUCTION}
  jne 6f
  mov rbx, qword ptr [${PD1}]
  mov qword ptr [${R + 8}], rbx
6:
`;

const setEptp = (eptp: number) => `
  mov edx, ${V.VMCS_EPT_POINTER}
  mov rax, ${eptp}
  vmwrite rdx, rax
`;

function run(eptp: number) {
  const b = nvmxBed(l1Source(setEptp(eptp), KEEP_PD1));
  placeL2(b, L2_READ_THEN_WRITE);
  b.vm.memory.write64(PD1, leaf2m(L2_SECOND, RWX));
  const stop = b.run(200_000);
  expect(stop.kind, stop.message).toBe("debug-exit");
  expect(b.vm.exitStatus).toBe(1); // status 0: L1 saw HLT last
  expect([0, 1, 2].map((i) => b.r32(LOG + i * 8))).toEqual([V.EXIT_CPUID, V.EXIT_IO_INSTRUCTION, V.EXIT_HLT]);
  const s = b.engine.state(b.vcpu);
  return { b, s, ept02: s.ept02 as NonNullable<typeof s.ept02> };
}

describe.skipIf(!HAVE_AS)("nested VMX: EPT12 accessed and dirty flags", () => {
  it("EPTP12 bit 6 set: L0's walks set A on every EPT12 entry used and D on the leaf L2 wrote, not before", () => {
    const { b, s, ept02 } = run(EPTP12 | 0x40);
    // L2's reads of its own page tables are writes with EPT A/D on, so PD[0] (code and page tables) is dirty.
    expect(b.r32(EPT12_PML4) & (A | D)).toBe(A);
    expect(b.r32(EPT12_PDPT) & (A | D)).toBe(A);
    expect(b.r32(EPT12_PD) & (A | D)).toBe(A | D);
    // PD[1]: accessed after L2's read (seen by L1 at CPUID), dirty only after its write (seen at OUT).
    expect(b.r32(R) & (A | D)).toBe(A);
    expect(b.r32(R + 8) & (A | D)).toBe(A | D);
    expect(b.r32(PD1)).toBe(leaf2m(L2_SECOND, RWX) | A | D);
    // Entries changed: PML4E, PDPTE, PD[0] on the first walk; PD[1]'s A, then its D.
    expect(ept02.adWrites).toBe(5);
    // EPT02 leaves: 3 L2 page-table pages, the code page, 0x200000 read-only, then 0x200000 writable.
    expect(ept02.built).toBe(6);
    expect(s.l2Exits).toBe(3 + 6);
    expect(b.r32(L2_SECOND) & 0xff).toBe(1);
  });

  it("EPTP12 bit 6 clear: EPT12 stays as L1 wrote it and the first access maps the page writable", () => {
    const { b, s, ept02 } = run(EPTP12);
    expect([b.r32(EPT12_PML4), b.r32(EPT12_PDPT)].map((e) => e & (A | D))).toEqual([0, 0]);
    expect(b.r32(EPT12_PD) & (A | D)).toBe(0);
    expect(b.r32(PD1)).toBe(leaf2m(L2_SECOND, RWX));
    expect(ept02.adWrites).toBe(0);
    expect(ept02.built).toBe(5);
    expect(s.l2Exits).toBe(3 + 5);
  });
});
