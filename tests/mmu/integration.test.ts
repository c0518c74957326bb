import { describe, expect, it } from "vitest";
import type { Cpu } from "../../src/cpu/cpu.js";
import { MC, type MmuCounterName } from "../../src/mmu/counters.js";
import { HAVE_AS } from "../helpers/asm.js";
import { reg, run64 } from "../helpers/machine.js";

/**
 * Real code on the Cpu: a loop touching `pages` distinct 4 KiB pages at linear 512 GiB
 * (PML4 slot 1, mapped here with 4 KiB pages to physical 4 MiB+), `passes` times.
 */
const LINEAR = 0x80_0000_0000;
const PDPT = 0x600000;
const PD = 0x601000;
const PT = 0x602000;
const FRAMES = 0x400000;

function mapTouchRegion(c: Cpu): void {
  const m = c.mem;
  const pml4 = c.cr3Lo & ~0xfff;
  for (let k = 0; k < 3 * 4096; k += 4) m.write(PDPT + k, 4, 0);
  m.write64(pml4 + 8, PDPT | 3, 0);
  m.write64(PDPT, PD | 3, 0);
  m.write64(PD, PT | 3, 0);
  for (let n = 0; n < 512; n++) m.write64(PT + n * 8, (FRAMES + n * 4096) | 3, 0);
  c.mmu.resetCounters();
}

function touch(pages: number, passes: number): Cpu {
  return run64(
    `
    mov esi, ${passes}
  2:
    mov rbx, ${LINEAR}
    mov ecx, ${pages}
  1:
    mov rax, [rbx]
    add rbx, 4096
    dec ecx
    jnz 1b
    dec esi
    jnz 2b`,
    mapTouchRegion,
  );
}

const get = (c: Cpu, n: MmuCounterName) => c.mmu.stats()[MC[n]];

describe.skipIf(!HAVE_AS)("MMU counters on real code", () => {
  it("100 distinct pages: 100 DTLB misses, 100 STLB misses, 100 walks (1 + 99 PDE-cache hits)", () => {
    const c = touch(100, 1);
    expect(get(c, "dtlb_accesses")).toBe(100);
    expect(get(c, "dtlb_misses")).toBe(100);
    expect(get(c, "dtlb_hits")).toBe(0);
    expect(get(c, "stlb_d_misses")).toBe(100);
    expect(get(c, "walks_d")).toBe(100);
    expect(get(c, "psc_hits_pde")).toBe(99);
    // The code page (a 2 MiB identity page): one ITLB miss, one 3-reference walk.
    expect(get(c, "itlb_misses")).toBe(1);
    expect(get(c, "walks_i")).toBe(1);
    expect(get(c, "walk_refs")).toBe(3 + 4 + 99);
    expect(get(c, "itlb_accesses")).toBe(c.icount);
    expect(get(c, "itlb_hits")).toBe(c.icount - 1);
    expect(reg(c, 3)).toBe(BigInt(LINEAR + 100 * 4096));
  });
  it("re-touching 100 pages: they no longer fit the 64-entry DTLB but hit the STLB (no walks)", () => {
    const c = touch(100, 2);
    expect(get(c, "dtlb_accesses")).toBe(200);
    expect(get(c, "dtlb_misses")).toBe(200);
    expect(get(c, "stlb_d_hits")).toBe(100);
    expect(get(c, "walks_d")).toBe(100);
    // The software TLB (256 entries) could hold them all: the model made the CPU drop evicted pages.
    expect(get(c, "l1_evictions")).toBeGreaterThanOrEqual(136);
  });
  it("re-touching 48 pages (3 per DTLB set): every second-pass access hits", () => {
    const c = touch(48, 2);
    expect(get(c, "dtlb_accesses")).toBe(96);
    expect(get(c, "dtlb_misses")).toBe(48);
    expect(get(c, "dtlb_hits")).toBe(48);
    expect(get(c, "walks_d")).toBe(48);
    expect(get(c, "stlb_d_hits")).toBe(0);
  });
  it("INVLPG and MOV CR3 executed by the guest invalidate the model", () => {
    const c = run64(
      `
      mov rbx, ${LINEAR}
      mov rax, [rbx]
      invlpg [rbx]
      mov rax, [rbx]
      mov rdx, cr3
      mov cr3, rdx
      mov rax, [rbx]
      mov rax, [rbx]`,
      mapTouchRegion,
    );
    expect(get(c, "dtlb_accesses")).toBe(4);
    expect(get(c, "dtlb_misses")).toBe(3);
    expect(get(c, "walks_d")).toBe(3);
    expect(get(c, "inval_invlpg")).toBe(1);
    expect(get(c, "inval_cr3")).toBe(1);
  });
});
