/**
 * L0's emulation of the VMX instructions an L1 executes (SDM vol. 3C, chapter 31, each
 * instruction's "Operation"; KVM's handle_vmxon … handle_vmwrite in nested.c): the permission
 * checks (#UD outside VMX operation, #GP at CPL > 0), the operand from the exit's instruction
 * information, the VMCS12 access, and the outcome as RFLAGS says it (31.2: VMsucceed,
 * VMfailInvalid, VMfailValid with the VM-instruction error number in VMCS12).
 */

import type { KeyedCounts } from "../../../stats/counters.js";
import { isCanonical } from "../../../x86/canonical.js";
import { CR0_PE, CR4_VMXE } from "../../../x86/control.js";
import { GP, UD } from "../../../x86/exceptions.js";
import { AF, CF, OF, PF, SF, ZF } from "../../../x86/flags.js";
import { MSR_IA32_VMX_EPT_VPID_CAP, MSR_IA32_VMX_PROCBASED_CTLS2 } from "../../../x86/msr.js";
import * as V from "../../../x86/vmx.js";
import { CPU2_VMCS_SHADOWING, VMCS_SHADOW_INDICATOR } from "../../../x86/vmx-controls.js";
import type { L0Hypervisor } from "../l0.js";
import { type GuestVcpu, HANDLED } from "../vcpu.js";
import type { Vm } from "../vm.js";
import { CR0_FIXED0, VMCS12_REVISION, VMCS12_SIZE, vmxMsr } from "./caps.js";
import { eptpValid, offeredControls } from "./checks.js";
import { infoIsReg, infoReg1, infoReg2, type OperandAccess } from "./operand.js";
import { type NestedVmxState, NO_CURRENT_VMCS } from "./state.js";
import { fieldSlot, VMCS12_LAUNCH_STATE_OFFSET, VMCS12_REVISION_OFFSET, type Vmcs12Cache } from "./vmcs12.js";

const ARITH_FLAGS = CF | PF | AF | ZF | SF | OF;

/** What an emulated VMX instruction needs: L0, the L1 vCPU, its VM, its nested state, its operands. */
export interface VmxInsnContext {
  l0: L0Hypervisor;
  v: GuestVcpu;
  vm: Vm;
  s: NestedVmxState;
  ops: OperandAccess;
}

const val = new Int32Array(2);
const enc = new Int32Array(2);

// ---- Outcomes (31.2) ----

function setArith(l0: L0Hypervisor, flags: number): void {
  const r = l0.host.vmread(V.VMCS_GUEST_RFLAGS);
  l0.host.vmwrite(V.VMCS_GUEST_RFLAGS, (r & ~ARITH_FLAGS) | flags);
}

function succeed(x: VmxInsnContext): number {
  setArith(x.l0, 0);
  x.l0.skipInstruction();
  return HANDLED;
}

export function failInvalid(x: VmxInsnContext): number {
  setArith(x.l0, CF);
  x.l0.skipInstruction();
  return HANDLED;
}

/** VMfailValid(error) when a VMCS12 is current, else VMfailInvalid (as KVM's nested_vmx_fail). */
export function fail(x: VmxInsnContext, error: number): number {
  if (!x.s.hasCurrent) return failInvalid(x);
  x.s.current.write(V.VMCS_VM_INSTRUCTION_ERROR, error, 0);
  setArith(x.l0, ZF);
  x.l0.skipInstruction();
  return HANDLED;
}

function inject(x: VmxInsnContext, vector: number, error: number): number {
  x.v.pendingException = vector;
  x.v.pendingExceptionError = error;
  return HANDLED;
}

/** CR4 as L1 reads it: host-owned bits from the read shadow. */
function l1Cr4(l0: L0Hypervisor): number {
  const h = l0.host;
  const mask = h.vmread(V.VMCS_CR4_GUEST_HOST_MASK);
  return (h.vmread(V.VMCS_GUEST_CR4) & ~mask) | (h.vmread(V.VMCS_CR4_READ_SHADOW) & mask);
}

function l1Cr0(l0: L0Hypervisor): number {
  const h = l0.host;
  const mask = h.vmread(V.VMCS_CR0_GUEST_HOST_MASK);
  return (h.vmread(V.VMCS_GUEST_CR0) & ~mask) | (h.vmread(V.VMCS_CR0_READ_SHADOW) & mask);
}

