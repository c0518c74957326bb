/* 4-level page tables: the kernel's own tables (direct map + image), per-process
 * address spaces, copy-on-write fork, demand paging of anonymous memory. */
#include "mm.h"
#include "layout.h"
#include "lib.h"
#include "x86.h"
#include "cpu.h"
#include "stats.h"
#include "pti.h"

struct kstats kstats;

u64 kernel_pml4;
extern char __kernel_end[], __user_start[], __user_end[], __user_lma[];

#define PML4_IDX(va) (((va) >> 39) & 511)
#define PDPT_IDX(va) (((va) >> 30) & 511)
#define PD_IDX(va) (((va) >> 21) & 511)
#define PT_IDX(va) (((va) >> 12) & 511)

void vmm_init(u64 max_phys)
{
	/* with pti=on kernel mappings are not global: their TLB entries must not outlive the switch
	 * to the user table (Linux clears _PAGE_GLOBAL for PTI the same way) */
	u64 g = cpu_has_pge && !pti_enabled ? PTE_G : 0;
	kernel_pml4 = pmm_alloc();
	u64 *pml4 = P2V(kernel_pml4);

	/* direct map: all of [0, max(4 GiB, top of RAM)) with 2 MiB pages */
	u64 top = max_phys > (4UL << 30) ? max_phys : (4UL << 30);
	if (top > (512UL << 30))
		top = 512UL << 30;
	u64 pdpt = pmm_alloc();
	pml4[PML4_IDX(DMAP_BASE)] = pdpt | PTE_P | PTE_W;
	for (u64 gib = 0; gib * (1UL << 30) < top; gib++) {
		u64 pd = pmm_alloc();
		((u64 *)P2V(pdpt))[gib] = pd | PTE_P | PTE_W;
		u64 *pde = P2V(pd);
		for (int i = 0; i < 512; i++) {
			u64 pa = (gib << 30) + ((u64)i << 21);
			u64 f = PTE_P | PTE_W | PTE_PS | g;
			if (pa >= 0xC0000000UL && pa < (4UL << 30))
				f |= PTE_PCD | PTE_PWT; /* MMIO hole: LAPIC, virtio-mmio */
			pde[i] = pa | f;
		}
	}

	/* kernel image: phys [0, kernel_end) at KERNEL_VMA, 2 MiB pages */
	u64 kpdpt = pmm_alloc(), kpd = pmm_alloc();
	pml4[PML4_IDX(KERNEL_VMA)] = kpdpt | PTE_P | PTE_W;
	((u64 *)P2V(kpdpt))[PDPT_IDX(KERNEL_VMA)] = kpd | PTE_P | PTE_W;
	u64 kend = V2P(__kernel_end);
	for (u64 pa = 0; pa < kend; pa += 2UL << 20)
		((u64 *)P2V(kpd))[pa >> 21] = pa | PTE_P | PTE_W | PTE_PS | g;

	write_cr3(kernel_pml4);
	if (cpu_has_pcid)
		write_cr4(read_cr4() | CR4_PCIDE);
}

u64 *pte_walk(u64 pml4, u64 va, int alloc)
{
	u64 *t = P2V(pml4);
	int shifts[3] = {39, 30, 21};
	for (int l = 0; l < 3; l++) {
		u64 *e = &t[(va >> shifts[l]) & 511];
		if (!(*e & PTE_P)) {
			if (!alloc)
				return NULL;
			*e = pmm_alloc() | PTE_P | PTE_W | PTE_U;
			if (l == 0 && PML4_IDX(va) < 256)
				pti_mirror_pml4e(e);
		}
		t = P2V(*e & PTE_ADDR);
	}
	return &t[PT_IDX(va)];
}

int mm_create(struct mm *mm)
{
	memset(mm, 0, sizeof(*mm));
	mm->pml4 = pti_enabled ? pmm_alloc_pair() : pmm_alloc();
	u64 *d = P2V(mm->pml4), *s = P2V(kernel_pml4);
	for (int i = 256; i < 512; i++)
		d[i] = s[i];
	if (pti_enabled)
		pti_user_pml4_init(mm->pml4);
	mm->mmap_next = USER_MMAP;
	return 0;
}

int mm_add_vma(struct mm *mm, u64 start, u64 end, u32 prot)
{
	for (int i = 0; i < VMA_MAX; i++) {
		if (!mm->vmas[i].used) {
			mm->vmas[i] = (struct vma){start, end, prot, 1};
			return 0;
		}
	}
	return -1;
}

static struct vma *find_vma(struct mm *mm, u64 va)
{
	for (int i = 0; i < VMA_MAX; i++)
		if (mm->vmas[i].used && va >= mm->vmas[i].start && va < mm->vmas[i].end)
			return &mm->vmas[i];
	return NULL;
}

/* User programs are linked at USER_IMAGE inside the kernel image; their pages
 * are mapped read-only+user into every address space (shared, never copied). */
int mm_map_image(struct mm *mm)
{
	u64 lma = (u64)__user_lma;
	for (u64 va = (u64)__user_start; va < (u64)__user_end; va += PAGE_SIZE) {
		u64 *pte = pte_walk(mm->pml4, va, 1);
		*pte = (lma + (va - USER_IMAGE)) | PTE_P | PTE_U | PTE_SHARED;
	}
	return mm_add_vma(mm, USER_STACK_TOP - USER_STACK_SIZE, USER_STACK_TOP, VMA_W);
}

