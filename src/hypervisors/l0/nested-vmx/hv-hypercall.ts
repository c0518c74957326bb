/**
 * The Hyper-V hypercalls L0 serves an L1 offered the enlightened VMCS (`nvmx-evmcs`), as KVM as
 * L0 does (arch/x86/kvm/hyperv.c: kvm_hv_hypercall, kvm_hv_flush_tlb, kvm_hv_hypercall_complete;
 * vmx/hyperv.c nested_evmcs_l2_tlb_flush_enabled; vmx/nested.c nested_vmx_l0_wants_exit; own
 * code), with the TLFS v6.0b encodings ("Hypercall Interface", "Virtual Processor Assist Page",
 * "Nested Virtualization"; constants in x86/hyperv.ts).
 *
 * - The interface: VMCALL (the hypercall page) with RCX = input value (call code 15:0, fast 16,
 *   variable header size 26:17, rep count 43:32, rep start 59:48, the rest reserved), RDX = input
 *   GPA, R8 = output GPA; RAX = result (status 15:0, reps completed 43:32). A caller outside
 *   64-bit mode uses EDX:EAX, EBX:ECX, EDI:ESI and gets EDX:EAX. CPL > 0 or real mode: #UD.
 * - The calls: HvFlushVirtualAddressSpace/List(Ex) (0x0002/0x0003/0x0013/0x0014), memory input
 *   only: L0 does not offer XMM fast input (0x40000003 EDX bit 4), so a fast flush is #UD as KVM
 *   with enforced CPUID. Every other code (HvFlushGuestPhysicalAddressSpace/List 0x00AF/0x00B0
 *   included: KVM does not serve them) is HV_STATUS_INVALID_HYPERCALL_CODE.
 * - An L1's flush drops its own TLB context (the one vCPU, VP index 0, when the processor set
 *   names it). An L2's flush is L0's when L1 enabled it in the eVMCS (nested_flush_hypercall)
 *   and the VP assist page (directhypercall): L0 drops VPID02's entries (when the set names the
 *   eVMCS's hv_vp_id) and L2 resumes without an exit to L1; with the partition assist page's
 *   tlb_lock_count non-zero L1 then gets the synthetic exit 0x10000031.
 *
 * KVM flushes the whole context for a space and for more than 15 list entries; here every flush
 * drops the whole context (a superset of the pages listed). Costs: `l0.hypercall` per call,
 * `nvmx.hv_tlb_flush` per TLB context dropped, an L2 input's EPT12 walk by its references.
 */
import { CounterSet } from "../../../stats/counters.js";
import { CR0_PE } from "../../../x86/control.js";
import { UD } from "../../../x86/exceptions.js";
import * as H from "../../../x86/hyperv.js";
import { RAX, RBX, RCX, RDX } from "../../../x86/registers.js";
import * as V from "../../../x86/vmx.js";
import type { L0Hypervisor } from "../l0.js";
import { L0_VM_VPID } from "../l0.js";
import { type GuestVcpu, HANDLED } from "../vcpu.js";
import type { GuestMemory } from "../vm.js";
import type { Ept02 } from "./ept02.js";
import type { EnlightenedVmcs } from "./evmcs.js";
import type { HyperVMsrs } from "./hyperv.js";
import { type L2VmxVcpu, RUN_REFLECT } from "./l2-vcpu.js";
import { guestLongMode } from "./operand.js";
import type { NestedVmxState } from "./state.js";
import { NVMX_HV_EVENTS, XH } from "./stats.js";

/** Not a hypercall L0 takes here: the caller goes on (reflects L2's VMCALL, or L1's VMCALL is a VMX instruction). */
export const NOT_HV_HYPERCALL = -1;

/** L1's VP index: an L1 VM has one vCPU (KVM's default vp_index = vcpu_idx). */
const L1_VP_INDEX = 0;
/** KVM reads at most this many list entries (KVM_HV_TLB_FLUSH_FIFO_SIZE - 1), more is a full flush. */
const LIST_ENTRIES_READ = 15;
/** The TLFS caps a sparse processor set at 64 banks (HV_MAX_SPARSE_VCPU_BANKS). */
const MAX_SPARSE_BANKS = 64;

/** One hypercall as decoded from the registers (kvm_hv_hcall). */
class HvCall {
  code = 0;
  fast = false;
  varCnt = 0;
  repCnt = 0;
  repIdx = 0;
  reserved = false;
  longMode = true;
  inGpa = 0;

  get rep(): boolean {
    return this.repCnt !== 0 || this.repIdx !== 0;
  }
}

const call = new HvCall();
const u64 = new Int32Array(2);

