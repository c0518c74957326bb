/**
 * L0's nested-VMX engine (KVM's arch/x86/kvm/vmx/nested.c), a nested engine beside npv: it
 * offers VMX to the L1 vCPUs of the VMs it is enabled for — CPUID.1:ECX.VMX in their CPUID
 * policy, IA32_FEATURE_CONTROL per vCPU (feature-control.ts), the capability MSRs from one
 * declaration (caps.ts), CR4.VMXE through L0's CR4 guest/host mask — and emulates the VMX instructions those L1s execute
 * (instructions.ts) against VMCS12s in their memory (vmcs12.ts).
 *
 * VMLAUNCH/VMRESUME enter L2 on a VMCS02 (nested.ts); each L2 exit goes through the reflection
 * rule (reflect.ts); EPT02 shadows EPT12 ∘ L1's memory (ept02.ts).
 */
import { cr4AllowedBy } from "../../../cpu/cpuid.js";
import type { CounterSet } from "../../../stats/counters.js";
import type { ExitTable } from "../../../stats/exit-table.js";
import type { EventCount } from "../../../stats/run-stats.js";
import { CR4_VMXE } from "../../../x86/control.js";
import { F1C_VMX } from "../../../x86/cpuid.js";
import { MSR_IA32_FEATURE_CONTROL } from "../../../x86/msr.js";
import * as V from "../../../x86/vmx.js";
import type { NestedEngine } from "../engine.js";
import { exitReasonName } from "../exits.js";
import type { L0Hypervisor } from "../l0.js";
import type { GuestVcpu } from "../vcpu.js";
import type { Vm } from "../vm.js";
import { vmxMsr } from "./caps.js";
import { EnlightenedVmcs } from "./evmcs.js";
import { evmcsVmentry } from "./evmcs-entry.js";
import { l1Hypercall, NOT_HV_HYPERCALL } from "./hv-hypercall.js";
import { filterCapsForEvmcs, HyperVMsrs, offerHyperVCpuid, readHyperVMsr, writeHyperVMsr } from "./hyperv.js";
import * as I from "./instructions.js";
import type { L2VmxVcpu } from "./l2-vcpu.js";
import { vmentry } from "./nested.js";
import { OperandAccess } from "./operand.js";
import { afterL0Exit, reflectExit } from "./reflect.js";
import { ShadowVmcs } from "./shadow.js";
import { NestedVmxState } from "./state.js";
import { nvmxEvents, reflectedExits } from "./stats.js";

/** First VPID L0 gives an L2 of this engine. */
const VPID02_BASE = 0x800;

type Emulation = (x: I.VmxInsnContext) => number;

/** The handler attribution of each emulated VMX instruction ("nvmx_vmread"), built once, not per exit. */
const VMX_INSN_CHARGE: readonly string[] = Array.from({ length: 128 }, (_, r) => `nvmx_${exitReasonName(r)}`);
const vmxInsnCharge = (reason: number): string => VMX_INSN_CHARGE[reason] ?? `nvmx_${exitReasonName(reason)}`;

const EMULATE: Record<number, Emulation> = {
  [V.EXIT_VMXON]: I.vmxon,
  [V.EXIT_VMXOFF]: I.vmxoff,
  [V.EXIT_VMCLEAR]: I.vmclear,
  [V.EXIT_VMPTRLD]: I.vmptrld,
  [V.EXIT_VMPTRST]: I.vmptrst,
  [V.EXIT_VMREAD]: I.vmread,
  [V.EXIT_VMWRITE]: I.vmwrite,
  [V.EXIT_INVEPT]: I.invept,
  [V.EXIT_INVVPID]: I.invvpid,
  [V.EXIT_VMCALL]: I.vmcallInRoot,
};

/** How L0 serves an L1's VMCS accesses (the nvmx stack variants). */
export interface NestedVmxOptions {
  /** Give L1 a shadow VMCS (VMCS shadowing, shadow.ts): shadowed fields' VMREAD/VMWRITE do not exit. */
  shadowVmcs: boolean;
  /** Offer Hyper-V's enlightened VMCS (evmcs.ts, hyperv.ts): L1 keeps its VMCS in plain memory. */
  evmcs?: boolean;
}

