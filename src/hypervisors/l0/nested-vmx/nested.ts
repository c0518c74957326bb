/**
 * Nested entry and exit (KVM: nested_vmx_run → prepare_vmcs02 → L2 runs → nested_vmx_vmexit →
 * sync_vmcs02_to_vmcs12 + load_vmcs12_host_state). At L1's VMLAUNCH/VMRESUME L0 checks VMCS12's
 * controls against what it offers (VMfail 7), its host state (VMfail 8) and its guest state (a
 * VM-entry-failure exit to L1) in checks.ts, prepares VMCS02 —
 * VMCS12's guest state under L0's controls merged with L1's (L0's exception bitmap ∪ L1's, the
 * MSR bitmaps OR-ed, L0's EPT02 and VPID, L0's preemption timer through the run core) — and runs
 * L2 through L0's one run/exit core. When the reflect step (reflect.ts) hands an exit to L1, L0
 * writes L2's state and the exit information into VMCS12, loads VMCS12's host state into L1's
 * VMCS and L1 resumes at its host RIP.
 */

import type { VmxHost } from "../../../cpu/vmx/host.js";
import { CR4_VMXE, EFER_LMA, EFER_LME } from "../../../x86/control.js";
import { MC, UD } from "../../../x86/exceptions.js";
import { HV_VMX_SYNTHETIC_EXIT } from "../../../x86/hyperv.js";
import * as V from "../../../x86/vmx.js";
import * as C from "../../../x86/vmx-controls.js";
import { runGuest } from "../core.js";
import type { NestedEngine } from "../engine.js";
import { L0_VM_VPID } from "../l0.js";
import { HANDLED, type Vcpu, type VcpuControls, writeVcpuControls } from "../vcpu.js";
import { controlsValid, GUEST_STATE_OK, guestStateFailure, hostStateValid } from "./checks.js";
import { Ept02 } from "./ept02.js";
import { fail, failInvalid, permitted, type VmxInsnContext } from "./instructions.js";
import { L2VmxVcpu, RUN_L1_STOPPED, RUN_REFLECT } from "./l2-vcpu.js";
import { cacheShadowVmcs12, flushShadowVmcs12, l2OperandAccess } from "./l2-vmcs-access.js";
import { interruptPendingAtEntry } from "./reflect.js";
import { FIELDS, type Vmcs12Cache } from "./vmcs12.js";

/** L0's own exception intercepts for every vCPU it runs (as createVcpu: #UD, #MC). */
const L0_EXCEPTIONS = (1 << UD) | (1 << MC);

const GUEST_FIELDS = FIELDS.filter((f) => V.vmcsFieldType(f) === 2);
/**
 * Guest fields L2's exit writes back into VMCS12: all but the VMX-preemption timer value, which
 * VMCS02 holds for L0's own timer and VMCS12 gets only by L1's "save timer" exit control, and the
 * VMCS link pointer, which a VM exit does not save (SDM vol. 3C 28.3; KVM sync_vmcs02_to_vmcs12
 * leaves vmcs_link_pointer alone) and which VMCS02 holds as all ones.
 */
const GUEST_FIELDS_SAVED = GUEST_FIELDS.filter((f) => f !== V.VMCS_PREEMPTION_TIMER_VALUE && f !== V.VMCS_LINK_POINTER);
/**
 * The exit-information fields copied into VMCS12 on a reflected exit (SDM vol. 3C, 24.9): the
 * read-only data fields but the exit reason (set apart) and the VM-instruction error (L1's own).
 */
const EXIT_INFO = FIELDS.filter(
  (f) => V.vmcsFieldType(f) === 1 && f !== V.VMCS_EXIT_REASON && f !== V.VMCS_VM_INSTRUCTION_ERROR,
);

const half = new Int32Array(2);

