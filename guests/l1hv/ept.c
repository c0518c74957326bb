/* EPT12: the vmx back end's extended page tables for L2, in L1's own memory (SDM vol. 3C 28.3.2). */
#include "vmx.h"
#include "layout.h"
#include "mm.h"

u64 ept_new_root(void)
{
	return pmm_alloc();
}

/* Walk (and with `create`, build) the tables down to the 4 KiB leaf for `gpa`. */
u64 *ept_entry(u64 root, u64 gpa, int create)
{
	u64 table = root;
	for (int level = 3; level >= 1; level--) {
		u64 *e = (u64 *)P2V(table) + ((gpa >> (12 + 9 * level)) & 511);
		if (!(*e & (EPT_R | EPT_W | EPT_X))) {
			if (!create)
				return NULL;
			*e = pmm_alloc() | EPT_R | EPT_W | EPT_X;  /* non-leaf: RWX, no memory type */
		}
		table = *e & EPT_ADDR;
	}
	return (u64 *)P2V(table) + ((gpa >> 12) & 511);
}