function cpl(l0: L0Hypervisor): number {
  return (l0.host.vmread(V.VMCS_GUEST_SS_AR) >>> 5) & 3;
}

/**
 * The checks every VMX instruction but VMXON makes first (KVM: nested_vmx_check_permission):
 * #UD outside VMX operation, #GP(0) at CPL > 0. Returns HANDLED after injecting, -1 to go on.
 */
export function permitted(x: VmxInsnContext): number {
  if (!x.s.vmxon) return inject(x, UD, -1);
  if (cpl(x.l0) > 0) return inject(x, GP, 0);
  return -1;
}

/** Whether L0 offers this L1 VMCS shadowing (IA32_VMX_PROCBASED_CTLS2 allowed-1 bit 14 as L1 reads it). */
function shadowVmcsOffered(x: VmxInsnContext): boolean {
  return (offeredControls(x, MSR_IA32_VMX_PROCBASED_CTLS2)[1] & CPU2_VMCS_SHADOWING) !== 0;
}

/** A 4 KiB-aligned physical-address operand that is L1 RAM (else the caller fails). */
function readPhysOperand(x: VmxInsnContext): number {
  const info = x.l0.host.vmread(V.VMCS_EXIT_INSTRUCTION_INFO);
  const gpa = x.ops.address(info, 8, false);
  if (gpa < 0) return -2;
  const mem = x.vm.memory;
  const lo = mem.read32(gpa);
  const hi = mem.read32(gpa + 4);
  const addr = hi * 4294967296 + lo;
  if (addr % 4096 !== 0 || !x.ops.isRam(addr, VMCS12_SIZE)) return -1;
  return addr;
}

/**
 * The memory operand (of L1's instruction, or L2's: x.v says whose) did not translate to L1 RAM:
 * stop the vCPU with a clear error (no #PF injection yet).
 */
function unmapped(x: VmxInsnContext, what: string): number {
  return x.v.fail(
    "error",
    x.l0.host.exit.reason & 0xffff,
    `the ${what} operand at linear ${x.ops.linear()} is not mapped to RAM by the guest's page tables (L0 does not inject #PF for it)`,
  );
}

// ---- The instructions ----

/** VMXON (31.3 "VMXON"; KVM handle_vmxon). */
export function vmxon(x: VmxInsnContext): number {
  const l0 = x.l0;
  if ((l1Cr4(l0) & CR4_VMXE) === 0 || (l1Cr0(l0) & CR0_PE) === 0) return inject(x, UD, -1);
  if (x.s.vmxon) return cpl(l0) > 0 ? inject(x, GP, 0) : fail(x, V.VMXERR_VMXON_IN_ROOT);
  // CPL > 0 or CR0 outside IA32_VMX_CR0_FIXED0 (PE, NE, PG): #GP(0) (SDM 31.3 VMXON; KVM handle_vmxon).
  if (cpl(l0) > 0 || (l1Cr0(l0) & CR0_FIXED0) !== CR0_FIXED0) return inject(x, GP, 0);
  // IA32_FEATURE_CONTROL not locked with "VMXON outside SMX": #GP(0) (SDM 23.7; KVM handle_vmxon).
  if (!x.s.featureControl.allowsVmxon) return inject(x, GP, 0);
  const addr = readPhysOperand(x);
  if (addr === -2) return unmapped(x, "VMXON");
  if (addr < 0) return failInvalid(x);
  if (x.vm.memory.read32(addr) !== VMCS12_REVISION) return failInvalid(x);
  x.s.vmxon = true;
  x.s.vmxonPtr = addr;
  ownFixedCr0(l0, true);
  x.s.current.gpa = -1;
  return succeed(x);
}

/**
 * In VMX operation CR0.PE/NE/PG are fixed to 1 (IA32_VMX_CR0_FIXED0): L0 owns them in VMCS01's
 * CR0 guest/host mask, so that an L1 MOV to CR0 clearing one exits and is refused with #GP (KVM:
 * nested_host_cr0_valid); after VMXOFF L1 owns CR0 again.
 */
function ownFixedCr0(l0: L0Hypervisor, own: boolean): void {
  const h = l0.host;
  h.vmwrite(V.VMCS_CR0_GUEST_HOST_MASK, own ? CR0_FIXED0 : 0);
  h.vmwrite(V.VMCS_CR0_READ_SHADOW, own ? CR0_FIXED0 : 0);
}