/** The MSR bitmap VMCS02 uses: L0's intercepts OR L1's (all ones when L1 uses no bitmap). */
function mergeMsrBitmap(x: VmxInsnContext, page: number): void {
  const mem = x.l0.host.mem;
  const c = x.s.current;
  const l1Uses = (c.get32(V.VMCS_PROC_BASED_CONTROLS) & C.CPU_USE_MSR_BITMAPS) !== 0;
  const l0Bitmap = x.l0.msrBitmapPage;
  const l1Bitmap = l1Uses ? x.vm.memslots.translate(c.getNumber(V.VMCS_MSR_BITMAP)) : -1;
  for (let o = 0; o < 4096; o += 4) {
    const a = mem.read(l0Bitmap + o, 4);
    const b = l1Uses ? (l1Bitmap >= 0 ? mem.read(l1Bitmap + o, 4) : -1) : -1;
    mem.write(page + o, 4, a | b);
  }
}

/** VMLAUNCH / VMRESUME (31.3; KVM nested_vmx_run). */
/** The engine a nested entry runs L2 for, which hands out VPID02s. */
export type VpidSource = NestedEngine & { allocateVpid(): number };

export function vmentry(x: VmxInsnContext, engine: VpidSource, resume: boolean): number {
  const p = permitted(x);
  if (p >= 0) return p;
  const s = x.s;
  if (!s.hasCurrent) return failInvalid(x);
  const c = s.current;
  // A shadow VMCS cannot be launched or resumed: VMfailInvalid though a VMCS is current (vol. 2
  // "VMLAUNCH/VMRESUME"; KVM nested_vmx_run, hdr.shadow_vmcs).
  if (c.shadowIndicator) return failInvalid(x);
  // nvmx-shadow: what L1 wrote to the shadow VMCS without exiting, before any check reads
  // VMCS12 (KVM nested_vmx_run: copy_shadow_to_vmcs12).
  s.shadow?.toVmcs12(c, x.v);
  if (!resume && c.launched) return fail(x, V.VMXERR_VMLAUNCH_NONCLEAR);
  if (resume && !c.launched) return fail(x, V.VMXERR_VMRESUME_NONLAUNCHED);
  x.l0.chargeFor(x.v, "nvmx.entry_checks", "nvmx_entry_checks");
  if (!controlsValid(x)) return fail(x, V.VMXERR_ENTRY_INVALID_CONTROLS);
  if (!hostStateValid(x)) return fail(x, V.VMXERR_ENTRY_INVALID_HOST_STATE);
  const guestFailure = guestStateFailure(x);
  if (guestFailure !== GUEST_STATE_OK) return entryFailure(x, guestFailure);
  const proc2 =
    (c.get32(V.VMCS_PROC_BASED_CONTROLS) & C.CPU_SECONDARY_CONTROLS) !== 0 ? c.get32(V.VMCS_PROC_BASED_CONTROLS2) : 0;
  if ((proc2 & C.CPU2_ENABLE_EPT) === 0)
    return x.v.fail("error", V.EXIT_VMLAUNCH, "nested VMX: an L2 without EPT (shadow paging by L0) is not implemented");
  const l1 = x.v as Vcpu;
  const h = x.l0.host;
  if (s.l2 === null) {
    const vpid = engine.allocateVpid();
    s.l2 = new L2VmxVcpu(h.newVmcs(x.vm.level + 1), engine, l1, vpid);
    s.ept02 = new Ept02(x.l0, x.vm, vpid);
    s.msrBitmap02 = x.l0.alloc.page();
    s.l2Operands = l2OperandAccess(x.l0, x.vm, s);
    s.l2Insn = { l0: x.l0, v: s.l2, vm: x.vm, s, ops: s.l2Operands };
  }
  const l2 = s.l2;
  const ept02 = s.ept02 as Ept02;
  const eptp12 = c.getNumber(V.VMCS_EPT_POINTER);
  if (s.eptp12 !== eptp12) {
    if (s.eptp12 !== -1) {
      ept02.zap();
      x.l0.chargeFor(x.v, "nvmx.ept02_zap", "nvmx_ept02_zap");
    }
    s.eptp12 = eptp12;
  }
  prepareVmcs02(x, l2);
  x.l0.chargeFor(x.v, "nvmx.prepare_vmcs02", "nvmx_prepare_vmcs02");
  cacheShadowVmcs12(x);
  c.launched = true;
  s.entries++;
  // Enter L2: VMCS02 current; GPRs are not switched (VM entry leaves them to the guest).
  x.l0.chargeFor(x.v, "nvmx.world_switch", "nvmx_world_switch");
  h.load(l2.vmcs);
  l2.reflectReason = -1;
  // An interrupt L1 already has pending exits to L1 at once (runGuest then does not enter L2).
  interruptPendingAtEntry(x.l0, l2, s);
  const r = runGuest(x.l0, l2, Math.max(1, l1.budget));
  if (r === RUN_L1_STOPPED || r !== RUN_REFLECT) {
    h.leaveGuest();
    h.load(l1.vmcs);
    return l1.stopCode() !== 0 ? l1.stopCode() : l1.fail("error", 0, "nested VMX: L2's run ended without an exit");
  }
  nestedExit(x, l2);
  return HANDLED;
}

