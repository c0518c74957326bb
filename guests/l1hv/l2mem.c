/* L2 memory as L1 sees it: one slot of L1-physical memory, reached through L1's direct map. */
#include "l1hv.h"
#include "layout.h"

#include "lib.h"

struct l2_memslot l2_ram;
u64 l2_pages_backed;

#define L2_MAX_PAGES (3ul << 18)  /* 3 GiB of L2 RAM */
static u8 backed[L2_MAX_PAGES / 8];

void *l2_gpa_ptr(u64 gpa, u64 len)
{
	if (gpa < l2_ram.gpa || gpa + len > l2_ram.gpa + l2_ram.size || gpa + len < gpa)
		return NULL;
	return P2V(l2_ram.hpa + (gpa - l2_ram.gpa));
}

/* A 4-level walk of L2's page tables (SDM vol. 3A 4.5), large pages included; no permission
 * checks (the hardware already made the access that exited). */
i64 l2_gva_to_gpa(u64 cr3, u64 gva)
{
	u64 table = cr3 & 0x000FFFFFFFFFF000ul;
	for (int level = 4; level >= 1; level--) {
		const u64 *t = l2_gpa_ptr(table, PAGE_SIZE);
		if (t == NULL)
			return -1;
		u64 e = t[(gva >> (12 + 9 * (level - 1))) & 511];
		if (!(e & 1))
			return -1;
		if (level == 1 || (level <= 3 && (e & 0x80))) {
			u64 span = 1ul << (12 + 9 * (level - 1));
			return (i64)((e & 0x000FFFFFFFFFF000ul & ~(span - 1)) | (gva & (span - 1)));
		}
		table = e & 0x000FFFFFFFFFF000ul;
	}
	return -1;
}

void *l2_back(u64 gpa, u64 len)
{
	u8 *p = l2_gpa_ptr(gpa, len);
	if (p == NULL)
		return NULL;
	for (u64 pg = (gpa - l2_ram.gpa) >> 12; pg <= (gpa - l2_ram.gpa + len - 1) >> 12; pg++) {
		if (backed[pg / 8] & (1u << (pg % 8)))
			continue;
		backed[pg / 8] |= (u8)(1u << (pg % 8));
		zero_page(P2V(l2_ram.hpa + (pg << 12)));
		l2_pages_backed++;
	}
	return p;
}
