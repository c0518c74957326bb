/**
 * The reflection rule (KVM: nested_vmx_reflect_vmexit, nested_vmx_l1_wants_exit): for every exit
 * of an L2, before L0's handler table, decide whether L1 asked for it through VMCS12's controls,
 * bitmaps and exception bitmap (reflect: the exit goes to L1), whether L0 handles it itself (an
 * EPT02 miss EPT12 already covers), or whether it is L0's as for any guest (external interrupts,
 * L0's preemption timer, exceptions only L0 intercepts). An exit nobody here can take stops the
 * L1 vCPU with an error naming it.
 */
import { RCX, RSP } from "../../../x86/registers.js";
import * as V from "../../../x86/vmx.js";
import * as C from "../../../x86/vmx-controls.js";
import { NOT_REFLECTED } from "../engine.js";
import type { L0Hypervisor } from "../l0.js";
import { HANDLED } from "../vcpu.js";
import { EPT02_L1_MISCONFIG, EPT02_L1_VIOLATION, EPT02_MAPPED, type Ept02 } from "./ept02.js";
import { l2Hypercall, NOT_HV_HYPERCALL } from "./hv-hypercall.js";
import type { VmxInsnContext } from "./instructions.js";
import { type L2VmxVcpu, RUN_REFLECT } from "./l2-vcpu.js";
import { emulateL2VmcsAccess, l1WantsVmcsAccess } from "./l2-vmcs-access.js";
import type { NestedVmxState } from "./state.js";

/** Exits L1 always gets: a triple fault (25.2; KVM nested_vmx_l1_wants_exit) and the instructions that exit unconditionally in VMX non-root operation (25.1.2). */
const ALWAYS = new Set([
  V.EXIT_TRIPLE_FAULT,
  V.EXIT_CPUID,
  V.EXIT_GETSEC,
  V.EXIT_INVD,
  V.EXIT_XSETBV,
  V.EXIT_VMCALL,
  V.EXIT_VMCLEAR,
  V.EXIT_VMLAUNCH,
  V.EXIT_VMPTRLD,
  V.EXIT_VMPTRST,
  V.EXIT_VMREAD,
  V.EXIT_VMRESUME,
  V.EXIT_VMWRITE,
  V.EXIT_VMXOFF,
  V.EXIT_VMXON,
  V.EXIT_INVEPT,
  V.EXIT_INVVPID,
  V.EXIT_VMFUNC,
]);

function toL1(l2: L2VmxVcpu, reason: number): number {
  l2.reflectReason = reason;
  return RUN_REFLECT;
}

/** A bit of a bitmap page in L1 memory at guest-physical `gpa`; true (exit) when it is not RAM. */
function bitmapBit(l0: L0Hypervisor, s: NestedVmxState, gpa: number, bit: number): boolean {
  const hpa = (s.l2 as L2VmxVcpu).l1.vm.memslots.translate(gpa + (bit >>> 3));
  return hpa < 0 || (l0.host.mem.read(hpa, 1) & (1 << (bit & 7))) !== 0;
}

/** I/O exits L1 asked for: unconditional I/O exiting, or its I/O bitmaps (25.1.3). */
function ioWanted(l0: L0Hypervisor, s: NestedVmxState, proc12: number): boolean {
  if ((proc12 & C.CPU_USE_IO_BITMAPS) === 0) return (proc12 & C.CPU_UNCOND_IO_EXITING) !== 0;
  const q = l0.host.vmread(V.VMCS_EXIT_QUALIFICATION);
  const port = (q >>> 16) & 0xffff;
  const size = (q & 7) + 1;
  const c = s.current;
  for (let p = port; p < port + size; p++) {
    const pp = p & 0xffff;
    const map = pp < 0x8000 ? c.getNumber(V.VMCS_IO_BITMAP_A) : c.getNumber(V.VMCS_IO_BITMAP_B);
    if (bitmapBit(l0, s, map, pp & 0x7fff)) return true;
  }
  return false;
}

