/**
 * What L0 keeps per L1 vCPU for nested VMX (KVM's struct nested_vmx): whether the L1 is in VMX
 * operation (after its VMXON) and where its VMXON region is, and the current VMCS12, cached.
 */
import { Vmcs12Cache } from "./vmcs12.js";

/** VMPTRST's answer when no VMCS is current (SDM vol. 3C, 31.3: FFFFFFFF_FFFFFFFFH). */
export const NO_CURRENT_VMCS = -1;

export class NestedVmxState {
  /** The L1 executed VMXON (and no VMXOFF since). */
  vmxon = false;
  /** Guest-physical address of the VMXON region. */
  vmxonPtr = -1;
  /** The current VMCS12 (gpa < 0: none). */
  readonly current = new Vmcs12Cache();
  /** VMX instructions emulated, by exit reason. */
  readonly emulated = new Map<number, number>();

  get hasCurrent(): boolean {
    return this.current.gpa >= 0;
  }
}
