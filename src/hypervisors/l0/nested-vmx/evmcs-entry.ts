/**
 * VMLAUNCH/VMRESUME of an L1 offered the enlightened VMCS (`nvmx-evmcs`; KVM nested_vmx_run with
 * nested_vmx_handle_enlightened_vmptrld): the eVMCS state is evmcs.ts's, the entry nested.ts's.
 */
import { HANDLED } from "../vcpu.js";
import { directHypercall, type EnlightenedVmcs, enlightenedVmentry } from "./evmcs.js";
import type { HyperVMsrs } from "./hyperv.js";
import { failInvalid, permitted, releaseCurrent, type VmxInsnContext } from "./instructions.js";
import { type VpidSource, vmentry } from "./nested.js";

/**
 * L1's VMLAUNCH/VMRESUME when L0 offers the eVMCS (KVM nested_vmx_run): after the permission
 * checks, the eVMCS the VP assist page names becomes current (a VMCS12 current before is written
 * back first) and its dirty groups go into VMCS12; the nested entry (nested.ts) then runs from VMCS12.
 * Without enlighten_vmentry the plain VMCS path runs unchanged.
 */
export function evmcsVmentry(x: VmxInsnContext, engine: VpidSource, resume: boolean): number {
  const p = permitted(x);
  if (p >= 0) return p;
  const s = x.s;
  const e = s.evmcs as EnlightenedVmcs;
  const mem = x.vm.memory;
  const vpAssist = (s.hv as HyperVMsrs).vpAssistGpa;
  const gpa = enlightenedVmentry(mem, vpAssist);
  if (gpa < 0) {
    if (e.gpa >= 0) releaseCurrent(x);
    return vmentry(x, engine, resume);
  }
  if (gpa !== e.gpa) {
    releaseCurrent(x);
    if (!e.map(x.l0, x.v, mem, gpa, s.current)) return failInvalid(x);
  }
  e.toVmcs12(x.l0, mem, s.current);
  e.directHypercall = directHypercall(mem, vpAssist);
  // The eVMCS has no launch state: L0 takes VMLAUNCH/VMRESUME at its word (KVM: launch_state = !launch).
  s.current.launched = resume;
  const entries = s.entries;
  const r = vmentry(x, engine, resume);
  if (s.entries > entries) e.markClean(mem);
  if (r === HANDLED) e.fromVmcs12(x.l0, mem, s.current, s.entries > entries);
  return r;
}
