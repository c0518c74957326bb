/**
 * VMCS12: the VMCS an L1 hypervisor manages, as L0 lays it out in L1's memory (KVM's struct
 * vmcs12): separate from any hardware VMCS, in a layout L0 defines and docs/nested-vmx.md
 * documents. L0 keeps the current VMCS12 in a cache (two Int32Arrays, no allocation per access)
 * and writes it back to L1 memory when it stops being current (VMCLEAR, VMPTRLD of another,
 * VMXOFF), as KVM's cached_vmcs12.
 *
 * Layout (all little-endian): +0 u32 revision identifier (VMCS12_REVISION), +4 u32 VMX-abort
 * indicator, +8 u32 launch state (0 clear, 1 launched), +12 reserved, then from +16 one u64 per
 * field of FIELDS, in that order (16- and 32-bit fields zero-extended).
 */
import * as V from "../../../x86/vmx.js";
import { CPU_SECONDARY_CONTROLS, VMCS_SHADOW_INDICATOR } from "../../../x86/vmx-controls.js";
import type { GuestMemory } from "../vm.js";

export const VMCS12_REVISION_OFFSET = 0;
export const VMCS12_ABORT_OFFSET = 4;
export const VMCS12_LAUNCH_STATE_OFFSET = 8;
export const VMCS12_FIELDS_OFFSET = 16;

