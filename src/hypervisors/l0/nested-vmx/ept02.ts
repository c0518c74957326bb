/**
 * EPT02: the table L2 really runs on, a shadow of EPT12 ∘ (L1 guest-physical → host-physical),
 * built on EPT02 misses (KVM's nested TDP MMU with the EPT flavour of paging_tmpl.h): walk L1's
 * EPT12 in L1 memory with the hypervisor MMU's guest-table walker; when EPT12 maps the address
 * with the access's rights, map the 4 KiB page in EPT02 with EPT12's rights to the frame backing
 * the L1 page; otherwise the violation (or misconfiguration) is L1's.
 *
 * EPT02 only ever holds leaves EPT12 had: a new EPT12 entry needs nothing (the next miss finds
 * it); a removed or weakened one is dropped at L1's INVEPT, which the architecture requires
 * before L1 may rely on it (SDM vol. 3C, 29.4.3.1), by zapping EPT02 whole.
 */
import { FAULT_EPT_MISCONFIG, FAULT_EPT_VIOLATION, FMT_EPT } from "../../../mmu/walker.js";
import { GuestTableWalker } from "../../mmu/guest-walk.js";
import type { PageTableBuilder } from "../../mmu/page-table.js";
import type { L0Hypervisor } from "../l0.js";
import type { Vm } from "../vm.js";

/** Outcome of an EPT02 miss. */
export const EPT02_MAPPED = 0;
export const EPT02_L1_VIOLATION = 1;
export const EPT02_L1_MISCONFIG = 2;
export const EPT02_NOT_RAM = 3;

export class Ept02 {
  table: PageTableBuilder;
  private readonly walker: GuestTableWalker;
  /** Qualification of the last L1 violation (table 28-7, as EPT12 says it). */
  qualification = 0;
  /** Leaves built and zaps done. */
  built = 0;
  zaps = 0;
  /** Entries the last EPT12 walk read (charged as mmu.walk_ref). */
  lastRefs = 0;

  constructor(
    private readonly l0: L0Hypervisor,
    private readonly vm: Vm,
    private readonly vpid: number,
  ) {
    this.walker = new GuestTableWalker(l0.host.mem, FMT_EPT, (gpa) => vm.memslots.translate(gpa));
    this.table = this.newTable();
  }

  private newTable(): PageTableBuilder {
    const t = this.l0.mmu.newTable(this.l0.host.mem, this.l0.alloc);
    t.flush = () => this.l0.host.invalidateVpid(this.vpid);
    return t;
  }

  /** An EPT02 miss at L2 guest-physical `gpa` for an access of EPT R/W/X bits `access`. */
  miss(eptp12Lo: number, eptp12Hi: number, gpa: number, access: number): number {
    const w = this.walker;
    const gpa1 = w.walkEpt(eptp12Lo, eptp12Hi, gpa, access);
    this.lastRefs = w.refs;
    if (gpa1 < 0) {
      const f = w.walker.fault;
      if (f === FAULT_EPT_MISCONFIG) return EPT02_L1_MISCONFIG;
      if (f !== FAULT_EPT_VIOLATION) return EPT02_NOT_RAM; // an EPT12 table outside L1 RAM
      this.qualification = w.walker.qualification;
      return EPT02_L1_VIOLATION;
    }
    const page1 = gpa1 - (gpa1 % 4096);
    const hpa = this.vm.memslots.translate(page1);
    if (hpa < 0) return EPT02_NOT_RAM;
    this.table.map(gpa - (gpa % 4096), hpa, w.walker.perm & 7);
    this.built++;
    return EPT02_MAPPED;
  }

  /** Drop every EPT02 leaf (L1's INVEPT, or a new EPTP12) and flush L2's TLB entries. */
  zap(): void {
    this.table.destroy();
    this.table = this.newTable();
    this.l0.host.invalidateVpid(this.vpid);
    this.zaps++;
  }
}