/** Decode the current guest's hypercall registers into `call` (kvm_hv_hypercall's prologue). */
function decode(l0: L0Hypervisor): HvCall {
  const g = l0.host;
  const c = call;
  c.longMode = guestLongMode(l0.host);
  let lo: number;
  let hi: number;
  if (c.longMode) {
    lo = g.gprLo[RCX];
    hi = g.gprHi[RCX];
    c.inGpa = (g.gprHi[RDX] >>> 0) * 4294967296 + (g.gprLo[RDX] >>> 0);
  } else {
    lo = g.gprLo[RAX];
    hi = g.gprLo[RDX];
    c.inGpa = (g.gprLo[RBX] >>> 0) * 4294967296 + (g.gprLo[RCX] >>> 0);
  }
  c.code = lo & 0xffff;
  c.fast = (lo & H.HV_HYPERCALL_FAST) !== 0;
  c.varCnt = (lo >>> H.HV_HYPERCALL_VARHEAD_SHIFT) & H.HV_HYPERCALL_VARHEAD_BITS;
  c.repCnt = hi & H.HV_HYPERCALL_REP_BITS;
  c.repIdx = (hi >>> H.HV_HYPERCALL_REP_START_SHIFT) & H.HV_HYPERCALL_REP_BITS;
  c.reserved = (lo & H.HV_HYPERCALL_RSVD_LO) !== 0 || (hi & H.HV_HYPERCALL_RSVD_HI) !== 0;
  return c;
}

function isFlushCode(code: number): boolean {
  return (
    code === H.HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE ||
    code === H.HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST ||
    code === H.HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX ||
    code === H.HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX
  );
}

/** The call code in the current guest's registers (KVM kvm_hv_is_tlb_flush_hcall: RCX, or RAX outside 64-bit mode). */
function callCode(l0: L0Hypervisor): number {
  return (guestLongMode(l0.host) ? l0.host.gprLo[RCX] : l0.host.gprLo[RAX]) & 0xffff;
}

/** Where the caller's input lives and whose TLB a flush drops. */
interface Caller {
  l0: L0Hypervisor;
  v: GuestVcpu;
  mem: GuestMemory;
  counts: CounterSet;
  /** L2's flush: its EPT12 (to translate the input GPA), its VP id and VPID02; null for L1. */
  l2: { ept02: Ept02; eptp12: number; vpId: number; vpid: number } | null;
}

/** A u64 of L1 memory into `u64`; false when it is not RAM. */
function read64(mem: GuestMemory, gpa: number): boolean {
  if (!mem.isRam(gpa, 8)) return false;
  u64[0] = mem.read32(gpa) | 0;
  u64[1] = mem.read32(gpa + 4) | 0;
  return true;
}

/** Bit `i` (0–63) of the u64 [lo, hi]. */
function bit(lo: number, hi: number, i: number): boolean {
  return ((i < 32 ? lo >>> i : hi >>> (i - 32)) & 1) !== 0;
}

function popcount32(x: number): number {
  let n = 0;
  for (let v = x >>> 0; v !== 0; v &= v - 1) n++;
  return n;
}

/**
 * kvm_hv_flush_tlb: read the flush's input (an L2's GPA translated through EPT12 first), find the
 * processor set, drop the named vCPU's TLB context. Returns the status (success: with rep_cnt
 * reps completed, which the caller adds).
 */