static void free_pt(u64 pa, int level)
{
	u64 *t = P2V(pa);
	for (int i = 0; i < 512; i++) {
		u64 e = t[i];
		if (!(e & PTE_P))
			continue;
		if (level == 1) {
			if (!(e & PTE_SHARED))
				page_unref(e & PTE_ADDR);
		} else {
			free_pt(e & PTE_ADDR, level - 1);
		}
	}
	page_unref(pa);
}

void mm_destroy(struct mm *mm)
{
	if (!mm->pml4)
		return;
	u64 *t = P2V(mm->pml4);
	for (int i = 0; i < 256; i++)
		if (t[i] & PTE_P)
			free_pt(t[i] & PTE_ADDR, 3);
	if (pti_enabled)
		pmm_free_pair(mm->pml4);
	else
		page_unref(mm->pml4);
	mm->pml4 = 0;
}

static void copy_pt(u64 *s, u64 *d, int level)
{
	for (int i = 0; i < 512; i++) {
		u64 e = s[i];
		if (!(e & PTE_P))
			continue;
		if (level == 1) {
			if (!(e & PTE_SHARED)) {
				if (e & PTE_W) {
					e = (e & ~PTE_W) | PTE_COW;
					s[i] = e;
				}
				page_ref(e & PTE_ADDR);
			}
			d[i] = e;
		} else {
			u64 n = pmm_alloc();
			d[i] = n | (e & 0xFFF);
			copy_pt(P2V(e & PTE_ADDR), P2V(n), level - 1);
		}
	}
}

/* Caller must flush the source's TLB afterwards (its writable PTEs became COW). */
int mm_fork(struct mm *dst, struct mm *src)
{
	mm_create(dst);
	dst->mmap_next = src->mmap_next;
	for (int i = 0; i < VMA_MAX; i++)
		dst->vmas[i] = src->vmas[i];
	u64 *s = P2V(src->pml4), *d = P2V(dst->pml4);
	for (int i = 0; i < 256; i++) {
		if (!(s[i] & PTE_P))
			continue;
		u64 n = pmm_alloc();
		d[i] = n | (s[i] & 0xFFF);
		pti_mirror_pml4e(&d[i]);
		copy_pt(P2V(s[i] & PTE_ADDR), P2V(n), 3);
	}
	return 0;
}

u64 mm_mmap(struct mm *mm, u64 len)
{
	len = (len + PAGE_SIZE - 1) & ~(u64)(PAGE_SIZE - 1);
	if (!len)
		return 0;
	u64 va = mm->mmap_next;
	if (mm_add_vma(mm, va, va + len, VMA_W))
		return 0;
	mm->mmap_next += len + PAGE_SIZE; /* guard gap */
	return va;
}

int mm_munmap(struct mm *mm, u64 addr, u64 len, int current)
{
	len = (len + PAGE_SIZE - 1) & ~(u64)(PAGE_SIZE - 1);
	struct vma *v = find_vma(mm, addr);
	if (!v || v->start != addr || v->end != addr + len)
		return -1;
	for (u64 va = addr; va < addr + len; va += PAGE_SIZE) {
		u64 *pte = pte_walk(mm->pml4, va, 0);
		if (!pte) {
			va |= (1UL << 21) - 1; /* no page table: skip the 2 MiB region */
			va -= PAGE_SIZE - 1;
			continue;
		}
		if (*pte & PTE_P) {
			if (!(*pte & PTE_SHARED))
				page_unref(*pte & PTE_ADDR);
			*pte = 0;
			if (current) {
				invlpg(va);
				pti_flush_user_current();
			}
		}
	}
	v->used = 0;
	return 0;
}

/* err: x86 page-fault error code (bit0 present, bit1 write, bit2 user). */
int mm_fault(struct mm *mm, u64 va, u64 err)
{
	if (va >= USER_TOP)
		return -1;
	va &= ~(u64)(PAGE_SIZE - 1);
	u64 *pte = pte_walk(mm->pml4, va, 0);
	if (pte && (*pte & PTE_P)) {
		u64 e = *pte;
		if ((err & 2) && (e & PTE_COW)) {
			u64 old = e & PTE_ADDR;
			if (page_refcount(old) == 1) {
				*pte = (e | PTE_W) & ~PTE_COW;
				kstats.cow_reuse++;
			} else {
				u64 n = pmm_alloc();
				copy_page(P2V(n), P2V(old));
				kstats.cow_copies++;
				page_unref(old);
				*pte = n | (((e & 0xFFF) | PTE_W) & ~PTE_COW);
			}
			invlpg(va);
			pti_flush_user_current();
			return 0;
		}
		if (!(err & 1) || ((err & 2) && (e & PTE_W))) { /* stale TLB entry */
			invlpg(va);
			pti_flush_user_current();
			return 0;
		}
		return -1;
	}
	struct vma *v = find_vma(mm, va);
	if (!v || ((err & 2) && !(v->prot & VMA_W)))
		return -1;
	u64 pa = pmm_alloc();
	kstats.demand_faults++;
	pte = pte_walk(mm->pml4, va, 1);
	*pte = pa | PTE_P | PTE_U | ((v->prot & VMA_W) ? PTE_W : 0);
	return 0;
}