/** The fields VMCS12 holds, in layout order. A VMREAD/VMWRITE of any other encoding fails (error 12). */
export const FIELDS: readonly number[] = [
  V.VMCS_VPID,
  V.VMCS_GUEST_ES_SELECTOR,
  V.VMCS_GUEST_CS_SELECTOR,
  V.VMCS_GUEST_SS_SELECTOR,
  V.VMCS_GUEST_DS_SELECTOR,
  V.VMCS_GUEST_FS_SELECTOR,
  V.VMCS_GUEST_GS_SELECTOR,
  V.VMCS_GUEST_LDTR_SELECTOR,
  V.VMCS_GUEST_TR_SELECTOR,
  V.VMCS_HOST_ES_SELECTOR,
  V.VMCS_HOST_CS_SELECTOR,
  V.VMCS_HOST_SS_SELECTOR,
  V.VMCS_HOST_DS_SELECTOR,
  V.VMCS_HOST_FS_SELECTOR,
  V.VMCS_HOST_GS_SELECTOR,
  V.VMCS_HOST_TR_SELECTOR,
  V.VMCS_IO_BITMAP_A,
  V.VMCS_IO_BITMAP_B,
  V.VMCS_MSR_BITMAP,
  V.VMCS_TSC_OFFSET,
  V.VMCS_EPT_POINTER,
  V.VMCS_GUEST_PHYSICAL_ADDRESS,
  V.VMCS_LINK_POINTER,
  V.VMCS_GUEST_IA32_PAT,
  V.VMCS_GUEST_IA32_EFER,
  V.VMCS_HOST_IA32_PAT,
  V.VMCS_HOST_IA32_EFER,
  V.VMCS_PIN_BASED_CONTROLS,
  V.VMCS_PROC_BASED_CONTROLS,
  V.VMCS_EXCEPTION_BITMAP,
  V.VMCS_PF_ERROR_CODE_MASK,
  V.VMCS_PF_ERROR_CODE_MATCH,
  V.VMCS_CR3_TARGET_COUNT,
  V.VMCS_EXIT_CONTROLS,
  V.VMCS_EXIT_MSR_STORE_COUNT,
  V.VMCS_EXIT_MSR_LOAD_COUNT,
  V.VMCS_ENTRY_CONTROLS,
  V.VMCS_ENTRY_MSR_LOAD_COUNT,
  V.VMCS_ENTRY_INTR_INFO,
  V.VMCS_ENTRY_EXCEPTION_ERROR_CODE,
  V.VMCS_ENTRY_INSTRUCTION_LENGTH,
  V.VMCS_TPR_THRESHOLD,
  V.VMCS_PROC_BASED_CONTROLS2,
  V.VMCS_VM_INSTRUCTION_ERROR,
  V.VMCS_EXIT_REASON,
  V.VMCS_EXIT_INTR_INFO,
  V.VMCS_EXIT_INTR_ERROR_CODE,
  V.VMCS_IDT_VECTORING_INFO,
  V.VMCS_IDT_VECTORING_ERROR_CODE,
  V.VMCS_EXIT_INSTRUCTION_LENGTH,
  V.VMCS_EXIT_INSTRUCTION_INFO,
  V.VMCS_GUEST_ES_LIMIT,
  V.VMCS_GUEST_CS_LIMIT,
  V.VMCS_GUEST_SS_LIMIT,
  V.VMCS_GUEST_DS_LIMIT,
  V.VMCS_GUEST_FS_LIMIT,
  V.VMCS_GUEST_GS_LIMIT,
  V.VMCS_GUEST_LDTR_LIMIT,
  V.VMCS_GUEST_TR_LIMIT,
  V.VMCS_GUEST_GDTR_LIMIT,
  V.VMCS_GUEST_IDTR_LIMIT,
  V.VMCS_GUEST_ES_AR,
  V.VMCS_GUEST_CS_AR,
  V.VMCS_GUEST_SS_AR,
  V.VMCS_GUEST_DS_AR,
  V.VMCS_GUEST_FS_AR,
  V.VMCS_GUEST_GS_AR,
  V.VMCS_GUEST_LDTR_AR,
  V.VMCS_GUEST_TR_AR,
  V.VMCS_GUEST_INTERRUPTIBILITY,
  V.VMCS_GUEST_ACTIVITY_STATE,
  V.VMCS_GUEST_SYSENTER_CS,
  V.VMCS_PREEMPTION_TIMER_VALUE,
  V.VMCS_HOST_SYSENTER_CS,
  V.VMCS_CR0_GUEST_HOST_MASK,
  V.VMCS_CR4_GUEST_HOST_MASK,
  V.VMCS_CR0_READ_SHADOW,
  V.VMCS_CR4_READ_SHADOW,
  V.VMCS_EXIT_QUALIFICATION,
  V.VMCS_GUEST_LINEAR_ADDRESS,
  V.VMCS_GUEST_CR0,
  V.VMCS_GUEST_CR3,
  V.VMCS_GUEST_CR4,
  V.VMCS_GUEST_ES_BASE,
  V.VMCS_GUEST_CS_BASE,
  V.VMCS_GUEST_SS_BASE,
  V.VMCS_GUEST_DS_BASE,
  V.VMCS_GUEST_FS_BASE,
  V.VMCS_GUEST_GS_BASE,
  V.VMCS_GUEST_LDTR_BASE,
  V.VMCS_GUEST_TR_BASE,
  V.VMCS_GUEST_GDTR_BASE,
  V.VMCS_GUEST_IDTR_BASE,
  V.VMCS_GUEST_DR7,
  V.VMCS_GUEST_RSP,
  V.VMCS_GUEST_RIP,
  V.VMCS_GUEST_RFLAGS,
  V.VMCS_GUEST_PENDING_DBG_EXCEPTIONS,
  V.VMCS_GUEST_SYSENTER_ESP,
  V.VMCS_GUEST_SYSENTER_EIP,
  V.VMCS_HOST_CR0,
  V.VMCS_HOST_CR3,
  V.VMCS_HOST_CR4,
  V.VMCS_HOST_FS_BASE,
  V.VMCS_HOST_GS_BASE,
  V.VMCS_HOST_TR_BASE,
  V.VMCS_HOST_GDTR_BASE,
  V.VMCS_HOST_IDTR_BASE,
  V.VMCS_HOST_SYSENTER_ESP,
  V.VMCS_HOST_SYSENTER_EIP,
  V.VMCS_HOST_RSP,
  V.VMCS_HOST_RIP,
  // VMCS shadowing for L1's own L2 (l2-vmcs-access.ts): appended, so no earlier offset moved.
  V.VMCS_VMREAD_BITMAP,
  V.VMCS_VMWRITE_BITMAP,
];

/** Encoding → slot (index in FIELDS), for the full-width encoding of each field. */
const SLOT = new Map<number, number>(FIELDS.map((f, i) => [f, i]));

/**
 * The slot of encoding `enc` times 2, plus 1 when it names the high half of a 64-bit field (the
 * "high" access type, bit 0, of a 64-bit field: SDM vol. 3, 24.11.2); -1 when VMCS12 has no such
 * field. A number, not an object: every VMCS12 access of L0 goes through it.
 */
export function fieldSlot(enc: number): number {
  const base = V.vmcsFieldBase(enc);
  const slot = base < 0 ? undefined : SLOT.get(base);
  return slot === undefined ? -1 : slot * 2 + (base !== enc ? 1 : 0);
}

/** `fieldSlot` as a slot and a high-half flag, or null (for tables built once). */
export function slotOf(enc: number): { slot: number; high: boolean } | null {
  const code = fieldSlot(enc);
  return code < 0 ? null : { slot: code >> 1, high: (code & 1) !== 0 };
}

