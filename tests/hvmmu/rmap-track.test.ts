/**
 * The hypervisor MMU's reverse map and page tracking: zapping a backing frame removes exactly
 * the leaves that map it (in every table, large leaves included) and flushes each table once;
 * tracking a frame write-protects every mapping of it, keeps new ones read-only, and a guest
 * write to it (here an L2's, through EPT02 under npv) is emulated and reported to the notifier.
 */
import { describe, expect, it } from "vitest";
import { loadProfile } from "../../src/cost/profile.js";
import { Cpu } from "../../src/cpu/cpu.js";
import { VmxHost } from "../../src/cpu/vmx/host.js";
import { HostPageAllocator } from "../../src/hypervisors/l0/host-pages.js";
import { L0Hypervisor } from "../../src/hypervisors/l0/l0.js";
import { X86_4LEVEL } from "../../src/hypervisors/mmu/formats.js";
import { HypervisorMmu } from "../../src/hypervisors/mmu/hv-mmu.js";
import type { TrackedWrite } from "../../src/hypervisors/mmu/page-track.js";
import * as ABI from "../../src/hypervisors/npv-abi.js";
import { DEFAULT_TUNABLES } from "../../src/machine/tunables.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { PERM_R, PERM_U, PERM_W, PERM_X } from "../../src/mmu/walker.js";
import { loadGuest } from "../../src/stacks/vm.js";
import { asm, HAVE_AS } from "../helpers/asm.js";
import { elf64At1M } from "../helpers/elf.js";
import { L2_CODE, NpvBed } from "../helpers/npv.js";

const MIB = 1024 * 1024;
const RWX = PERM_R | PERM_W | PERM_X;

function mmuBed() {
  const mem = new PhysicalMemory(64 * MIB);
  const alloc = new HostPageAllocator(mem, 32 * MIB, 64 * MIB);
  const mmu = new HypervisorMmu();
  const ept01 = mmu.newTable(mem, alloc);
  const ept02 = mmu.newTable(mem, alloc);
  const shadow = mmu.newTable(mem, alloc, X86_4LEVEL);
  const flushes = { ept01: 0, ept02: 0, shadow: 0 };
  ept01.flush = () => flushes.ept01++;
  ept02.flush = () => flushes.ept02++;
  shadow.flush = () => flushes.shadow++;
  return { mem, alloc, mmu, ept01, ept02, shadow, flushes };
}

function leaves(t: { forEachLeaf(cb: (va: number, pa: number, perms: number, level: number) => void): void }) {
  const out: [number, number, number][] = [];
  t.forEachLeaf((va, pa, perms) => out.push([va, pa, perms]));
  return out;
}

describe("reverse map", () => {
  it("zapping a frame removes exactly the leaves mapping it, in every table, and flushes each once", () => {
    const { mmu, ept01, ept02, shadow, flushes } = mmuBed();
    const F = 0x10_0000; // the frame being reclaimed
    ept01.map(0x1000, F, RWX);
    ept01.map(0x2000, F + 0x1000, RWX); // the neighbour frame stays
    ept02.map(0x40_0000, F, PERM_R); // an L2 page backed by the same frame
    ept02.map(0x40_1000, F, PERM_R); // aliased twice
    ept02.map(0x50_0000, F + 0x2000, RWX);
    shadow.map(0x7000_0000, F, PERM_R | PERM_U);
    expect(mmu.rmap.size).toBe(6);
    expect(mmu.rmap.mappingsOf(F + 0x123).length).toBe(4);
    expect(mmu.zapFrame(F + 0x123)).toBe(4);
    expect(leaves(ept01)).toEqual([[0x2000, F + 0x1000, RWX]]);
    expect(leaves(ept02)).toEqual([[0x50_0000, F + 0x2000, RWX]]);
    expect(leaves(shadow)).toEqual([]);
    expect(flushes).toEqual({ ept01: 1, ept02: 1, shadow: 1 });
    expect(mmu.rmap.size).toBe(2);
    expect(ept01.leaves + ept02.leaves + shadow.leaves).toBe(2);
    // Nothing maps it any more: a second zap touches nothing and flushes nothing.
    expect(mmu.zapFrame(F)).toBe(0);
    expect(flushes).toEqual({ ept01: 1, ept02: 1, shadow: 1 });
  });

  it("a large leaf is found from any 4 KiB frame inside it and zapped whole", () => {
    const { mmu, ept01, flushes } = mmuBed();
    ept01.map(0x20_0000, 0x60_0000, RWX, 2);
    ept01.map(0x4000_0000, 0x4000_0000, RWX, 3);
    ept01.map(0x1000, 0x60_0000 + 0x1ff000, RWX); // a 4 KiB alias of the 2 MiB leaf's last frame
    expect(mmu.rmap.mappingsOf(0x60_0000 + 0x1ff000).length).toBe(2);
    expect(mmu.zapFrame(0x60_0000 + 0x1ff000)).toBe(2);
    expect(leaves(ept01)).toEqual([[0x4000_0000, 0x4000_0000, RWX]]);
    expect(mmu.zapFrame(0x4000_0000 + 0x3fff_f000)).toBe(1);
    expect(ept01.leaves).toBe(0);
    expect(flushes.ept01).toBe(2);
  });

  it("remapping, protecting and unmapping keep the reverse map exact; destroy empties it", () => {
    const { mmu, ept01 } = mmuBed();
    ept01.map(0x1000, 0x10_0000, RWX);
    ept01.map(0x1000, 0x20_0000, RWX); // remapped to another frame
    expect(mmu.rmap.mappingsOf(0x10_0000)).toEqual([]);
    expect(mmu.rmap.mappingsOf(0x20_0000).map((m) => m.va)).toEqual([0x1000]);
    ept01.protect(0x1000, PERM_R);
    expect(mmu.rmap.size).toBe(1);
    ept01.mapMmio(0x1000); // MMIO markers are not mappings of a frame
    expect(mmu.rmap.size).toBe(0);
    ept01.map(0x3000, 0x30_0000, RWX);
    ept01.map(0x4000, 0x30_0000, RWX);
    expect(ept01.unmap(0x3000)).toBe(true);
    expect(mmu.rmap.mappingsOf(0x30_0000).map((m) => m.va)).toEqual([0x4000]);
    const pages = ept01.destroy();
    expect(pages[0]).toBe(ept01.root);
    expect(pages.length).toBe(4);
    expect(mmu.rmap.size).toBe(0);
  });
});

