/**
 * Page-table builders for the MMU tests (tests only: BigInt allowed here).
 * `Tables` writes x86-64 or EPT structures into PhysicalMemory, allocating table pages from a
 * bump allocator. `hostOffset` places every table at guestPhysical + hostOffset (a guest's
 * tables as seen in host memory under an EPT that maps GPA x to HPA x + hostOffset).
 */

import type { PhysicalMemory } from "../../src/mmu/phys.js";
import type { PagingControls } from "../../src/mmu/walker.js";

export const P = 1n,
  RW = 2n,
  US = 4n,
  PWT = 8n,
  PCD = 16n,
  A = 32n,
  D = 64n,
  PS = 128n,
  G = 256n,
  NX = 1n << 63n;
export const ER = 1n,
  EW = 2n,
  EX = 4n,
  EWB = 6n << 3n, // memory type WB
  ELARGE = 128n,
  EA = 256n,
  ED = 512n;

export function halves(v: bigint): [number, number] {
  const u = BigInt.asUintN(64, v);
  return [Number(u & 0xffffffffn) | 0, Number(u >> 32n) | 0];
}

export function ctl(over: Partial<PagingControls> = {}): PagingControls {
  return { wp: true, nxe: true, smep: false, smap: false, ac: false, la57: false, ...over };
}

export class Tables {
  constructor(
    readonly mem: PhysicalMemory,
    private next: number,
    readonly ept = false,
    readonly hostOffset = 0,
  ) {}

  /** A zeroed table page; returns its (guest-)physical address. */
  alloc(): number {
    const a = this.next;
    this.next += 4096;
    for (let k = 0; k < 4096; k += 4) this.mem.write(a + this.hostOffset + k, 4, 0);
    return a;
  }

  read(addr: number): bigint {
    const h = this.hostOffset;
    return (BigInt(this.mem.read(addr + h + 4, 4) >>> 0) << 32n) | BigInt(this.mem.read(addr + h, 4) >>> 0);
  }

  write(addr: number, v: bigint): void {
    const [lo, hi] = halves(v);
    this.mem.write64(addr + this.hostOffset, lo, hi);
  }

  /** Default flags of intermediate entries. */
  get inner(): bigint {
    return this.ept ? ER | EW | EX : P | RW | US;
  }

  /**
   * Map `va` (linear or guest-physical) to `pa` with a leaf at `leafLevel` (1: 4 KiB, 2: 2 MiB,
   * 3: 1 GiB) and `flags`; intermediate entries get `inner`. Returns the entry addresses by level.
   */
  map(root: number, va: bigint, pa: bigint, flags: bigint, leafLevel = 1, levels = 4, inner = this.inner): number[] {
    const entries: number[] = [];
    let table = root;
    for (let level = levels; level >= leafLevel; level--) {
      const shift = BigInt(12 + 9 * (level - 1));
      const idx = Number((va >> shift) & 0x1ffn);
      const ea = table + idx * 8;
      entries[level] = ea;
      if (level === leafLevel) {
        const large = leafLevel > 1 ? (this.ept ? ELARGE : PS) : 0n;
        this.write(ea, pa | flags | large);
        break;
      }
      let e = this.read(ea);
      if ((e & (this.ept ? 7n : 1n)) === 0n) {
        const t = this.alloc();
        e = BigInt(t) | inner;
        this.write(ea, e);
      }
      table = Number(e & 0xffffffffff000n);
    }
    return entries;
  }
}

/** Entry addresses (by level) of the walk of `va`, without changing anything. */
export function entryAddrs(t: Tables, root: number, va: bigint, leafLevel = 1, levels = 4): number[] {
  const out: number[] = [];
  let table = root;
  for (let level = levels; level >= leafLevel; level--) {
    const ea = table + Number((va >> BigInt(12 + 9 * (level - 1))) & 0x1ffn) * 8;
    out[level] = ea;
    table = Number(t.read(ea) & 0xffffffffff000n);
  }
  return out;
}

/** Identity-ish EPT: map GPA [0, bytes) to HPA gpa + offset with 4 KiB (or 2 MiB) pages. */
export function buildEpt(t: Tables, root: number, bytes: number, offset: number, large = false, levels = 4): void {
  const step = large ? 0x200000 : 0x1000;
  for (let g = 0; g < bytes; g += step) {
    t.map(root, BigInt(g), BigInt(g + offset), ER | EW | EX | EWB, large ? 2 : 1, levels);
  }
}
