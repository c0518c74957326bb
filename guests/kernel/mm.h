#ifndef NL_MM_H
#define NL_MM_H
#include "types.h"
#include "bootinfo.h"

/* ---- physical pages (pmm.c) ---- */
void pmm_init(const struct nl_mmap_entry *map, u32 n, u64 reserved_end);
u64 pmm_alloc(void);         /* zeroed page, refcount 1; panics when out of memory */
u64 pmm_alloc_pair(void);    /* two zeroed pages, 8 KiB-aligned (pti=on PML4 pairs) */
void pmm_free_pair(u64 pa);
void page_ref(u64 pa);
void page_unref(u64 pa);     /* frees at 0 */
u16 page_refcount(u64 pa);
u64 pmm_in_use(void);        /* pages currently allocated */
u64 pmm_max_pfn(void);

/* ---- page tables / address spaces (vmm.c) ---- */
#define PTE_P   0x001UL
#define PTE_W   0x002UL
#define PTE_U   0x004UL
#define PTE_PWT 0x008UL
#define PTE_PCD 0x010UL
#define PTE_PS  0x080UL
#define PTE_G   0x100UL
#define PTE_COW    0x200UL   /* software: copy-on-write */
#define PTE_SHARED 0x400UL   /* software: not owned (user image), never freed */
#define PTE_ADDR 0x000FFFFFFFFFF000UL

#define VMA_MAX 16
#define VMA_W 1

struct vma {
	u64 start, end;
	u32 prot, used;
};

struct mm {
	u64 pml4;                /* physical */
	u64 mmap_next;
	struct vma vmas[VMA_MAX];
};

extern u64 kernel_pml4;
void vmm_init(u64 max_phys);
u64 *pte_walk(u64 pml4, u64 va, int alloc);
int mm_create(struct mm *mm);                   /* empty user half + kernel half */
void mm_destroy(struct mm *mm);
int mm_fork(struct mm *dst, struct mm *src);    /* COW copy */
int mm_add_vma(struct mm *mm, u64 start, u64 end, u32 prot);
int mm_map_image(struct mm *mm);                /* map the user program image */
u64 mm_mmap(struct mm *mm, u64 len);
int mm_munmap(struct mm *mm, u64 addr, u64 len, int current);
int mm_fault(struct mm *mm, u64 va, u64 err);   /* 0 = resolved */
#endif
