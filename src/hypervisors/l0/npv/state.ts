/**
 * What L0 keeps per L1 and per L2 object for the npv ABI. Handles are small integers, allocated
 * per L1 (lowest free first, never 0), so one L1 can never name another's objects.
 */
import type { GuestContext } from "../../../cpu/vmx/host.js";
import type { Vmcs } from "../../../cpu/vmx/vmcs.js";
import type { BlockBackend } from "../../../devices/block-backend.js";
import type { LocalApic } from "../../../devices/lapic.js";
import type { PageTableBuilder } from "../../mmu/page-table.js";
import { NPV_EXIT_HALT, NPV_EXIT_SHUTDOWN, NPV_EXIT_TIMESLICE } from "../../npv-abi.js";
import { GuestVcpu } from "../vcpu.js";
import type { Vm } from "../vm.js";
import type { MediatedBlk } from "./blk.js";
import type { NpvEngine } from "./engine.js";
import type { L2Map } from "./l2-map.js";
import type { CpuidPolicy, MsrPolicy } from "./policy.js";
import { NE } from "./stats.js";

export interface MmioRange {
  /** L2 GPA (page-aligned) and size in pages. */
  gpa: number;
  npages: number;
}

export class L2Vm {
  readonly map: L2Map;
  cpuid: CpuidPolicy;
  msrs: MsrPolicy;
  readonly mmio: MmioRange[] = [];
  readonly blk = new Map<number, MediatedBlk>();
  readonly vcpus: L2Vcpu[] = [];

  constructor(
    readonly handle: number,
    readonly owner: L1State,
    readonly eager: boolean,
    map: L2Map,
    readonly ept: PageTableBuilder,
    readonly vpid: number,
    readonly msrBitmap: number,
    cpuid: CpuidPolicy,
    msrs: MsrPolicy,
  ) {
    this.map = map;
    this.cpuid = cpuid;
    this.msrs = msrs;
  }

  /** The declared MMIO range containing L2 GPA `gpa`, if any. */
  findMmio(gpa: number): MmioRange | undefined {
    for (const r of this.mmio) if (gpa >= r.gpa && gpa < r.gpa + r.npages * 4096) return r;
    return undefined;
  }
}

/** A forwarded MMIO read waiting for L1's value (completed at the next RUN). */
export interface PendingMmioRead {
  gpa: number;
  size: number;
}

/** Marks an ExtINT entry of `L2Vcpu.injectQueue` (bits 7:0 are the vector). */
export const EXTINT_QUEUED = 0x100;

/** An L2 vCPU: run by L0's core under the npv engine, on its L1's behalf. */
export class L2Vcpu extends GuestVcpu {
  /** External interrupts queued by INJECT (and mediated-device completions) not yet in the LAPIC. */
  readonly injectQueue: number[] = [];
  /** 0 while runnable; NPV_EXIT_SHUTDOWN or NPV_EXIT_MODE once stopped. */
  stopped = 0;
  stopDetail = 0;
  /** True while RUN has this vCPU on the CPU. */
  running = false;
  /** Set after the first exit forwarded to L1 (the run page then holds this vCPU's registers). */
  forwarded = false;
  pendingMmioRead: PendingMmioRead | null = null;
  /** Exit-specific data of the exit being forwarded (the run page's 64 bytes at 0xC0). */
  readonly exitData = new Uint8Array(64);
  readonly exitView = new DataView(this.exitData.buffer);
  readonly l0vm = null;
  readonly chargeTag = "npv_";
  /**
   * The L1 vCPU whose RUN has this vCPU on the CPU (null otherwise). L1's own timer keeps
   * running while L2 does: when it fires, L0 ends the RUN with TIMESLICE so that L1 takes its
   * interrupt (the host timer of L1's vCPU interrupts L2 as KVM's hrtimer would) — only when
   * L1 issued the RUN with interrupts enabled, else L1 could not take it and would RUN again.
   */
  l1: GuestVcpu | null = null;

