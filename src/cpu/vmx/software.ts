/**
 * VMX operation entered by guest software (VMXON): the state the processor keeps for a
 * hypervisor made of x86 code, beside the `VmxUnit` that performs entries and exits for it and
 * for nestlab's TypeScript hypervisors alike.
 *
 * The processor caches the VMCS regions software made active (VMPTRLD) here, keyed by their
 * physical address, as hardware may (SDM vol. 3, 24.11.1): VMREAD/VMWRITE touch the cached copy,
 * VMCLEAR (and VMXOFF) write it back to memory in the layout of vmcs-region.ts.
 */

import type { Vmcs } from "./vmcs.js";

export class SoftwareVmx {
  /** IA32_FEATURE_CONTROL (0 at reset: firmware or software sets and locks it). */
  featureControl = 0;
  /** In VMX operation (between VMXON and VMXOFF). */
  inVmx = false;
  /** Physical address of the VMXON region. */
  vmxonPtr = -1;
  /** Active VMCS regions cached by the processor, by physical address. */
  readonly cache = new Map<number, Vmcs>();
  /**
   * True while a VMCS that guest software launched runs: its VM exits load the host-state area
   * and software continues at HOST_RIP, instead of returning to a TypeScript hypervisor.
   */
  guestRunning = false;
  /** VMREADs and VMWRITEs executed in root operation (what each would cost as an exit under nested VMX). */
  vmreads = 0;
  vmwrites = 0;
}
