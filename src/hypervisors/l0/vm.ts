/**
 * A VM as L0 keeps it (KVM's struct kvm + the QEMU machine around it): memslots, EPT01, the
 * device models the guest sees (the same PC as the native machine), and the CPUID policy.
 * Devices are split into "in-kernel" (KVM: PIC, LAPIC, ioeventfd notifications) and "userspace"
 * (QEMU: UART, debug-exit, fw_cfg, port 0x80, virtio-mmio registers) so their exits cost what
 * they cost in KVM + QEMU.
 */
import { CpuModel } from "../../cpu/cpuid.js";
import type { Clock, DmaMemory, MmioHandler } from "../../cpu/ports.js";
import type { BlockBackend } from "../../devices/block-backend.js";
import { PcDevices } from "../../machine/pc-devices.js";
import {
  PC_IN_KERNEL_PORTS,
  PC_LAPIC_BASE,
  PC_LAPIC_SIZE,
  PC_RAM_HOLE_START,
  PC_VIRTIO_BLK_BASE,
  PC_VIRTIO_BLK_SIZE,
} from "../../machine/pc-layout.js";
import type { PhysicalMemory } from "../../mmu/phys.js";
import { F1C_HYPERVISOR, F1C_VMX } from "../../x86/cpuid.js";
import type { HypervisorMmu } from "../mmu/hv-mmu.js";
import { PageTableBuilder } from "../mmu/page-table.js";
import type { HostPageAllocator } from "./host-pages.js";
import { MemslotTable } from "./memslots.js";

/** Ports KVM handles in the kernel (its irqchip); every other port exits to userspace. */
const IN_KERNEL_PORTS = new Set(PC_IN_KERNEL_PORTS);

/** An emulated MMIO region of the guest-physical space. */
export interface MmioRegion {
  name: string;
  gpa: number;
  size: number;
  handler: MmioHandler;
  /** Host-physical window where L0 registered the handler for instruction emulation. */
  hostWindow: number;
  /** Handled in the kernel (KVM) rather than in the userspace device model. */
  inKernel: boolean;
}

export interface VmConfig {
  /** Guest RAM in bytes. */
  memory: number;
  disk?: BlockBackend;
  onSerial?: (byte: number) => void;
  serialInput?: string;
  cpuModel?: CpuModel;
  /**
   * virtio-mmio InterruptStatus / InterruptACK handled in the kernel with the notification path
   * (in-kernel data path + irqfd) instead of in the userspace device model (default: userspace).
   */
  virtioRegsInKernel?: boolean;
  /** Largest EPT01 leaf for RAM (4 KiB, 2 MiB or 1 GiB); the backing is aligned to it. */
  eptLeafBytes?: number;
}

/** Guest-physical memory through the memslots: what L0's device models DMA into. */
class GuestPhysicalDma implements DmaMemory {
  constructor(
    private readonly memslots: MemslotTable,
    private readonly hostMem: PhysicalMemory,
    readonly size: number,
  ) {}
  readBytes(addr: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(addr, out);
    return out;
  }
  /** Copy [addr, addr + out.length) into `out`, allocating nothing; bytes outside RAM read as 0. */
  readInto(addr: number, out: Uint8Array): void {
    for (let i = 0; i < out.length; ) {
      const a = addr + i;
      const n = Math.min(4096 - (a % 4096), out.length - i);
      const h = this.memslots.translate(a);
      if (h >= 0) this.hostMem.readInto(h, out, i, n);
      else out.fill(0, i, i + n);
      i += n;
    }
  }
  writeBytes(addr: number, bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; ) {
      const a = addr + i;
      const n = Math.min(4096 - (a % 4096), bytes.length - i);
      const h = this.memslots.translate(a);
      if (h >= 0) this.hostMem.writeBytes(h, bytes.subarray(i, i + n));
      i += n;
    }
  }
}

/**
 * Guest-physical memory of a VM as L0 (or a test driver acting as the VM's code)
 * reads it: through the memslots only, so an address outside guest RAM is never reached.
 */
export class GuestMemory {
  constructor(private readonly vm: Vm) {}
  /** True when [gpa, gpa+len) is entirely guest RAM. */
  isRam(gpa: number, len: number): boolean {
    return Number.isSafeInteger(gpa) && gpa >= 0 && len > 0 && this.vm.memslots.contains(gpa, len);
  }
  private hpa(gpa: number): number {
    const h = this.vm.memslots.translate(gpa);
    if (h < 0) throw new RangeError(`guest-physical 0x${gpa.toString(16)} is not RAM`);
    return h;
  }
  read32(gpa: number): number {
    if (gpa % 4096 > 4092) return new DataView(this.readBytes(gpa, 4).buffer).getUint32(0, true);
    return this.vm.hostMem.read(this.hpa(gpa), 4) >>> 0;
  }
  /** A u64 as a number (exact below 2^53; larger values come back rounded — callers bound-check). */
  read64(gpa: number): number {
    return this.read32(gpa + 4) * 4294967296 + this.read32(gpa);
  }
  read16(gpa: number): number {
    return new DataView(this.readBytes(gpa, 2).buffer).getUint16(0, true);
  }
  write32(gpa: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    this.writeBytes(gpa, b);
  }
  write64(gpa: number, v: number): void {
    this.write32(gpa, v % 4294967296);
    this.write32(gpa + 4, Math.floor(v / 4294967296));
  }
  readBytes(gpa: number, len: number): Uint8Array {
    return this.vm.dma.readBytes(gpa, len);
  }
  /** Copy [gpa, gpa + out.length) into `out` without allocating (bytes outside RAM read as 0). */
  readInto(gpa: number, out: Uint8Array): void {
    this.vm.dma.readInto(gpa, out);
  }
  writeBytes(gpa: number, bytes: Uint8Array): void {
    this.vm.dma.writeBytes(gpa, bytes);
  }
}