describe("reverse map under npv", () => {
  it.skipIf(!HAVE_AS)(
    "reclaiming an L1 frame zaps the EPT02 leaf that maps it; L2's next touch composes it again",
    () => {
      const b = new NpvBed();
      const DATA = 0x30000;
      const { vm, vcpu } = b.tinyL2(`
      mov rax, ${DATA}
      mov ebx, dword ptr [rax]
      vmcall
      mov ecx, dword ptr [rax]
      vmcall
    `);
      b.w32(b.backing(DATA), 0xabcd);
      expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_HYPERCALL);
      const l2 = b.engine.l1(b.vm)!.vms.get(vm)!;
      const frame = b.vm.memslots.translate(b.backing(DATA));
      expect(l2.ept.lookup(DATA)?.pa).toBe(frame);
      const leaves = l2.ept.leaves;
      const inval = b.engine.stats()["npv.invalidations"] ?? 0;
      expect(b.l0.mmu.zapFrame(frame)).toBe(1);
      expect(l2.ept.lookup(DATA)).toBeNull();
      expect(l2.ept.leaves).toBe(leaves - 1);
      expect(b.engine.stats()["npv.invalidations"]).toBe(inval + 1); // the L2's TLB entries went too
      const composed = b.engine.stats()["npv.ept02.composed"];
      b.advance();
      expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_HYPERCALL);
      expect(b.gpr(1)).toBe(0xabcd);
      expect(b.engine.stats()["npv.ept02.composed"]).toBe(composed + 1); // an EPT02 miss, composed again
      expect(l2.ept.lookup(DATA)?.pa).toBe(frame);
      expect(b.engine.checkInvariants()).toEqual([]);
    },
  );
});

describe("page tracking", () => {
  it("tracking write-protects every mapping of the frame; new mappings come without W", () => {
    const { mmu, ept01, ept02, flushes } = mmuBed();
    const F = 0x10_0000;
    ept01.map(0x1000, F, RWX);
    ept02.map(0x40_0000, F, RWX);
    ept02.map(0x40_1000, F + 0x1000, RWX);
    const seen: TrackedWrite[] = [];
    const notifier = (w: TrackedWrite) => seen.push(w);
    mmu.trackWrites(F, notifier);
    expect(ept01.lookup(0x1000)?.perms).toBe(PERM_R | PERM_X);
    expect(ept02.lookup(0x40_0000)?.perms).toBe(PERM_R | PERM_X);
    expect(ept02.lookup(0x40_1000)?.perms).toBe(RWX); // the other frame is untouched
    expect(flushes).toEqual({ ept01: 1, ept02: 1, shadow: 0 });
    ept01.map(0x5000, F, RWX);
    expect(ept01.lookup(0x5000)?.perms).toBe(PERM_R | PERM_X);
    ept01.map(0x20_0000, 0, RWX, 2); // a 2 MiB leaf containing the frame is read-only as a whole
    expect(ept01.lookup(0x20_0000 + F)?.perms).toBe(PERM_R | PERM_X);
    // A second tracker of the same frame changes nothing more; untracking both frees it.
    const other = () => {};
    mmu.trackWrites(F, other);
    expect(flushes.ept01).toBe(1);
    mmu.untrackWrites(F, notifier);
    expect(mmu.tracker.isTracked(F)).toBe(true);
    mmu.untrackWrites(F, other);
    expect(mmu.tracker.isTracked(F)).toBe(false);
    ept01.map(0x1000, F, RWX); // the next write fault maps it writable again
    expect(ept01.lookup(0x1000)?.perms).toBe(RWX);
  });

  it.skipIf(!HAVE_AS)("an L2 write to a tracked L1 frame exits, is emulated, reported, and L2 goes on", () => {
    const b = new NpvBed();
    const DATA = 0x30000; // an L2 page inside the boot range, backed by L1 RAM
    const { vm, vcpu } = b.tinyL2(`
      mov rax, ${DATA}
      mov ebx, dword ptr [rax + 8]
      mov dword ptr [rax + 8], 0x12345678
      add dword ptr [rax + 12], 5
      mov ecx, dword ptr [rax + 8]
      vmcall
    `);
    b.w32(b.backing(DATA) + 12, 10);
    const frame = b.vm.memslots.translate(b.backing(DATA));
    const seen: TrackedWrite[] = [];
    b.l0.mmu.trackWrites(frame, (w) => seen.push(w));
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_HYPERCALL);
    expect(seen).toEqual([
      { pa: frame + 8, gpa: DATA + 8, size: 4, lo: 0x12345678, hi: 0 },
      { pa: frame + 12, gpa: DATA + 12, size: 4, lo: 15, hi: 0 },
    ]);
    expect(b.r32(b.backing(DATA) + 8)).toBe(0x12345678);
    expect(b.r32(b.backing(DATA) + 12)).toBe(15);
    expect(b.gpr(1)).toBe(0x12345678); // the read after the write sees it
    const l2 = b.engine.l1(b.vm)!.vms.get(vm)!;
    expect(l2.ept.lookup(DATA)?.perms).toBe(PERM_R | PERM_X); // stays read-only while tracked
    expect(b.engine.stats()["npv.l2_exits.l0.tracked_write"]).toBe(2);
    expect(b.engine.checkInvariants()).toEqual([]);
    expect(L2_CODE).toBeLessThan(DATA);
  });
});

