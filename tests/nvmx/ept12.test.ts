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
/** EPT entry bits (SDM vol. 3C 28.3.2): R/W/X 2:0, accessed 8, dirty 9 (a leaf's). */
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

/** L1's exit handler: at CPUID run `atCpuid`; at an EPT violation put PD[1] back (RWX) and resume L2. */
const onCpuidAndViolation = (atCpuid: string) => `
  cmp eax, ${V.EXIT_CPUID}
  jne 5f
  mov r13, rax
  ${atCpuid}
  mov rax, r13
5:
  cmp eax, ${V.EXIT_EPT_VIOLATION}
  jne 6f
  mov rax, ${leaf2m(L2_SECOND, RWX)}
  mov qword ptr [${PD1}], rax
  jmp resume
6:
`;

function runWith(atCpuid: string) {
  const b = nvmxBed(l1Source("", onCpuidAndViolation(atCpuid)));
  placeL2(b, L2_READ_THEN_WRITE);
  b.vm.memory.write64(PD1, leaf2m(L2_SECOND, RWX));
  const stop = b.run(200_000);
  expect(stop.kind, stop.message).toBe("debug-exit");
  expect(b.vm.exitStatus).toBe(1);
  const s = b.engine.state(b.vcpu);
  return { b, s, ept02: s.ept02 as NonNullable<typeof s.ept02> };
}

describe.skipIf(!HAVE_AS)("nested VMX: EPT12 writes and freeing EPT02 tables", () => {
  it("removal: L1 clears a leaf L2 used; its EPT02 leaf goes, the EPT02 table it emptied goes back to the pool", () => {
    const { b, s, ept02 } = runWith(`mov qword ptr [${PD1}], 0`);
    // L2's write after the removal is EPT12's violation (L1's), which L1 fixes by restoring PD[1].
    expect([0, 1, 2, 3].map((i) => b.r32(LOG + i * 8))).toEqual([
      V.EXIT_CPUID,
      V.EXIT_EPT_VIOLATION,
      V.EXIT_IO_INSTRUCTION,
      V.EXIT_HLT,
    ]);
    expect(ept02.leavesDropped).toBe(1);
    // The 4 KiB leaf at L2 0x200000 was the only entry of its EPT02 page table: freed, then reused
    // for the rebuilt leaf (the pool is empty again; EPT02 has root, PDPT, PD and two page tables).
    expect(ept02.tablesFreed).toBe(1);
    expect(ept02.poolPages).toBe(0);
    expect(ept02.table.tables).toBe(5);
    expect(ept02.zaps).toBe(0);
    // Code, 3 L2 page-table pages, 0x200000 read, 0x200000 written after the restore.
    expect(ept02.built).toBe(6);
    // Reflected: CPUID, the violation, OUT, HLT; L0's own: the 6 EPT02 misses.
    expect(s.l2Exits).toBe(4 + 6);
    expect(b.r32(L2_SECOND) & 0xff).toBe(1);
  });

  it("a rewritten non-leaf EPT12 entry drops EPT02 whole: every table page goes back, L2 faults back in", () => {
    const { b, s, ept02 } = runWith(`
      mov rbx, qword ptr [${EPT12_PDPT}]
      mov qword ptr [${EPT12_PDPT}], rbx`);
    expect([0, 1, 2].map((i) => b.r32(LOG + i * 8))).toEqual([V.EXIT_CPUID, V.EXIT_IO_INSTRUCTION, V.EXIT_HLT]);
    expect(ept02.zaps).toBe(1);
    // Root, PDPT, PD, the page tables of L2 0–2 MiB and 2–4 MiB.
    expect(ept02.tablesFreed).toBe(5);
    // The first half of the 8-byte store zaps and ends the tracking: the second is not reported.
    expect(ept02.trackedWrites).toBe(1);
    // 5 before the zap (code, 3 page-table pages, 0x200000), the same 5 after it (the write).
    expect(ept02.built).toBe(10);
    expect(s.l2Exits).toBe(3 + 10);
    expect(ept02.poolPages).toBe(0);
  });

  it("INVEPT all-context drops EPT02 whole and every table page goes back to the pool", () => {
    const desc = R + 0x100;
    const { b, ept02 } = runWith(`
      mov qword ptr [${desc}], 0
      mov qword ptr [${desc + 8}], 0
      mov eax, 2
      invept rax, [${desc}]`);
    expect([0, 1, 2].map((i) => b.r32(LOG + i * 8))).toEqual([V.EXIT_CPUID, V.EXIT_IO_INSTRUCTION, V.EXIT_HLT]);
    expect(ept02.zaps).toBe(1);
    expect(ept02.tablesFreed).toBe(5);
    expect(ept02.built).toBe(10);
    expect(ept02.poolPages).toBe(0);
  });
});

/** EPT12 PD[0] as a page table of 4 KiB leaves for L2 0–2 MiB → L1 0x400000 (same memory). */
function ept12With4kLeaves(b: ReturnType<typeof nvmxBed>): void {
  const pt = 0x313000;
  for (let i = 0; i < 512; i++) b.vm.memory.write64(pt + i * 8, (0x400000 + i * 4096) | (6 << 3) | RWX);
  b.vm.memory.write64(EPT12_PD, pt | RWX);
}

