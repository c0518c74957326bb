/**
 * The device window L0 emulates a write to a tracked frame through: reads come from the frame,
 * writes go to it and are then reported to the frame's notifiers (KVM: emulator_write_phys +
 * kvm_page_track_write). The CPU routes the faulting guest-physical page here during the one
 * emulated instruction (VmxHost.emulateMmioInstruction).
 */
import type { MmioHandler } from "../../cpu/ports.js";
import type { PhysicalMemory } from "../../mmu/phys.js";
import type { PageTracker } from "./page-track.js";

export class WriteThroughWindow implements MmioHandler {
  private gpaPage = 0;
  /** Host-physical frame being emulated (-1: none; accesses then read ones and are dropped). */
  private frame = -1;

  constructor(
    private readonly mem: PhysicalMemory,
    private readonly tracker: PageTracker,
    readonly base: number,
  ) {}

  target(gpaPage: number, frame: number): void {
    this.gpaPage = gpaPage;
    this.frame = frame;
  }

  mmioRead(offset: number, size: 1 | 2 | 4 | 8): number {
    if (this.frame < 0) return 0xffffffff;
    return this.mem.read(this.frame + offset, size === 8 ? 4 : size);
  }

  mmioWrite(offset: number, size: 1 | 2 | 4 | 8, value: number, valueHi: number): void {
    if (this.frame < 0) return;
    const pa = this.frame + offset;
    if (size === 8) {
      this.mem.write(pa, 4, value);
      this.mem.write(pa + 4, 4, valueHi);
    } else this.mem.write(pa, size, value);
    this.tracker.notify({ pa, gpa: this.gpaPage + offset, size, lo: value >>> 0, hi: size === 8 ? valueHi >>> 0 : 0 });
  }
}
