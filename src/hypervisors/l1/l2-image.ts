/**
 * Preparing an L2 the way L1's userspace VMM would before its first RUN: the guest kernel is
 * loaded through nestlab's direct 64-bit boot (the only entry an npv L2 can take); L1 copies the
 * loader's pages into L1 pages of its own and takes the entry state for VCPU_CREATE.
 */
import { loadDirect64 } from "../../machine/boot.js";
import type { L2VcpuState } from "./npv-client.js";

export interface L2Image {
  /** The loader's pages: L2 pfn → contents (4 KiB each), in pfn order. */
  pages: Array<{ pfn: number; bytes: Uint8Array }>;
  state: L2VcpuState;
  entry: number;
}

const hl = (lo: number, hi: number): number => (hi >>> 0) * 4294967296 + (lo >>> 0);

export function loadL2Image(image: Uint8Array, cmdline: string, memory: number): L2Image {
  const boot = loadDirect64(image, cmdline, memory);
  const s = boot.state;
  const gprs: Array<[number, number]> = [];
  for (let r = 0; r < 16; r++) gprs.push([s.gprLo[r] >>> 0, s.gprHi[r] >>> 0]);
  const state: L2VcpuState = {
    rip: hl(s.ripLo, s.ripHi),
    rsp: hl(s.gprLo[4], s.gprHi[4]),
    rflags: s.rflags >>> 0,
    cr0: s.cr0 >>> 0,
    cr3: hl(s.cr3Lo, s.cr3Hi),
    cr4: s.cr4 >>> 0,
    efer: s.efer >>> 0,
    gdtrBase: hl(s.gdtr.baseLo, s.gdtr.baseHi),
    gdtrLimit: s.gdtr.limit & 0xffff,
    gprs,
    cs: s.segs[1].sel & 0xffff,
    ss: s.segs[2].sel & 0xffff,
    ds: s.segs[3].sel & 0xffff,
  };
  return { pages: s.pages, state, entry: boot.entry };
}