/**
 * A VMCS12 guest state L0's checks reject: L2 is not entered; L1 sees a VM exit with reason 33 and
 * bit 31 set, the qualification 26.8 gives, its host state loaded and the launch state still clear
 * (SDM vol. 3C 26.7–26.8; KVM nested_vmx_enter_non_root_mode → vmentry_fail_vmexit). As the CPU's
 * own failed entry, only the exit reason and qualification are written.
 */
function entryFailure(x: VmxInsnContext, qualification: number): number {
  const c = x.s.current;
  const reason = V.EXIT_REASON_ENTRY_FAILURE | V.EXIT_INVALID_GUEST_STATE;
  c.write(V.VMCS_EXIT_REASON, reason, 0);
  c.write(V.VMCS_EXIT_QUALIFICATION, qualification, 0);
  x.s.reflected.bump(x.v.vmcs.level + 1, reason & 0xffff);
  x.s.shadow?.fromVmcs12(c, x.v);
  loadHostState(x);
  return HANDLED;
}

/**
 * Exiting controls of VMCS12 that VMCS02 takes as they are (L0 does not use them itself); their
 * exits are L1's. NMI-window exiting among them: L0 injects no NMIs into its guests, so VMCS02 has
 * it exactly when VMCS12 does (KVM prepare_vmcs02_early: L0's window bits cleared, VMCS12's OR-ed in).
 */
const L1_EXITING =
  C.CPU_NMI_WINDOW_EXITING |
  C.CPU_CR3_LOAD_EXITING |
  C.CPU_CR3_STORE_EXITING |
  C.CPU_CR8_LOAD_EXITING |
  C.CPU_CR8_STORE_EXITING |
  C.CPU_INVLPG_EXITING |
  C.CPU_RDTSC_EXITING;

/** VMCS12's NMI pin controls VMCS02 takes (L0's own pin controls have neither). */
const L1_NMI_CONTROLS = C.PIN_NMI_EXITING | C.PIN_VIRTUAL_NMIS;

/** VMCS02 from VMCS12 and L0's needs (KVM prepare_vmcs02). */
function prepareVmcs02(x: VmxInsnContext, l2: L2VmxVcpu): void {
  const h = x.l0.host;
  const c = x.s.current;
  // nvmx-evmcs: with the enlightened MSR bitmap and its group clean, L1 vouches it is unchanged.
  if (x.s.evmcs?.msrBitmapClean !== true) mergeMsrBitmap(x, x.s.msrBitmap02);
  h.withVmcs(l2.vmcs, writeVmcs02, x);
  // L1's controls the run core and the reflect step follow while L2 runs: interrupt-window
  // exiting, and L1's VMX-preemption timer, loaded from VMCS12 at every entry (SDM 26.7.4) and
  // run by L0 beside its own (KVM: vmx_start_preemption_timer).
  l2.proc12 = c.get32(V.VMCS_PROC_BASED_CONTROLS);
  l2.timer12Deadline =
    (c.get32(V.VMCS_PIN_BASED_CONTROLS) & C.PIN_PREEMPTION_TIMER) !== 0
      ? x.l0.host.cycles() + (c.get32(V.VMCS_PREEMPTION_TIMER_VALUE) >>> 0) * x.l0.host.preemptionTimerCyclesPerTick
      : Number.POSITIVE_INFINITY;
  // L1's event injection rides on the run core's injection of a pending event.
  const inj = c.get32(V.VMCS_ENTRY_INTR_INFO);
  l2.reinjectInfo = (inj & C.INTR_INFO_VALID) !== 0 ? inj : 0;
  l2.reinjectError = c.get32(V.VMCS_ENTRY_EXCEPTION_ERROR_CODE);
  l2.pendingException = -1;
}

