/**
 * The L1 hypervisor of the `npv` stack: a hypervisor written in TypeScript that runs as an L1
 * guest of L0 and runs one L2 through the nested paravirtual ABI (docs/npv-abi.md). Its
 * privileged operations are VMCALL/CPUID exits to L0 (through `L1Platform`); its own work is
 * charged at level 1. See docs/stacks/npv.md for the model.
 */
import { CpuModel } from "../../cpu/cpuid.js";
import {
  VIRTIO_MMIO_INTERRUPT_STATUS,
  VIRTIO_MMIO_QUEUE_READY,
  VIRTIO_MMIO_STATUS,
} from "../../devices/virtio-mmio.js";
import { RAM_HOLE_START } from "../../machine/boot.js";
import type { StopReason } from "../../machine/stop.js";
import { F1C_HYPERVISOR, F1C_VMX } from "../../x86/cpuid.js";
import * as M from "../../x86/msr.js";
import * as A from "../npv-abi.js";
import { L1PageAllocator } from "./allocator.js";
import { L2_VIRTIO_GPA, L2_VIRTIO_SIZE, L2Devices, type MediatedDisk } from "./l2-devices.js";
import { loadL2Image } from "./l2-image.js";
import { type Extent, L2MemoryMap } from "./l2-map.js";
import { type CpuidEntry, type MsrEntry, NpvCallError, NpvClient, type NpvFeatures } from "./npv-client.js";
import type { L1Platform } from "./platform.js";
import { RunPage } from "./run-page.js";

const PAGE = 4096;
/** Leaves whose answer depends on the subleaf (the policy entry matches ECX). */
const SUBLEAF_LEAVES = new Set([4, 7, 0xb, 0xd, 0xf, 0x10, 0x12, 0x14, 0x17, 0x18, 0x1d, 0x1e, 0x1f, 0x20]);
/** The MSRs L2 owns outright (no exit): the syscall and segment-base MSRs. */
export const PASSTHROUGH_MSRS = [
  M.MSR_EFER,
  M.MSR_STAR,
  M.MSR_LSTAR,
  M.MSR_CSTAR,
  M.MSR_SFMASK,
  M.MSR_FS_BASE,
  M.MSR_GS_BASE,
  M.MSR_KERNEL_GS_BASE,
  M.MSR_TSC_AUX,
  M.MSR_IA32_PAT,
];
const RAX = 0;
const RDX = 2;

export type MapMode = "eager" | "demand";

export interface L1Options {
  /** The L2 kernel image (ELF64; booted through the direct 64-bit entry). */
  image: Uint8Array;
  cmdline: string;
  /** L2 RAM in bytes. */
  l2Memory: number;
  mapMode: MapMode;
  /** L1 RAM (GPAs) L1 reserves for its guests' memory. */
  pool: { base: number; size: number };
  /** L1 RAM for L1's own structures (run page, argument page). */
  scratch: { base: number; size: number };
  /** On a MEMORY_FAULT L1 maps the aligned group of this many pages around the fault. */
  faultBatchPages: number;
  /** The disk L0 assigned to this L1 for the L2, or null for none. */
  disk: MediatedDisk | null;
  onSerial?: (byte: number) => void;
  serialInput?: string;
  /** The CPU model L1 sees (from which L2's CPUID policy is derived). */
  cpuModel?: CpuModel;
  /** Stop after this many instructions (checked whenever L1 runs, e.g. at TIMESLICE). */
  maxInstructions: number;
  /** Instructions retired so far (the stack's clock of progress). */
  instructionsRetired: () => number;
}

/** Exit names of the npv run page, as counters use them. */
export function npvExitName(reason: number): string {
  return A.NPV_EXIT_NAMES[reason] ?? `reason_${reason}`;
}

export class L1Hypervisor {
  readonly client: NpvClient;
  readonly map = new L2MemoryMap();
  readonly pool: L1PageAllocator;
  readonly own: L1PageAllocator;
  readonly devices: L2Devices;
  readonly runPage: RunPage;
  /** Events L0 forwarded to L1, by npv exit name. */
  readonly forwarded = new Map<string, number>();
  /** L2 pages L1 allocated on MEMORY_FAULT. */
  demandPages = 0;
  /** Pages mapped when the L2 was built (image, or all of RAM when eager). */
  bootPages = 0;
  features: NpvFeatures | null = null;
  vm = -1;
  vcpu = -1;
  blkMediated = false;
  /**
   * Reads of the block device's InterruptStatus that reached L1. The polled driver reads it after
   * every request; under ABI v1 only QueueNotify is the mediated device's, so this register (and
   * InterruptACK) stays with L1's control path — the one per-request event L1 still sees.
   */
  isrReads = 0;
  private readonly ramPages: number;