function flush(x: Caller, c: HvCall): number {
  let gpa = c.inGpa;
  if (x.l2 !== null) {
    const e = x.l2.ept02;
    const eptp = x.l2.eptp12;
    e.walker.cache = x.l0.host.dataCache;
    gpa = e.walker.walkEpt((eptp % 4294967296) | 0, Math.floor(eptp / 4294967296) | 0, c.inGpa, 1);
    x.l0.chargeTableWalk("nvmx_hv_input_ept12_walk", e.walker);
    if (gpa < 0) return H.HV_STATUS_INVALID_HYPERCALL_INPUT;
  }
  const mem = x.mem;
  // Header: address_space, flags, then processor_mask (24 bytes) or {format, valid_bank_mask} (32).
  if (!read64(mem, gpa + 8)) return H.HV_STATUS_INVALID_HYPERCALL_INPUT;
  const flags = u64[0];
  const ex = c.code === H.HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX || c.code === H.HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX;
  const vp = x.l2 !== null ? x.l2.vpId : L1_VP_INDEX;
  let named: boolean;
  let dataOffset: number;
  if (!ex) {
    if (!read64(mem, gpa) || !read64(mem, gpa + 16)) return H.HV_STATUS_INVALID_HYPERCALL_INPUT;
    const [mLo, mHi] = u64;
    dataOffset = 24;
    // KVM: a zero mask counts as all processors (a Windows Server 2012 workaround).
    const all = (flags & H.HV_FLUSH_ALL_PROCESSORS) !== 0 || (mLo | mHi) === 0;
    named = all || (vp < 64 && bit(mLo, mHi, vp));
  } else {
    if (!read64(mem, gpa) || !read64(mem, gpa + 16)) return H.HV_STATUS_INVALID_HYPERCALL_INPUT;
    const formatLo = u64[0];
    const formatHi = u64[1];
    if (!read64(mem, gpa + 24)) return H.HV_STATUS_INVALID_HYPERCALL_INPUT;
    const [vLo, vHi] = u64;
    if (c.varCnt !== popcount32(vLo) + popcount32(vHi)) return H.HV_STATUS_INVALID_HYPERCALL_INPUT;
    const all = formatLo !== H.HV_GENERIC_SET_SPARSE_4K || formatHi !== 0;
    dataOffset = 32 + 8 * c.varCnt;
    if (!all && c.varCnt === 0) return H.HV_STATUS_SUCCESS; // an empty set: nothing to flush
    if (!all && !mem.isRam(gpa + 32, 8 * c.varCnt)) return H.HV_STATUS_INVALID_HYPERCALL_INPUT;
    named = all;
    // A sparse set: bank vp/64 must be valid; its word is the valid banks below it in order.
    const b = Math.floor(vp / 64);
    if (!all && b < MAX_SPARSE_BANKS && bit(vLo, vHi, b)) {
      let before = 0;
      for (let i = 0; i < b; i++) if (bit(vLo, vHi, i)) before++;
      read64(mem, gpa + 32 + 8 * before);
      named = bit(u64[0], u64[1], vp % 64);
    }
  }
  const list = c.code === H.HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST || c.code === H.HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX;
  // KVM reads up to 15 list entries (more: a full flush without reading them); they must be RAM.
  if (list && c.repCnt <= LIST_ENTRIES_READ && !mem.isRam(gpa + dataOffset, 8 * c.repCnt))
    return H.HV_STATUS_INVALID_HYPERCALL_INPUT;
  if (named) {
    x.l0.host.invalidateVpid(x.l2 !== null ? x.l2.vpid : L0_VM_VPID);
    x.l0.chargeFor(x.v, "nvmx.hv_tlb_flush", "hv_tlb_flush");
    x.counts.bump(XH.tlb_flushes);
  }
  return H.HV_STATUS_SUCCESS;
}

/** The call itself, after the #UD checks (kvm_hv_hypercall's switch). Returns the status; reps completed go to `c.repCnt`. */
function dispatch(x: Caller, c: HvCall): number {
  x.l0.chargeFor(x.v, "l0.hypercall", "hv_hypercall");
  // KVM checks access first: the flush calls need 0x40000004's remote-flush recommendation (and
  // the _EX ones the sparse-set one), both of which L0 offers, so no call is refused for it.
  if (c.reserved) return H.HV_STATUS_INVALID_HYPERCALL_INPUT;
  switch (c.code) {
    case H.HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST:
    case H.HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX:
      if (c.code === H.HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST && c.varCnt !== 0) return H.HV_STATUS_INVALID_HYPERCALL_INPUT;
      if (c.repCnt === 0 || c.repIdx !== 0) return H.HV_STATUS_INVALID_HYPERCALL_INPUT;
      return flush(x, c);
    case H.HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE:
    case H.HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX:
      if (c.code === H.HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE && c.varCnt !== 0) return H.HV_STATUS_INVALID_HYPERCALL_INPUT;
      if (c.rep) return H.HV_STATUS_INVALID_HYPERCALL_INPUT;
      return flush(x, c);
    default:
      return H.HV_STATUS_INVALID_HYPERCALL_CODE;
  }
}

/** RAX (EDX:EAX outside 64-bit mode) = status | reps completed << 32 (kvm_hv_hypercall_set_result). */
function setResult(l0: L0Hypervisor, c: HvCall, status: number, reps: number): void {
  const g = l0.host;
  if (c.longMode) {
    g.gprLo[RAX] = status;
    g.gprHi[RAX] = reps;
  } else {
    g.gprLo[RAX] = status;
    g.gprHi[RAX] = 0;
    g.gprLo[RDX] = reps;
    g.gprHi[RDX] = 0;
  }
}

/** #UD for a caller at CPL > 0 or outside protected mode (TLFS; KVM kvm_hv_hypercall). */
function refused(l0: L0Hypervisor, v: GuestVcpu): boolean {
  const h = l0.host;
  const cpl = (h.vmread(V.VMCS_GUEST_SS_AR) >>> 5) & 3;
  if (cpl === 0 && (h.vmread(V.VMCS_GUEST_CR0) & CR0_PE) !== 0) return false;
  v.pendingException = UD;
  v.pendingExceptionError = -1;
  return true;
}

