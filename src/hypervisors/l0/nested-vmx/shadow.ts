/**
 * VMCS shadowing for an L1 (`nvmx-shadow`; SDM vol. 3C 24.10, 24.6.15; KVM: enable_shadow_vmcs in
 * nested.c). L0 gives each L1 vCPU one shadow VMCS and points VMCS01's link pointer at it while a
 * VMCS12 is current, with VMREAD/VMWRITE bitmaps whose clear bits are the shadowed fields: L1's
 * VMREAD of such a field (VMWRITE for a read/write one) runs in hardware on the shadow VMCS and
 * does not exit; every other VMX instruction still traps to L0. The shadow VMCS and VMCS12 are
 * kept in sync as KVM does: VMCS12 → shadow after L0 changed VMCS12 (VMPTRLD, a reflected exit:
 * copy_vmcs12_to_shadow), shadow → VMCS12 before L0 reads it (VMLAUNCH/VMRESUME, VMCLEAR,
 * VMPTRLD of another, VMXOFF: copy_shadow_to_vmcs12, read/write fields only).
 *
 * The shadowed fields are KVM's list (arch/x86/kvm/vmx/vmcs_shadow_fields.h, read here, own list)
 * restricted to the fields nestlab's VMCS12 has: GUEST_INTR_STATUS, GUEST_PML_INDEX and
 * TPR_THRESHOLD are left out with the features they belong to. As KVM, no field L0 changes while
 * emulating a VMX instruction (the VM-instruction error) is shadowed.
 */
import type { Vmcs } from "../../../cpu/vmx/vmcs.js";
import * as V from "../../../x86/vmx.js";
import * as C from "../../../x86/vmx-controls.js";
import type { L0Hypervisor } from "../l0.js";
import type { GuestVcpu } from "../vcpu.js";
import { slotOf, type Vmcs12Cache } from "./vmcs12.js";

const has = (f: number) => slotOf(f) !== null;

/** Fields L1 reads without an exit but writes only through L0 (KVM's SHADOW_FIELD_RO). */
export const SHADOW_RO: readonly number[] = [
  V.VMCS_EXIT_REASON,
  V.VMCS_EXIT_INTR_INFO,
  V.VMCS_EXIT_INSTRUCTION_LENGTH,
  V.VMCS_IDT_VECTORING_INFO,
  V.VMCS_IDT_VECTORING_ERROR_CODE,
  V.VMCS_EXIT_INTR_ERROR_CODE,
  V.VMCS_GUEST_CS_AR,
  V.VMCS_GUEST_SS_AR,
  V.VMCS_EXIT_QUALIFICATION,
  V.VMCS_GUEST_LINEAR_ADDRESS,
  V.VMCS_GUEST_PHYSICAL_ADDRESS,
  V.VMCS_GUEST_PHYSICAL_ADDRESS + 1, // the high-access encoding (KVM lists _HIGH too)
].filter(has);

/** Fields L1 reads and writes without an exit (KVM's SHADOW_FIELD_RW). */
export const SHADOW_RW: readonly number[] = [
  V.VMCS_HOST_FS_SELECTOR,
  V.VMCS_HOST_GS_SELECTOR,
  V.VMCS_PROC_BASED_CONTROLS,
  V.VMCS_PIN_BASED_CONTROLS,
  V.VMCS_EXCEPTION_BITMAP,
  V.VMCS_ENTRY_EXCEPTION_ERROR_CODE,
  V.VMCS_ENTRY_INTR_INFO,
  V.VMCS_ENTRY_INSTRUCTION_LENGTH,
  V.VMCS_GUEST_INTERRUPTIBILITY,
  V.VMCS_PREEMPTION_TIMER_VALUE,
  V.VMCS_GUEST_RIP,
  V.VMCS_GUEST_RSP,
  V.VMCS_GUEST_CR0,
  V.VMCS_GUEST_CR3,
  V.VMCS_GUEST_CR4,
  V.VMCS_GUEST_RFLAGS,
  V.VMCS_CR0_GUEST_HOST_MASK,
  V.VMCS_CR0_READ_SHADOW,
  V.VMCS_CR4_READ_SHADOW,
  V.VMCS_HOST_FS_BASE,
  V.VMCS_HOST_GS_BASE,
].filter(has);

