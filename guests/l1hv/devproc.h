/*
 * The device process: L2's QEMU-style device models (COM1, debug-exit, fw_cfg, port 0x80,
 * virtio-blk) run in an L1 ring-3 process with its own address space, reached from L1's kernel
 * by a real context switch per exit (KVM_RUN returning to userspace and back). Shared between
 * the kernel side (devproc.c) and the process (user/devices.c).
 */
#ifndef L1_DEVPROC_H
#define L1_DEVPROC_H
#include "types.h"

/* The process's address space (user virtual addresses). */
#define DEVPROC_CODE   0x400000ul          /* the .user segment (read/execute) */
#define DEVPROC_RUN    0x600000ul          /* the shared run page (struct devrun) */
#define DEVPROC_STACK  0x603000ul          /* top of two stack pages */
#define DEVPROC_L2RAM  0x10000000000ul     /* L2's RAM, as QEMU maps guest memory */

/* System calls of the process (int $0x80: RAX = number, RDI, RSI, RDX, R10 = arguments). */
#define DEVSYS_DONE  0   /* the exit is handled: back to the kernel's run loop */
#define DEVSYS_PUTC  1   /* a byte to L1's console (COM1) */
#define DEVSYS_EXIT  2   /* stop the machine with this debug-exit value */
#define DEVSYS_BLK   3   /* (write, sector, buf, nsect): L1's block device (QEMU's pread/pwrite) */
#define DEVSYS_IRQ   4   /* (line, level): an interrupt line of L2's PIC (QEMU's KVM_IRQ_LINE ioctl) */

/* The virtio-blk device's line on L2's 8259s (the PC layout's, src/machine/pc-layout.ts). */
#define VBLK_IRQ     11

/* The run page: what the kernel passes for one exit, and the models' state. */
struct devrun {
	/* the exit (in) and the value of an IN or a load (out) */
	u32 mmio;        /* 0: port I/O, 1: MMIO */
	u32 write;
	u32 size;
	u32 pad;
	u64 addr;        /* port or guest-physical address */
	u64 value;
	u64 l2_size;     /* bytes of L2 RAM mapped at DEVPROC_L2RAM */
	i64 blk_capacity;
	/* device state (the process has no data segment of its own) */
	u8 uart_lcr, uart_ier, uart_mcr, uart_scr;
	u16 fw_sel;
	u32 fw_off;
	u32 vq_status, vq_dev_feat_sel, vq_drv_feat_sel, vq_num, vq_ready, vq_isr;
	u32 vq_drv_features[2];
	u64 vq_desc, vq_driver, vq_device;
	u16 vq_last_avail;
	u32 irq_level;   /* the level of VBLK_IRQ last told to the kernel */
};
_Static_assert(sizeof(struct devrun) <= 4096, "run page");
#endif
