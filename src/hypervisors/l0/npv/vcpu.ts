/**
 * VCPU_CREATE: read and check the initial-state page (64-bit long mode only, else E_STATE) and
 * build the L2 vCPU's VMCS02: guest state from the page, controls like L0's own vCPUs (HLT
 * exiting, unconditional I/O exiting, the L2 VM's MSR bitmap, EPT02, the L2's VPID), CR0/CR4
 * guest/host masks so that leaving long mode exits, and its own LAPIC (clock: host cycles).
 */
import { newGuestContext } from "../../../cpu/vmx/host.js";
import { LocalApic } from "../../../devices/lapic.js";
import { CR0_PE, CR0_PG, CR4_PAE, EFER_LMA, EFER_LME } from "../../../x86/control.js";
import { AC, ARITH, DF, FIXED1, ID, IF, IOPL, NT, RF, TF, VIF, VIP } from "../../../x86/flags.js";
import * as V from "../../../x86/vmx.js";
import * as C from "../../../x86/vmx-controls.js";
import {
  NPV_E_FAULT,
  NPV_E_NOMEM,
  NPV_E_STATE,
  NPV_MAX_VCPUS_PER_VM,
  NPV_STATE_CR0,
  NPV_STATE_CR3,
  NPV_STATE_CR4,
  NPV_STATE_CS_SEL,
  NPV_STATE_DS_SEL,
  NPV_STATE_EFER,
  NPV_STATE_GDTR_BASE,
  NPV_STATE_GDTR_LIMIT,
  NPV_STATE_GPRS,
  NPV_STATE_RFLAGS,
  NPV_STATE_RIP,
  NPV_STATE_RSP,
  NPV_STATE_SIZE,
  NPV_STATE_SS_SEL,
} from "../../npv-abi.js";
import { writeVcpuControls } from "../vcpu.js";
import type { NpvEngine } from "./engine.js";
import { isL1Ram, readL1 } from "./l1-memory.js";
import type { Arg } from "./memory-ops.js";
import { freeHandle, type L1State, L2Vcpu, type L2Vm } from "./state.js";

/** RFLAGS bits that exist (CF…ID) less VM (no virtual-8086 mode in 64-bit mode); others are reserved. */
const RFLAGS_DEFINED = ARITH | FIXED1 | TF | IF | DF | IOPL | NT | RF | AC | VIF | VIP | ID;

/** True when the 64-bit value (halves) is canonical with 48-bit linear addresses. */
export function canonical(_lo: number, hi: number): boolean {
  const top = hi >> 15; // bits 63:47 as a sign-extended value
  return top === 0 || top === -1;
}

