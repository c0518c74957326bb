/**
 * Nested engines: the parts of L0 that run guests on an L1's behalf (npv today; nested VMX
 * next), plugged into L0's one run/exit core the way KVM's nested.c sits beside vmx.c. An
 * engine registers with L0's registry and claims what it handles for the L1s it serves:
 *
 * - a range of hypercall numbers (an L1's VMCALL with RAX in the range goes to `hypercall`);
 * - VMX-instruction exits (VMXON, VMPTRLD, VMREAD, VMLAUNCH… of a vCPU it serves go to
 *   `vmxInstruction` instead of #UD);
 * - tracked pages: an L1 guest-physical page the engine write-protects (say, an L1's EPT12
 *   table page) — an L1 write to it exits as an EPT violation that goes to `trackedWrite`;
 *
 * and for every exit of a vCPU it runs (an L2), its `reflect` step sees the exit before L0's
 * handler table (KVM: nested_vmx_reflect_vmexit before kvm_vmx_exit_handlers).
 */
import type { L0Hypervisor } from "./l0.js";
import type { GuestVcpu } from "./vcpu.js";
import type { Vm } from "./vm.js";

/** `reflect` result: the engine leaves this exit to L0's handler table. */
export const NOT_REFLECTED = -1;

export interface NestedEngine {
  readonly name: string;
  /**
   * The reflect step, for every exit of a vCPU this engine runs. Returns NOT_REFLECTED to let
   * L0's table handle it, HANDLED when the engine handled it (the vCPU resumes), or a code that
   * ends the run and goes back to the engine's owner (npv: the NPV_EXIT_* reason for L1).
   * `depth` > 0 for an exit raised while L0 emulated an instruction of the guest.
   */
  reflect(l0: L0Hypervisor, v: GuestVcpu, reason: number, depth: number): number;
  /** L0's handler table handled an exit of a vCPU this engine runs (statistics). */
  handledInL0(v: GuestVcpu, reason: number): void;
  /**
   * A claimed hypercall from vCPU `v` (RAX = number; arguments in its registers): sets RAX and
   * the result registers. Returns false when it injected an exception instead (no retire).
   */
  hypercall?(l0: L0Hypervisor, v: GuestVcpu): boolean;
  /** The name of claimed hypercall `nr` (for timelines). */
  hypercallName?(nr: number): string;
  /** Whether this engine offers VMX to vCPU `v` (its VMX-instruction exits come here). */
  servesVmx?(v: GuestVcpu): boolean;
  /** A VMX-instruction exit (`reason`) of a vCPU the engine serves; returns as a handler does. */
  vmxInstruction?(l0: L0Hypervisor, v: GuestVcpu, reason: number, depth: number): number;
  /**
   * An intercepted RDMSR of vCPU `v` that L0's LAPIC does not own, for an engine serving VMX to
   * it (IA32_FEATURE_CONTROL, the VMX capability MSRs): [low, high], or null for #GP.
   */
  readMsr?(l0: L0Hypervisor, v: GuestVcpu, index: number): [number, number] | null;
  /**
   * A VMCALL of vCPU `v` that the engine offering it VMX takes as another hypervisor's hypercall
   * ABI (nvmx-evmcs: Hyper-V's, once L1 set a guest OS ID): returns as a handler does, or -1 when
   * it does not take it (the VMCALL goes on as below).
   */
  guestHypercall?(l0: L0Hypervisor, v: GuestVcpu): number;
  /** Whether vCPU `v`, which this engine offers VMX to, is in VMX operation (its VMCALL is then a VMX instruction). */
  inVmxOperation?(v: GuestVcpu): boolean;
  /** An intercepted WRMSR of vCPU `v` that L0's LAPIC does not own (IA32_FEATURE_CONTROL; nvmx-evmcs: Hyper-V's MSRs); false for #GP. */
  writeMsr?(l0: L0Hypervisor, v: GuestVcpu, index: number, lo: number, hi: number): boolean;
  /** A MOV to CR4 of `v` changing CR4.VMXE to `value`'s: false refuses it (#GP). */
  cr4Write?(v: GuestVcpu, value: number): boolean;
  /** A write by `v` to a page this engine tracks (the instruction has not retired). */
  trackedWrite?(l0: L0Hypervisor, v: GuestVcpu, gpa: number): number;
}