  constructor(
    private readonly p: L1Platform,
    readonly opts: L1Options,
  ) {
    this.pool = new L1PageAllocator(opts.pool.base, opts.pool.size);
    this.own = new L1PageAllocator(opts.scratch.base, opts.scratch.size);
    this.client = new NpvClient(p, this.own.alloc().gpa);
    this.runPage = new RunPage(p.mem, this.own.alloc().gpa);
    this.ramPages = Math.floor(Math.min(opts.l2Memory, RAM_HOLE_START) / PAGE);
    this.devices = new L2Devices({
      memory: opts.l2Memory,
      onSerial: opts.onSerial,
      serialInput: opts.serialInput,
      disk: opts.disk,
    });
  }

  /** Discover the ABI, create the L2 VM, load its kernel, register policies and devices, create its vCPU. */
  boot(): void {
    this.features = this.client.discover();
    const eager = this.opts.mapMode === "eager";
    this.vm = this.client.vmCreate(eager && (this.features.features & A.NPV_FEAT_EAGER_MAP) !== 0);
    const img = loadL2Image(this.opts.image, this.opts.cmdline, this.opts.l2Memory);
    const created: Extent[] = [];
    if (eager) {
      // All of L2 RAM in one run of L1 pages: L2 pfn n → pool + n.
      const base = this.pool.allocRun(this.ramPages) / PAGE;
      for (const pg of img.pages) {
        if (pg.pfn < this.ramPages) this.p.mem.writeBytes((base + pg.pfn) * PAGE, pg.bytes);
      }
      this.map.insert(0, base, this.ramPages, 7);
      created.push({ l2Pfn: 0, l1Pfn: base, npages: this.ramPages, perms: 7 });
    } else {
      for (const pg of img.pages) {
        if (pg.pfn >= this.ramPages) continue;
        const l1 = this.pool.alloc().gpa;
        this.p.mem.writeBytes(l1, pg.bytes);
        this.map.insert(pg.pfn, l1 / PAGE, 1, 7);
        pushExtent(created, pg.pfn, l1 / PAGE, 1);
      }
    }
    this.bootPages = created.reduce((n, e) => n + e.npages, 0);
    this.client.mapBatch(this.vm, created);
    this.client.setCpuid(this.vm, this.cpuidPolicy());
    this.client.setMsrs(this.vm, this.msrPolicy());
    if (this.devices.virtio !== null) this.client.mmioRegion(this.vm, L2_VIRTIO_GPA, Math.ceil(L2_VIRTIO_SIZE / PAGE));
    this.vcpu = this.client.vcpuCreate(this.vm, img.state);
  }

