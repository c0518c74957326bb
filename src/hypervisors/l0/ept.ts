import type { PhysicalMemory } from "../../mmu/phys.js";
import {
  EPT_LARGE,
  EPT_MEMTYPE_WB,
  EPT_R,
  EPT_W,
  EPT_X,
  EPTP_AD_ENABLE,
  EPTP_WALK_4,
  EPTP_WB,
} from "../../x86/vmx-controls.js";
import type { HostPageAllocator } from "./host-pages.js";

const TWO_32 = 4294967296;

/**
 * A 4-level EPT built in host memory by L0 (SDM vol. 3, 28.3.2): EPT01 for a VM, and later
 * EPT02 for nested guests. Tables are allocated on demand; leaves map 4 KiB (or 2 MiB) pages.
 * It counts the entries it writes so the cost model can charge table maintenance.
 */
export class EptBuilder {
  readonly root: number;
  /** Leaf entries currently present. */
  leaves = 0;
  /** Table pages allocated. */
  tables = 1;

  constructor(
    private readonly mem: PhysicalMemory,
    private readonly alloc: HostPageAllocator,
  ) {
    this.root = alloc.page();
  }

  /** EPTP value (WB, 4-level walk, A/D enabled) as a number. */
  eptp(): number {
    return this.root | EPTP_WB | EPTP_WALK_4 | EPTP_AD_ENABLE;
  }

  private entryAddr(table: number, gpa: number, level: number): number {
    const shift = 12 + 9 * (level - 1);
    return table + (Math.floor(gpa / 2 ** shift) % 512) * 8;
  }

  /** Walk to the table at `level` for gpa, allocating intermediate tables. */
  private table(gpa: number, level: number, create: boolean): number {
    let table = this.root;
    for (let l = 4; l > level; l--) {
      const ea = this.entryAddr(table, gpa, l);
      const lo = this.mem.read(ea, 4);
      const hi = this.mem.read(ea + 4, 4);
      if ((lo & 7) === 0) {
        if (!create) return -1;
        const t = this.alloc.page();
        this.tables++;
        this.mem.write(ea, 4, t | EPT_R | EPT_W | EPT_X);
        this.mem.write(ea + 4, 4, Math.floor(t / TWO_32));
        table = t;
      } else {
        if ((lo & EPT_LARGE) !== 0) return -1;
        table = (hi & 0xfffff) * TWO_32 + ((lo & ~0xfff) >>> 0);
      }
    }
    return table;
  }

  /** Map one 4 KiB guest page (or a 2 MiB one with `large`) to host-physical `hpa` with R/W/X `perms`. */
  map(gpa: number, hpa: number, perms: number, large = false): void {
    const level = large ? 2 : 1;
    const t = this.table(gpa, level, true);
    if (t < 0) throw new Error(`EPT: 0x${gpa.toString(16)} is inside a large mapping`);
    const ea = this.entryAddr(t, gpa, level);
    const was = this.mem.read(ea, 4) & 7;
    const lo = ((hpa % TWO_32) & ~0xfff) | (perms & 7) | (perms !== 0 ? EPT_MEMTYPE_WB : 0) | (large ? EPT_LARGE : 0);
    this.mem.write(ea, 4, lo);
    this.mem.write(ea + 4, 4, Math.floor(hpa / TWO_32));
    if (was === 0 && (perms & 7) !== 0) this.leaves++;
  }

  /**
   * Mark a guest page as MMIO the way KVM does: a misconfigured entry (W without R, 28.3.3.1),
   * so every access exits as an EPT misconfiguration without a walk of L0's memslots.
   */
  mapMmio(gpa: number): void {
    const t = this.table(gpa, 1, true);
    const ea = this.entryAddr(t, gpa, 1);
    this.mem.write(ea, 4, EPT_W);
    this.mem.write(ea + 4, 4, 0);
  }

  /** Remove a 4 KiB mapping; returns whether one was present. */
  unmap(gpa: number): boolean {
    const t = this.table(gpa, 1, false);
    if (t < 0) return false;
    const ea = this.entryAddr(t, gpa, 1);
    const present = (this.mem.read(ea, 4) & 7) !== 0;
    this.mem.write(ea, 4, 0);
    this.mem.write(ea + 4, 4, 0);
    if (present) this.leaves--;
    return present;
  }

  /** The leaf for gpa: host-physical address and permissions, or null. */
  lookup(gpa: number): { hpa: number; perms: number } | null {
    let table = this.root;
    for (let l = 4; l >= 1; l--) {
      const ea = this.entryAddr(table, gpa, l);
      const lo = this.mem.read(ea, 4);
      const hi = this.mem.read(ea + 4, 4);
      if ((lo & 7) === 0 || (lo & 3) === 2) return null;
      const base = (hi & 0xfffff) * TWO_32 + ((lo & ~0xfff) >>> 0);
      if (l === 1 || (lo & EPT_LARGE) !== 0) {
        const size = 2 ** (12 + 9 * (l - 1));
        return { hpa: base - (base % size) + (gpa % size), perms: lo & 7 };
      }
      table = base;
    }
    return null;
  }

  /** Every present 4 KiB leaf as (gpa, hpa, perms) — for invariant checks and tests. */
  forEachLeaf(cb: (gpa: number, hpa: number, perms: number) => void): void {
    const walk = (table: number, level: number, base: number): void => {
      for (let i = 0; i < 512; i++) {
        const ea = table + i * 8;
        const lo = this.mem.read(ea, 4);
        if ((lo & 7) === 0) continue;
        const hi = this.mem.read(ea + 4, 4);
        const addr = (hi & 0xfffff) * TWO_32 + ((lo & ~0xfff) >>> 0);
        const gpa = base + i * 2 ** (12 + 9 * (level - 1));
        if (level === 1 || (lo & EPT_LARGE) !== 0) cb(gpa, addr, lo & 7);
        else walk(addr, level - 1, gpa);
      }
    };
    walk(this.root, 4, 0);
  }
}