/** VMCS02's controls for this entry (one object, refilled at every entry). */
const controls02: VcpuControls = { exceptionBitmap: 0, msrBitmap: 0, eptp: 0, vpid: 0, entry: 0 };

/** VMCS02 (current) from VMCS12 and L0's needs. */
function writeVmcs02(x: VmxInsnContext): void {
  const l2 = x.s.l2 as L2VmxVcpu;
  const ept02 = x.s.ept02 as Ept02;
  const h = x.l0.host;
  const c = x.s.current;
  const entry12 = c.get32(V.VMCS_ENTRY_CONTROLS);
  controls02.exceptionBitmap = L0_EXCEPTIONS | c.get32(V.VMCS_EXCEPTION_BITMAP);
  controls02.msrBitmap = x.s.msrBitmap02;
  controls02.eptp = ept02.table.eptp();
  controls02.vpid = l2.vpid;
  controls02.entry = (entry12 & C.ENTRY_IA32E_MODE_GUEST) | C.ENTRY_LOAD_IA32_EFER;
  writeVcpuControls(h, controls02);
  // L1's NMI exiting and virtual NMIs join L0's pin controls (KVM prepare_vmcs02_early: VMCS01's
  // pin controls | VMCS12's but the preemption timer, which the run core owns). With virtual
  // NMIs in VMCS02, bit 3 of the guest interruptibility VMCS12 gives is virtual-NMI blocking in
  // the CPU, and the exit saves it back into VMCS12 with the other guest fields (SDM 24.4.2, 26.7.1).
  const pin12 = c.get32(V.VMCS_PIN_BASED_CONTROLS);
  h.vmwrite(V.VMCS_PIN_BASED_CONTROLS, h.vmread(V.VMCS_PIN_BASED_CONTROLS) | (pin12 & L1_NMI_CONTROLS));
  const proc12 = c.get32(V.VMCS_PROC_BASED_CONTROLS);
  const extra = proc12 & L1_EXITING;
  h.vmwrite(V.VMCS_PROC_BASED_CONTROLS, h.vmread(V.VMCS_PROC_BASED_CONTROLS) | extra);
  const proc2_12 = (proc12 & C.CPU_SECONDARY_CONTROLS) !== 0 ? c.get32(V.VMCS_PROC_BASED_CONTROLS2) : 0;
  h.vmwrite(V.VMCS_PROC_BASED_CONTROLS2, h.vmread(V.VMCS_PROC_BASED_CONTROLS2) | (proc2_12 & C.CPU2_WBINVD_EXITING));
  h.vmwrite(V.VMCS_CR3_TARGET_COUNT, 0);
  h.vmwrite(V.VMCS_PF_ERROR_CODE_MASK, 0);
  h.vmwrite(V.VMCS_PF_ERROR_CODE_MATCH, 0);
  for (const f of GUEST_FIELDS) {
    c.read(f, half);
    h.vmwrite(f, half[0], half[1]);
  }
  // VMCS12's link pointer names an L1 page L0 checked; VMCS02 has none (KVM: INVALID_GPA).
  h.vmwrite(V.VMCS_LINK_POINTER, -1, -1);
  if ((entry12 & C.ENTRY_LOAD_IA32_EFER) === 0) {
    // Without "load IA32_EFER", EFER.LMA/LME follow "IA-32e mode guest" (26.3.2.1).
    const ia32e = (entry12 & C.ENTRY_IA32E_MODE_GUEST) !== 0;
    const efer = h.vmread(V.VMCS_GUEST_IA32_EFER) & ~(EFER_LMA | EFER_LME);
    h.vmwrite(V.VMCS_GUEST_IA32_EFER, ia32e ? efer | EFER_LMA | EFER_LME : efer);
  }
  // CR0/CR4: L1's masks and shadows; L0 keeps CR4.VMXE out of L2's hardware CR4 as for L1.
  h.vmwrite(V.VMCS_CR0_GUEST_HOST_MASK, c.get32(V.VMCS_CR0_GUEST_HOST_MASK));
  h.vmwrite(V.VMCS_CR0_READ_SHADOW, c.get32(V.VMCS_CR0_READ_SHADOW));
  const mask12 = c.get32(V.VMCS_CR4_GUEST_HOST_MASK);
  const cr4 = c.get32(V.VMCS_GUEST_CR4);
  h.vmwrite(V.VMCS_CR4_GUEST_HOST_MASK, mask12 | CR4_VMXE);
  h.vmwrite(V.VMCS_CR4_READ_SHADOW, (c.get32(V.VMCS_CR4_READ_SHADOW) & mask12) | (cr4 & CR4_VMXE & ~mask12));
  h.vmwrite(V.VMCS_GUEST_CR4, cr4 & ~CR4_VMXE);
  h.vmwrite(V.VMCS_ENTRY_INSTRUCTION_LENGTH, c.get32(V.VMCS_ENTRY_INSTRUCTION_LENGTH));
}