/** Write the current VMCS12 back to L1 memory and make none current. */
export function releaseCurrent(x: VmxInsnContext): void {
  if (!x.s.hasCurrent) return;
  // nvmx-evmcs: an eVMCS is L1's own memory, synced at each entry and exit; it is only unmapped.
  if (x.s.evmcs !== null && x.s.evmcs.gpa === x.s.current.gpa) {
    x.s.evmcs.release();
    x.s.current.gpa = -1;
    return;
  }
  // nvmx-shadow: L1's shadowed writes first (KVM nested_release_vmcs12), then shadowing off.
  x.s.shadow?.toVmcs12(x.s.current, x.v);
  x.s.shadow?.link(false);
  x.s.current.flush(x.vm.memory);
  x.l0.chargeFor(x.v, "nvmx.vmcs12_copy", "nvmx_vmcs12_flush");
  x.s.current.gpa = -1;
}

/** VMXOFF (31.3; KVM handle_vmxoff): leave VMX operation. */
export function vmxoff(x: VmxInsnContext): number {
  const p = permitted(x);
  if (p >= 0) return p;
  releaseCurrent(x);
  x.s.vmxon = false;
  x.s.vmxonPtr = -1;
  ownFixedCr0(x.l0, false);
  return succeed(x);
}

/** VMCLEAR (31.3; KVM handle_vmclear): flush it if current, mark its launch state clear. */
export function vmclear(x: VmxInsnContext): number {
  const p = permitted(x);
  if (p >= 0) return p;
  const addr = readPhysOperand(x);
  if (addr === -2) return unmapped(x, "VMCLEAR");
  if (addr < 0) return fail(x, V.VMXERR_VMCLEAR_INVALID_ADDR);
  if (addr === x.s.vmxonPtr) return fail(x, V.VMXERR_VMCLEAR_VMXON_PTR);
  if (addr === x.s.current.gpa) {
    x.s.current.launched = false;
    releaseCurrent(x);
  } else x.vm.memory.write32(addr + VMCS12_LAUNCH_STATE_OFFSET, 0);
  return succeed(x);
}

/**
 * VMPTRLD (31.3; KVM handle_vmptrld): make the VMCS12 at the operand current, cached. A region
 * with the shadow-VMCS indicator (bit 31) set is accepted only when L0 offers this L1 VMCS
 * shadowing (24.10; KVM: hdr.shadow_vmcs && !nested_cpu_has_vmx_shadow_vmcs → error 11).
 */
export function vmptrld(x: VmxInsnContext): number {
  const p = permitted(x);
  if (p >= 0) return p;
  const addr = readPhysOperand(x);
  if (addr === -2) return unmapped(x, "VMPTRLD");
  if (addr < 0) return fail(x, V.VMXERR_VMPTRLD_INVALID_ADDR);
  if (addr === x.s.vmxonPtr) return fail(x, V.VMXERR_VMPTRLD_VMXON_PTR);
  const rev = x.vm.memory.read32(addr + VMCS12_REVISION_OFFSET);
  const shadowRegion = (rev & VMCS_SHADOW_INDICATOR) !== 0;
  if ((rev & ~VMCS_SHADOW_INDICATOR) !== VMCS12_REVISION || (shadowRegion && !shadowVmcsOffered(x)))
    return fail(x, V.VMXERR_VMPTRLD_BAD_REVISION);
  if (addr !== x.s.current.gpa) {
    releaseCurrent(x);
    x.s.current.load(x.vm.memory, addr);
    x.l0.chargeFor(x.v, "nvmx.vmcs12_copy", "nvmx_vmcs12_load");
    // nvmx-shadow: the new VMCS12's shadowed fields into the shadow VMCS, linked from VMCS01.
    x.s.shadow?.fromVmcs12(x.s.current, x.v);
    x.s.shadow?.link(true);
  }
  return succeed(x);
}

/**
 * VMCALL of an L1 in VMX root operation that names no hypercall L0 serves: as the CPU outside SMM
 * without the dual-monitor treatment (vol. 2 "VMCALL"), VMfailInvalid with no current VMCS, else
 * VMfailValid(1). KVM instead takes every such VMCALL as a hypercall (RAX = -ENOSYS); nestlab
 * follows the SDM so that a VMX L1 sees the processor it was written for.
 */
export function vmcallInRoot(x: VmxInsnContext): number {
  const p = permitted(x);
  if (p >= 0) return p;
  return fail(x, V.VMXERR_VMCALL_IN_ROOT);
}

