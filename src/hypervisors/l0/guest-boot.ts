/**
 * Starting a guest the way QEMU does before the first KVM_RUN: the boot loader's pages go into
 * guest RAM through the memslots, its entry state into the vCPU's VMCS guest-state area (the
 * fields VM exit saves, SDM vol. 3, 27.3) and the GPRs into the vCPU's context.
 */
import type { BootState } from "../../machine/boot-state.js";
import * as V from "../../x86/vmx.js";
import * as C from "../../x86/vmx-controls.js";
import type { L0Hypervisor } from "./l0.js";
import type { Vcpu } from "./vcpu.js";

/** Guest segment fields in ES, CS, SS, DS, FS, GS order: selector, base, limit, access rights. */
const SEGS = V.VMCS_GUEST_SEGMENT_FIELDS;

export function loadBootState(l0: L0Hypervisor, vcpu: Vcpu, s: BootState): void {
  const vm = vcpu.vm;
  for (const p of s.pages) {
    const hpa = vm.memslots.translate(p.pfn * 4096);
    if (hpa >= 0) l0.host.mem.writeBytes(hpa, p.bytes);
  }
  const h = l0.host;
  h.load(vcpu.vmcs);
  h.vmwrite(V.VMCS_GUEST_CR0, s.cr0);
  h.vmwrite(V.VMCS_GUEST_CR3, s.cr3Lo, s.cr3Hi);
  h.vmwrite(V.VMCS_GUEST_CR4, s.cr4);
  h.vmwrite(V.VMCS_GUEST_IA32_EFER, s.efer);
  for (let k = 0; k < 6; k++) {
    const g = s.segs[k];
    h.vmwrite(SEGS[k][0], g.sel);
    h.vmwrite(SEGS[k][1], g.baseLo, g.baseHi);
    h.vmwrite(SEGS[k][2], g.limit | 0);
    h.vmwrite(SEGS[k][3], g.ar);
  }
  h.vmwrite(V.VMCS_GUEST_GDTR_BASE, s.gdtr.baseLo, s.gdtr.baseHi);
  h.vmwrite(V.VMCS_GUEST_GDTR_LIMIT, s.gdtr.limit);
  h.vmwrite(V.VMCS_GUEST_IDTR_BASE, s.idtr.baseLo, s.idtr.baseHi);
  h.vmwrite(V.VMCS_GUEST_IDTR_LIMIT, s.idtr.limit);
  h.vmwrite(V.VMCS_GUEST_TR_SELECTOR, s.tr.sel);
  h.vmwrite(V.VMCS_GUEST_TR_BASE, s.tr.baseLo, s.tr.baseHi);
  h.vmwrite(V.VMCS_GUEST_TR_LIMIT, s.tr.limit | 0);
  h.vmwrite(V.VMCS_GUEST_TR_AR, s.tr.ar);
  h.vmwrite(V.VMCS_GUEST_LDTR_SELECTOR, s.ldtr.sel);
  h.vmwrite(V.VMCS_GUEST_LDTR_BASE, s.ldtr.baseLo, s.ldtr.baseHi);
  h.vmwrite(V.VMCS_GUEST_LDTR_LIMIT, s.ldtr.limit | 0);
  h.vmwrite(V.VMCS_GUEST_DR7, s.dr7Lo, s.dr7Hi);
  h.vmwrite(V.VMCS_GUEST_RSP, s.gprLo[4], s.gprHi[4]);
  h.vmwrite(V.VMCS_GUEST_RIP, s.ripLo, s.ripHi);
  h.vmwrite(V.VMCS_GUEST_RFLAGS, s.rflags);
  h.vmwrite(V.VMCS_GUEST_INTERRUPTIBILITY, 0);
  h.vmwrite(V.VMCS_GUEST_ACTIVITY_STATE, C.ACTIVITY_ACTIVE);
  h.vmwrite(V.VMCS_GUEST_IA32_PAT, s.patLo, s.patHi);
  vcpu.ctx.lo.set(s.gprLo);
  vcpu.ctx.hi.set(s.gprHi);
}
