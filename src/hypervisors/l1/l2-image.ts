/**
 * Preparing an L2 the way L1's userspace VMM would before its first RUN: the guest kernel is
 * loaded through nestlab's direct 64-bit boot (the only entry an npv L2 can take) into a scratch
 * machine of the L2's size; L1 then copies the pages the loader touched into L1 pages of its own
 * and reads the entry state off the scratch CPU for VCPU_CREATE.
 */
import { Cpu } from "../../cpu/cpu.js";
import { bootDirect64 } from "../../machine/boot.js";
import { PhysicalMemory } from "../../mmu/phys.js";
import type { L2VcpuState } from "./npv-client.js";

export interface L2Image {
  /** The loader's pages: L2 pfn → contents (4 KiB each), in pfn order. */
  pages: Array<{ pfn: number; bytes: Uint8Array }>;
  state: L2VcpuState;
  entry: number;
}

const hl = (lo: number, hi: number): number => (hi >>> 0) * 4294967296 + (lo >>> 0);

export function loadL2Image(image: Uint8Array, cmdline: string, memory: number): L2Image {
  const scratch = new Cpu(new PhysicalMemory(memory));
  const boot = bootDirect64(scratch, image, cmdline);
  const pages: Array<{ pfn: number; bytes: Uint8Array }> = [];
  scratch.mem.forEachPage((pfn, page) => {
    pages.push({ pfn, bytes: new Uint8Array(page.buffer, page.byteOffset, 4096).slice() });
  });
  const c = scratch;
  const gprs: Array<[number, number]> = [];
  for (let r = 0; r < 16; r++) gprs.push([c.lo[r] >>> 0, c.hi[r] >>> 0]);
  const state: L2VcpuState = {
    rip: hl(c.ripLo, c.ripHi),
    rsp: hl(c.lo[4], c.hi[4]),
    rflags: c.getFlags() >>> 0,
    cr0: c.cr0 >>> 0,
    cr3: hl(c.cr3Lo, c.cr3Hi),
    cr4: c.cr4 >>> 0,
    efer: c.efer >>> 0,
    gdtrBase: hl(c.gdtrBaseLo, c.gdtrBaseHi),
    gdtrLimit: c.gdtrLimit & 0xffff,
    gprs,
    cs: c.segSel[1] & 0xffff,
    ss: c.segSel[2] & 0xffff,
    ds: c.segSel[3] & 0xffff,
  };
  return { pages, state, entry: boot.entry };
}
