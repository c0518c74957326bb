/* Physical page allocator: bump allocation over the usable ranges plus a free
 * list (linked through the freed pages), with a 16-bit refcount per frame.
 * Bumping (instead of pre-building a free list) means boot never touches pages
 * it does not hand out, so first-touch costs stay with the workloads. */
#include "mm.h"
#include "layout.h"
#include "lib.h"

#define MAX_RANGES 32

static struct { u64 cur, end; } ranges[MAX_RANGES];
static int nranges, rcur;
static u64 free_head;  /* physical address, 0 = empty */
static u64 pair_head;  /* free 8 KiB-aligned pairs, linked through their first page */
static u16 *refcnt;
static u64 max_pfn, in_use;

static u64 bump(void)
{
	while (rcur < nranges) {
		if (ranges[rcur].cur < ranges[rcur].end) {
			u64 pa = ranges[rcur].cur;
			ranges[rcur].cur += PAGE_SIZE;
			return pa;
		}
		rcur++;
	}
	return 0;
}

void pmm_init(const struct nl_mmap_entry *map, u32 n, u64 reserved_end)
{
	for (u32 i = 0; i < n; i++) {
		if (map[i].type != NLBI_MEM_USABLE)
			continue;
		u64 s = (map[i].base + PAGE_SIZE - 1) & ~(u64)(PAGE_SIZE - 1);
		u64 e = (map[i].base + map[i].length) & ~(u64)(PAGE_SIZE - 1);
		if (s < reserved_end)
			s = reserved_end;
		if (e > max_pfn * PAGE_SIZE)
			max_pfn = e / PAGE_SIZE;
		if (s >= e || nranges == MAX_RANGES)
			continue;
		/* insertion sort by base */
		int j = nranges++;
		while (j > 0 && ranges[j - 1].cur > s) {
			ranges[j] = ranges[j - 1];
			j--;
		}
		ranges[j].cur = s;
		ranges[j].end = e;
	}
	/* refcount table, carved from the first range (bump, contiguous) */
	u64 bytes = max_pfn * sizeof(u16);
	u64 pages = (bytes + PAGE_SIZE - 1) / PAGE_SIZE;
	if (!nranges || ranges[0].end - ranges[0].cur < pages * PAGE_SIZE)
		panic("pmm: no room for refcount table");
	refcnt = P2V(ranges[0].cur);
	ranges[0].cur += pages * PAGE_SIZE;
	memset(refcnt, 0, bytes);
}

u64 pmm_alloc(void)
{
	u64 pa = free_head;
	if (pa)
		free_head = *(u64 *)P2V(pa);
	else
		pa = bump();
	if (!pa)
		panic("out of physical memory (%lu pages in use)", in_use);
	zero_page(P2V(pa));
	refcnt[pa / PAGE_SIZE] = 1;
	in_use++;
	return pa;
}

/* pti=on PML4 pairs: kernel table + user table at +4 KiB (CR3 bit 12 picks one) */
u64 pmm_alloc_pair(void)
{
	u64 pa = pair_head;
	if (pa) {
		pair_head = *(u64 *)P2V(pa);
	} else {
		for (;;) {
			pa = bump();
			if (!pa)
				panic("out of physical memory for a PML4 pair");
			if (!(pa & PAGE_SIZE) && ranges[rcur].cur == pa + PAGE_SIZE && ranges[rcur].cur < ranges[rcur].end) {
				bump(); /* pa + 4 KiB */
				break;
			}
			refcnt[pa / PAGE_SIZE] = 1; /* misaligned or at a range end: hand it to the free list */
			in_use++;
			page_unref(pa);
		}
	}
	for (int i = 0; i < 2; i++) {
		zero_page(P2V(pa + (u64)i * PAGE_SIZE));
		refcnt[pa / PAGE_SIZE + i] = 1;
	}
	in_use += 2;
	return pa;
}

void pmm_free_pair(u64 pa)
{
	refcnt[pa / PAGE_SIZE] = refcnt[pa / PAGE_SIZE + 1] = 0;
	*(u64 *)P2V(pa) = pair_head;
	pair_head = pa;
	in_use -= 2;
}

void page_ref(u64 pa) { refcnt[pa / PAGE_SIZE]++; }
u16 page_refcount(u64 pa) { return refcnt[pa / PAGE_SIZE]; }
u64 pmm_in_use(void) { return in_use; }
u64 pmm_max_pfn(void) { return max_pfn; }

void page_unref(u64 pa)
{
	u16 *r = &refcnt[pa / PAGE_SIZE];
	if (*r == 0)
		panic("page_unref: free page %lx", pa);
	if (--*r)
		return;
	*(u64 *)P2V(pa) = free_head;
	free_head = pa;
	in_use--;
}
