/* Kernel page-table isolation (KPTI), boot option pti=on; see docs/guest-kernel.md.
 * Shared by C and entry.S: the CPU entry area's layout and the CR3 bits the entry code flips. */
#ifndef NL_PTI_H
#define NL_PTI_H

/* CR3 bit 12 selects the user PML4 of the 8 KiB pair, bit 11 the user PCID (Linux's
 * PTI_USER_PGTABLE_BIT and PTI_USER_PCID_BIT). */
#define PTI_SWITCH_MASK 0x1800

/* CPU entry area (Linux's cpu_entry_area, same PML4 slot 508), mapped in both tables:
 * page 0 IDT, page 1 GDT + TSS + pti_percpu, page 2 entry stack, pages 3-4 #DF stack. */
#define CEA_BASE        0xFFFFFE0000000000
#define CEA_PAGES       5
#define CEA_IDT         (CEA_BASE)
#define CEA_GDT         (CEA_BASE + 0x1000)
#define CEA_TSS         (CEA_BASE + 0x1080)
#define CEA_PCPU        (CEA_BASE + 0x1100)
#define CEA_ENTRY_TOP   (CEA_BASE + 0x3000)
#define CEA_DF_TOP      (CEA_BASE + 0x5000)

/* struct pti_percpu offsets (GS_BASE points at it with pti=on) */
#define PTI_PCPU_USER_RSP    8
#define PTI_PCPU_NOFLUSH     16
#define PTI_PCPU_FLUSH_MASK  24
#define PTI_PCPU_ENTRY_TOP   32

#ifndef __ASSEMBLER__
#include "types.h"
struct pti_percpu {
	u64 unused;          /* gs:0 is percpu.kstack_top without pti; the PTI entry reads percpu directly */
	u64 user_rsp;        /* SYSCALL entry scratch */
	u64 noflush;         /* CR3 bit 63 when PCID is on, else 0 */
	u64 user_flush_mask; /* bit n: user PCID n|0x800 must be flushed at the next exit (Linux's user_pcid_flush_mask) */
	u64 entry_top;       /* top of the entry stack (= TSS.RSP0) */
};

extern int pti_enabled;
void pti_init(void);                 /* after vmm_init: entry area, user-table template, entry paths */
void pti_user_pml4_init(u64 pml4);   /* kernel half of a new user PML4 (pml4 + 4 KiB) */
void pti_set_user_flush(u16 pcid);
void pti_set_user_flush_current(void);

/* the kernel flushed (part of) PCID's TLB: flush its user twin on the next exit. The test is inline
 * so pti=off pays two instructions, as Linux pays a patched jump (static_cpu_has). */
static inline void pti_flush_user(u16 pcid)
{
	if (pti_enabled)
		pti_set_user_flush(pcid);
}
static inline void pti_flush_user_current(void)
{
	if (pti_enabled)
		pti_set_user_flush_current();
}

/* a user-half PML4 entry was written: mirror it into the user PML4 (Linux's pti_set_user_pgtbl) */
static inline void pti_mirror_pml4e(u64 *e)
{
	if (pti_enabled)
		e[512] = *e;
}
#endif
#endif
