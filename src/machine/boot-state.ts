/**
 * A boot state: what a boot loader hands over — the pages it wrote and the entry state of the
 * boot CPU (registers, segments, control registers). The loaders produce it without a CPU; the
 * bare machine loads it into its CPU (`loadBootState`), a hypervisor into a VMCS and its guest
 * RAM, an L1 into its L2's initial-state page.
 */
import type { Cpu } from "../cpu/cpu.js";
import { setSegment } from "../cpu/segments.js";
import type { PhysicalMemory } from "../mmu/phys.js";

/** A segment register's selector and hidden part (access rights in VMCS format). */
export interface SegmentState {
  sel: number;
  baseLo: number;
  baseHi: number;
  limit: number;
  ar: number;
}

export interface BootState {
  /** General-purpose registers RAX..R15 as 32-bit halves. */
  readonly gprLo: Int32Array;
  readonly gprHi: Int32Array;
  ripLo: number;
  ripHi: number;
  rflags: number;
  cr0: number;
  cr3Lo: number;
  cr3Hi: number;
  cr4: number;
  efer: number;
  /** ES, CS, SS, DS, FS, GS. */
  readonly segs: SegmentState[];
  gdtr: { baseLo: number; baseHi: number; limit: number };
  idtr: { baseLo: number; baseHi: number; limit: number };
  tr: SegmentState;
  ldtr: SegmentState;
  dr7Lo: number;
  dr7Hi: number;
  patLo: number;
  patHi: number;
  /** The pages the loader wrote: physical frame number → 4 KiB contents, in frame order. */
  pages: Array<{ pfn: number; bytes: Uint8Array }>;
}

/**
 * The boot CPU's state at reset on nestlab's PC (which starts in flat 32-bit protected mode:
 * real mode is out of scope): CR0 = CD|NW|ET|PE, flat 4 GiB segments, TR a busy 32-bit TSS
 * (SDM vol. 3, table 10-1, with protected mode on), RFLAGS bit 1, PAT at its power-up value.
 * These are the values `Cpu`'s constructor gives; tests/machine/boot-state.test.ts keeps them equal.
 */
export function resetBootState(): BootState {
  const flat = (ar: number): SegmentState => ({ sel: 0, baseLo: 0, baseHi: 0, limit: 0xffffffff, ar });
  return {
    gprLo: new Int32Array(16),
    gprHi: new Int32Array(16),
    ripLo: 0,
    ripHi: 0,
    rflags: 0x2,
    cr0: 0x60000011,
    cr3Lo: 0,
    cr3Hi: 0,
    cr4: 0,
    efer: 0,
    segs: [flat(0xc093), flat(0xc09b), flat(0xc093), flat(0xc093), flat(0xc093), flat(0xc093)],
    gdtr: { baseLo: 0, baseHi: 0, limit: 0xffff },
    idtr: { baseLo: 0, baseHi: 0, limit: 0xffff },
    tr: { sel: 0, baseLo: 0, baseHi: 0, limit: 0xffff, ar: 0x8b },
    ldtr: { sel: 0, baseLo: 0, baseHi: 0, limit: 0xffff, ar: 0 },
    dr7Lo: 0, // as nestlab's CPU resets it (the SDM's reset value is 0x400)
    dr7Hi: 0,
    patLo: 0x00070406,
    patHi: 0x00070406,
    pages: [],
  };
}

/**
 * The pages a loader wrote into its scratch memory, in frame order. The state takes the pages'
 * buffers over rather than copying them: the scratch memory is the loader's own and is dropped
 * when the loader returns (whoever loads the state copies the bytes into its RAM).
 */
export function writtenPages(scratch: PhysicalMemory): Array<{ pfn: number; bytes: Uint8Array }> {
  const pages: Array<{ pfn: number; bytes: Uint8Array }> = [];
  scratch.forEachPage((pfn, page) => {
    pages.push({ pfn, bytes: new Uint8Array(page.buffer, page.byteOffset, 4096) });
  });
  return pages;
}