  constructor(
    readonly engine: NpvEngine,
    readonly handle: number,
    readonly vm: L2Vm,
    readonly index: number,
    vmcs: Vmcs,
    ctx: GuestContext,
    readonly lapic: LocalApic,
  ) {
    super(vmcs, ctx);
  }

  /** L1's CPUID policy for this L2 (SET_CPUID replaces it). */
  get cpuid(): CpuidPolicy {
    return this.vm.cpuid;
  }

  hasPendingInterrupt(): boolean {
    return this.injectQueue.length > 0 || this.lapic.hasPending();
  }

  acknowledgeInterrupt(): number {
    this.engine.counts.events.bump(NE.l2_interrupts_injected);
    return this.lapic.hasPending() ? this.lapic.acknowledge() : (this.injectQueue.shift() as number) & 0xff;
  }

  /**
   * Queued external interrupts go through the L2's LAPIC when it is enabled (L2 EOIs them there),
   * except ExtINT ones (an 8259's, through LINT0 in virtual-wire mode), which stay queued and are
   * injected directly: L2 acknowledges those at its PIC.
   */
  override beforeInjection(): void {
    const lapic = this.lapic;
    const q = this.injectQueue;
    if (q.length > 0 && lapic.hardwareEnabled && lapic.softwareEnabled) {
      let kept = 0;
      for (const vec of q) {
        if ((vec & EXTINT_QUEUED) !== 0) q[kept++] = vec;
        else lapic.acceptExternal(vec);
      }
      q.length = kept;
    }
  }

  stopCode(): number {
    if (this.stopped !== 0) return this.stopped;
    const l1 = this.l1;
    if (l1 !== null && l1.nextEventCycle() <= this.engine.l0.host.cycles()) {
      l1.lapic.advance(this.engine.l0.host.cycles());
      if (l1.hasPendingInterrupt()) {
        this.engine.counts.events.bump(NE.l1_timer_preemptions);
        return NPV_EXIT_TIMESLICE;
      }
    }
    return 0;
  }

  override nextEventCycle(): number {
    const own = this.lapic.nextEventCycle();
    const l1 = this.l1;
    return l1 === null ? own : Math.min(own, l1.nextEventCycle());
  }

  budgetExhausted(): number {
    return NPV_EXIT_TIMESLICE;
  }

  /** Stop the vCPU for good: SHUTDOWN (its detail: an exit reason, bit 31 for a failed entry). */
  fail(_kind: "error" | "triple-fault", detail: number, _message: string): number {
    if ((detail & 0x80000000) !== 0) this.engine.counts.events.bump(NE.l2_entry_failures);
    return this.stopWith(NPV_EXIT_SHUTDOWN, detail);
  }

  haltedForever(interruptsEnabled: boolean, _rip: number): number {
    this.exitView.setUint32(0, interruptsEnabled ? 1 : 0, true); // detail: 1 = interrupts on but nothing armed
    return NPV_EXIT_HALT;
  }

  /** Stop the vCPU (SHUTDOWN / MODE): it never runs again. */
  stopWith(reason: number, detail: number): number {
    this.stopped = reason;
    this.stopDetail = detail;
    this.exitView.setUint32(0, detail >>> 0, true);
    return reason;
  }
}

export class L1State {
  readonly vms = new Map<number, L2Vm>();
  readonly vcpus = new Map<number, L2Vcpu>();
  readonly backends = new Map<number, BlockBackend>();
  nextBackend = 1;
  /** Pages mapped across all of this L1's L2 VMs (limit NPV_MAX_MAPPED_PAGES). */
  mappedPages = 0;
  blkDevices = 0;

  constructor(
    readonly vm: Vm,
    readonly id: number,
  ) {}
}

/** Lowest free handle ≥ 1 in `m`. */
export function freeHandle(m: Map<number, unknown>): number {
  let h = 1;
  while (m.has(h)) h++;
  return h;
}
