/* KPTI (pti=on): per process a kernel and a user page table. The user table maps user space plus
 * only what entry and exit need: the entry text and the CPU entry area (IDT, GDT, TSS with the
 * entry and #DF stacks, pti_percpu). Follows Linux's arch/x86/mm/pti.c in design; the entry paths
 * are in entry.S. */
#include "pti.h"
#include "mm.h"
#include "cpu.h"
#include "proc.h"
#include "layout.h"
#include "lib.h"

int pti_enabled;
static u64 user_pml4e_cea, user_pml4e_text; /* PML4 slots 508 and 511 of every user table */

extern char __entry_text_start[], __entry_text_end[];
extern char isr_common_pti[], trap_return_pti[];
extern u64 isr_common_ptr, trap_return_ptr;

#define SLOT_CEA ((CEA_BASE >> 39) & 511)
#define SLOT_KERNEL 511

void pti_init(void)
{
	/* entry area: fresh pages, in kernel_pml4 (so every process's kernel half has them) */
	for (int i = 0; i < CEA_PAGES; i++)
		*pte_walk(kernel_pml4, CEA_BASE + (u64)i * PAGE_SIZE, 1) = pmm_alloc() | PTE_P | PTE_W;
	/* user-table template: the entry text pages at their kernel addresses, read-only, supervisor */
	u64 tmpl = pmm_alloc();
	for (u64 va = (u64)__entry_text_start; va < (u64)__entry_text_end; va += PAGE_SIZE)
		*pte_walk(tmpl, va, 1) = V2P((void *)va) | PTE_P;
	user_pml4e_text = ((u64 *)P2V(tmpl))[SLOT_KERNEL];
	user_pml4e_cea = ((u64 *)P2V(kernel_pml4))[SLOT_CEA];

	struct pti_percpu *pc = (struct pti_percpu *)CEA_PCPU;
	pc->noflush = cpu_has_pcid ? 1UL << 63 : 0;
	pc->entry_top = CEA_ENTRY_TOP;
	cpu_use_entry_area(CEA_IDT, CEA_GDT, CEA_TSS, CEA_ENTRY_TOP, CEA_DF_TOP, CEA_PCPU);
	isr_common_ptr = (u64)isr_common_pti;
	trap_return_ptr = (u64)trap_return_pti;
}

void pti_user_pml4_init(u64 pml4)
{
	u64 *u = P2V(pml4 + PAGE_SIZE);
	u[SLOT_CEA] = user_pml4e_cea;
	u[SLOT_KERNEL] = user_pml4e_text;
}

void pti_set_user_flush(u16 pcid) { ((struct pti_percpu *)CEA_PCPU)->user_flush_mask |= 1UL << pcid; }

void pti_set_user_flush_current(void) { pti_set_user_flush(current->pcid); }