/** MSR exits L1 asked for: everything without MSR bitmaps, else its bitmap's bit (25.1.3). */
function msrWanted(l0: L0Hypervisor, s: NestedVmxState, proc12: number, write: boolean): boolean {
  if ((proc12 & C.CPU_USE_MSR_BITMAPS) === 0) return true;
  const index = l0.host.gprLo[RCX] >>> 0;
  let base: number;
  if (index <= 0x1fff) base = 0;
  else if (index >= 0xc0000000 && index <= 0xc0001fff) base = 1024;
  else return true;
  return bitmapBit(l0, s, s.current.getNumber(V.VMCS_MSR_BITMAP) + (write ? 2048 : 0) + base, index & 0x1fff);
}

/** Exception exits L1 asked for: its exception bitmap, with the #PF error-code filter (25.2). */
function exceptionWanted(l0: L0Hypervisor, s: NestedVmxState): boolean {
  const info = l0.host.vmread(V.VMCS_EXIT_INTR_INFO);
  const vector = info & 0xff;
  if ((info & C.INTR_INFO_TYPE_MASK) === C.INTR_TYPE_NMI)
    return (s.current.get32(V.VMCS_PIN_BASED_CONTROLS) & C.PIN_NMI_EXITING) !== 0;
  const bit = (s.current.get32(V.VMCS_EXCEPTION_BITMAP) & (1 << vector)) !== 0;
  if (vector !== 14) return bit;
  const ec = l0.host.vmread(V.VMCS_EXIT_INTR_ERROR_CODE);
  const match = (ec & s.current.get32(V.VMCS_PF_ERROR_CODE_MASK)) === s.current.get32(V.VMCS_PF_ERROR_CODE_MATCH);
  return match ? bit : !bit;
}

/** CR-access exits L1 asked for (25.1.3): its CR0/CR4 masks and shadows, CR3/CR8 exiting. */
function crWanted(l0: L0Hypervisor, s: NestedVmxState, proc12: number): boolean {
  const h = l0.host;
  const q = h.vmread(V.VMCS_EXIT_QUALIFICATION);
  const cr = q & 15;
  const type = (q >>> 4) & 3;
  const c = s.current;
  if (type === C.CR_ACCESS_TYPE_MOV_TO_CR) {
    const gpr = (q >>> 8) & 15;
    const value = gpr === RSP ? h.vmread(V.VMCS_GUEST_RSP) : h.gprLo[gpr];
    if (cr === 0) return ((value ^ c.get32(V.VMCS_CR0_READ_SHADOW)) & c.get32(V.VMCS_CR0_GUEST_HOST_MASK)) !== 0;
    if (cr === 4) return ((value ^ c.get32(V.VMCS_CR4_READ_SHADOW)) & c.get32(V.VMCS_CR4_GUEST_HOST_MASK)) !== 0;
    if (cr === 3) return (proc12 & C.CPU_CR3_LOAD_EXITING) !== 0;
    return (proc12 & C.CPU_CR8_LOAD_EXITING) !== 0;
  }
  if (type === C.CR_ACCESS_TYPE_MOV_FROM_CR)
    return (proc12 & (cr === 3 ? C.CPU_CR3_STORE_EXITING : C.CPU_CR8_STORE_EXITING)) !== 0;
  return true; // CLTS, LMSW: only L1's CR0 mask can make them exit
}

const EPT_READ = 1;
const EPT_WRITE = 2;
/** Exit-qualification bits 7 (linear address valid) and 8 (access to the translation, not to a paging-structure entry). */
const QUAL_LINEAR_VALID = 0x80;
const QUAL_LINEAR_TRANSLATED = 0x100;

/**
 * An EPT02 write to a guest paging-structure entry that EPT12 would see as a read: the processor
 * treats its accesses to guest paging structures as writes only when the EPTP enables accessed
 * and dirty flags (SDM vol. 3C, "Accessed and Dirty Flags for EPT"): EPT02's always do, EPTP12's
 * when L1 sets bit 6 (then the access is a write for EPT12 too, and sets the leaf's dirty flag).
 */
