/* Virtual/physical memory layout constants (see docs/guest-kernel.md). */
#ifndef NL_LAYOUT_H
#define NL_LAYOUT_H

#define KERNEL_VMA    0xFFFFFFFF80000000
#define KERNEL_PHYS   0x100000
#define DMAP_BASE     0xFFFF800000000000   /* direct map of all physical memory */

#define USER_IMAGE    0x400000             /* user programs (shared, read-only + exec) */
#define USER_MMAP     0x10000000000        /* anonymous mmap area, grows up */
#define USER_STACK_TOP 0x7FFF00000000
#define USER_STACK_SIZE (256 * 1024)
#define USER_TOP      0x800000000000

#define PAGE_SIZE 4096

#ifndef __ASSEMBLER__
#include "types.h"
static inline void *P2V(u64 pa) { return (void *)(pa + DMAP_BASE); }
static inline u64 V2P(const void *va)
{
	u64 v = (u64)va;
	return v >= KERNEL_VMA ? v - KERNEL_VMA : v - DMAP_BASE;
}
#endif
#endif
