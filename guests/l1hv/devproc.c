/*
 * The kernel side of the device process (devproc.h): its address space (the .user segment,
 * the run page, a stack, L2's RAM, L1's kernel half kept for the entry path), its system calls,
 * and the call from the run loop: switch CR3, IRETQ to ring 3, back on DEVSYS_DONE.
 */
#include "devproc.h"
#include "l1hv.h"
#include "layout.h"
#include "lib.h"
#include "mm.h"
#include "virtio.h"
#include "x86.h"

#define PTE_PWU (PTE_P | PTE_W | PTE_U)

extern char __user_start[], __user_end[], __user_lma[];
void devproc_enter(u64 rip, u64 arg, u64 rsp, u64 cr3);
void devproc_main(struct devrun *r);  /* in the .user segment */

static u64 user_cr3;
static struct devrun *run;  /* the run page, through L1's direct map */
u64 devproc_calls;

/* The table `t` points to at index `i`, made (user-accessible) if absent. */
static u64 *next_table(u64 *t, u64 i)
{
	if (!(t[i] & PTE_P))
		t[i] = pmm_alloc() | PTE_PWU;
	return P2V(t[i] & PTE_ADDR);
}

static void map4k(u64 *pml4, u64 va, u64 pa, u64 flags)
{
	u64 *pdpt = next_table(pml4, (va >> 39) & 511);
	u64 *pd = next_table(pdpt, (va >> 30) & 511);
	u64 *pt = next_table(pd, (va >> 21) & 511);
	pt[(va >> 12) & 511] = pa | flags;
}

void devproc_init(void)
{
	u64 pa = pmm_alloc();
	u64 *pml4 = P2V(pa);
	const u64 *kernel = P2V(read_cr3() & PTE_ADDR);
	for (int i = 256; i < 512; i++)  /* L1's kernel half (supervisor): the entry path runs there */
		pml4[i] = kernel[i];
	for (u64 va = (u64)__user_start; va < (u64)__user_end; va += PAGE_SIZE)
		map4k(pml4, va, (u64)__user_lma + (va - DEVPROC_CODE), PTE_P | PTE_U);
	u64 run_pa = pmm_alloc();
	map4k(pml4, DEVPROC_RUN, run_pa, PTE_PWU);
	map4k(pml4, DEVPROC_STACK - 0x2000, pmm_alloc(), PTE_PWU);
	map4k(pml4, DEVPROC_STACK - 0x1000, pmm_alloc(), PTE_PWU);
	/* L2's RAM with 2 MiB pages (the slot is 2 MiB-aligned) */
	for (u64 off = 0; off < l2_ram.size; off += 2ul << 20) {
		u64 va = DEVPROC_L2RAM + off;
		u64 *pdpt = next_table(pml4, (va >> 39) & 511);
		u64 *pd = next_table(pdpt, (va >> 30) & 511);
		pd[(va >> 21) & 511] = (l2_ram.hpa + off) | PTE_PWU | PTE_PS;
	}
	user_cr3 = pa;
	run = P2V(run_pa);
	run->l2_size = l2_ram.size;
	run->blk_capacity = virtio_blk_capacity();
	run->vq_num = 8;
}

/* A system call of the process (from devproc_int80 in devproc_entry.S). */
u64 devproc_syscall(u64 nr, u64 a, u64 b, u64 c, u64 d)
{
	switch (nr) {
	case DEVSYS_PUTC:
		kputc((char)a);
		return 0;
	case DEVSYS_EXIT:
		machine_exit((u32)a);
	case DEVSYS_BLK: {
		/* the buffer lies in the process's view of L2's RAM */
		if (c < DEVPROC_L2RAM || c + d * 512 > DEVPROC_L2RAM + l2_ram.size)
			return (u64)-1;
		u8 *buf = P2V(l2_ram.hpa + (c - DEVPROC_L2RAM));
		return (u64)(i64)virtio_blk_rw((int)a, b, buf, (u32)d);
	}
	case DEVSYS_IRQ:
		if (a > 15 || a == 2)
			return (u64)-1;
		pic_set_irq((int)a, b != 0);
		return 0;
	}
	panic("l1hv: device process: unknown system call %lu", nr);
}

/* Hand one exit to the device process and wait for it (the userspace round trip). */
void devproc_call(struct l2_exit *e)
{
	run->mmio = e->kind == L2_EXIT_MMIO;
	if (run->mmio) {
		run->write = e->mmio.write;
		run->size = e->mmio.size;
		run->addr = e->mmio.gpa;
		run->value = e->mmio.value;
	} else {
		run->write = !e->pio.in;
		run->size = e->pio.size;
		run->addr = e->pio.port;
		run->value = e->pio.value;
	}
	devproc_calls++;
	devproc_enter((u64)devproc_main, DEVPROC_RUN, DEVPROC_STACK - 8, user_cr3);
	if (run->mmio)
		e->mmio.value = run->value;
	else
		e->pio.value = (u32)run->value;
}