function paging12Read(qual: number, eptp12Lo: number): boolean {
  const pagingEntry = (qual & (QUAL_LINEAR_VALID | QUAL_LINEAR_TRANSLATED)) === QUAL_LINEAR_VALID;
  return pagingEntry && (qual & 7) === EPT_WRITE && (eptp12Lo & C.EPTP_AD_ENABLE) === 0;
}

/** An EPT violation of L2: an EPT02 miss EPT12 covers is L0's; anything else is L1's. */
function eptViolation(l0: L0Hypervisor, l2: L2VmxVcpu, s: NestedVmxState): number {
  const h = l0.host;
  const ept02 = s.ept02 as Ept02;
  const gpa = h.vmreadNumber(V.VMCS_GUEST_PHYSICAL_ADDRESS);
  const qual = h.vmread(V.VMCS_EXIT_QUALIFICATION);
  const eptp = s.current.getNumber(V.VMCS_EPT_POINTER);
  const eptpLo = (eptp % 4294967296) | 0;
  const eptpHi = Math.floor(eptp / 4294967296);
  let r = ept02.miss(eptpLo, eptpHi, gpa, qual & 7);
  l0.chargeTableWalk("nvmx_ept12_walk", ept02.walker);
  if (r === EPT02_L1_VIOLATION && paging12Read(qual, eptpLo)) {
    // As L1's EPT sees it, the processor only read the guest paging-structure entry: walk EPT12
    // for a read, and report that if it fails too.
    const asRead = ept02.miss(eptpLo, eptpHi, gpa, EPT_READ);
    l0.chargeTableWalk("nvmx_ept12_walk", ept02.walker);
    if (asRead !== EPT02_MAPPED) r = asRead;
  }
  if (r === EPT02_MAPPED) {
    const leaf = ept02.table.lookup(gpa - (gpa % 4096));
    if (leaf === null || (qual & 7 & ~leaf.perms) !== 0)
      return l2.fail(
        "error",
        V.EXIT_EPT_VIOLATION,
        `L2 access to 0x${gpa.toString(16)} needs a frame L0 write-tracks; not emulated`,
      );
    l0.chargeFor(l2, "nvmx.ept02_fault", "ept02_fault");
    return HANDLED;
  }
  if (r === EPT02_L1_VIOLATION) {
    // The qualification as EPT12 gives it, with the linear-address bits of the real exit and its
    // "NMI unblocking due to IRET" (bit 12: L1 sets blocking by NMI again itself).
    const fromExit = 0x180 | C.EPT_QUAL_NMI_UNBLOCKED_BY_IRET;
    s.reflectQualification = (ept02.qualification & ~fromExit) | (qual & fromExit);
    return toL1(l2, V.EXIT_EPT_VIOLATION);
  }
  if (r === EPT02_L1_MISCONFIG) return toL1(l2, V.EXIT_EPT_MISCONFIG);
  return l2.fail(
    "error",
    V.EXIT_EPT_VIOLATION,
    `L2 guest-physical 0x${gpa.toString(16)} maps (through EPT12) outside L1 RAM; not emulated`,
  );
}