export class NestedVmxEngine implements NestedEngine {
  readonly name = "nvmx";
  private readonly vms = new Set<Vm>();
  private readonly states = new Map<GuestVcpu, NestedVmxState>();
  private readonly operands = new Map<Vm, OperandAccess>();
  /** A capability MSR's value as readMsr builds it. */
  private readonly msrValue = new Int32Array(2);
  /** The next VPID02 (above L0's VMs' VPID, l0.ts L0_VM_VPID, and npv's range). */
  private nextVpid = VPID02_BASE;

  constructor(
    private readonly l0: L0Hypervisor,
    readonly options: NestedVmxOptions = { shadowVmcs: false },
  ) {
    l0.engines.register(this);
  }

  /**
   * The engine's events summed over the L1 vCPUs it serves (for a stack's report); `l0Exits` is
   * every exit L0 took (those not from an L2 were L1's).
   */
  events(l0Exits: number): EventCount[] {
    const all = [...this.states.values()];
    let shadowSyncs = 0;
    let ept02Built = 0;
    let largeLeaves = 0;
    let leavesDropped = 0;
    let tablesFreed = 0;
    let trackedWrites = 0;
    let adWrites = 0;
    const ept12WalkReads = [0, 0, 0, 0];
    const evmcs: CounterSet[] = [];
    const hv: CounterSet[] = [];
    for (const s of all) {
      shadowSyncs += s.shadow?.syncs ?? 0;
      if (s.evmcs !== null) evmcs.push(s.evmcs.counts);
      if (s.hv !== null) hv.push(s.hv.counts);
      if (s.ept02 !== null) {
        ept02Built += s.ept02.built;
        largeLeaves += s.ept02.largeBuilt;
        leavesDropped += s.ept02.leavesDropped;
        tablesFreed += s.ept02.tablesFreed;
        trackedWrites += s.ept02.trackedWrites;
        adWrites += s.ept02.adWrites;
        for (let level = 1; level <= 4; level++) ept12WalkReads[level - 1] += s.ept02.walkReads(level);
      }
    }
    return nvmxEvents(all, {
      l0Exits,
      shadowSyncs,
      ept02Built,
      largeLeaves,
      leavesDropped,
      tablesFreed,
      trackedWrites,
      adWrites,
      ept12WalkReads,
      evmcs: this.options.evmcs === true ? evmcs : null,
      hv: this.options.evmcs === true ? hv : null,
    });
  }

  /** The L2 exits reflected to L1, by the L2's level and basic exit reason. */
  reflectedExits(): ExitTable {
    return reflectedExits([...this.states.values()]);
  }

  /** Offer VMX to `vm`'s vCPUs: CPUID.1:ECX.VMX in its CPUID policy (KVM's nested=1 for the VM). */
  enable(vm: Vm): void {
    const l1 = new Int32Array(4);
    vm.cpuid.query(1, 0, l1);
    vm.cpuid.set(1, 0, [l1[0], l1[1], l1[2] | F1C_VMX, l1[3]]);
    if (this.options.evmcs === true) offerHyperVCpuid(vm);
    this.vms.add(vm);
    this.operands.set(vm, new OperandAccess(this.l0, vm));
  }

  /** A VPID for a new VMCS02 (one per L1 vCPU that enters an L2). */
  allocateVpid(): number {
    return this.nextVpid++;
  }

  /** The nested-VMX state of L1 vCPU `v` (created on first use). */
  state(v: GuestVcpu): NestedVmxState {
    let s = this.states.get(v);
    if (s === undefined) {
      s = new NestedVmxState();
      if (this.options.evmcs === true) {
        s.hv = new HyperVMsrs();
        s.evmcs = new EnlightenedVmcs();
      }
      this.states.set(v, s);
    }
    return s;
  }

  servesVmx(v: GuestVcpu): boolean {
    return v.engine === null && v.l0vm !== null && this.vms.has(v.l0vm);
  }

  /**
   * IA32_FEATURE_CONTROL (the vCPU's own, feature-control.ts) and the VMX capability MSRs (caps.ts);
   * with the eVMCS, Hyper-V's MSRs, and the capability MSRs filtered for eVMCS v1 on every read,
   * whether or not L1 uses an eVMCS: KVM's vmx_get_msr filters guest reads whenever
   * guest_cpu_cap_has_evmcs(vcpu) — Hyper-V in the vCPU's CPUID and the eVMCS enabled by the VMM
   * (KVM_CAP_HYPERV_ENLIGHTENED_VMCS) — a property of the VM, not of what L1 did.
   */
  readMsr(_l0: L0Hypervisor, v: GuestVcpu, index: number): [number, number] | null {
    if (index === MSR_IA32_FEATURE_CONTROL) return [this.state(v).featureControl.value, 0];
    const caps = this.msrValue;
    const evmcs = this.options.evmcs === true;
    if (!vmxMsr(index, cr4AllowedBy(v.cpuid), caps))
      return evmcs ? readHyperVMsr(this.state(v).hv as HyperVMsrs, index) : null;
    if (evmcs) filterCapsForEvmcs(index, caps);
    return [caps[0], caps[1]];
  }

