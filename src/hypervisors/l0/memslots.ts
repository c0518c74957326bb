/**
 * Memslots, as KVM has them: guest-physical ranges backed by host-physical ranges. A guest-physical
 * address outside every slot is MMIO (or nothing) and is handled by emulation.
 */
export interface Memslot {
  gpa: number;
  size: number;
  hpa: number;
}

export class MemslotTable {
  readonly slots: Memslot[] = [];

  add(slot: Memslot): void {
    for (const s of this.slots) {
      if (slot.gpa < s.gpa + s.size && s.gpa < slot.gpa + slot.size)
        throw new Error(`memslot at 0x${slot.gpa.toString(16)} overlaps another`);
    }
    this.slots.push(slot);
  }

  /** Host-physical address of `gpa`, or -1 when no slot covers it. */
  translate(gpa: number): number {
    for (let k = 0; k < this.slots.length; k++) {
      const s = this.slots[k];
      if (gpa >= s.gpa && gpa < s.gpa + s.size) return s.hpa + (gpa - s.gpa);
    }
    return -1;
  }

  /** True when [gpa, gpa+len) lies inside one slot. */
  contains(gpa: number, len: number): boolean {
    for (const s of this.slots) if (gpa >= s.gpa && gpa + len <= s.gpa + s.size) return true;
    return false;
  }
}