export class Vm extends PcDevices {
  readonly memslots: MemslotTable;
  readonly ept01: PageTableBuilder;
  readonly mmio: MmioRegion[] = [];
  readonly cpuid: CpuModel;
  readonly dma: GuestPhysicalDma;
  /** EPT01 pages mapped on demand. */
  eptFaults = 0;
  /** Guest accesses to guest-physical addresses that are neither RAM nor a device (all ones / dropped). */
  unassignedAccesses = 0;
  /** This VM's guest-physical memory, read through its memslots. */
  readonly memory: GuestMemory;
  /** One byte per 4 KiB page of RAM: 1 once L0 has backed it with a host page. */
  private readonly backed: Uint8Array;
  /** Guest pages L0 backed (first mapped in EPT01, or in an EPT02 through this VM's memory). */
  backedPages = 0;
  /** Called when L0 backs guest pages for the first time: one allocation, `pages` pages zeroed. */
  onBacking: ((pages: number) => void) | null = null;

  constructor(
    readonly hostMem: PhysicalMemory,
    alloc: HostPageAllocator,
    readonly config: VmConfig,
    clock: Clock,
    /** Host-physical base for this VM's MMIO emulation windows (outside host RAM). */
    windowBase: number,
    /** The level of the code this VM runs (L0's level + 1). */
    readonly level: number,
    /** L0's hypervisor MMU (reverse map, page tracking) EPT01 reports to; null: none. */
    mmu: HypervisorMmu | null = null,
  ) {
    const memslots = new MemslotTable();
    const dma = new GuestPhysicalDma(memslots, hostMem, config.memory);
    // Devices: the same PC the native machine has (L0's vCPU loop looks for interrupts itself).
    super({
      ramSize: config.memory,
      clock,
      dma,
      onSerial: config.onSerial,
      serialInput: config.serialInput,
      disk: config.disk,
    });
    this.memslots = memslots;
    this.dma = dma;
    this.ept01 = mmu === null ? new PageTableBuilder(hostMem, alloc) : mmu.newTable(hostMem, alloc);
    const ramBacking = alloc.range(config.memory, config.eptLeafBytes ?? 4096);
    this.memslots.add({ gpa: 0, size: Math.min(config.memory, PC_RAM_HOLE_START), hpa: ramBacking });
    this.backed = new Uint8Array(Math.ceil(config.memory / 4096));
    this.memory = new GuestMemory(this);
    // CPUID policy: the host model with the hypervisor bit and KVM's signature leaves.
    this.cpuid = (config.cpuModel ?? new CpuModel()).clone();
    const l1 = new Int32Array(4);
    this.cpuid.query(1, 0, l1);
    this.cpuid.set(1, 0, [l1[0], l1[1], (l1[2] | F1C_HYPERVISOR) & ~F1C_VMX, l1[3]]);
    const kvm = (s: string): number =>
      s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24);
    this.cpuid.set(0x40000000, 0, [0x40000001, kvm("KVMK"), kvm("VMKV"), kvm("M\0\0\0")]);
    this.cpuid.set(0x40000001, 0, [0, 0, 0, 0]);
    this.addMmio("lapic", PC_LAPIC_BASE, PC_LAPIC_SIZE, this.lapic, true, windowBase);
    this.addMmio("virtio-blk", PC_VIRTIO_BLK_BASE, PC_VIRTIO_BLK_SIZE, this.virtioBlk, false, windowBase + 0x10000);
  }

  private addMmio(
    name: string,
    gpa: number,
    size: number,
    handler: MmioHandler,
    inKernel: boolean,
    hostWindow: number,
  ): void {
    this.mmio.push({ name, gpa, size, handler, hostWindow, inKernel });
    this.hostMem.addMmio(hostWindow, size, handler);
  }

  /**
   * L0 maps guest RAM page `gpa` into a table the hardware walks: the first time, the host page
   * behind it is allocated and zeroed (get_user_pages on anonymous memory) — counted here once.
   */
  back(gpa: number, bytes = 4096): void {
    const first = Math.floor(gpa / 4096);
    const end = Math.min(first + bytes / 4096, this.backed.length);
    let n = 0;
    for (let i = first; i < end; i++) {
      if (this.backed[i] !== 0) continue;
      this.backed[i] = 1;
      n++;
    }
    this.backedPages += n;
    // A large leaf is one allocation (a huge page) whose every 4 KiB is zeroed (clear_huge_page).
    if (n > 0) this.onBacking?.(n);
  }

  findMmio(gpa: number): MmioRegion | undefined {
    return this.mmio.find((r) => gpa >= r.gpa && gpa < r.gpa + r.size);
  }

  portInKernel(port: number): boolean {
    return IN_KERNEL_PORTS.has(port);
  }
}