export function createL2Vcpu(e: NpvEngine, st: L1State, vm: L2Vm, gpa: Arg): L2Vcpu | number {
  if (!isL1Ram(st.vm, gpa.n, NPV_STATE_SIZE)) return NPV_E_FAULT;
  if (vm.vcpus.length >= NPV_MAX_VCPUS_PER_VM) return NPV_E_NOMEM;
  const dv = readL1(st.vm, gpa.n, NPV_STATE_SIZE);
  const lo = (o: number): number => dv.getInt32(o, true);
  const hi = (o: number): number => dv.getInt32(o + 4, true);
  const cr0 = lo(NPV_STATE_CR0);
  const cr4 = lo(NPV_STATE_CR4);
  const efer = lo(NPV_STATE_EFER);
  const rflags = lo(NPV_STATE_RFLAGS);
  // The 64-bit rule: PE, PG, PAE, LME, LMA; RFLAGS bit 1; no bits above 31 in CR0/CR4/EFER/RFLAGS.
  if ((cr0 & CR0_PE) === 0 || (cr0 & CR0_PG) === 0 || (cr4 & CR4_PAE) === 0) return NPV_E_STATE;
  if ((efer & EFER_LME) === 0 || (efer & EFER_LMA) === 0) return NPV_E_STATE;
  if ((rflags & FIXED1) === 0 || (rflags & ~RFLAGS_DEFINED) !== 0) return NPV_E_STATE;
  if (hi(NPV_STATE_CR0) !== 0 || hi(NPV_STATE_CR4) !== 0 || hi(NPV_STATE_EFER) !== 0 || hi(NPV_STATE_RFLAGS) !== 0)
    return NPV_E_STATE;
  if (!canonical(lo(NPV_STATE_RIP), hi(NPV_STATE_RIP)) || !canonical(lo(NPV_STATE_RSP), hi(NPV_STATE_RSP)))
    return NPV_E_STATE;
  if (!canonical(lo(NPV_STATE_GDTR_BASE), hi(NPV_STATE_GDTR_BASE))) return NPV_E_STATE;
  // CR3: no bits above MAXPHYADDR (46).
  if ((hi(NPV_STATE_CR3) & ~0x3fff) !== 0) return NPV_E_STATE;
  const gdtLimit = dv.getUint16(NPV_STATE_GDTR_LIMIT, true);
  const cs = dv.getUint16(NPV_STATE_CS_SEL, true);
  const ss = dv.getUint16(NPV_STATE_SS_SEL, true);
  const ds = dv.getUint16(NPV_STATE_DS_SEL, true);
  // CS names a GDT descriptor (TI = 0, inside the limit) at RPL 0; SS and DS are null or likewise.
  const selOk = (sel: number, nullOk: boolean): boolean =>
    (sel < 4 && nullOk && sel === 0) || (sel >= 8 && (sel & 7) === 0 && (sel | 7) <= gdtLimit);
  if (!selOk(cs, false) || !selOk(ss, true) || !selOk(ds, true)) return NPV_E_STATE;

  const host = e.l0.host;
  const vmcs = host.newVmcs(st.vm.level + 1); // L2 code runs one level above its L1
  /** The VMCS02 (current while this runs): controls as L0's own vCPUs, then guest state. */
  const writeL2Vmcs = (): void => {
    const w = (f: number, l: number, h = 0): void => host.vmwrite(f, l, h);
    writeVcpuControls(host, {
      exceptionBitmap: e.l0.exceptionBitmap(),
      msrBitmap: vm.msrBitmap,
      eptp: vm.ept.eptp(),
      vpid: vm.vpid,
      entry: C.ENTRY_LOAD_IA32_EFER | C.ENTRY_IA32E_MODE_GUEST,
    });
    // Leaving long mode exits: CR0.PE/PG and CR4.PAE are host-owned (their shadows read as set).
    w(V.VMCS_CR0_GUEST_HOST_MASK, CR0_PE | CR0_PG);
    w(V.VMCS_CR0_READ_SHADOW, CR0_PE | CR0_PG);
    w(V.VMCS_CR4_GUEST_HOST_MASK, CR4_PAE);
    w(V.VMCS_CR4_READ_SHADOW, CR4_PAE);
    // Guest state.
    const data = (sel: number, enc: readonly [number, number, number, number]): void => {
      w(enc[0], sel);
      w(enc[1], 0);
      w(enc[2], 0xffffffff);
      w(enc[3], 0xc093); // G, D/B, P, DPL 0, S, data read/write accessed
    };
    const seg = V.VMCS_GUEST_SEGMENT_FIELDS; // ES, CS, SS, DS, FS, GS
    data(ds, seg[3]);
    data(ds, seg[0]);
    data(ss, seg[2]);
    data(ds, seg[4]);
    data(ds, seg[5]);
    w(V.VMCS_GUEST_CS_SELECTOR, cs);
    w(V.VMCS_GUEST_CS_BASE, 0);
    w(V.VMCS_GUEST_CS_LIMIT, 0xffffffff);
    w(V.VMCS_GUEST_CS_AR, 0xa09b); // G, L, P, DPL 0, S, code execute/read accessed
    w(V.VMCS_GUEST_LDTR_SELECTOR, 0);
    w(V.VMCS_GUEST_LDTR_AR, 0x10000); // unusable
    w(V.VMCS_GUEST_TR_SELECTOR, 0);
    w(V.VMCS_GUEST_TR_BASE, 0);
    w(V.VMCS_GUEST_TR_LIMIT, 0x67);
    w(V.VMCS_GUEST_TR_AR, 0x8b); // busy 64-bit TSS
    w(V.VMCS_GUEST_GDTR_BASE, lo(NPV_STATE_GDTR_BASE), hi(NPV_STATE_GDTR_BASE));
    w(V.VMCS_GUEST_GDTR_LIMIT, gdtLimit);
    w(V.VMCS_GUEST_IDTR_BASE, 0);
    w(V.VMCS_GUEST_IDTR_LIMIT, 0xffff);
    w(V.VMCS_GUEST_CR0, cr0);
    w(V.VMCS_GUEST_CR3, lo(NPV_STATE_CR3), hi(NPV_STATE_CR3));
    w(V.VMCS_GUEST_CR4, cr4);
    w(V.VMCS_GUEST_IA32_EFER, efer);
    w(V.VMCS_GUEST_IA32_PAT, 0x00070406, 0x00070406);
    w(V.VMCS_GUEST_DR7, 0x400);
    w(V.VMCS_GUEST_RSP, lo(NPV_STATE_RSP), hi(NPV_STATE_RSP));
    w(V.VMCS_GUEST_RIP, lo(NPV_STATE_RIP), hi(NPV_STATE_RIP));
    w(V.VMCS_GUEST_RFLAGS, rflags);
    w(V.VMCS_GUEST_INTERRUPTIBILITY, 0);
    w(V.VMCS_GUEST_ACTIVITY_STATE, C.ACTIVITY_ACTIVE);
    w(V.VMCS_LINK_POINTER, -1, -1);
  };
  host.withVmcs(vmcs, writeL2Vmcs);
  const ctx = newGuestContext();
  for (let r = 0; r < 16; r++) {
    ctx.lo[r] = lo(NPV_STATE_GPRS + 8 * r);
    ctx.hi[r] = hi(NPV_STATE_GPRS + 8 * r);
  }
  ctx.lo[4] = lo(NPV_STATE_RSP);
  ctx.hi[4] = hi(NPV_STATE_RSP);
  const index = vm.vcpus.length;
  const lapic = new LocalApic({ clock: { now: () => e.l0.host.cycles() }, apicId: index, bsp: index === 0 });
  const handle = freeHandle(st.vcpus);
  const v = new L2Vcpu(e, handle, vm, index, vmcs, ctx, lapic);
  vm.vcpus.push(v);
  st.vcpus.set(handle, v);
  return v;
}
