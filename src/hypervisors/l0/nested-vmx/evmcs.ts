/**
 * The enlightened VMCS for an L1 (`nvmx-evmcs`; Hyper-V TLFS v6.0b "Enlightened VMCS"; KVM's
 * nested_vmx_handle_enlightened_vmptrld, copy_enlightened_to_vmcs12 and
 * copy_vmcs12_to_enlightened in arch/x86/kvm/vmx/nested.c and hyperv.c, own code).
 *
 * An L1 that set `enlighten_vmentry` in its VP assist page keeps its VMCS in plain memory at
 * `current_nested_vmcs` (layout: evmcs-layout.ts, constants x86/hyperv.ts) and writes it with ordinary stores:
 * no VMPTRLD, VMREAD or VMWRITE exits. At its VMLAUNCH/VMRESUME L0 maps that page (a new one is
 * copied whole, KVM's "force full copy"), copies into VMCS12 every field whose clean-field group
 * L1 left dirty (hv_clean_fields bit clear) and skips the clean ones, then runs the usual nested
 * entry from VMCS12; after a successful entry all groups are clean again (KVM: prepare_vmcs02).
 * When L2's exit is reflected, L0 writes L2's guest state and the exit information back into the
 * eVMCS; a VMfail writes the VM-instruction error. With the enlightened MSR bitmap
 * (hv_enlightenments_control.msr_bitmap) and a clean MSR-bitmap group, L0 does not merge L1's MSR
 * bitmap again. Costs: `nvmx.evmcs_map` per mapping, `nvmx.evmcs_sync_field` per field copied.
 */
import { CounterSet } from "../../../stats/counters.js";
import * as H from "../../../x86/hyperv.js";
import * as V from "../../../x86/vmx.js";
import type { L0Hypervisor } from "../l0.js";
import type { GuestVcpu } from "../vcpu.js";
import type { GuestMemory } from "../vm.js";
import { EVMCS_FIELDS } from "./evmcs-layout.js";
import { NVMX_EVMCS_EVENTS, XV } from "./stats.js";
import type { Vmcs12Cache } from "./vmcs12.js";

/** Fields L0 writes back to the eVMCS after a reflected exit: guest state and exit information. */
const TO_EVMCS = EVMCS_FIELDS.filter(([f]) => {
  const t = V.vmcsFieldType(f);
  return t === 1 || t === 2 || f === V.VMCS_ENTRY_INTR_INFO;
});
const ERROR_FIELD = EVMCS_FIELDS.filter(([f]) => f === V.VMCS_VM_INSTRUCTION_ERROR);

const half = new Int32Array(2);

/** Is a field of clean-field group `group` clean under mask `clean` (ALL: only when all are)? */
export function isClean(group: number, clean: number): boolean {
  return group !== H.CLEAN_NONE && (clean & group) === group;
}

/** One L1 vCPU's enlightened-VMCS state in L0 (KVM: nested.hv_evmcs_vmptr and friends). */
export class EnlightenedVmcs {
  /** GPA of the mapped eVMCS, -1 when none. */
  gpa = -1;
  /** The next copy ignores the clean fields (a newly mapped eVMCS). */
  private fullCopy = true;
  /** L0 may skip merging L1's MSR bitmap at this entry. */
  msrBitmapClean = false;
  /**
   * From the eVMCS at each entry, whatever its clean bits (KVM copy_enlightened_to_vmcs12):
   * nested_flush_hypercall, the L2's VP id and the partition assist page (an L1 GPA); with the VP
   * assist page's directhypercall, L2's flush hypercalls are L0's (hv-hypercall.ts).
   */
  nestedFlush = false;
  vpId = 0;
  partitionAssistPage = 0;
  /** nested_control.features.directhypercall of the VP assist page, read at each entry (KVM's cached copy). */
  directHypercall = false;

  /** L2's flush hypercalls go to L0 (KVM nested_evmcs_l2_tlb_flush_enabled). */
  get l2FlushEnabled(): boolean {
    return this.nestedFlush && this.directHypercall;
  }
  /** Counts for the stack's report (stats.ts NVMX_EVMCS_EVENTS). */
  readonly counts = new CounterSet(NVMX_EVMCS_EVENTS);

  /**
   * Map the eVMCS at `gpa` as current (KVM: nested_vmx_handle_enlightened_vmptrld); false when
   * it is not an eVMCS L0 accepts (not RAM, or a revision other than version 1).
   */
  map(l0: L0Hypervisor, v: GuestVcpu, mem: GuestMemory, gpa: number, c: Vmcs12Cache): boolean {
    if (gpa === this.gpa) return true;
    if (gpa % 4096 !== 0 || !mem.isRam(gpa, 4096)) return false;
    if (mem.read32(gpa + H.EVMCS_REVISION_ID) !== H.EVMCS_VERSION) return false;
    l0.chargeFor(v, "nvmx.evmcs_map", "nvmx_evmcs_map");
    // A new eVMCS: no leftovers of the previous one in VMCS12 (KVM memsets vmcs12).
    c.lo.fill(0);
    c.hi.fill(0);
    c.gpa = gpa;
    this.gpa = gpa;
    this.fullCopy = true;
    this.counts.bump(XV.maps);
    return true;
  }

