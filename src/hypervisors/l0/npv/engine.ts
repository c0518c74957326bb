/**
 * NpvEngine: L0's side of the nested paravirtual L0↔L1 interface (docs/npv-abi.md), the first
 * nested engine in L0's registry. It claims the npv hypercall range: L0's VMCALL handler hands it
 * every such hypercall; the engine reads the arguments from L1's registers, validates everything
 * L1 passed, acts, and writes the status to RAX and results to RBX. The L2 vCPUs it creates run
 * on L0's core with `reflect` (l2-exits.ts) in front of L0's handler table. Per-L1 state is
 * keyed by the L1's Vm object.
 *
 * Nothing an L1 passes can throw out of here: every handler runs inside a guard that turns a
 * stray RangeError (from guest memory) into E_FAULT and L0 running out of host memory into
 * E_NOMEM; any other exception is counted (`npv.internal_errors`, which the fuzzer treats as a
 * violation) and answered with E_INVAL.
 *
 * A hypercall allocates nothing: the four arguments are preallocated `Arg`s refilled each call,
 * handlers return the status and set RBX through `withRbx`.
 */
import type { BlockBackend } from "../../../devices/block-backend.js";
import { PC_LAPIC_PFN } from "../../../machine/pc-layout.js";
import type { EventCount } from "../../../stats/run-stats.js";
import { UD } from "../../../x86/exceptions.js";
import * as V from "../../../x86/vmx.js";
import {
  NPV_ABI_VERSION,
  NPV_CPUID_FEATURES_LEAF,
  NPV_CPUID_SIGNATURE_LEAF,
  NPV_E_BUSY,
  NPV_E_FAULT,
  NPV_E_INVAL,
  NPV_E_NOENT,
  NPV_E_NOMEM,
  NPV_E_NOSYS,
  NPV_FEAT_BATCH_MAP,
  NPV_FEAT_CPUID_POLICY,
  NPV_FEAT_EAGER_MAP,
  NPV_FEAT_LAPIC_OFFLOAD,
  NPV_FEAT_MEDIATED_BLK,
  NPV_FEAT_MSR_POLICY,
  NPV_HC_BLK_SETUP,
  NPV_HC_BLK_TEARDOWN,
  NPV_HC_INJECT,
  NPV_HC_MAP,
  NPV_HC_MAP_BATCH,
  NPV_HC_MMIO_REGION,
  NPV_HC_NAMES,
  NPV_HC_PROTECT,
  NPV_HC_RUN,
  NPV_HC_SET_CPUID,
  NPV_HC_SET_MSRS,
  NPV_HC_UNMAP,
  NPV_HC_VCPU_CREATE,
  NPV_HC_VM_CREATE,
  NPV_HC_VM_DESTROY,
  NPV_MAX_VCPUS_PER_VM,
  NPV_MAX_VMS,
  NPV_OK,
  NPV_SIGNATURE,
} from "../../npv-abi.js";
import type { NestedEngine } from "../engine.js";
import { RecyclingPages } from "../host-pages.js";
import { L0_VM_VPID, type L0Hypervisor } from "../l0.js";
import type { GuestVcpu } from "../vcpu.js";
import type { Vm } from "../vm.js";
import { doBlkSetup, doBlkTeardown, doInject, doMmioRegion, doSetCpuid, doSetMsrs } from "./control-ops.js";
import { checkEpt02, newEpt02 } from "./ept02.js";
import { reflectL2Exit } from "./l2-exits.js";
import { L2Map } from "./l2-map.js";
import { Arg, doBatch, doMap, doProtect, doUnmap } from "./memory-ops.js";
import { MmioProxy, MmioRecorder } from "./mmio-window.js";
import { CpuidPolicy, MsrPolicy, writeMsrBitmap } from "./policy.js";
import { runL2 } from "./run.js";
import { freeHandle, L1State, type L2Vcpu, L2Vm } from "./state.js";
import { NE, NpvStats } from "./stats.js";
import { createL2Vcpu } from "./vcpu.js";