  /** L2's CPUID policy: the host model L1 sees, hypervisor bit on, VMX off, L1's own signature leaf. */
  cpuidPolicy(): CpuidEntry[] {
    const model = (this.opts.cpuModel ?? new CpuModel()).clone();
    const out: CpuidEntry[] = [];
    for (const [key, regs] of model.leaves) {
      const [leafS, subS] = key.split(":");
      const leaf = Number(leafS);
      const subleaf = Number(subS);
      if (leaf >= 0x40000000 && leaf < 0x50000000) continue; // L0's hypervisor leaves are not L2's
      const r: [number, number, number, number] = [regs[0], regs[1], regs[2], regs[3]];
      if (leaf === 1) r[2] = (r[2] | F1C_HYPERVISOR) & ~F1C_VMX;
      out.push({ leaf, subleaf, matchSubleaf: SUBLEAF_LEAVES.has(leaf), regs: r });
    }
    const w = (s: string) =>
      s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24);
    out.push({
      leaf: 0x40000000,
      subleaf: 0,
      matchSubleaf: false,
      regs: [0x40000000, w("Nest"), w("LabN"), w("pvL1")],
    });
    out.sort((a, b) => a.leaf - b.leaf || a.subleaf - b.subleaf);
    return out;
  }

  /** L2's MSR policy: the syscall/segment-base MSRs are L2's own; the APIC's are L0's (not listed). */
  msrPolicy(): MsrEntry[] {
    return PASSTHROUGH_MSRS.map((index) => ({ index, mode: A.NPV_MSR_PASSTHROUGH, value: 0 }));
  }

  private count(name: string): void {
    this.forwarded.set(name, (this.forwarded.get(name) ?? 0) + 1);
  }

  /** The vCPU loop: RUN, handle what L0 forwarded, repeat, until L2 stops. */
  run(): StopReason {
    const rp = this.runPage;
    const limit = this.opts.maxInstructions;
    for (;;) {
      const dev = this.devices;
      if (dev.exitStatus !== null) {
        const s = dev.exitStatus;
        return { kind: "debug-exit", status: s, message: `L2 wrote ${(s - 1) / 2} to the debug-exit port` };
      }
      if (this.opts.instructionsRetired() >= limit) {
        return { kind: "instruction-limit", message: `instruction limit (${limit}) reached; L2 may be hung` };
      }
      try {
        this.client.run(this.vcpu, rp.gpa);
      } catch (e) {
        if (e instanceof NpvCallError) return { kind: "error", message: `L1 could not run L2: ${e.message}` };
        throw e;
      }
      const reason = rp.reason;
      this.count(npvExitName(reason));
      this.p.charge("l1.exit_handling", npvExitName(reason));
      rp.flags = 0;
      const stop = this.handle(reason);
      if (stop !== null) return stop;
    }
  }

  /** Handle one forwarded event; a non-null result stops the L2. */
  handle(reason: number): StopReason | null {
    const rp = this.runPage;
    switch (reason) {
      case A.NPV_EXIT_IO:
        return this.handleIo();
      case A.NPV_EXIT_MMIO:
        return this.handleMmio();
      case A.NPV_EXIT_MEMORY_FAULT:
        return this.handleMemoryFault();
      case A.NPV_EXIT_MSR: {
        // No MSR is FORWARD in L1's policy; answer reads 0 and drop writes, as an unknown MSR.
        const m = rp.msr();
        if (!m.isWrite) {
          rp.setGpr(RAX, 0, 0);
          rp.setGpr(RDX, 0, 0);
        }
        rp.advanceRip();
        this.p.charge("l1.userspace_hop", "msr");
        return null;
      }
      case A.NPV_EXIT_HYPERCALL:
        // L2's own VMCALL: this L1 implements none (-KVM_ENOSYS, as KVM answers).
        rp.setGpr(RAX, -1000 >>> 0, 0xffffffff);
        rp.advanceRip();
        return null;
      case A.NPV_EXIT_HALT:
        return { kind: "halted", message: `L2 halted at RIP 0x${rp.rip.toString(16)} with nothing that can wake it` };
      case A.NPV_EXIT_SHUTDOWN:
        return {
          kind: "triple-fault",
          message: `L2 triple-faulted (RIP 0x${rp.rip.toString(16)}); L0 stopped its vCPU`,
        };
      case A.NPV_EXIT_MODE:
        return {
          kind: "error",
          message: `L2 left 64-bit long mode at RIP 0x${rp.rip.toString(16)}; npv L2s must stay 64-bit`,
        };
      case A.NPV_EXIT_BLK_ERROR:
        return {
          kind: "error",
          message: `L2's mediated virtio-blk device at L2 0x${rp.data64(0).toString(16)} met a malformed queue; L0 stopped it`,
        };
      case A.NPV_EXIT_TIMESLICE:
        return null; // the loop checks the instruction limit
      default:
        return { kind: "error", message: `L0 returned an unknown npv exit reason ${reason} for L2` };
    }
  }

  private handleIo(): StopReason | null {
    const rp = this.runPage;
    const io = rp.io();
    const dev = this.devices;
    if (io.isIn) {
      const v = dev.io.portIn(io.port, io.size);
      const lo = rp.gprLo(RAX);
      if (io.size === 4) rp.setGpr(RAX, v >>> 0, 0);
      else if (io.size === 2) rp.setGpr(RAX, ((lo & ~0xffff) | (v & 0xffff)) >>> 0, rp.gprHi(RAX));
      else rp.setGpr(RAX, ((lo & ~0xff) | (v & 0xff)) >>> 0, rp.gprHi(RAX));
    } else {
      const mask = io.size === 4 ? 0xffffffff : io.size === 2 ? 0xffff : 0xff;
      dev.io.portOut(io.port, io.size, (io.value & mask) >>> 0);
    }
    rp.advanceRip();
    if (!dev.portInKernel(io.port)) this.p.charge("l1.userspace_hop", "io");
    return null;
  }

  private handleMmio(): StopReason | null {
    const rp = this.runPage;
    const m = rp.mmio();
    const virtio = this.devices.virtio;
    if (virtio === null || m.gpa < L2_VIRTIO_GPA || m.gpa >= L2_VIRTIO_GPA + L2_VIRTIO_SIZE) {
      // Inside the declared page but outside the device's registers: reads as zero, writes ignored.
      if (virtio === null || m.gpa < L2_VIRTIO_GPA || m.gpa >= L2_VIRTIO_GPA + PAGE) {
        return {
          kind: "error",
          message: `L0 forwarded an MMIO access at L2 0x${m.gpa.toString(16)}, which L1 did not declare`,
        };
      }
      if (!m.isWrite) rp.setData64(0x10, 0, 0);
      this.p.charge("l1.userspace_hop", "mmio_virtio-blk");
      return null;
    }
    const off = m.gpa - L2_VIRTIO_GPA;
    const size = m.size;
    this.p.charge("l1.userspace_hop", "mmio_virtio-blk");
    if (!m.isWrite) {
      if (off === VIRTIO_MMIO_INTERRUPT_STATUS) this.isrReads++;
      const v = virtio.mmioRead(off, size);
      rp.setData64(0x10, v % 4294967296, Math.floor(v / 4294967296));
      return null;
    }
    virtio.mmioWrite(off, size, m.valueLo | 0, m.valueHi | 0);
    if (off === VIRTIO_MMIO_QUEUE_READY && !this.blkMediated && virtio.queues[0]?.ready) return this.mediateBlk();
    if (off === VIRTIO_MMIO_STATUS && this.blkMediated && virtio.status === 0) {
      // The driver reset the device: L1 takes the data path back from L0.
      this.client.blkTeardown(this.vm, L2_VIRTIO_GPA);
      this.blkMediated = false;
    }
    return null;
  }

  /** QueueReady: hand the queue's data path to L0 (BLK_SETUP). */
  private mediateBlk(): StopReason | null {
    const virtio = this.devices.virtio!;
    const disk = this.opts.disk!;
    const q = virtio.queues[0];
    try {
      this.client.blkSetup(this.vm, {
        windowGpa: L2_VIRTIO_GPA,
        queueSize: q.size,
        backend: disk.backendId,
        desc: q.descAddr,
        avail: q.driverAddr,
        used: q.deviceAddr,
        vector: 0, // the kernel polls the used ring (IRQ 11 stays masked)
        features: virtio.negotiatedFeatures,
      });
    } catch (e) {
      if (e instanceof NpvCallError)
        return { kind: "error", message: `L1 could not hand L2's block queue to L0: ${e.message}` };
      throw e;
    }
    this.blkMediated = true;
    return null;
  }

  /** MEMORY_FAULT: allocate and map the unmapped pages of the aligned group around the fault. */
  private handleMemoryFault(): StopReason | null {
    const f = this.runPage.memoryFault();
    const pfn = Math.floor(f.gpa / PAGE);
    if (pfn >= this.ramPages) {
      return {
        kind: "error",
        message: `L2 accessed guest-physical 0x${f.gpa.toString(16)}, which is neither RAM nor a device`,
      };
    }
    if (this.map.isMapped(pfn)) {
      return {
        kind: "error",
        message: `L2 access (kind ${f.access}) to 0x${f.gpa.toString(16)} violates the permissions L1 mapped it with`,
      };
    }
    const first = pfn - (pfn % this.opts.faultBatchPages);
    const n = Math.min(this.opts.faultBatchPages, this.ramPages - first);
    const created: Extent[] = [];
    for (const [start, len] of this.map.holes(first, n)) {
      for (let q = start; q < start + len; q++) {
        const page = this.pool.alloc();
        if (page.reused) this.p.mem.writeBytes(page.gpa, new Uint8Array(PAGE));
        this.map.insert(q, page.gpa / PAGE, 1, 7);
        pushExtent(created, q, page.gpa / PAGE, 1);
      }
    }
    const pages = created.reduce((s, e) => s + e.npages, 0);
    this.demandPages += pages;
    this.p.charge("l1.memory_fault", "memory_fault", pages);
    try {
      if (created.length === 1) {
        const e = created[0];
        this.client.map(this.vm, e.l2Pfn * PAGE, e.l1Pfn * PAGE, e.npages);
      } else this.client.mapBatch(this.vm, created);
    } catch (e) {
      if (e instanceof NpvCallError)
        return { kind: "error", message: `L1 could not map L2 memory at 0x${f.gpa.toString(16)}: ${e.message}` };
      throw e;
    }
    return null;
  }
}

/** Append a page run to a list of extents, merging with the last one when contiguous. */
function pushExtent(list: Extent[], l2Pfn: number, l1Pfn: number, npages: number): void {
  const last = list[list.length - 1];
  if (last !== undefined && last.l2Pfn + last.npages === l2Pfn && last.l1Pfn + last.npages === l1Pfn)
    last.npages += npages;
  else list.push({ l2Pfn, l1Pfn, npages, perms: 7 });
}