  /** IA32_FEATURE_CONTROL while unlocked; with the eVMCS, Hyper-V's synthetic MSRs (hyperv.ts). */
  writeMsr(_l0: L0Hypervisor, v: GuestVcpu, index: number, lo: number, hi: number): boolean {
    if (index === MSR_IA32_FEATURE_CONTROL) return this.state(v).featureControl.write(lo, hi);
    if (this.options.evmcs !== true) return false;
    return writeHyperVMsr(this.state(v).hv as HyperVMsrs, v.l0vm as Vm, index, lo, hi);
  }

  /**
   * L1's VMCALL with Hyper-V's hypercalls enabled (nvmx-evmcs, a non-zero guest OS ID: KVM's
   * kvm_hv_hypercall_enabled, checked before any other hypercall ABI): L0 answers it
   * (hv-hypercall.ts). NOT_HV_HYPERCALL otherwise.
   */
  guestHypercall(l0: L0Hypervisor, v: GuestVcpu): number {
    if (this.options.evmcs !== true || !this.servesVmx(v)) return NOT_HV_HYPERCALL;
    const hv = this.state(v).hv as HyperVMsrs;
    if (!hv.hypercallsEnabled) return NOT_HV_HYPERCALL;
    return l1Hypercall(l0, v, (v.l0vm as Vm).memory, hv.counts);
  }

  /** Whether L1 vCPU `v` is in VMX operation (between its VMXON and VMXOFF). */
  inVmxOperation(v: GuestVcpu): boolean {
    return this.states.get(v)?.vmxon === true;
  }

  /** A MOV to CR4 that changes VMXE: clearing it in VMX operation is refused (#GP, SDM vol. 3C 23.8). */
  cr4Write(v: GuestVcpu, value: number): boolean {
    return (value & CR4_VMXE) !== 0 || !this.state(v).vmxon;
  }

  /**
   * Emulate the VMX instruction of L1 vCPU `v` that exited with `reason`, on the vCPU's one
   * instruction context (made at its first VMX instruction): nothing is allocated per instruction.
   */
  vmxInstruction(l0: L0Hypervisor, v: GuestVcpu, reason: number): number {
    const entry = reason === V.EXIT_VMLAUNCH || reason === V.EXIT_VMRESUME;
    const emulate = entry ? null : EMULATE[reason];
    l0.chargeFor(v, "nvmx.vmx_insn", vmxInsnCharge(reason));
    if (emulate === undefined) {
      return v.fail(
        "error",
        reason,
        `nested VMX: L0 does not emulate exit reason ${reason} (${exitReasonName(reason)}; VMFUNC is not offered)`,
      );
    }
    const s = this.state(v);
    if (this.options.shadowVmcs && s.shadow === null) s.shadow = new ShadowVmcs(l0);
    s.emulated.bump(reason);
    const x = s.insn ?? this.insnContext(l0, v, s);
    if (emulate !== null) return emulate(x);
    const resume = reason === V.EXIT_VMRESUME;
    return this.options.evmcs === true ? evmcsVmentry(x, this, resume) : vmentry(x, this, resume);
  }

  /** The instruction context of L1 vCPU `v`: the same L0, vCPU, VM, state and operand access each time. */
  private insnContext(l0: L0Hypervisor, v: GuestVcpu, s: NestedVmxState): I.VmxInsnContext {
    const vm = v.l0vm as Vm;
    s.insn = { l0, v, vm, s, ops: this.operands.get(vm) as OperandAccess };
    return s.insn;
  }

  /** The reflect step for an exit of an L2 this engine runs (reflect.ts). */
  reflect(l0: L0Hypervisor, v: GuestVcpu, reason: number): number {
    const l2 = v as L2VmxVcpu;
    return reflectExit(l0, l2, this.state(l2.l1), reason);
  }

  handledInL0(v: GuestVcpu, reason: number): void {
    const l2 = v as L2VmxVcpu;
    afterL0Exit(this.l0, l2, this.state(l2.l1), reason);
  }
}
