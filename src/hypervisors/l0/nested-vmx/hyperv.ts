/**
 * The Hyper-V enlightenments L0 offers an L1 with the enlightened VMCS (`nvmx-evmcs`), as KVM's
 * hyperv.c does for an L1 that runs with `hv-evmcs` (own code): the Hyper-V CPUID leaves
 * 0x40000000–0x4000000A in place of KVM's signature, and the synthetic MSRs an L1 needs to use
 * the enlightened VMCS — guest OS ID, hypercall page, VP assist page (TLFS v6.0b, "Hypercall
 * Interface", "Virtual Processor Assist Page"). What L0 offers and what it does not:
 *
 * - offered: eVMCS version 1 (0x4000000A EAX 7:0 and 15:8), the direct (L2) TLB flush (bit 17)
 *   and the enlightened MSR bitmap (bit 19); recommendations (0x40000004 EAX) remote TLB flush
 *   (bit 2), sparse processor sets (bit 11: the flush _EX calls) and EnlightenedVmcsRecommended
 *   (bit 14); privileges AccessIntrCtrlRegs (bit 4: the VP assist page MSR, as KVM's
 *   hv_check_msr_access) and AccessHypercallMsrs (bit 5). The flush hypercalls: hv-hypercall.ts.
 * - not offered (as KVM): the nested guest-mapping flush (0x4000000A bit 18, hypercalls
 *   0x00AF/0x00B0); XMM fast hypercall input (0x40000003 EDX bit 4); the synthetic APIC MSRs
 *   EOI/ICR/TPR (#GP), SynIC and timers, the VP index MSR.
 */
import * as H from "../../../x86/hyperv.js";
import * as MSR from "../../../x86/msr.js";
import * as C from "../../../x86/vmx-controls.js";
import type { Vm } from "../vm.js";
import { newHvCounts } from "./hv-hypercall.js";

/** Per L1 vCPU: the synthetic MSRs' values. */
export class HyperVMsrs {
  guestOsId: [number, number] = [0, 0];
  hypercall: [number, number] = [0, 0];
  vpAssist: [number, number] = [0, 0];
  /** The hypercalls L0 answered (stats.ts NVMX_HV_EVENTS). */
  readonly counts = newHvCounts();

  /** L1's VMCALLs are Hyper-V hypercalls once it set a guest OS ID (KVM kvm_hv_hypercall_enabled). */
  get hypercallsEnabled(): boolean {
    return (this.guestOsId[0] | this.guestOsId[1]) !== 0;
  }

  /** GPA of the enabled VP assist page, -1 when disabled. */
  get vpAssistGpa(): number {
    const [lo, hi] = this.vpAssist;
    if ((lo & H.HV_VP_ASSIST_PAGE_ENABLE) === 0) return -1;
    return (hi >>> 0) * 4294967296 + ((lo & ~0xfff) >>> 0);
  }
}

const str4 = (s: string): number =>
  s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24);

/** The Hyper-V CPUID leaves of an L1 offered the enlightened VMCS (KVM: kvm_get_hv_cpuid). */
export function offerHyperVCpuid(vm: Vm): void {
  const c = vm.cpuid;
  for (let leaf = H.HV_CPUID_VENDOR_AND_MAX; leaf <= H.HV_CPUID_NESTED_FEATURES; leaf++) c.set(leaf, 0, [0, 0, 0, 0]);
  c.set(H.HV_CPUID_VENDOR_AND_MAX, 0, [H.HV_CPUID_NESTED_FEATURES, str4("Micr"), str4("osof"), str4("t Hv")]);
  c.set(H.HV_CPUID_INTERFACE, 0, [H.HV_INTERFACE_SIGNATURE, 0, 0, 0]);
  c.set(H.HV_CPUID_FEATURES, 0, [H.HV_MSR_APIC_ACCESS_AVAILABLE | H.HV_MSR_HYPERCALL_AVAILABLE, 0, 0, 0]);
  // EBX: spinlock retries before notifying, all ones = never (as KVM).
  const recommended =
    H.HV_REMOTE_TLB_FLUSH_RECOMMENDED | H.HV_EX_PROCESSOR_MASKS_RECOMMENDED | H.HV_ENLIGHTENED_VMCS_RECOMMENDED;
  c.set(H.HV_CPUID_ENLIGHTENMENT_INFO, 0, [recommended, -1, 0, 0]);
  const versions = H.EVMCS_VERSION | (H.EVMCS_VERSION << 8);
  c.set(H.HV_CPUID_NESTED_FEATURES, 0, [versions | H.HV_NESTED_DIRECT_FLUSH | H.HV_NESTED_MSR_BITMAP, 0, 0, 0]);
}