/** Reflect the exit in `l2.reflectReason` to L1 (KVM nested_vmx_vmexit). */
function nestedExit(x: VmxInsnContext, l2: L2VmxVcpu): void {
  const h = x.l0.host;
  const c = x.s.current;
  const reason = l2.reflectReason;
  const entryFailed = (reason & V.EXIT_REASON_ENTRY_FAILURE) !== 0;
  h.leaveGuest();
  // VMCS02 is current: L2's state and the exit information into VMCS12.
  if (!entryFailed) {
    // L2's CR4.VMXE lives in VMCS12 only (VMCS02's CR4 never carries it): keep it over the copy.
    const vmxe12 = c.get32(V.VMCS_GUEST_CR4) & CR4_VMXE;
    for (const f of GUEST_FIELDS_SAVED) c.write(f, h.vmread(f), h.vmreadHigh(f));
    if ((c.get32(V.VMCS_EXIT_CONTROLS) & C.EXIT_SAVE_PREEMPTION_TIMER) !== 0) {
      const left = Math.max(0, l2.timer12Deadline - h.cycles()) / h.preemptionTimerCyclesPerTick;
      c.write(V.VMCS_PREEMPTION_TIMER_VALUE, Math.min(0xffffffff, Math.floor(left)) | 0, 0);
    }
    c.write(V.VMCS_GUEST_CR4, h.vmread(V.VMCS_GUEST_CR4) | vmxe12, 0);
    for (const f of EXIT_INFO) c.write(f, h.vmread(f), h.vmreadHigh(f));
    if (x.s.reflectQualification >= 0) c.write(V.VMCS_EXIT_QUALIFICATION, x.s.reflectQualification, 0);
  } else for (const f of EXIT_INFO) c.write(f, 0, 0);
  // L2's writes to the shadow VMCS12 where L1 finds them (KVM: only after an entry that ran L2).
  if (!entryFailed) flushShadowVmcs12(x);
  x.s.shadowVmcs12.gpa = -1;
  x.s.reflectQualification = -1;
  c.write(V.VMCS_EXIT_REASON, reason, 0);
  c.write(V.VMCS_ENTRY_INTR_INFO, c.get32(V.VMCS_ENTRY_INTR_INFO) & ~C.INTR_INFO_VALID, 0);
  // An event whose delivery the exit cut short is L1's to re-inject (it is in VMCS12 now).
  l2.reinjectInfo = 0;
  l2.pendingException = -1;
  // Taken by L2: one level above its L1. (A Hyper-V synthetic exit, bit 28, keeps its whole
  // number: its basic part is not the hardware reason it looks like.)
  x.s.reflected.bump(x.v.vmcs.level + 1, (reason & HV_VMX_SYNTHETIC_EXIT) !== 0 ? reason : reason & 0xffff);
  x.l0.chargeFor(x.v, "nvmx.sync_vmcs12", "nvmx_sync_vmcs12");
  // nvmx-shadow: the exit information and L2's state where L1's VMREADs find them.
  x.s.shadow?.fromVmcs12(c, x.v);
  x.l0.chargeFor(x.v, "nvmx.world_switch", "nvmx_world_switch");
  h.load(x.v.vmcs);
  loadHostState(x);
}