/** Hypercall numbers the engine claims (unknown ones in this range answer E_NOSYS). */
const NPV_RANGE_FIRST = 0x100;
const NPV_RANGE_LAST = 0x1ff;
/** xAPIC page in every L2's guest-physical space (never composed into EPT02). */
export const L2_APIC_PFN = PC_LAPIC_PFN;
/** VPIDs for L2s start above the one L0 gives its own VMs. */
const FIRST_L2_VPID = L0_VM_VPID + 1;

export class NpvEngine implements NestedEngine {
  readonly name = "npv";
  /** Instructions (and exits) an L2 may run in one RUN before L0 returns TIMESLICE to L1. */
  sliceInstructions: number;
  readonly pages: RecyclingPages;
  /** Host-physical window for L2 MMIO instruction emulation, and its switchable handler. */
  readonly window: number;
  readonly proxy = new MmioProxy();
  readonly recorder = new MmioRecorder();
  private readonly l1s = new Map<Vm, L1State>();
  private nextL1 = 1;
  private readonly freeVpids: number[] = [];
  private nextVpid = FIRST_L2_VPID;
  /** The engine's counters (stats.ts): declared lists and tables, bumped by id. */
  readonly counts = new NpvStats();
  /** The hypercall's arguments (RBX, RCX, RDX, RSI), refilled by every hypercall. */
  private readonly args = [new Arg(), new Arg(), new Arg(), new Arg()];
  /** RBX of the answer to the hypercall being handled, when `hasRbx` (set by `withRbx`). */
  private rbx = 0;
  private hasRbx = false;

  /** Create the engine and register it with `l0`, claiming the npv hypercall range. */
  constructor(readonly l0: L0Hypervisor) {
    this.sliceInstructions = l0.tunables.npvSlice;
    l0.engines.register(this, { hypercalls: { first: NPV_RANGE_FIRST, last: NPV_RANGE_LAST } });
    this.pages = new RecyclingPages(l0.host.mem, l0.alloc);
    this.window = l0.reserveWindow();
    l0.host.mem.addMmio(this.window, 0x1000, this.proxy);
  }

  // ---- Set-up by the stack ----

