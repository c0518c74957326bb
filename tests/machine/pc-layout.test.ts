/**
 * One PC platform: the bare machine, L0's VM and the L2 platform an L1 emulates put the devices
 * where machine/pc-layout.ts says, and those places are the PC's (docs/boot.md).
 */
import { describe, expect, it } from "vitest";
import { loadProfile } from "../../src/cost/profile.js";
import { Cpu } from "../../src/cpu/cpu.js";
import { VIRTIO_MMIO_MAGIC, VIRTIO_MMIO_MAGIC_VALUE } from "../../src/devices/virtio-mmio.js";
import { L0Hypervisor } from "../../src/hypervisors/l0/l0.js";
import { Machine } from "../../src/machine/machine.js";
import {
  PC_COM1_PORT,
  PC_DEBUG_EXIT_PORT,
  PC_IN_KERNEL_PORTS,
  PC_LAPIC_BASE,
  PC_LAPIC_PFN,
  PC_RAM_HOLE_START,
  PC_VIRTIO_BLK_BASE,
  PC_VIRTIO_BLK_SIZE,
} from "../../src/machine/pc-layout.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";

describe("PC layout", () => {
  it("has the PC's addresses", () => {
    expect(PC_COM1_PORT).toBe(0x3f8);
    expect(PC_DEBUG_EXIT_PORT).toBe(0xf4);
    expect(PC_LAPIC_BASE).toBe(0xfee00000);
    expect(PC_LAPIC_PFN).toBe(0xfee00);
    expect(PC_VIRTIO_BLK_BASE).toBe(0xfeb00000);
    expect(PC_VIRTIO_BLK_SIZE).toBe(0x200);
    expect(PC_RAM_HOLE_START).toBe(PC_VIRTIO_BLK_BASE);
    expect([...PC_IN_KERNEL_PORTS]).toEqual([0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1]);
  });

  it("the bare machine answers there", () => {
    const m = new Machine({ memory: 16 * 1024 * 1024 });
    expect(m.mem.read(PC_VIRTIO_BLK_BASE + VIRTIO_MMIO_MAGIC_VALUE, 4) >>> 0).toBe(VIRTIO_MMIO_MAGIC);
  });

  it("L0's VM uses the same places", () => {
    const cpu = new Cpu(new PhysicalMemory(64 * 1024 * 1024));
    const l0 = new L0Hypervisor(cpu, loadProfile(), 0x100000);
    const vm = l0.createVm({ memory: 16 * 1024 * 1024 });
    expect(vm.findMmio(PC_VIRTIO_BLK_BASE)?.name).toBe("virtio-blk");
    expect(vm.findMmio(PC_VIRTIO_BLK_BASE + PC_VIRTIO_BLK_SIZE)).toBeUndefined();
    expect(vm.findMmio(PC_LAPIC_BASE)?.name).toBe("lapic");
    for (const p of PC_IN_KERNEL_PORTS) expect(vm.portInKernel(p)).toBe(true);
    expect(vm.portInKernel(PC_COM1_PORT)).toBe(false);
  });
});