/**
 * The capability MSRs as an L1 using eVMCS v1 sees them: the eVMCS has no VMX-preemption timer
 * value, so neither the timer nor "save timer value" is offered (KVM: EVMCS1_SUPPORTED_PINCTRL,
 * EVMCS1_SUPPORTED_VMEXIT_CTRL, nested_evmcs_filter_control_msr), nor VMCS shadowing (no VMREAD/
 * VMWRITE bitmap fields; KVM leaves SECONDARY_EXEC_SHADOW_VMCS out of EVMCS1_SUPPORTED_2NDEXEC).
 */
export function filterCapsForEvmcs(index: number, value: Int32Array): void {
  switch (index) {
    case MSR.MSR_IA32_VMX_PINBASED_CTLS:
    case MSR.MSR_IA32_VMX_TRUE_PINBASED_CTLS:
      value[1] &= ~C.PIN_PREEMPTION_TIMER;
      break;
    case MSR.MSR_IA32_VMX_EXIT_CTLS:
    case MSR.MSR_IA32_VMX_TRUE_EXIT_CTLS:
      value[1] &= ~C.EXIT_SAVE_PREEMPTION_TIMER;
      break;
    case MSR.MSR_IA32_VMX_PROCBASED_CTLS2:
      value[1] &= ~C.CPU2_VMCS_SHADOWING;
      break;
  }
}

/** RDMSR of a synthetic MSR: [low, high], or null (#GP). */
export function readHyperVMsr(m: HyperVMsrs, index: number): [number, number] | null {
  switch (index) {
    case H.HV_MSR_GUEST_OS_ID:
      return [...m.guestOsId];
    case H.HV_MSR_HYPERCALL:
      return [...m.hypercall];
    case H.HV_MSR_VP_ASSIST_PAGE:
      return [...m.vpAssist];
    default:
      return null;
  }
}

/** The hypercall page L0 fills when L1 enables it (TLFS 3.13: VMCALL; RET on Intel). */
const HYPERCALL_PAGE_CODE = Uint8Array.of(0x0f, 0x01, 0xc1, 0xc3);

/**
 * WRMSR of a synthetic MSR (KVM kvm_hv_set_msr_pw / kvm_hv_set_msr): false for #GP — an unknown
 * index, enabling the hypercall page before a guest OS ID is set (TLFS 3.13), or a hypercall or
 * VP assist page that is not L1 RAM.
 */
export function writeHyperVMsr(m: HyperVMsrs, vm: Vm, index: number, lo: number, hi: number): boolean {
  const page = (hi >>> 0) * 4294967296 + ((lo & ~0xfff) >>> 0);
  const enable = (lo & 1) !== 0;
  switch (index) {
    case H.HV_MSR_GUEST_OS_ID:
      m.guestOsId = [lo | 0, hi | 0];
      // A zero guest OS ID disables the hypercall page (TLFS 3.13).
      if (lo === 0 && hi === 0) m.hypercall = [m.hypercall[0] & ~1, m.hypercall[1]];
      return true;
    case H.HV_MSR_HYPERCALL:
      if (enable) {
        if ((m.guestOsId[0] | m.guestOsId[1]) === 0 || !vm.memory.isRam(page, 4096)) return false;
        vm.memory.writeBytes(page, HYPERCALL_PAGE_CODE);
      }
      m.hypercall = [lo | 0, hi | 0];
      return true;
    case H.HV_MSR_VP_ASSIST_PAGE:
      if (enable && !vm.memory.isRam(page, 4096)) return false;
      m.vpAssist = [lo | 0, hi | 0];
      return true;
    default:
      return false;
  }
}