/** VMPTRST (31.3): store the current-VMCS pointer (all ones when none) to the memory operand. */
export function vmptrst(x: VmxInsnContext): number {
  const p = permitted(x);
  if (p >= 0) return p;
  const gpa = x.ops.address(x.l0.host.vmread(V.VMCS_EXIT_INSTRUCTION_INFO), 8, true);
  if (gpa < 0) return unmapped(x, "VMPTRST");
  const ptr = x.s.hasCurrent ? x.s.current.gpa : NO_CURRENT_VMCS;
  x.vm.memory.write32(gpa, ptr < 0 ? -1 : ptr % 4294967296);
  x.vm.memory.write32(gpa + 4, ptr < 0 ? -1 : Math.floor(ptr / 4294967296));
  return succeed(x);
}

/** The field encoding VMREAD/VMWRITE name in register 2; -1 when bits 63:32 are set (unsupported). */
function fieldEncoding(x: VmxInsnContext, info: number): number {
  x.ops.readReg(infoReg2(info), enc);
  return enc[1] !== 0 ? -1 : enc[0] >>> 0;
}

/** VMREAD (31.3; KVM handle_vmread): a VMCS12 field into a register or memory. */
export function vmread(x: VmxInsnContext): number {
  const p = permitted(x);
  if (p >= 0) return p;
  if (!x.s.hasCurrent) return failInvalid(x);
  return readField(x, x.s.current, x.s.vmreadFields);
}

/**
 * VMREAD's access once a VMCS is known (L1's current VMCS12, or for L2 the shadow VMCS12):
 * `target`'s field into the register or memory operand. `fields` counts the field read.
 */
export function readField(x: VmxInsnContext, target: Vmcs12Cache, fields: KeyedCounts): number {
  const info = x.l0.host.vmread(V.VMCS_EXIT_INSTRUCTION_INFO);
  const field = fieldEncoding(x, info);
  if (field >= 0) fields.bump(field);
  if (field < 0 || !target.read(field, val)) return fail(x, V.VMXERR_UNSUPPORTED_FIELD);
  if (infoIsReg(info)) x.ops.writeReg(infoReg1(info), val[0], val[1]);
  else {
    const size = x.ops.longMode() ? 8 : 4;
    const gpa = x.ops.address(info, size, true);
    if (gpa < 0) return unmapped(x, "VMREAD");
    x.vm.memory.write32(gpa, val[0]);
    if (size === 8) x.vm.memory.write32(gpa + 4, val[1]);
  }
  return succeed(x);
}

/** VMWRITE (31.3; KVM handle_vmwrite): a register or memory value into a VMCS12 field. */
export function vmwrite(x: VmxInsnContext): number {
  const p = permitted(x);
  if (p >= 0) return p;
  if (!x.s.hasCurrent) return failInvalid(x);
  return writeField(x, x.s.current, x.s.vmwriteFields);
}

/**
 * VMWRITE's access once a VMCS is known: the register or memory operand into `target`'s field
 * (a field `target` lacks: VMfail(12); a read-only one: VMfail(13), the processor's rule,
 * x86/vmx.ts). `fields` counts the field written.
 */
export function writeField(x: VmxInsnContext, target: Vmcs12Cache, fields: KeyedCounts): number {
  const info = x.l0.host.vmread(V.VMCS_EXIT_INSTRUCTION_INFO);
  if (infoIsReg(info)) x.ops.readReg(infoReg1(info), val);
  else {
    const size = x.ops.longMode() ? 8 : 4;
    const gpa = x.ops.address(info, size, false);
    if (gpa < 0) return unmapped(x, "VMWRITE");
    val[0] = x.vm.memory.read32(gpa) | 0;
    val[1] = size === 8 ? x.vm.memory.read32(gpa + 4) | 0 : 0;
  }
  const field = fieldEncoding(x, info);
  if (field < 0) return fail(x, V.VMXERR_UNSUPPORTED_FIELD);
  fields.bump(field);
  if (fieldSlot(field) < 0) return fail(x, V.VMXERR_UNSUPPORTED_FIELD);
  if (V.vmcsFieldReadOnly(field)) return fail(x, V.VMXERR_VMWRITE_READONLY);
  target.write(field, val[0], val[1]);
  return succeed(x);
}