const SHADOW_ALL = [...SHADOW_RO, ...SHADOW_RW];
/** The full-width fields (the high-access encoding is the same VMCS12 slot). */
const COPY_ALL = SHADOW_ALL.filter((f) => slotOf(f)?.high !== true);
const COPY_RW = SHADOW_RW.filter((f) => slotOf(f)?.high !== true);

const half = new Int32Array(2);

/** A bitmap page (4 KiB, one bit per field encoding bits 14:0): all ones but `fields`. */
function bitmap(l0: L0Hypervisor, fields: readonly number[]): number {
  const page = l0.alloc.page();
  const mem = l0.host.mem;
  for (let o = 0; o < 4096; o += 4) mem.write(page + o, 4, -1);
  for (const f of fields) mem.write(page + (f >>> 3), 1, mem.read(page + (f >>> 3), 1) & ~(1 << (f & 7)));
  return page;
}

/** One L1 vCPU's shadow VMCS and the bitmaps L0 gives it. */
export class ShadowVmcs {
  readonly vmcs: Vmcs;
  private readonly hpa: number;
  private readonly readBitmap: number;
  private readonly writeBitmap: number;
  /** Syncs done (each way) and fields copied. */
  syncs = 0;
  fieldsCopied = 0;

  constructor(private readonly l0: L0Hypervisor) {
    const h = l0.host;
    this.vmcs = h.newVmcs();
    this.vmcs.shadow = true;
    this.hpa = l0.alloc.page();
    h.activateShadowVmcs(this.vmcs, this.hpa);
    this.readBitmap = bitmap(l0, SHADOW_ALL);
    this.writeBitmap = bitmap(l0, SHADOW_RW);
  }

  /**
   * In the current VMCS (L1's VMCS01), as KVM's set_current_vmptr / vmx_disable_shadow_vmcs:
   * while a VMCS12 is current (`linked`), VMCS shadowing on, the bitmaps, the link pointer at
   * the shadow VMCS; otherwise shadowing off and the link pointer all ones (every VMREAD/VMWRITE
   * exits).
   */
  link(linked: boolean): void {
    const h = this.l0.host;
    const proc2 = h.vmread(V.VMCS_PROC_BASED_CONTROLS2) & ~C.CPU2_VMCS_SHADOWING;
    h.vmwrite(V.VMCS_PROC_BASED_CONTROLS2, linked ? proc2 | C.CPU2_VMCS_SHADOWING : proc2);
    h.vmwriteNumber(V.VMCS_VMREAD_BITMAP, this.readBitmap);
    h.vmwriteNumber(V.VMCS_VMWRITE_BITMAP, this.writeBitmap);
    if (linked) h.vmwriteNumber(V.VMCS_LINK_POINTER, this.hpa);
    else h.vmwrite(V.VMCS_LINK_POINTER, -1, -1);
  }

  /** VMCS12 → shadow VMCS, every shadowed field (KVM copy_vmcs12_to_shadow). */
  fromVmcs12(c: Vmcs12Cache, v: GuestVcpu): void {
    for (const f of COPY_ALL) {
      c.read(f, half);
      this.vmcs.write(f, half[0], half[1]);
    }
    this.charge(v, COPY_ALL.length, "nvmx_shadow_from_vmcs12", "nvmx_shadow_from_vmcs12_field");
  }

  /** Shadow VMCS → VMCS12, the read/write fields (KVM copy_shadow_to_vmcs12). */
  toVmcs12(c: Vmcs12Cache, v: GuestVcpu): void {
    for (const f of COPY_RW) c.write(f, this.vmcs.read(f), this.vmcs.readHi(f));
    this.charge(v, COPY_RW.length, "nvmx_shadow_to_vmcs12", "nvmx_shadow_to_vmcs12_field");
  }

  /** `reason` and `fieldReason` are constants (no string built per sync): the sync and its fields. */
  private charge(v: GuestVcpu, fields: number, reason: string, fieldReason: string): void {
    this.syncs++;
    this.fieldsCopied += fields;
    this.l0.chargeFor(v, "nvmx.shadow_sync", reason);
    this.l0.chargeHandlerN("nvmx.shadow_field", fieldReason, fields);
  }
}
