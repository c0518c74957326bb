/**
 * The PC platform every level of nestlab presents to its guest: where the devices sit (ports and
 * guest-physical windows), which ISA IRQ lines they drive, where RAM stops, and which ports a
 * KVM-like hypervisor handles in the kernel. One place, used by the bare machine (machine.ts),
 * L0's device models (hypervisors/l0/vm.ts) and the boot loaders. docs/boot.md describes the
 * same layout to the guest kernel, and the executed L1 (guests/l1hv) presents it to its L2.
 *
 * The device files keep the facts of the device itself (register offsets, a UART's default base);
 * this file says where this PC puts them.
 */
import { DEBUG_EXIT_PORT } from "../devices/debug-exit.js";
import { FW_CFG_PORT_SEL } from "../devices/fw-cfg.js";
import { APIC_DEFAULT_BASE, APIC_MMIO_SIZE } from "../devices/lapic.js";
import { PIC_ELCR, PIC_MASTER_CMD, PIC_SLAVE_CMD } from "../devices/pic8259.js";
import { COM1_BASE, COM1_IRQ } from "../devices/uart16550.js";
import { VIRTIO_MMIO_SIZE } from "../devices/virtio-mmio.js";

// ---- I/O ports ----
/** COM1 (16550 UART), 8 ports. */
export const PC_COM1_PORT = COM1_BASE;
/** isa-debug-exit (QEMU `-device isa-debug-exit,iobase=0xf4`): the guest's exit status. */
export const PC_DEBUG_EXIT_PORT = DEBUG_EXIT_PORT;
/** QEMU fw_cfg selector (data at +1). */
export const PC_FW_CFG_PORT = FW_CFG_PORT_SEL;
/** 8259A master and slave command ports (data at +1), and the ELCR pair. */
export const PC_PIC_MASTER_PORT = PIC_MASTER_CMD;
export const PC_PIC_SLAVE_PORT = PIC_SLAVE_CMD;
export const PC_ELCR_PORT = PIC_ELCR;

/**
 * Ports a KVM-like hypervisor emulates in the kernel (its irqchip: both PICs and the ELCR);
 * every other port exits to the userspace device model.
 */
export const PC_IN_KERNEL_PORTS: readonly number[] = [
  PC_PIC_MASTER_PORT,
  PC_PIC_MASTER_PORT + 1,
  PC_PIC_SLAVE_PORT,
  PC_PIC_SLAVE_PORT + 1,
  PC_ELCR_PORT,
  PC_ELCR_PORT + 1,
];

// ---- ISA IRQ lines (on the 8259 pair) ----
export const PC_COM1_IRQ = COM1_IRQ;
export const PC_VIRTIO_BLK_IRQ = 11;

// ---- Guest-physical windows ----
/** The virtio-mmio block device's register window (virtio 1.x MMIO transport, one device). */
export const PC_VIRTIO_BLK_BASE = 0xfeb00000;
export const PC_VIRTIO_BLK_SIZE = VIRTIO_MMIO_SIZE;
/** The local APIC's xAPIC page (IA32_APIC_BASE's reset value). */
export const PC_LAPIC_BASE = APIC_DEFAULT_BASE;
export const PC_LAPIC_SIZE = APIC_MMIO_SIZE;
/** Guest-physical page number of the xAPIC page. */
export const PC_LAPIC_PFN = PC_LAPIC_BASE / 4096;
/** RAM ends here at the latest: the device windows (virtio, LAPIC) start at this address. */
export const PC_RAM_HOLE_START = PC_VIRTIO_BLK_BASE;