/** The data segments of a nested exit's host state: guest selector, base, limit, AR; host selector, base (-1: 0). */
const HOST_DATA_SEGMENTS: readonly (readonly [number, number, number, number, number, number])[] = [
  [
    V.VMCS_GUEST_SS_SELECTOR,
    V.VMCS_GUEST_SS_BASE,
    V.VMCS_GUEST_SS_LIMIT,
    V.VMCS_GUEST_SS_AR,
    V.VMCS_HOST_SS_SELECTOR,
    -1,
  ],
  [
    V.VMCS_GUEST_DS_SELECTOR,
    V.VMCS_GUEST_DS_BASE,
    V.VMCS_GUEST_DS_LIMIT,
    V.VMCS_GUEST_DS_AR,
    V.VMCS_HOST_DS_SELECTOR,
    -1,
  ],
  [
    V.VMCS_GUEST_ES_SELECTOR,
    V.VMCS_GUEST_ES_BASE,
    V.VMCS_GUEST_ES_LIMIT,
    V.VMCS_GUEST_ES_AR,
    V.VMCS_HOST_ES_SELECTOR,
    -1,
  ],
  [
    V.VMCS_GUEST_FS_SELECTOR,
    V.VMCS_GUEST_FS_BASE,
    V.VMCS_GUEST_FS_LIMIT,
    V.VMCS_GUEST_FS_AR,
    V.VMCS_HOST_FS_SELECTOR,
    V.VMCS_HOST_FS_BASE,
  ],
  [
    V.VMCS_GUEST_GS_SELECTOR,
    V.VMCS_GUEST_GS_BASE,
    V.VMCS_GUEST_GS_LIMIT,
    V.VMCS_GUEST_GS_AR,
    V.VMCS_HOST_GS_SELECTOR,
    V.VMCS_HOST_GS_BASE,
  ],
];

/** VMCS12's field `from` into the current VMCS's field `to`. */
function copy12(h: VmxHost, c: Vmcs12Cache, to: number, from: number): void {
  c.read(from, half);
  h.vmwrite(to, half[0], half[1]);
}

/** A segment's selector, base (VMCS12's host base, or 0 when `hostBase` < 0) and limit at a nested exit. */
function hostSegment(
  h: VmxHost,
  c: Vmcs12Cache,
  sel: number,
  base: number,
  limit: number,
  hostSel: number,
  hostBase: number,
): void {
  h.vmwrite(sel, c.get32(hostSel) & 0xffff);
  if (hostBase >= 0) copy12(h, c, base, hostBase);
  else h.vmwrite(base, 0, 0);
  h.vmwrite(limit, -1);
}