/** The INVEPT/INVVPID type (register 2): -1 when bits 63:32 are set (no such type). */
function invalidationType(x: VmxInsnContext, info: number): number {
  x.ops.readReg(infoReg2(info), enc);
  return enc[1] !== 0 ? -1 : enc[0] >>> 0;
}

/** The 128-bit INVEPT/INVVPID descriptor (memory operand) as four dwords; false when unmapped. */
const desc = new Int32Array(4);
function readDescriptor(x: VmxInsnContext, info: number): boolean {
  const gpa = x.ops.address(info, 16, false);
  if (gpa < 0) return false;
  for (let i = 0; i < 4; i++) desc[i] = x.vm.memory.read32(gpa + 4 * i) | 0;
  return true;
}

/** IA32_VMX_EPT_VPID_CAP as typeOffered reads it (refilled per call). */
const eptCaps = new Int32Array(2);

/** Whether the capability MSR's `half` offers invalidation type `type` at bit `shift + type`. */
function typeOffered(type: number, half: number, shift: number): boolean {
  vmxMsr(MSR_IA32_VMX_EPT_VPID_CAP, 0, eptCaps);
  return type >= 0 && type < 4 && (eptCaps[half] & (1 << (shift + type))) !== 0;
}

/**
 * INVEPT (vol. 2 "INVEPT"; KVM handle_invept): a type IA32_VMX_EPT_VPID_CAP does not offer
 * (bits 25 single-context, 26 all-context) and a single-context descriptor whose EPTP is not one
 * L1 could use are VMfail(28). EPT02 holds translations of one EPTP12 only: all-context drops it,
 * single-context drops it when the descriptor names that EPT12.
 */
export function invept(x: VmxInsnContext): number {
  const p = permitted(x);
  if (p >= 0) return p;
  const info = x.l0.host.vmread(V.VMCS_EXIT_INSTRUCTION_INFO);
  const type = invalidationType(x, info);
  if (!typeOffered(type, 0, 24)) return fail(x, V.VMXERR_INVALID_OPERAND);
  if (!readDescriptor(x, info)) return unmapped(x, "INVEPT");
  const eptp = (desc[1] >>> 0) * 4294967296 + (desc[0] >>> 0);
  if (type === INV_SINGLE && !eptpValid(x, eptp)) return fail(x, V.VMXERR_INVALID_OPERAND);
  const e = x.s.ept02;
  const named = type === INV_ALL || eptp - (eptp % 4096) === x.s.eptp12 - (x.s.eptp12 % 4096);
  if (e !== null && named) {
    e.zap();
    x.l0.chargeFor(x.v, "nvmx.ept02_zap", "nvmx_ept02_zap");
  }
  return succeed(x);
}

/** INVEPT/INVVPID types (vol. 2 "INVVPID"; INVEPT uses 1 and 2). */
const INV_ADDRESS = 0;
const INV_SINGLE = 1;
const INV_ALL = 2;

/**
 * INVVPID (vol. 2 "INVVPID"; KVM handle_invvpid): a type IA32_VMX_EPT_VPID_CAP does not offer
 * (bits 40–43), descriptor bits 63:16 set, VPID 0 for any type but all-context, or a non-canonical
 * linear address for the individual-address type are VMfail(28). Every L2 VPID12 runs under the
 * one VPID02 of this L1 vCPU (KVM's vpid02), so each type drops VPID02's TLB entries (a superset
 * of what was asked, which the SDM allows).
 */
export function invvpid(x: VmxInsnContext): number {
  const p = permitted(x);
  if (p >= 0) return p;
  const info = x.l0.host.vmread(V.VMCS_EXIT_INSTRUCTION_INFO);
  const type = invalidationType(x, info);
  if (!typeOffered(type, 1, 8)) return fail(x, V.VMXERR_INVALID_OPERAND);
  if (!readDescriptor(x, info)) return unmapped(x, "INVVPID");
  const vpid = desc[0] & 0xffff;
  if ((desc[0] & 0xffff0000) !== 0 || desc[1] !== 0) return fail(x, V.VMXERR_INVALID_OPERAND);
  if (type !== INV_ALL && vpid === 0) return fail(x, V.VMXERR_INVALID_OPERAND);
  if (type === INV_ADDRESS && !isCanonical(desc[3])) return fail(x, V.VMXERR_INVALID_OPERAND);
  if (x.s.l2 !== null) x.l0.host.invalidateVpid(x.s.l2.vpid);
  return succeed(x);
}