/** Mask a value to a field's width (16, 32 or 64 bits; natural width is 64 in 64-bit mode). */
function widthMask(enc: number): number {
  const w = V.vmcsFieldWidth(enc);
  return w === V.VMCS_WIDTH_16 ? 0xffff : -1;
}

/** L0's cached copy of one L1 VMCS12 (the current one). */
export class Vmcs12Cache {
  readonly lo = new Int32Array(FIELDS.length);
  readonly hi = new Int32Array(FIELDS.length);
  /** Guest-physical address of the VMCS12 in L1 memory. */
  gpa = -1;
  launched = false;
  /**
   * The region's shadow-VMCS indicator (bit 31 of its revision dword, SDM vol. 3C 24.2; KVM's
   * hdr.shadow_vmcs): such a VMCS12 can be current, read and written, but not launched.
   */
  shadowIndicator = false;

  /** Read field `enc` (the whole 64-bit value as halves into `out`); false when unsupported. */
  read(enc: number, out: Int32Array): boolean {
    const code = fieldSlot(enc);
    if (code < 0) return false;
    const slot = code >> 1;
    if ((code & 1) !== 0) {
      out[0] = this.hi[slot];
      out[1] = 0;
    } else {
      out[0] = this.lo[slot];
      out[1] =
        V.vmcsFieldWidth(enc) === V.VMCS_WIDTH_32 || V.vmcsFieldWidth(enc) === V.VMCS_WIDTH_16 ? 0 : this.hi[slot];
    }
    return true;
  }

  /** Write field `enc`; false when unsupported. */
  write(enc: number, lo: number, hi: number): boolean {
    const code = fieldSlot(enc);
    if (code < 0) return false;
    const slot = code >> 1;
    if ((code & 1) !== 0) this.hi[slot] = lo;
    else {
      this.lo[slot] = lo & widthMask(enc);
      const w = V.vmcsFieldWidth(enc);
      this.hi[slot] = w === V.VMCS_WIDTH_64 || w === V.VMCS_WIDTH_NATURAL ? hi : 0;
    }
    return true;
  }

  /** The low 32 bits of a field L0 itself reads (a control, a guest-state field). */
  get32(enc: number): number {
    return this.lo[SLOT.get(enc) as number];
  }

  /** The high 32 bits of a 64-bit or natural-width field (0 for narrower ones). */
  hi32(enc: number): number {
    return this.hi[SLOT.get(enc) as number];
  }

  /** The secondary processor-based controls in effect: 0 unless the primary controls activate them. */
  secondaryControls(): number {
    return (this.get32(V.VMCS_PROC_BASED_CONTROLS) & CPU_SECONDARY_CONTROLS) !== 0
      ? this.get32(V.VMCS_PROC_BASED_CONTROLS2)
      : 0;
  }

  /** A field L0 sets as a number (exact below 2^53). */
  setNumber(enc: number, v: number): void {
    const s = SLOT.get(enc) as number;
    this.lo[s] = (v % 4294967296) | 0;
    this.hi[s] = Math.floor(v / 4294967296) | 0;
  }

  getNumber(enc: number): number {
    const s = SLOT.get(enc) as number;
    return (this.hi[s] >>> 0) * 4294967296 + (this.lo[s] >>> 0);
  }

  /** Fill the cache from the VMCS12 at `gpa` in L1's memory (VMPTRLD). */
  load(mem: GuestMemory, gpa: number): void {
    this.gpa = gpa;
    this.launched = mem.read32(gpa + VMCS12_LAUNCH_STATE_OFFSET) === 1;
    this.shadowIndicator = (mem.read32(gpa + VMCS12_REVISION_OFFSET) & VMCS_SHADOW_INDICATOR) !== 0;
    const bytes = mem.readBytes(gpa + VMCS12_FIELDS_OFFSET, FIELDS.length * 8);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < FIELDS.length; i++) {
      this.lo[i] = dv.getInt32(i * 8, true);
      this.hi[i] = dv.getInt32(i * 8 + 4, true);
    }
  }

  /** Write the cache back to L1's memory (VMCLEAR, VMPTRLD of another, VMXOFF). */
  flush(mem: GuestMemory): void {
    if (this.gpa < 0) return;
    const bytes = new Uint8Array(FIELDS.length * 8);
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < FIELDS.length; i++) {
      dv.setInt32(i * 8, this.lo[i], true);
      dv.setInt32(i * 8 + 4, this.hi[i], true);
    }
    mem.writeBytes(this.gpa + VMCS12_FIELDS_OFFSET, bytes);
    mem.write32(this.gpa + VMCS12_LAUNCH_STATE_OFFSET, this.launched ? 1 : 0);
  }
}