export interface EngineClaims {
  /** Hypercall numbers [first, last] the engine answers. */
  hypercalls?: { first: number; last: number };
}

interface HypercallRange {
  first: number;
  last: number;
  engine: NestedEngine & Required<Pick<NestedEngine, "hypercall">>;
}

/** L0's nested engines and what each claims. */
export class EngineRegistry {
  private readonly list: NestedEngine[] = [];
  private readonly ranges: HypercallRange[] = [];
  private readonly tracked = new Map<Vm, Map<number, NestedEngine>>();

  register(engine: NestedEngine, claims: EngineClaims = {}): void {
    if (this.list.includes(engine)) throw new Error(`nested engine ${engine.name} is already registered`);
    const hc = claims.hypercalls;
    if (hc !== undefined) {
      if (engine.hypercall === undefined) throw new Error(`engine ${engine.name} claims hypercalls it cannot handle`);
      for (const r of this.ranges) {
        if (hc.first <= r.last && r.first <= hc.last)
          throw new Error(`engine ${engine.name}'s hypercalls overlap ${r.engine.name}'s`);
      }
      this.ranges.push({ first: hc.first, last: hc.last, engine: engine as HypercallRange["engine"] });
    }
    this.list.push(engine);
  }

  get engines(): readonly NestedEngine[] {
    return this.list;
  }

  /** The engine that claims hypercall number `nr`, or null. */
  forHypercall(nr: number): HypercallRange["engine"] | null {
    for (const r of this.ranges) if (nr >= r.first && nr <= r.last) return r.engine;
    return null;
  }

  /** The engine offering VMX to `v`, or null (its VMX instructions then raise #UD). */
  forVmxInstructions(v: GuestVcpu): (NestedEngine & Required<Pick<NestedEngine, "vmxInstruction">>) | null {
    for (const e of this.list) {
      if (e.vmxInstruction !== undefined && e.servesVmx?.(v) === true)
        return e as NestedEngine & Required<Pick<NestedEngine, "vmxInstruction">>;
    }
    return null;
  }

  /**
   * Track the 4 KiB page of `vm` at `gpa` for `engine` (KVM's page_track): a present EPT01 leaf
   * loses write permission now, a later first-touch mapping is made without it, and every write
   * to the page exits to `engine.trackedWrite`.
   */
  trackPage(l0: L0Hypervisor, vm: Vm, gpa: number, engine: NestedEngine): void {
    if (engine.trackedWrite === undefined) throw new Error(`engine ${engine.name} cannot handle tracked writes`);
    const page = gpa - (gpa % 4096);
    let m = this.tracked.get(vm);
    if (m === undefined) {
      m = new Map();
      this.tracked.set(vm, m);
    }
    const owner = m.get(page);
    if (owner !== undefined && owner !== engine)
      throw new Error(`page 0x${page.toString(16)} is tracked by ${owner.name}`);
    m.set(page, engine);
    const leaf = vm.ept01.lookup(page);
    if (leaf !== null && (leaf.perms & 2) !== 0) {
      vm.ept01.map(page, leaf.pa, leaf.perms & ~2);
      l0.flushGuestTlb(vm);
    }
  }

  /** Stop tracking the page (its next write fault maps it writable again). */
  untrackPage(vm: Vm, gpa: number): void {
    this.tracked.get(vm)?.delete(gpa - (gpa % 4096));
  }

  /** The engine tracking the page at `page` (4 KiB aligned) of `vm`, or null. */
  /** True when an engine tracks any page of `vm` in [base, base + size). */
  tracksAnyIn(vm: Vm, base: number, size: number): boolean {
    const m = this.tracked.get(vm);
    if (m === undefined) return false;
    for (const p of m.keys()) if (p >= base && p < base + size) return true;
    return false;
  }

  trackerOf(vm: Vm, page: number): (NestedEngine & Required<Pick<NestedEngine, "trackedWrite">>) | null {
    const m = this.tracked.get(vm);
    if (m === undefined) return null;
    return (m.get(page) as (NestedEngine & Required<Pick<NestedEngine, "trackedWrite">>) | undefined) ?? null;
  }
}