/** Set the result (reps completed = rep count on success, as KVM's full flush) and retire the VMCALL. */
function finish(x: Caller, c: HvCall, status: number): void {
  if (status !== H.HV_STATUS_SUCCESS) x.counts.bump(XH.failed);
  setResult(x.l0, c, status, status === H.HV_STATUS_SUCCESS ? c.repCnt : 0);
  x.l0.skipInstruction();
}

/**
 * L1's VMCALL when its Hyper-V hypercalls are enabled (a non-zero guest OS ID: KVM's
 * kvm_hv_hypercall_enabled): L0 answers it. Returns HANDLED.
 */
export function l1Hypercall(l0: L0Hypervisor, v: GuestVcpu, mem: GuestMemory, counts: CounterSet): number {
  counts.bump(XH["hypercalls.l1"]);
  if (refused(l0, v)) return HANDLED;
  const c = decode(l0);
  // XMM fast input is not offered (0x40000003 EDX bit 4): a fast flush is #UD, as KVM with
  // enforced CPUID — after the reserved-bit check, which answers status 3 first.
  if (c.fast && !c.reserved && isFlushCode(c.code)) {
    v.pendingException = UD;
    v.pendingExceptionError = -1;
    return HANDLED;
  }
  const x: Caller = { l0, v, mem, counts, l2: null };
  finish(x, c, dispatch(x, c));
  return HANDLED;
}

/**
 * L2's VMCALL on an L1 offered the eVMCS (KVM nested_vmx_l0_wants_exit for EXIT_REASON_VMCALL):
 * a flush call is L0's when L1 enabled the L2 TLB flush in the eVMCS and its VP assist page;
 * anything else goes to L1 (NOT_HV_HYPERCALL). L0 answers the call in L2, then L2 resumes
 * (HANDLED), or with tlb_lock_count non-zero L1 gets the synthetic exit (RUN_REFLECT).
 */
export function l2Hypercall(l0: L0Hypervisor, l2: L2VmxVcpu, s: NestedVmxState): number {
  const e = s.evmcs as EnlightenedVmcs;
  if (e.gpa < 0 || !e.l2FlushEnabled || !isFlushCode(callCode(l0))) return NOT_HV_HYPERCALL;
  const counts = (s.hv as HyperVMsrs).counts;
  const mem = l2.l1.vm.memory;
  counts.bump(XH["hypercalls.l2_direct"]);
  if (refused(l0, l2)) return HANDLED;
  const c = decode(l0);
  if (c.fast && !c.reserved) {
    l2.pendingException = UD;
    l2.pendingExceptionError = -1;
    return HANDLED;
  }
  const eptp12 = s.current.getNumber(V.VMCS_EPT_POINTER);
  const caller: Caller = {
    l0,
    v: l2,
    mem,
    counts,
    l2: { ept02: s.ept02 as Ept02, eptp12, vpId: e.vpId, vpid: l2.vpid },
  };
  let status = dispatch(caller, c);
  // kvm_hv_hypercall_complete: after a successful L2 flush, tlb_lock_count from the partition
  // assist page (an L1 GPA); a page that cannot be read makes the call fail.
  let lockCount = 0;
  if (status === H.HV_STATUS_SUCCESS) {
    const pa = e.partitionAssistPage + H.HV_PA_TLB_LOCK_COUNT;
    if (mem.isRam(pa, 4)) lockCount = mem.read32(pa);
    else status = H.HV_STATUS_INVALID_HYPERCALL_INPUT;
  }
  finish(caller, c, status);
  if (lockCount === 0) return HANDLED;
  // KVM vmx_hv_inject_synthetic_vmexit_post_tlb_flush: nested_vmx_vmexit(reason, 0, 0).
  counts.bump(XH.trap_after_flush);
  const h = l0.host;
  h.vmwrite(V.VMCS_EXIT_QUALIFICATION, 0);
  h.vmwrite(V.VMCS_EXIT_INTR_INFO, 0);
  h.vmwrite(V.VMCS_IDT_VECTORING_INFO, 0);
  l2.reflectReason = H.HV_VMX_SYNTHETIC_EXIT_REASON_TRAP_AFTER_FLUSH;
  return RUN_REFLECT;
}

/** The counters this module keeps per L1 vCPU (stats.ts NVMX_HV_EVENTS). */
export function newHvCounts(): CounterSet {
  return new CounterSet(NVMX_HV_EVENTS);
}