  /** Offer the npv ABI to an L1 VM: its state, and the discovery CPUID leaves in its policy. */
  attach(l1vm: Vm): L1State {
    let st = this.l1s.get(l1vm);
    if (st !== undefined) return st;
    st = new L1State(l1vm, this.nextL1++);
    this.l1s.set(l1vm, st);
    const w = (s: string): number =>
      s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24) | 0;
    l1vm.cpuid.set(NPV_CPUID_SIGNATURE_LEAF, 0, [
      NPV_CPUID_FEATURES_LEAF,
      w(NPV_SIGNATURE.slice(0, 4)),
      w(NPV_SIGNATURE.slice(4, 8)),
      w(NPV_SIGNATURE.slice(8, 12)),
    ]);
    const features =
      NPV_FEAT_BATCH_MAP |
      NPV_FEAT_CPUID_POLICY |
      NPV_FEAT_MSR_POLICY |
      NPV_FEAT_LAPIC_OFFLOAD |
      NPV_FEAT_MEDIATED_BLK |
      NPV_FEAT_EAGER_MAP;
    l1vm.cpuid.set(NPV_CPUID_FEATURES_LEAF, 0, [NPV_ABI_VERSION, features, NPV_MAX_VMS, NPV_MAX_VCPUS_PER_VM]);
    return st;
  }

  /** Give an attached L1 a block backend for mediated devices; returns its id (≥ 1, per L1). */
  assignBackend(l1vm: Vm, backend: BlockBackend): number {
    const st = this.attach(l1vm);
    const id = st.nextBackend++;
    st.backends.set(id, backend);
    return id;
  }

  /** The state of an attached L1 (tests, fuzzer). */
  l1(l1vm: Vm): L1State | undefined {
    return this.l1s.get(l1vm);
  }

  l1States(): L1State[] {
    return [...this.l1s.values()];
  }

  // ---- The NestedEngine hooks ----

  reflect(_l0: L0Hypervisor, v: GuestVcpu, reason: number, depth: number): number {
    return reflectL2Exit(this, v as L2Vcpu, reason, depth);
  }

  handledInL0(v: GuestVcpu, reason: number): void {
    this.counts.l0Table.bump(v.vmcs.level, reason);
  }

  hypercallName(nr: number): string {
    return NPV_HC_NAMES[nr] ?? `0x${nr.toString(16)}`;
  }

  /**
   * One hypercall from the L1 vCPU loaded on the CPU. Returns false when it injected #UD
   * instead (VMCALL at CPL > 0): the instruction does not retire.
   */
  hypercall(l0: L0Hypervisor, vcpu: GuestVcpu): boolean {
    const h = l0.host;
    const nr = h.gprLo[0] >>> 0;
    this.counts.hypercalls.bump(nr);
    if (((h.vmread(V.VMCS_GUEST_SS_AR) >>> 5) & 3) !== 0) {
      vcpu.pendingException = UD;
      vcpu.pendingExceptionError = -1;
      this.counts.refused.bump(0);
      return false;
    }
    const l1vm = vcpu.l0vm;
    const st = l1vm === null ? undefined : this.l1s.get(l1vm);
    this.hasRbx = false;
    let status: number;
    if (st === undefined) status = NPV_E_NOSYS;
    else {
      const a = this.args;
      a[0].set(h.gprLo[3], h.gprHi[3]);
      a[1].set(h.gprLo[1], h.gprHi[1]);
      a[2].set(h.gprLo[2], h.gprHi[2]);
      a[3].set(h.gprLo[6], h.gprHi[6]);
      status = this.guardedDispatch(st, vcpu, nr, a);
    }
    if (status !== NPV_OK) this.counts.errors.bump(status);
    h.gprLo[0] = status | 0;
    h.gprHi[0] = status < 0 ? -1 : 0;
    if (this.hasRbx) {
      h.gprLo[3] = (this.rbx % 4294967296) | 0;
      h.gprHi[3] = Math.floor(this.rbx / 4294967296) | 0;
    }
    return true;
  }

  /** Answer the hypercall being handled with `status` and `rbx` in RBX; returns `status`. */
  withRbx(status: number, rbx: number): number {
    this.rbx = rbx;
    this.hasRbx = true;
    return status;
  }

  /** `dispatch`, with whatever it throws turned into a status (and no RBX). */
  private guardedDispatch(st: L1State, l1vcpu: GuestVcpu, nr: number, a: Arg[]): number {
    try {
      return this.dispatch(st, l1vcpu, nr, a);
    } catch (x) {
      this.hasRbx = false;
      if (x instanceof RangeError) return NPV_E_FAULT;
      if (x instanceof Error && /out of host memory|host memory exhausted/.test(x.message)) return NPV_E_NOMEM;
      this.counts.events.bump(NE.internal_errors);
      this.lastInternalError = x instanceof Error ? (x.stack ?? x.message) : String(x);
      return NPV_E_INVAL;
    }
  }

  /** Unexpected exceptions hypercalls raised (0 unless L0 has a bug). */
  get internalErrors(): number {
    return this.counts.events.get("internal_errors");
  }

  /** The last unexpected exception a hypercall raised (for diagnosis). */
  lastInternalError = "";

  private dispatch(st: L1State, l1vcpu: GuestVcpu, nr: number, a: Arg[]): number {
    switch (nr) {
      case NPV_HC_VM_CREATE:
        return this.vmCreate(st, a[0]);
      case NPV_HC_VM_DESTROY: {
        const vm = this.vmOf(st, a[0]);
        return vm === null ? NPV_E_NOENT : this.vmDestroy(st, vm);
      }
      case NPV_HC_VCPU_CREATE: {
        const vm = this.vmOf(st, a[0]);
        if (vm === null) return NPV_E_NOENT;
        const r = createL2Vcpu(this, st, vm, a[1]);
        return typeof r === "number" ? r : this.withRbx(NPV_OK, r.handle);
      }
      case NPV_HC_MAP: {
        const vm = this.vmOf(st, a[0]);
        return vm === null ? NPV_E_NOENT : doMap(this, vm, a[1], a[2], a[3].lo, a[3].hi);
      }
      case NPV_HC_UNMAP: {
        const vm = this.vmOf(st, a[0]);
        return vm === null ? NPV_E_NOENT : doUnmap(this, vm, a[1], a[2].lo, a[2].hi);
      }
      case NPV_HC_PROTECT: {
        const vm = this.vmOf(st, a[0]);
        return vm === null ? NPV_E_NOENT : doProtect(this, vm, a[1], a[2].lo, a[3].hi !== 0 ? 0 : a[3].lo, a[2].hi);
      }
      case NPV_HC_MAP_BATCH: {
        const vm = this.vmOf(st, a[0]);
        return vm === null ? this.withRbx(NPV_E_NOENT, 0) : doBatch(this, vm, a[1], a[2]);
      }
      case NPV_HC_SET_CPUID: {
        const vm = this.vmOf(st, a[0]);
        return vm === null ? NPV_E_NOENT : doSetCpuid(this, vm, a[1], a[2]);
      }
      case NPV_HC_SET_MSRS: {
        const vm = this.vmOf(st, a[0]);
        return vm === null ? NPV_E_NOENT : doSetMsrs(this, vm, a[1], a[2]);
      }
      case NPV_HC_RUN: {
        const v = this.vcpuOf(st, a[0]);
        return v === null ? NPV_E_NOENT : runL2(this, l1vcpu, v, a[1]);
      }
      case NPV_HC_INJECT: {
        const v = this.vcpuOf(st, a[0]);
        return v === null ? NPV_E_NOENT : doInject(v, a[1], a[2]);
      }
      case NPV_HC_BLK_SETUP: {
        const vm = this.vmOf(st, a[0]);
        return vm === null ? NPV_E_NOENT : doBlkSetup(this, st, vm, a[1]);
      }
      case NPV_HC_BLK_TEARDOWN: {
        const vm = this.vmOf(st, a[0]);
        return vm === null ? NPV_E_NOENT : doBlkTeardown(this, st, vm, a[1]);
      }
      case NPV_HC_MMIO_REGION: {
        const vm = this.vmOf(st, a[0]);
        return vm === null ? NPV_E_NOENT : doMmioRegion(vm, a[1], a[2], a[3]);
      }
      default:
        return NPV_E_NOSYS;
    }
  }

  private vmOf(st: L1State, h: Arg): L2Vm | null {
    return h.hi === 0 ? (st.vms.get(h.lo) ?? null) : null;
  }

  private vcpuOf(st: L1State, h: Arg): L2Vcpu | null {
    return h.hi === 0 ? (st.vcpus.get(h.lo) ?? null) : null;
  }

  // ---- VM_CREATE / VM_DESTROY ----

  private vmCreate(st: L1State, flags: Arg): number {
    if (flags.hi !== 0 || (flags.lo & ~1) !== 0) return NPV_E_INVAL;
    if (st.vms.size >= NPV_MAX_VMS) return NPV_E_NOMEM;
    if (this.freeVpids.length === 0 && this.nextVpid > 0xffff) return NPV_E_NOMEM;
    const ept = newEpt02(this.l0.mmu, this.l0.host.mem, this.pages);
    let bitmap: number;
    try {
      bitmap = this.pages.page();
    } catch (x) {
      this.pages.free(ept.root);
      throw x;
    }
    const vpid = this.freeVpids.pop() ?? this.nextVpid++;
    const msrs = new MsrPolicy();
    writeMsrBitmap(this.l0.host.mem, bitmap, msrs);
    const handle = freeHandle(st.vms);
    const vm = new L2Vm(handle, st, (flags.lo & 1) !== 0, new L2Map(), ept, vpid, bitmap, new CpuidPolicy(), msrs);
    ept.flush = () => this.invalidate(vm, "npv_rmap", 0);
    st.vms.set(handle, vm);
    return this.withRbx(NPV_OK, handle);
  }

  /** VM_DESTROY: unmap everything, free EPT02 and the bitmap, destroy vCPUs and devices. */
  vmDestroy(st: L1State, vm: L2Vm): number {
    if (vm.vcpus.some((v) => v.running)) return NPV_E_BUSY;
    st.mappedPages -= vm.map.size;
    vm.map.clearAll();
    for (const p of vm.ept.destroy()) this.pages.free(p);
    this.pages.free(vm.msrBitmap);
    this.l0.host.invalidateVpid(vm.vpid);
    this.freeVpids.push(vm.vpid);
    for (const v of vm.vcpus) st.vcpus.delete(v.handle);
    vm.vcpus.length = 0;
    st.blkDevices -= vm.blk.size;
    vm.blk.clear();
    st.vms.delete(vm.handle);
    return NPV_OK;
  }

  // ---- Helpers for the handlers ----

  isLapicPage(l2pfn: number): boolean {
    return l2pfn === L2_APIC_PFN;
  }

  /** EPT02 changed for `vm` (leaves removed or downgraded): INVEPT + INVVPID before returning. */
  invalidate(vm: L2Vm, reason: string, _leaves: number): void {
    this.l0.host.invalidateVpid(vm.vpid);
    this.l0.chargeHandler("npv.invalidate", reason);
    this.counts.events.bump(NE.invalidations);
  }

  /**
   * The engine's events for a stack's report (every family but the exits it forwarded to L1,
   * which a stack reports as exits handled by L1), with the EPT02 and map sizes per L2 VM.
   */
  events(): EventCount[] {
    return [...this.counts.list(), ...this.sizes()];
  }

  /** EPT02 leaves and mapped pages per L2 VM, and all EPT02 leaves. */
  private sizes(): EventCount[] {
    const sizes: EventCount[] = [];
    let leaves = 0;
    for (const st of this.l1s.values()) {
      for (const vm of st.vms.values()) {
        const at = `l1_${st.id}.vm${vm.handle}`;
        sizes.push({ family: "npv.ept02.leaves", name: at, count: vm.ept.leaves });
        sizes.push({ family: "npv.map.pages", name: at, count: vm.map.size });
        leaves += vm.ept.leaves;
      }
    }
    sizes.push({ family: "npv.ept02", name: "leaves", count: leaves });
    return sizes;
  }

  /** Every counter as a flat map (tests, the fuzzer), sorted by name. */
  stats(): Record<string, number> {
    const out = this.counts.flat(this.sizes());
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /**
   * Check L0's invariants (tests, fuzzer): every EPT02 leaf of every L2 maps a host page backing
   * that L1's RAM at an L2 address L1 mapped, with at most the permissions L1 gave; map and
   * mapped-page accounting agree. Returns the violations found.
   */
  checkInvariants(): string[] {
    const out: string[] = [];
    for (const st of this.l1s.values()) {
      let mapped = 0;
      for (const vm of st.vms.values()) {
        mapped += vm.map.size;
        checkEpt02(vm.ept, vm.map, st.vm, (m) => out.push(`L1 ${st.id} VM ${vm.handle}: ${m}`));
      }
      if (mapped !== st.mappedPages) out.push(`L1 ${st.id}: mappedPages ${st.mappedPages} but maps hold ${mapped}`);
    }
    if (this.internalErrors > 0) out.push(`internal errors: ${this.lastInternalError}`);
    return out;
  }
}