/** The bare machine takes a boot state: its pages into RAM, its registers into the CPU. */
export function loadBootState(c: Cpu, s: BootState): void {
  for (const p of s.pages) c.mem.writeBytes(p.pfn * 4096, p.bytes);
  loadBootRegisters(c, s);
}

/** The register part of a boot state into the CPU (memory untouched). */
export function loadBootRegisters(c: Cpu, s: BootState): void {
  c.lo.set(s.gprLo);
  c.hi.set(s.gprHi);
  c.ripLo = s.ripLo;
  c.ripHi = s.ripHi;
  c.cr0 = s.cr0;
  c.cr3Lo = s.cr3Lo;
  c.cr3Hi = s.cr3Hi;
  c.cr4 = s.cr4;
  c.efer = s.efer;
  for (let k = 0; k < 6; k++) {
    const g = s.segs[k];
    setSegment(c, k, g.sel, g.baseLo, g.baseHi, g.limit, g.ar);
  }
  c.gdtrBaseLo = s.gdtr.baseLo;
  c.gdtrBaseHi = s.gdtr.baseHi;
  c.gdtrLimit = s.gdtr.limit;
  c.idtrBaseLo = s.idtr.baseLo;
  c.idtrBaseHi = s.idtr.baseHi;
  c.idtrLimit = s.idtr.limit;
  c.trSel = s.tr.sel;
  c.trBaseLo = s.tr.baseLo;
  c.trBaseHi = s.tr.baseHi;
  c.trLimit = s.tr.limit;
  c.trAr = s.tr.ar;
  c.ldtrSel = s.ldtr.sel;
  c.ldtrBaseLo = s.ldtr.baseLo;
  c.ldtrBaseHi = s.ldtr.baseHi;
  c.ldtrLimit = s.ldtr.limit;
  c.drLo[7] = s.dr7Lo;
  c.drHi[7] = s.dr7Hi;
  c.patLo = s.patLo;
  c.patHi = s.patHi;
  c.setFlags(s.rflags);
  c.setCpl((s.segs[2].ar >>> 5) & 3); // CPL = SS.DPL
  c.updateMode();
  c.flushTlb();
}

/** The CPU's current register state as a boot state (no pages): to edit and load back. */
export function cpuBootState(c: Cpu): BootState {
  const seg = (k: number): SegmentState => ({
    sel: c.segSel[k],
    baseLo: c.segBaseLo[k],
    baseHi: c.segBaseHi[k],
    limit: c.segLimit[k],
    ar: c.segAr[k],
  });
  return {
    gprLo: c.lo.slice(),
    gprHi: c.hi.slice(),
    ripLo: c.ripLo,
    ripHi: c.ripHi,
    rflags: c.getFlags(),
    cr0: c.cr0,
    cr3Lo: c.cr3Lo,
    cr3Hi: c.cr3Hi,
    cr4: c.cr4,
    efer: c.efer,
    segs: [0, 1, 2, 3, 4, 5].map(seg),
    gdtr: { baseLo: c.gdtrBaseLo, baseHi: c.gdtrBaseHi, limit: c.gdtrLimit },
    idtr: { baseLo: c.idtrBaseLo, baseHi: c.idtrBaseHi, limit: c.idtrLimit },
    tr: { sel: c.trSel, baseLo: c.trBaseLo, baseHi: c.trBaseHi, limit: c.trLimit, ar: c.trAr },
    ldtr: { sel: c.ldtrSel, baseLo: c.ldtrBaseLo, baseHi: c.ldtrBaseHi, limit: c.ldtrLimit, ar: 0 },
    dr7Lo: c.drLo[7],
    dr7Hi: c.drHi[7],
    patLo: c.patLo,
    patHi: c.patHi,
    pages: [],
  };
}