/** L1 reads the first byte of L2's memory before VMLAUNCH, so EPT01 maps L1 0x400000–0x5fffff. */
const TOUCH_L2_MEMORY = "mov al, byte ptr [0x400000]";

function run2m(prelaunch: string, ept12: (b: ReturnType<typeof nvmxBed>) => void = () => {}) {
  const b = nvmxBed(l1Source(prelaunch), true, { shadowVmcs: false }, { eptPages: "2m" });
  placeL2(b);
  ept12(b);
  const stop = b.run(200_000);
  expect(stop.kind, stop.message).toBe("debug-exit");
  expect(b.vm.exitStatus).toBe(1);
  expect([0, 1, 2].map((i) => b.r32(LOG + i * 8))).toEqual([V.EXIT_CPUID, V.EXIT_IO_INSTRUCTION, V.EXIT_HLT]);
  const s = b.engine.state(b.vcpu);
  return { b, s, ept02: s.ept02 as NonNullable<typeof s.ept02> };
}

describe.skipIf(!HAVE_AS)("nested VMX: 2 MiB EPT02 leaves", () => {
  it("EPT12 and EPT01 both map L2's 2 MiB with large leaves: one 2 MiB EPT02 leaf serves every L2 access", () => {
    const { b, s, ept02 } = run2m(TOUCH_L2_MEMORY);
    expect(b.vm.ept01.lookup(0x400000)?.level).toBe(2);
    expect([ept02.built, ept02.largeBuilt]).toEqual([1, 1]);
    expect(ept02.table.lookup(0x10000)).toEqual({
      pa: (b.vm.ept01.lookup(0x400000)?.pa ?? -1) + 0x10000,
      perms: RWX,
      level: 2,
    });
    expect(s.l2Exits).toBe(3 + 1);
  });

  it("a frame inside a 2 MiB EPT02 leaf becomes write-tracked: the next miss there drops the large leaf and maps 4 KiB", () => {
    const { b, ept02 } = run2m(TOUCH_L2_MEMORY);
    const host = b.vm.ept01.lookup(0x400000)?.pa ?? -1;
    // Track the L1 frame behind L2 0x30000: the 2 MiB EPT02 leaf over it loses W as a whole.
    b.l0.mmu.trackWrites(host + 0x30000, () => {});
    expect(ept02.table.lookup(0x10000)).toEqual({ pa: host + 0x10000, perms: RWX & ~2, level: 2 });
    // L2 writes 0x10000 (not the tracked frame): a 4 KiB writable leaf replaces the large one.
    expect(ept02.miss(EPTP12, 0, 0x10000, 2)).toBe(0);
    expect(ept02.table.lookup(0x10000)).toEqual({ pa: host + 0x10000, perms: RWX, level: 1 });
    expect(ept02.table.lookup(0x11000)).toBeNull();
    expect([ept02.built, ept02.largeBuilt]).toEqual([2, 1]);
  });

  it("EPT01 has not mapped the L1 range: 4 KiB EPT02 leaves", () => {
    const { b, ept02 } = run2m("");
    expect(b.vm.ept01.lookup(0x400000)).toBeNull();
    expect([ept02.built, ept02.largeBuilt]).toEqual([4, 0]);
  });

  it("an L1 page L1 never touched, mapped into L2: the EPT02 miss backs it once (one allocation, one page zeroed)", () => {
    const { b, ept02 } = run2m("");
    const ledger = b.l0.ledger;
    const count = (reason: string) => ledger.lines().find((l) => l.level === 0 && l.reason === reason)?.count ?? 0;
    const [pages, allocs, zeroed] = [b.vm.backedPages, count("host_page_alloc"), count("host_page_zero")];
    // L2 0x150000 is L1 0x550000 (EPT12's 2 MiB leaf at L1 0x400000): neither L1 nor L0 touched it.
    expect(b.vm.ept01.lookup(0x550000)).toBeNull();
    expect(ept02.miss(EPTP12, 0, 0x150000, 1)).toBe(0);
    expect(ept02.table.lookup(0x150000)?.level).toBe(1);
    expect([b.vm.backedPages - pages, count("host_page_alloc") - allocs, count("host_page_zero") - zeroed]).toEqual([
      1, 1, 1,
    ]);
    // Backed already: a second miss on the page charges nothing more.
    expect(ept02.miss(EPTP12, 0, 0x150000, 2)).toBe(0);
    expect([b.vm.backedPages - pages, count("host_page_alloc") - allocs, count("host_page_zero") - zeroed]).toEqual([
      1, 1, 1,
    ]);
  });

  it("EPT12 maps with 4 KiB leaves over a 2 MiB EPT01 leaf: 4 KiB EPT02 leaves", () => {
    const { b, ept02 } = run2m(TOUCH_L2_MEMORY, ept12With4kLeaves);
    expect(b.vm.ept01.lookup(0x400000)?.level).toBe(2);
    expect([ept02.built, ept02.largeBuilt]).toEqual([4, 0]);
    expect(ept02.table.lookup(0x10000)?.level).toBe(1);
  });
});
