/**
 * VMCS shadowing as L0 offers it to an L1 for the L1's own L2 (SDM vol. 3C 24.6.15, 25.1.3, and
 * vol. 2 "VMREAD"/"VMWRITE" in VMX non-root operation; KVM nested.c: nested_vmx_exit_handled_vmcs_
 * access, handle_vmread/handle_vmwrite when is_guest_mode, nested_cache_shadow_vmcs12 and
 * nested_flush_cached_shadow_vmcs12 — own code).
 *
 * VMCS02 never has VMCS shadowing on, so every VMREAD/VMWRITE of L2 exits to L0. The exit is L1's
 * when VMCS12 does not enable VMCS shadowing, when the field operand has bits 63:15 set, or when
 * the field's bit in L1's VMREAD/VMWRITE bitmap (in L1 memory) is set: the reflect step reflects
 * it. Otherwise L0 does what the processor does in L2 without an exit: the access goes to the
 * shadow VMCS12 VMCS12's link pointer names — VMfailInvalid when that is all ones, VMfail(12)
 * for a field VMCS12 lacks, VMfail(13) for a read-only one, the error in VMCS12 (L2's controlling
 * VMCS) — and L2 resumes. L0 caches the shadow VMCS12 from L1 memory at each nested entry and
 * writes it back at each nested exit, so L1 finds L2's VMWRITEs there.
 */
import { EPT_R, EPT_W, FMT_EPT } from "../../../mmu/walker.js";
import * as V from "../../../x86/vmx.js";
import * as C from "../../../x86/vmx-controls.js";
import { GuestTableWalker } from "../../mmu/guest-walk.js";
import type { L0Hypervisor } from "../l0.js";
import type { Vm } from "../vm.js";
import { failInvalid, permitted, readField, type VmxInsnContext, writeField } from "./instructions.js";
import type { L2VmxVcpu } from "./l2-vcpu.js";
import { infoReg2, OperandAccess } from "./operand.js";
import type { NestedVmxState } from "./state.js";

const enc = new Int32Array(2);

/** VMCS12 has "VMCS shadowing". */
function shadowingOn(s: NestedVmxState): boolean {
  return (s.current.secondaryControls() & C.CPU2_VMCS_SHADOWING) !== 0;
}

/**
 * Whether L2's VMREAD/VMWRITE exit (`reason`) is L1's (KVM nested_vmx_exit_handled_vmcs_access):
 * no VMCS shadowing in VMCS12, a field operand with bits 63:15 set, or the field's bit set in
 * L1's bitmap (a bitmap byte outside L1 RAM counts as set).
 */
export function l1WantsVmcsAccess(l0: L0Hypervisor, s: NestedVmxState, reason: number): boolean {
  if (!shadowingOn(s) || s.l2Operands === null) return true;
  s.l2Operands.readReg(infoReg2(l0.host.vmread(V.VMCS_EXIT_INSTRUCTION_INFO)), enc);
  if (enc[1] !== 0 || (enc[0] & ~0x7fff) !== 0) return true;
  const field = enc[0];
  const bitmap = s.current.getNumber(reason === V.EXIT_VMREAD ? V.VMCS_VMREAD_BITMAP : V.VMCS_VMWRITE_BITMAP);
  const hpa = (s.l2 as L2VmxVcpu).l1.vm.memslots.translate(bitmap + (field >>> 3));
  return hpa < 0 || (l0.host.mem.read(hpa, 1) & (1 << (field & 7))) !== 0;
}

/**
 * L2's VMREAD/VMWRITE that L1's bitmaps let through, emulated by L0 against the shadow VMCS12
 * (KVM handle_vmread/handle_vmwrite, is_guest_mode). `x.v` is the L2 vCPU: the outcome flags,
 * RIP and an exception (#GP at CPL > 0) are L2's. Charged as an emulated VMX instruction.
 */
export function emulateL2VmcsAccess(x: VmxInsnContext, reason: number): number {
  const read = reason === V.EXIT_VMREAD;
  x.l0.chargeFor(x.v, "nvmx.vmx_insn", read ? "vmread_for_l2" : "vmwrite_for_l2");
  x.s.l2VmcsAccesses++;
  const p = permitted(x);
  if (p >= 0) return p;
  const shadow = x.s.shadowVmcs12;
  if (shadow.gpa < 0) return failInvalid(x); // link pointer all ones
  return read ? readField(x, shadow, x.s.l2VmreadFields) : writeField(x, shadow, x.s.l2VmwriteFields);
}

/**
 * At a nested entry that passed the checks: the shadow VMCS12 the link pointer names into L0's
 * cache (KVM nested_cache_shadow_vmcs12), when VMCS12 has VMCS shadowing and a link pointer.
 */
export function cacheShadowVmcs12(x: VmxInsnContext): void {
  const s = x.s;
  s.shadowVmcs12.gpa = -1;
  const c = s.current;
  if (!shadowingOn(s) || (c.get32(V.VMCS_LINK_POINTER) === -1 && c.hi32(V.VMCS_LINK_POINTER) === -1)) return;
  s.shadowVmcs12.load(x.vm.memory, c.getNumber(V.VMCS_LINK_POINTER));
  x.l0.chargeFor(x.v, "nvmx.vmcs12_copy", "nvmx_shadow_vmcs12_load");
}

/** At a nested exit: the cached shadow VMCS12 back to L1 memory (KVM nested_flush_cached_shadow_vmcs12). */
export function flushShadowVmcs12(x: VmxInsnContext): void {
  const shadow = x.s.shadowVmcs12;
  if (shadow.gpa < 0) return;
  shadow.flush(x.vm.memory);
  shadow.gpa = -1;
  x.l0.chargeFor(x.v, "nvmx.vmcs12_copy", "nvmx_shadow_vmcs12_flush");
}

/**
 * The operand access for L2's VMX instructions: L2's registers and VMCS02's state as the
 * instruction saw them, a memory operand translated through L2's page tables and then EPT12 (both
 * in L1 memory, walked in software as KVM's nested MMU does) to the L1 guest-physical address.
 */
export function l2OperandAccess(l0: L0Hypervisor, vm: Vm, s: NestedVmxState): OperandAccess {
  const ept12 = new GuestTableWalker(l0.host.mem, FMT_EPT, (gpa) => vm.memslots.translate(gpa));
  return new OperandAccess(l0, vm, (gpa2, write) => {
    const eptp = s.current.getNumber(V.VMCS_EPT_POINTER);
    const lo = (eptp % 4294967296) | 0;
    return ept12.walkEpt(lo, Math.floor(eptp / 4294967296), gpa2, write ? EPT_R | EPT_W : EPT_R);
  });
}