/** L1 resumes at VMCS12's host state (SDM vol. 3C, 28.5; KVM load_vmcs12_host_state). */
function loadHostState(x: VmxInsnContext): void {
  const h = x.l0.host;
  const c = x.s.current;
  const exit12 = c.get32(V.VMCS_EXIT_CONTROLS);
  const wide = (exit12 & C.EXIT_HOST_ADDR_SPACE_SIZE) !== 0;
  copy12(h, c, V.VMCS_GUEST_CR0, V.VMCS_HOST_CR0);
  copy12(h, c, V.VMCS_GUEST_CR3, V.VMCS_HOST_CR3);
  h.vmwrite(V.VMCS_GUEST_CR4, c.get32(V.VMCS_HOST_CR4) & ~CR4_VMXE);
  if ((exit12 & C.EXIT_LOAD_IA32_EFER) !== 0) copy12(h, c, V.VMCS_GUEST_IA32_EFER, V.VMCS_HOST_IA32_EFER);
  else {
    const efer = h.vmread(V.VMCS_GUEST_IA32_EFER) & ~(EFER_LMA | EFER_LME);
    h.vmwrite(V.VMCS_GUEST_IA32_EFER, wide ? efer | EFER_LMA | EFER_LME : efer);
  }
  if ((exit12 & C.EXIT_LOAD_IA32_PAT) !== 0) copy12(h, c, V.VMCS_GUEST_IA32_PAT, V.VMCS_HOST_IA32_PAT);
  copy12(h, c, V.VMCS_GUEST_RIP, V.VMCS_HOST_RIP);
  copy12(h, c, V.VMCS_GUEST_RSP, V.VMCS_HOST_RSP);
  h.vmwrite(V.VMCS_GUEST_RFLAGS, 2);
  // Access rights after a VM exit (28.5.2): CS 64-bit or 32-bit code, data segments usable when
  // their selector is not null, TR a busy 64-bit TSS.
  hostSegment(h, c, V.VMCS_GUEST_CS_SELECTOR, V.VMCS_GUEST_CS_BASE, V.VMCS_GUEST_CS_LIMIT, V.VMCS_HOST_CS_SELECTOR, -1);
  h.vmwrite(V.VMCS_GUEST_CS_AR, wide ? 0xa09b : 0xc09b);
  for (const [sel, base, limit, ar, hs, hb] of HOST_DATA_SEGMENTS) {
    hostSegment(h, c, sel, base, limit, hs, hb);
    const usable = sel === V.VMCS_GUEST_SS_SELECTOR || (c.get32(hs) & 0xfff8) !== 0;
    h.vmwrite(ar, usable ? 0xc093 : 0x1c000);
  }
  h.vmwrite(V.VMCS_GUEST_TR_SELECTOR, c.get32(V.VMCS_HOST_TR_SELECTOR) & 0xffff);
  copy12(h, c, V.VMCS_GUEST_TR_BASE, V.VMCS_HOST_TR_BASE);
  h.vmwrite(V.VMCS_GUEST_TR_LIMIT, 0x67);
  h.vmwrite(V.VMCS_GUEST_TR_AR, 0x8b);
  copy12(h, c, V.VMCS_GUEST_GDTR_BASE, V.VMCS_HOST_GDTR_BASE);
  h.vmwrite(V.VMCS_GUEST_GDTR_LIMIT, 0xffff);
  copy12(h, c, V.VMCS_GUEST_IDTR_BASE, V.VMCS_HOST_IDTR_BASE);
  h.vmwrite(V.VMCS_GUEST_IDTR_LIMIT, 0xffff);
  h.vmwrite(V.VMCS_GUEST_LDTR_SELECTOR, 0);
  h.vmwrite(V.VMCS_GUEST_LDTR_AR, 0x10000);
  copy12(h, c, V.VMCS_GUEST_SYSENTER_CS, V.VMCS_HOST_SYSENTER_CS);
  copy12(h, c, V.VMCS_GUEST_SYSENTER_ESP, V.VMCS_HOST_SYSENTER_ESP);
  copy12(h, c, V.VMCS_GUEST_SYSENTER_EIP, V.VMCS_HOST_SYSENTER_EIP);
  h.vmwrite(V.VMCS_GUEST_DR7, 0x400);
  h.vmwrite(V.VMCS_GUEST_INTERRUPTIBILITY, 0);
  h.vmwrite(V.VMCS_GUEST_ACTIVITY_STATE, C.ACTIVITY_ACTIVE);
  h.vmwrite(V.VMCS_GUEST_PENDING_DBG_EXCEPTIONS, 0, 0);
  // L1's address space changed under VPID 1 (KVM: a nested exit flushes when VPID12 is off).
  x.l0.host.invalidateVpid(L0_VM_VPID);
}
