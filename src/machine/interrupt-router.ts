import type { InterruptController } from "../cpu/ports.js";
import type { LocalApic } from "../devices/lapic.js";
import type { Pic8259 } from "../devices/pic8259.js";

/**
 * The CPU's view of external interrupts on a PC with one local APIC and the 8259 pair.
 *
 * The 8259's INTR reaches the CPU as an ExtINT through the local APIC's LINT0 pin when LINT0 is
 * unmasked in ExtINT mode (the BSP's reset state, i.e. virtual-wire mode) or when the APIC is
 * hardware-disabled (IA32_APIC_BASE[11] = 0). ExtINT is not subject to the APIC's priority
 * (TPR/PPR), so, as in QEMU's apic_get_interrupt/cpu_get_pic_interrupt, a pending PIC interrupt is
 * taken first; otherwise the highest deliverable fixed interrupt in the APIC's IRR. Either part may
 * be absent (a machine without a PIC, or a PIC-only machine).
 */
export class InterruptRouter implements InterruptController {
  readonly lapic: LocalApic | null;
  readonly pic: Pic8259 | null;
  /** Interrupts delivered from each source. */
  picDeliveries = 0;
  apicDeliveries = 0;

  constructor(lapic: LocalApic | null, pic: Pic8259 | null) {
    this.lapic = lapic;
    this.pic = pic;
  }

  private picRouted(): boolean {
    return this.pic !== null && (this.lapic === null || this.lapic.acceptsPicInterrupts());
  }

  hasPendingInterrupt(): boolean {
    if (this.picRouted() && this.pic?.hasPending()) return true;
    return this.lapic?.hasPending() ?? false;
  }

  hasPendingNmi(): boolean {
    return this.lapic?.nmiPending ?? false;
  }

  acknowledgeNmi(): void {
    if (this.lapic !== null) this.lapic.nmiPending = false;
  }

  acknowledgeInterrupt(): number {
    const pic = this.pic;
    if (pic !== null && this.picRouted() && pic.hasPending()) {
      this.picDeliveries++;
      return pic.acknowledge();
    }
    if (this.lapic !== null) {
      this.apicDeliveries++;
      return this.lapic.acknowledge(); // the spurious vector if nothing is deliverable
    }
    if (pic !== null) return pic.acknowledge(); // spurious IRQ7
    return 0xff;
  }
}
