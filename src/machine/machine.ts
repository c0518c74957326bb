/**
 * The emulated PC: CPU + RAM + devices + the simulated clock, wired as docs/architecture.md
 * describes, and the loop that runs it. Time is the CPU's cycle count: idle (HLT) time is skipped
 * to the next timer event, so a run's cycles and counters are the same on every machine.
 */

import { Cpu, type MsrHandler, STOP_BUDGET, STOP_HALT, STOP_REQUEST, STOP_SHUTDOWN } from "../cpu/cpu.js";
import { CpuModel } from "../cpu/cpuid.js";
import { type JitOptions, jitOptions } from "../cpu/jit/options.js";
import type { Clock } from "../cpu/ports.js";
import type { BlockBackend } from "../devices/block-backend.js";
import type { LocalApic } from "../devices/lapic.js";
import { PhysicalMemory } from "../mmu/phys.js";
import { IF } from "../x86/flags.js";
import { PcDevices } from "./pc-devices.js";
import { PC_LAPIC_BASE, PC_LAPIC_SIZE, PC_VIRTIO_BLK_BASE, PC_VIRTIO_BLK_SIZE } from "./pc-layout.js";
import type { StopReason } from "./stop.js";
import { DEFAULT_TUNABLES } from "./tunables.js";

export interface MachineOptions {
  /** RAM in bytes (default 256 MiB). */
  memory?: number;
  /** Called with each byte the guest sends to COM1. */
  onSerial?: (byte: number) => void;
  /** Bytes for the guest to read from COM1. */
  serialInput?: string;
  /** The virtio-blk backend (default: an in-memory 8 MiB disk). */
  disk?: BlockBackend;
  /** CPU model for CPUID. */
  cpuModel?: CpuModel;
  /** Instructions per slice of the run loop (default: the machineSlice tunable). */
  slice?: number;
  /** Block compiler settings (default: jitDefaults); results are the same either way. */
  jit?: Partial<JitOptions>;
}

export class Machine extends PcDevices {
  readonly mem: PhysicalMemory;
  readonly cpu: Cpu;
  readonly clock: Clock;
  /** Cycles skipped while halted waiting for a timer. */
  idleCycles = 0;

  /** Instructions per slice of the run loop between device and timer checks. */
  private readonly slice: number;

  constructor(opts: MachineOptions = {}) {
    const size = opts.memory ?? 256 * 1024 * 1024;
    const mem = new PhysicalMemory(size);
    const cpu = new Cpu(mem, opts.cpuModel ?? new CpuModel());
    const clock: Clock = { now: () => cpu.cycles() };
    super({
      ramSize: size,
      clock,
      dma: mem,
      onSerial: opts.onSerial,
      serialInput: opts.serialInput,
      disk: opts.disk,
      onIntr: (level) => level && cpu.notifyInterrupt(),
      // A write to the APIC (TPR, EOI, ICR…) may make an interrupt deliverable: look before the
      // next instruction (SDM vol. 3, 11.8.3.1 / 11.6: a self-IPI or a lower TPR acts at once).
      onLapicWrite: () => cpu.notifyInterrupt(),
    });
    this.mem = mem;
    this.cpu = cpu;
    this.clock = clock;
    this.slice = opts.slice ?? DEFAULT_TUNABLES.machineSlice;
    if (opts.jit !== undefined) cpu.setJit(jitOptions(opts.jit));
    cpu.io = this.io;
    mem.addMmio(PC_LAPIC_BASE, PC_LAPIC_SIZE, this.lapic);
    mem.addMmio(PC_VIRTIO_BLK_BASE, PC_VIRTIO_BLK_SIZE, this.virtioBlk);
    cpu.intc = this.router;
    cpu.msrHandler = lapicMsrs(this.lapic);
    cpu.tpr = this.lapic; // CR8 is the LAPIC's task-priority register
    cpu.apicEnabled = () => this.lapic.hardwareEnabled; // CPUID.1:EDX.APIC follows it
  }