/** The reflect step for exit `reason` of L2 vCPU `l2` (runs before L0's handler table). */
export function reflectExit(l0: L0Hypervisor, l2: L2VmxVcpu, s: NestedVmxState, reason: number): number {
  s.l2Exits++;
  const proc12 = s.current.get32(V.VMCS_PROC_BASED_CONTROLS);
  // VMCS shadowing L1 set for L2: a VMREAD/VMWRITE its bitmaps let through is L0's to emulate.
  if ((reason === V.EXIT_VMREAD || reason === V.EXIT_VMWRITE) && !l1WantsVmcsAccess(l0, s, reason))
    return emulateL2VmcsAccess(s.l2Insn as VmxInsnContext, reason);
  if (reason === V.EXIT_VMCALL && s.evmcs !== null) {
    // nvmx-evmcs: L2's Hyper-V flush hypercall is L0's when L1 enabled the L2 TLB flush.
    const r = l2Hypercall(l0, l2, s);
    if (r !== NOT_HV_HYPERCALL) return r;
  }
  if (ALWAYS.has(reason)) return toL1(l2, reason);
  switch (reason) {
    case V.EXIT_EPT_VIOLATION:
      return eptViolation(l0, l2, s);
    case V.EXIT_HLT:
      return (proc12 & C.CPU_HLT_EXITING) !== 0 ? toL1(l2, reason) : haltL2(l0, l2, s);
    case V.EXIT_IO_INSTRUCTION:
      // Not L1's: L0's handler runs it against the L1 VM's devices (L2VmxVcpu.portIoVm).
      return ioWanted(l0, s, proc12) ? toL1(l2, reason) : NOT_REFLECTED;
    case V.EXIT_RDMSR:
    case V.EXIT_WRMSR:
      // Not L1's: an MSR L0 intercepts for L1 itself (its LAPIC), which L1 lets L2 reach.
      return msrWanted(l0, s, proc12, reason === V.EXIT_WRMSR) ? toL1(l2, reason) : NOT_REFLECTED;
    case V.EXIT_EXCEPTION_NMI:
      return exceptionWanted(l0, s) ? toL1(l2, reason) : NOT_REFLECTED;
    case V.EXIT_CR_ACCESS:
      if (crWanted(l0, s, proc12)) return toL1(l2, reason);
      return l2.fail("error", reason, "L2 set CR4.VMXE (nested VMX inside L2 is not offered)");
    case V.EXIT_INTERRUPT_WINDOW:
      // VMCS02 asks for the window only for L0's pending event or L1's control (core.ts).
      return (proc12 & C.CPU_INTR_WINDOW_EXITING) !== 0 ? toL1(l2, reason) : NOT_REFLECTED;
    case V.EXIT_NMI_WINDOW:
      // VMCS02 has NMI-window exiting only when VMCS12 does (nested.ts; KVM nested_vmx_l1_wants_exit).
      if ((proc12 & C.CPU_NMI_WINDOW_EXITING) !== 0) return toL1(l2, reason);
      return l2.fail("error", reason, "NMI-window exit L1 did not ask for (L0 injects no NMIs)");
    case V.EXIT_PREEMPTION_TIMER:
      // L0 runs L1's timer and its own on VMCS02's one timer: L1's when its deadline passed.
      return timer12Expired(l0, l2) ? toL1(l2, reason) : NOT_REFLECTED;
    case V.EXIT_EXTERNAL_INTERRUPT:
      return NOT_REFLECTED;
    case V.EXIT_INVLPG:
    case V.EXIT_RDTSC:
    case V.EXIT_RDTSCP:
    case V.EXIT_WBINVD:
      // VMCS02 has INVLPG, RDTSC and WBINVD exiting only when VMCS12 does (nested.ts): L1 asked.
      return toL1(l2, reason);
    default:
      return l2.fail("error", reason, `exit reason ${reason} of a nested-VMX L2 is not handled`);
  }
}

/**
 * After L0 handled an external interrupt or its timer for L2: an interrupt now pending for L1
 * with L1's external-interrupt exiting set is an exit to L1 (vector in the exit information when
 * L1 acknowledges interrupts on exit), as KVM's nested_vmx_vmexit(EXTERNAL_INTERRUPT).
 */
export function afterL0Exit(l0: L0Hypervisor, l2: L2VmxVcpu, s: NestedVmxState, reason: number): void {
  if (reason !== V.EXIT_EXTERNAL_INTERRUPT && reason !== V.EXIT_PREEMPTION_TIMER) return;
  interruptExitToL1(l0, l2, s);
}

