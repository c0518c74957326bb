/**
 * IA32_FEATURE_CONTROL (MSR 0x3A) of an L1 vCPU the engine offers VMX to, as KVM keeps it
 * (vmx.c: `msr_ia32_feature_control`, `is_vmx_feature_control_msr_valid`; own code): a per-vCPU
 * value, 0 at reset (the L1's firmware or kernel sets and locks it: Linux's init_ia32_feat_ctl,
 * l1hv's vmx_init). A guest WRMSR is #GP once the lock bit is set, or when it sets a bit outside
 * the valid ones — lock, and with VMX in the guest's CPUID both "VMXON inside SMX" and "VMXON
 * outside SMX" (KVM's vmx_vcpu_after_set_cpuid allows bit 1 without SMX; the bare CPU, SDM vol. 3C
 * 23.7, #GPs on it). VMXON needs lock and "outside SMX" (KVM handle_vmxon: VMXON_NEEDED_FEATURES).
 */
import * as C from "../../../x86/vmx-controls.js";

/** Bits an L1 offered VMX may write (KVM: msr_ia32_feature_control_valid_bits with VMX). */
const WRITABLE = C.FEATURE_CONTROL_LOCK | C.FEATURE_CONTROL_VMXON_IN_SMX | C.FEATURE_CONTROL_VMXON_OUTSIDE_SMX;
/** What VMXON requires (KVM: VMXON_NEEDED_FEATURES). */
const VMXON_NEEDED = C.FEATURE_CONTROL_LOCK | C.FEATURE_CONTROL_VMXON_OUTSIDE_SMX;

/** One L1 vCPU's IA32_FEATURE_CONTROL. */
export class FeatureControl {
  /** The MSR's value (bits 31:0; bits 63:32 are reserved and read 0). */
  value = 0;

  /** A guest WRMSR of [lo, hi]: false (#GP) when locked or with a bit outside the writable ones. */
  write(lo: number, hi: number): boolean {
    if ((this.value & C.FEATURE_CONTROL_LOCK) !== 0 || hi !== 0 || (lo & ~WRITABLE) !== 0) return false;
    this.value = lo;
    return true;
  }

  /** Whether VMXON may run (else it is #GP(0)). */
  get allowsVmxon(): boolean {
    return (this.value & VMXON_NEEDED) === VMXON_NEEDED;
  }
}