  /** The guest wrote the debug-exit port: the run loop ends after this instruction. */
  protected override debugExitWritten(status: number): void {
    super.debugExitWritten(status);
    this.cpu.requestStop();
  }

  /**
   * Run until the guest exits through the debug port, triple-faults, halts for good, or uses up
   * `maxInstructions`. Never throws for guest behaviour.
   */
  run(maxInstructions: number): StopReason {
    const cpu = this.cpu;
    const limit = cpu.icount + maxInstructions;
    for (;;) {
      if (this.exitStatus !== null) {
        return {
          kind: "debug-exit",
          status: this.exitStatus,
          message: `guest wrote ${(this.exitStatus - 1) / 2} to the debug-exit port`,
        };
      }
      const left = limit - cpu.icount;
      if (left <= 0) {
        return {
          kind: "instruction-limit",
          message: `instruction limit (${maxInstructions}) reached at RIP ${hex(cpu.ripHi, cpu.ripLo)}; the guest may be hung`,
        };
      }
      // Run up to the next timer event (converted to instructions at the base cost).
      const now = cpu.cycles();
      const next = this.lapic.nextEventCycle();
      let budget = Math.min(this.slice, left);
      if (next !== Number.POSITIVE_INFINITY) {
        budget = Math.max(1, Math.min(budget, Math.ceil((next - now) / cpu.cyclesPerInsn)));
      }
      const stop = cpu.run(budget);
      this.pollDevices();
      if (stop === STOP_SHUTDOWN) {
        const r = cpu.stopReason;
        return {
          kind: "triple-fault",
          message: `${r?.reason ?? "shutdown"} at RIP ${hex(r?.ripHi ?? 0, r?.ripLo ?? 0)} (CPL ${cpu.cpl})`,
        };
      }
      if (stop === STOP_REQUEST || stop === STOP_BUDGET) continue;
      if (stop === STOP_HALT) {
        if (this.router.hasPendingInterrupt() && (cpu.getFlags() & IF) !== 0) {
          cpu.notifyInterrupt();
          continue;
        }
        const ev = this.lapic.nextEventCycle();
        if ((cpu.getFlags() & IF) === 0 || ev === Number.POSITIVE_INFINITY) {
          return {
            kind: "halted",
            message: `guest halted at RIP ${hex(cpu.ripHi, cpu.ripLo)} with ${(cpu.getFlags() & IF) === 0 ? "interrupts disabled" : "no timer armed"}: nothing can wake it`,
          };
        }
        // Idle until the timer fires: the skipped time is charged as halted cycles.
        if (ev > cpu.cycles()) {
          this.idleCycles += ev - cpu.cycles();
          cpu.charge(ev - cpu.cycles());
        }
        this.pollDevices();
      }
    }
  }

  /** Fire due timers and tell the CPU if anything is pending. */
  private pollDevices(): void {
    this.lapic.advance(this.cpu.cycles());
    if (this.router.hasPendingInterrupt()) this.cpu.notifyInterrupt();
  }
}

/** Route the LAPIC's MSRs (APIC base, TSC deadline, x2APIC range) to it. */
function lapicMsrs(lapic: LocalApic): MsrHandler {
  return {
    readMsr(index: number, out: Int32Array): boolean {
      if (!lapic.handlesMsr(index)) return false;
      const v = lapic.readMsr(index);
      if (v === null) return false;
      out[0] = v[0] | 0;
      out[1] = v[1] | 0;
      return true;
    },
    writeMsr(index: number, lo: number, hi: number): boolean {
      if (!lapic.handlesMsr(index)) return false;
      return lapic.writeMsr(index, lo >>> 0, hi >>> 0);
    },
  };
}

export function hex(hi: number, lo: number): string {
  return `0x${(hi >>> 0).toString(16).padStart(8, "0")}${(lo >>> 0).toString(16).padStart(8, "0")}`;
}
