/**
 * What L0 keeps per L1 vCPU for nested VMX (KVM's struct nested_vmx): its IA32_FEATURE_CONTROL,
 * whether the L1 is in VMX operation (after its VMXON) and where its VMXON region is, and the
 * current VMCS12, cached.
 */
import type { Ept02 } from "./ept02.js";
import type { EnlightenedVmcs } from "./evmcs.js";
import { FeatureControl } from "./feature-control.js";
import type { HyperVMsrs } from "./hyperv.js";
import type { VmxInsnContext } from "./instructions.js";
import type { L2VmxVcpu } from "./l2-vcpu.js";
import type { OperandAccess } from "./operand.js";
import type { ShadowVmcs } from "./shadow.js";
import { NvmxCounts } from "./stats.js";
import { Vmcs12Cache } from "./vmcs12.js";

/** VMPTRST's answer when no VMCS is current (SDM vol. 3C, 31.3: FFFFFFFF_FFFFFFFFH). */
export const NO_CURRENT_VMCS = -1;

/** Its counters (emulated instructions, trapped fields, reflected exits) are NvmxCounts' (stats.ts). */
export class NestedVmxState extends NvmxCounts {
  /** IA32_FEATURE_CONTROL (0 at reset; KVM keeps it in struct vcpu_vmx). */
  readonly featureControl = new FeatureControl();
  /** The L1 executed VMXON (and no VMXOFF since). */
  vmxon = false;
  /** Guest-physical address of the VMXON region. */
  vmxonPtr = -1;
  /** The current VMCS12 (gpa < 0: none). */
  readonly current = new Vmcs12Cache();
  /** The L2 vCPU (VMCS02), EPT02 and merged MSR bitmap, made at the first nested entry. */
  l2: L2VmxVcpu | null = null;
  ept02: Ept02 | null = null;
  msrBitmap02 = -1;
  /** EPTP12 EPT02 currently shadows (-1: none yet). */
  eptp12 = -1;
  /** `nvmx-shadow`: the shadow VMCS L0 gives this L1 vCPU (made at its first VMX instruction). */
  shadow: ShadowVmcs | null = null;
  /** `nvmx-evmcs`: the Hyper-V synthetic MSRs and the enlightened VMCS (null on other variants). */
  hv: HyperVMsrs | null = null;
  evmcs: EnlightenedVmcs | null = null;
  /** For a reflected EPT violation: the qualification as EPT12 gives it. */
  reflectQualification = -1;
  /**
   * VMCS shadowing for L1's L2 (l2-vmcs-access.ts): the shadow VMCS12 VMCS12's link pointer names,
   * cached while L2 runs (gpa < 0: none; KVM's cached_shadow_vmcs12), and the operand access for
   * L2's VMREAD/VMWRITE (made with the L2 vCPU).
   */
  readonly shadowVmcs12 = new Vmcs12Cache();
  l2Operands: OperandAccess | null = null;
  /**
   * The contexts L0 emulates VMX instructions in, made once: L1's (at its first VMX instruction)
   * and its L2's VMREAD/VMWRITE under VMCS shadowing (with the L2 vCPU).
   */
  insn: VmxInsnContext | null = null;
  l2Insn: VmxInsnContext | null = null;

  get hasCurrent(): boolean {
    return this.current.gpa >= 0;
  }
}