/** Whether L1's VMX-preemption timer for L2 has expired (its exit goes to L1; the next entry reloads it). */
function timer12Expired(l0: L0Hypervisor, l2: L2VmxVcpu): boolean {
  return l0.host.cycles() >= l2.timer12Deadline;
}

/**
 * L2 executed HLT and L1 does not intercept it (KVM: kvm_emulate_halt in guest mode): L0 retires
 * it and blocks the vCPU until something L1 set can wake it — L1's LAPIC (an interrupt for L1,
 * with external-interrupt exiting an exit to L1) or L1's preemption timer for L2 — charging the
 * wait as idle time. Nothing armed: the L1 vCPU stops with an error naming the HLT.
 */
function haltL2(l0: L0Hypervisor, l2: L2VmxVcpu, s: NestedVmxState): number {
  const h = l0.host;
  l0.skipInstruction();
  l0.chargeFor(l2, "l0.hlt", "hlt");
  const lapic = l2.lapic;
  lapic.advance(h.cycles());
  if (!l2.l1.hasPendingInterrupt()) {
    const wake = Math.min(lapic.nextEventCycle(), l2.timer12Deadline);
    if (wake === Number.POSITIVE_INFINITY)
      return l2.fail("error", V.EXIT_HLT, "L2 halted (L1 does not intercept HLT) with no timer of L1's armed");
    if (wake > h.cycles()) l0.chargeIdle(l2, wake - h.cycles());
    lapic.advance(h.cycles());
  }
  if (timer12Expired(l0, l2)) {
    h.vmwrite(V.VMCS_EXIT_INTR_INFO, 0);
    h.vmwrite(V.VMCS_EXIT_QUALIFICATION, 0);
    return toL1(l2, V.EXIT_PREEMPTION_TIMER);
  }
  return interruptExitToL1(l0, l2, s) ? RUN_REFLECT : HANDLED;
}

/**
 * At a nested entry (VMCS02 current, no event injected): an interrupt already pending for L1 with
 * L1's external-interrupt exiting set makes L2 exit to L1 before its first instruction (SDM vol. 3C
 * 26.7.5; KVM: vmx_check_nested_events after nested_vmx_run). Only an L1 that takes interrupts of
 * its own meets this (l1hv's vmx-evmcs back end: its LAPIC timer stands in for L2's).
 */
export function interruptPendingAtEntry(l0: L0Hypervisor, l2: L2VmxVcpu, s: NestedVmxState): boolean {
  if (l2.reinjectInfo !== 0) return false;
  l2.lapic.advance(l0.host.cycles());
  if (!interruptExitToL1(l0, l2, s)) return false;
  l0.host.vmwrite(V.VMCS_IDT_VECTORING_INFO, 0);
  l0.host.vmwrite(V.VMCS_EXIT_INSTRUCTION_LENGTH, 0);
  return true;
}

/** An interrupt pending for L1 whose external-interrupt exiting is set: make it L2's exit to L1. */
function interruptExitToL1(l0: L0Hypervisor, l2: L2VmxVcpu, s: NestedVmxState): boolean {
  if ((s.current.get32(V.VMCS_PIN_BASED_CONTROLS) & C.PIN_EXT_INTR_EXITING) === 0) return false;
  if (!l2.l1.hasPendingInterrupt()) return false;
  let info = 0;
  if ((s.current.get32(V.VMCS_EXIT_CONTROLS) & C.EXIT_ACK_INTR_ON_EXIT) !== 0)
    info = C.INTR_INFO_VALID | C.INTR_TYPE_EXT_INTR | l2.l1.acknowledgeInterrupt();
  const h = l0.host;
  h.vmwrite(V.VMCS_EXIT_INTR_INFO, info);
  h.vmwrite(V.VMCS_EXIT_QUALIFICATION, 0);
  l2.reflectReason = V.EXIT_EXTERNAL_INTERRUPT;
  return true;
}