  /** Forget the mapping (L1 cleared enlighten_vmentry, VMCLEAR of it, VMXOFF). */
  release(): void {
    this.gpa = -1;
    this.fullCopy = true;
    this.msrBitmapClean = false;
    this.nestedFlush = false;
  }

  /** eVMCS → VMCS12, dirty groups only (KVM copy_enlightened_to_vmcs12). */
  toVmcs12(l0: L0Hypervisor, mem: GuestMemory, c: Vmcs12Cache): void {
    const clean = this.fullCopy ? 0 : mem.read32(this.gpa + H.EVMCS_HV_CLEAN_FIELDS) & H.CLEAN_ALL;
    const page = mem.readBytes(this.gpa, 4096);
    const dv = new DataView(page.buffer, page.byteOffset, page.byteLength);
    let copied = 0;
    for (const [field, offset, size, group] of EVMCS_FIELDS) {
      if (isClean(group, clean)) {
        this.counts.bump(XV.fields_skipped_clean);
        continue;
      }
      const lo = size === 2 ? dv.getUint16(offset, true) : dv.getInt32(offset, true);
      c.write(field, lo, size === 8 ? dv.getInt32(offset + 4, true) : 0);
      copied++;
    }
    const enlightenments = dv.getUint32(H.EVMCS_HV_ENLIGHTENMENTS_CONTROL, true);
    this.nestedFlush = (enlightenments & H.EVMCS_ENLIGHTEN_NESTED_FLUSH) !== 0;
    this.vpId = dv.getUint32(H.EVMCS_HV_VP_ID, true);
    this.partitionAssistPage =
      dv.getUint32(H.EVMCS_PARTITION_ASSIST_PAGE + 4, true) * 4294967296 +
      dv.getUint32(H.EVMCS_PARTITION_ASSIST_PAGE, true);
    this.msrBitmapClean = (enlightenments & H.EVMCS_ENLIGHTEN_MSR_BITMAP) !== 0 && isClean(H.CLEAN_MSR_BITMAP, clean);
    if (this.msrBitmapClean) this.counts.bump(XV.msr_bitmap_merges_skipped);
    this.fullCopy = false;
    this.counts.bump(XV.fields_copied_in, copied);
    l0.chargeHandlerN("nvmx.evmcs_sync_field", "nvmx_evmcs_to_vmcs12_field", copied);
  }

  /** After a successful nested entry every group is clean (KVM: the end of prepare_vmcs02). */
  markClean(mem: GuestMemory): void {
    const a = this.gpa + H.EVMCS_HV_CLEAN_FIELDS;
    mem.write32(a, (mem.read32(a) | H.CLEAN_ALL) >>> 0);
  }

  /** VMCS12 → eVMCS after a reflected exit (KVM copy_vmcs12_to_enlightened), or only the error after a VMfail. */
  fromVmcs12(l0: L0Hypervisor, mem: GuestMemory, c: Vmcs12Cache, exited: boolean): void {
    const fields = exited ? TO_EVMCS : ERROR_FIELD;
    const page = mem.readBytes(this.gpa, 4096);
    const dv = new DataView(page.buffer, page.byteOffset, page.byteLength);
    for (const [field, offset, size] of fields) {
      c.read(field, half);
      if (size === 2) dv.setUint16(offset, half[0] & 0xffff, true);
      else dv.setInt32(offset, half[0], true);
      if (size === 8) dv.setInt32(offset + 4, half[1], true);
    }
    mem.writeBytes(this.gpa, page);
    this.counts.bump(XV.fields_copied_out, fields.length);
    l0.chargeHandlerN("nvmx.evmcs_sync_field", "nvmx_vmcs12_to_evmcs_field", fields.length);
  }
}

/** The VP assist page's nested_control.features.directhypercall (L2 flush hypercalls to L0). */
export function directHypercall(mem: GuestMemory, vpAssist: number): boolean {
  return vpAssist >= 0 && (mem.read32(vpAssist + H.HV_VP_ASSIST_NESTED_FEATURES) & H.HV_NESTED_DIRECTHYPERCALL) !== 0;
}

/** The VP assist page's enlightened-VM-entry request: the eVMCS GPA, or -1 when L1 asks for none. */
export function enlightenedVmentry(mem: GuestMemory, vpAssist: number): number {
  if (vpAssist < 0 || mem.read32(vpAssist + H.HV_VP_ASSIST_ENLIGHTEN_VMENTRY) === 0) return -1;
  return mem.read64(vpAssist + H.HV_VP_ASSIST_CURRENT_NESTED_VMCS);
}