describe("page tracking of a page the L2 already writes", () => {
  it.skipIf(!HAVE_AS)(
    "tracking write-protects the live EPT02 leaf and flushes the L2's TLB: the next write exits",
    () => {
      const b = new NpvBed();
      const DATA = 0x30000;
      const { vm, vcpu } = b.tinyL2(`
      mov rax, ${DATA}
      mov dword ptr [rax], 1
      vmcall
      mov dword ptr [rax], 2
      vmcall
    `);
      expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_HYPERCALL);
      const l2 = b.engine.l1(b.vm)!.vms.get(vm)!;
      expect(l2.ept.lookup(DATA)?.perms).toBe(RWX); // composed writable by the first store
      const frame = b.vm.memslots.translate(b.backing(DATA));
      const inval = b.engine.stats()["npv.invalidations"] ?? 0;
      const seen: TrackedWrite[] = [];
      b.l0.mmu.trackWrites(frame, (w) => seen.push(w));
      expect(l2.ept.lookup(DATA)?.perms).toBe(PERM_R | PERM_X);
      expect(b.engine.stats()["npv.invalidations"]).toBe(inval + 1);
      b.advance();
      expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_HYPERCALL);
      expect(seen).toEqual([{ pa: frame, gpa: DATA, size: 4, lo: 2, hi: 0 }]);
      expect(b.r32(b.backing(DATA))).toBe(2);
    },
  );
});

describe("page tracking under L0 (EPT01)", () => {
  it.skipIf(!HAVE_AS)("a VM's write to a tracked frame is emulated by L0's EPT-violation handler and reported", () => {
    const profile = loadProfile();
    const memory = 16 * MIB;
    const cpu = new Cpu(new PhysicalMemory(DEFAULT_TUNABLES.l0Reserved + memory));
    const l0 = new L0Hypervisor(new VmxHost(cpu), profile);
    cpu.setCostModel(profile.cycles, l0.ledger, 0);
    const vm = l0.createVm({ memory });
    const vcpu = l0.createVcpu(vm);
    const DATA = 0x300000;
    const image = elf64At1M(
      asm(`
        mov rax, ${DATA}
        mov dword ptr [rax + 16], 0x21
        add dword ptr [rax + 16], 0x13
        mov eax, dword ptr [rax + 16]
        out 0xf4, al
      `),
    );
    loadGuest(l0, vcpu, { image, cmdline: "", memory, maxInstructions: 10_000 });
    const frame = vm.memslots.translate(DATA);
    const seen: TrackedWrite[] = [];
    l0.mmu.trackWrites(frame, (w) => seen.push(w));
    const stop = l0.runVcpu(vcpu, 10_000);
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(vm.exitStatus).toBe((0x34 << 1) | 1); // the guest read back 0x21 + 0x13
    expect(seen).toEqual([
      { pa: frame + 16, gpa: DATA + 16, size: 4, lo: 0x21, hi: 0 },
      { pa: frame + 16, gpa: DATA + 16, size: 4, lo: 0x34, hi: 0 },
    ]);
    expect(vm.ept01.lookup(DATA)?.perms).toBe(PERM_R | PERM_X);
    expect(l0.exitCounts().ept_violation).toBeGreaterThanOrEqual(2);
    expect(l0.ledger.lines().find((e) => e.reason === "tracked_write")?.count).toBe(2);
  });
});
