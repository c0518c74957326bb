/**
 * The operand of a VMX instruction an L1 executed, found from what the exit recorded (SDM vol.
 * 3C, 27.2.5 tables 27-13 and 27-14, and 27.2.1): a register, or a memory operand whose linear
 * address is segment base + base + index × scale + displacement (the exit qualification), cut to
 * the address size, then translated through L1's own page tables with the hypervisor MMU's
 * guest-table walker (KVM: get_vmx_mem_address + kvm_read_guest_virt). For an L2's instruction
 * the page tables are L2's and each guest-physical address goes through EPT12 too (`toL1`).
 */

import type { VmxHost } from "../../../cpu/vmx/host.js";
import { ACC_WRITE, FMT_X86 } from "../../../mmu/walker.js";
import { CR0_PG, EFER_LMA } from "../../../x86/control.js";
import { RSP } from "../../../x86/registers.js";
import { AR_L } from "../../../x86/segment-ar.js";
import * as V from "../../../x86/vmx.js";
import { GuestTableWalker } from "../../mmu/guest-walk.js";
import type { L0Hypervisor } from "../l0.js";
import type { Vm } from "../vm.js";

const SEG_BASES = V.VMCS_GUEST_SEGMENT_FIELDS.map((f) => f[1]);

/** The decoded fields of the instruction-information word. */
export function infoReg2(info: number): number {
  return (info >>> 28) & 15;
}
export function infoIsReg(info: number): boolean {
  return (info & (1 << 10)) !== 0;
}
export function infoReg1(info: number): number {
  return (info >>> 3) & 15;
}

/**
 * The guest-physical address space of the instruction's code → L1 guest-physical (-1: not
 * mapped for that access): null for L1's own instructions (the identity).
 */
/** Whether the current VMCS's guest (L1, or an L2) runs 64-bit code: IA32_EFER.LMA and CS.L. */
export function guestLongMode(h: VmxHost): boolean {
  return (h.vmread(V.VMCS_GUEST_IA32_EFER) & EFER_LMA) !== 0 && (h.vmread(V.VMCS_GUEST_CS_AR) & AR_L) !== 0;
}

export type ToL1Physical = ((gpa: number, write: boolean) => number) | null;

/** Reads and writes the registers and memory operands of the current VMCS's guest (L1, or an L2) for the engine. */
export class OperandAccess {
  private readonly walker: GuestTableWalker;
  /** Linear address of the last `address` call, as halves. */
  private linLo = 0;
  private linHi = 0;
  private readonly scratch = new Int32Array(2);

  constructor(
    private readonly l0: L0Hypervisor,
    private readonly vm: Vm,
    private readonly toL1: ToL1Physical = null,
  ) {
    const toHost =
      toL1 === null
        ? (gpa: number) => vm.memslots.translate(gpa)
        : (gpa: number) => {
            const g1 = toL1(gpa, false);
            return g1 < 0 ? -1 : vm.memslots.translate(g1);
          };
    this.walker = new GuestTableWalker(l0.host.mem, FMT_X86, toHost);
  }

  /** True when L1 runs 64-bit code (IA32_EFER.LMA and CS.L): 64-bit operands and registers. */
  longMode(): boolean {
    return guestLongMode(this.l0.host);
  }

  /** Register `r` of L1 into out[0..1] (RSP lives in the VMCS). */
  readReg(r: number, out: Int32Array): void {
    const h = this.l0.host;
    if (r === RSP) {
      out[0] = h.vmread(V.VMCS_GUEST_RSP);
      out[1] = h.vmreadHigh(V.VMCS_GUEST_RSP);
    } else {
      out[0] = h.gprLo[r];
      out[1] = h.gprHi[r];
    }
    if (!this.longMode()) out[1] = 0;
  }

  /** Write register `r` (outside 64-bit mode the 32-bit write zero-extends). */
  writeReg(r: number, lo: number, hi: number): void {
    const h = this.l0.host;
    const hi2 = this.longMode() ? hi : 0;
    if (r === RSP) h.vmwrite(V.VMCS_GUEST_RSP, lo, hi2);
    else {
      h.gprLo[r] = lo;
      h.gprHi[r] = hi2;
    }
  }

  /**
   * The L1 guest-physical address of the memory operand described by `info` and the exit
   * qualification, for an access of `size` bytes (write when `write`); -1 when the guest's page
   * tables (or EPT12) do not map it to L1 RAM, or the operand crosses a page.
   */
  address(info: number, size: number, write: boolean): number {
    const h = this.l0.host;
    const t = this.scratch;
    let lo = h.vmread(V.VMCS_EXIT_QUALIFICATION);
    let hi = h.vmreadHigh(V.VMCS_EXIT_QUALIFICATION);
    const add = (alo: number, ahi: number): void => {
      const s = (lo >>> 0) + (alo >>> 0);
      hi = (hi + ahi + (s > 0xffffffff ? 1 : 0)) | 0;
      lo = s | 0;
    };
    if ((info & (1 << 27)) === 0) {
      this.readReg((info >>> 23) & 15, t);
      add(t[0], t[1]);
    }
    if ((info & (1 << 22)) === 0) {
      this.readReg((info >>> 18) & 15, t);
      const scale = info & 3;
      // index << scale as a 64-bit shift of the halves
      const ilo = t[0] << scale;
      const ihi = scale === 0 ? t[1] : (t[1] << scale) | (t[0] >>> (32 - scale));
      add(ilo, ihi);
    }
    const asize = (info >>> 7) & 7;
    if (asize === 1) hi = 0;
    else if (asize === 0) {
      hi = 0;
      lo &= 0xffff;
    }
    const seg = (info >>> 15) & 7;
    // In 64-bit mode only FS and GS have a base (SDM vol. 3, 3.4.4); the others' is 0.
    if (seg < SEG_BASES.length && (!this.longMode() || seg >= 4)) {
      add(h.vmread(SEG_BASES[seg]), h.vmreadHigh(SEG_BASES[seg]));
      if (!this.longMode()) hi = 0;
    }
    this.linLo = lo;
    this.linHi = hi;
    if ((lo & 0xfff) + size > 4096) return -1;
    const g =
      (h.vmread(V.VMCS_GUEST_CR0) & CR0_PG) === 0
        ? lo >>> 0
        : this.walker.walkLinear(
            h.vmread(V.VMCS_GUEST_CR3),
            h.vmreadHigh(V.VMCS_GUEST_CR3),
            4,
            lo,
            hi,
            write ? ACC_WRITE : 0,
          );
    const g1 = g < 0 || this.toL1 === null ? g : this.toL1(g, write);
    // An operand outside L1 RAM (an MMIO hole) is refused like an unmapped one, never accessed.
    return g1 < 0 || !this.vm.memory.isRam(g1, size) ? -1 : g1;
  }

  /** The linear address of the last `address` call, for messages. */
  linear(): string {
    return `0x${((this.linHi >>> 0) * 4294967296 + (this.linLo >>> 0)).toString(16)}`;
  }

  /** Whether [gpa, gpa + len) is L1 RAM. */
  isRam(gpa: number, len: number): boolean {
    return this.vm.memory.isRam(gpa, len);
  }
}
