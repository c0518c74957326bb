/*
 * 2 MiB EPT12 leaves: the vmx back ends as `backend=vmx,ept=2m` and `backend=vmx-evmcs,ept=2m`
 * (docs/l1hv.md). L2 RAM is mapped with 2 MiB leaves — a PDE with bit 7 set maps a 2-MByte page
 * (SDM vol. 3C 29.3.2, Table 29-4: bits 2:0 R/W/X, 5:3 memory type, 7 = 1, 51:21 the frame) —
 * wherever the aligned 2 MiB L2-physical range lies inside the slot and its L1-physical backing
 * keeps the alignment, as KVM maps a huge SPTE when the memslot and the host page allow it
 * (kvm_mmu_hugepage_adjust) and QEMU backs guest RAM with huge pages; 4 KiB elsewhere, and
 * everywhere when IA32_VMX_EPT_VPID_CAP bit 16 (2-MByte EPT pages) is clear, as KVM's
 * ept_lpage_level. A first touch backs (zeroes) the whole 2 MiB, as a huge-page fault does.
 *
 * Linked after the rest of the image (the Makefile prefixes its sections `.late`) and reached
 * only through a backend= value the plain command lines never carry, so the default back ends
 * run exactly the instructions, and touch exactly the memory, they did before.
 */
#include "vmx.h"
#include "l1hv.h"
#include "layout.h"
#include "lib.h"
#include "mm.h"
#include "x86.h"

#define LARGE (2ul << 20)
#define EPT_RWX (EPT_R | EPT_W | EPT_X)
#define EPT_LARGE_LEAF (1ul << 7)            /* PDE bit 7: maps a 2-MByte page */
#define MSR_IA32_VMX_EPT_VPID_CAP 0x48c
#define EPT_CAP_2M (1ul << 16)               /* appendix A.10: 2-MByte EPT pages */

/* The EPT-violation handler's RAM mapper (vmx_exits.c): vmx_map_gpa, or ours below. Placed at
 * the end of the image's .data (linker.ld), on the cache line of `vmcs_ops`, which every exit
 * reads already: the plain path touches no new page or line. */
int (*vmx_map_ram)(struct l2_vcpu *v, u64 gpa) __attribute__((section(".hotptr"))) = vmx_map_gpa;

static struct l1_backend large;              /* the chosen vmx back end with our set_memslot */
static int (*base_set_memslot)(struct l2_vm *vm, const struct l2_memslot *slot);
static int large_ok;                         /* the CPU offers 2 MiB EPT pages */
u64 ept_large_leaves;                        /* 2 MiB leaves written */

/* The PDE slot for `gpa` (the PML4 and PDPT levels built on the way). */
static u64 *ept_pde(u64 root, u64 gpa)
{
	u64 table = root;
	for (int shift = 39; shift > 21; shift -= 9) {
		u64 *e = (u64 *)P2V(table) + ((gpa >> shift) & 511);
		if (!(*e & EPT_RWX))
			*e = pmm_alloc() | EPT_RWX;  /* non-leaf: RWX, no memory type */
		table = *e & EPT_ADDR;
	}
	return (u64 *)P2V(table) + ((gpa >> 21) & 511);
}

/* The 2 MiB range around `gpa` as one leaf, if the slot allows it; 0 when it does not (the
 * caller maps 4 KiB). A PDE that already points to a table keeps its 4 KiB leaves. */
static int map_large(struct vmx_vm *xv, const struct l2_memslot *s, u64 gpa)
{
	u64 base = gpa & ~(LARGE - 1);
	if (!large_ok || base < s->gpa || base + LARGE > s->gpa + s->size || ((s->hpa - s->gpa) & (LARGE - 1)))
		return 0;
	u64 *pde = ept_pde(xv->ept_root, base);
	if (*pde & EPT_RWX)
		return (*pde & EPT_LARGE_LEAF) != 0;
	l2_back(base, LARGE);  /* fresh (zeroed) pages, except those L1 already wrote (L2's image) */
	*pde = (s->hpa + (base - s->gpa)) | EPT_RWX | EPT_MT_WB | EPT_LARGE_LEAF;
	xv->ept_faults++;
	ept_large_leaves++;
	return 1;
}

static const struct l2_memslot *slot_of(const struct l2_vm *vm, u64 gpa)
{
	for (u32 i = 0; i < vm->nslots; i++)
		if (gpa >= vm->slots[i].gpa && gpa < vm->slots[i].gpa + vm->slots[i].size)
			return &vm->slots[i];
	return NULL;
}

/* An EPT violation on RAM: the 2 MiB leaf when allowed, else vmx_map_gpa's 4 KiB one. */
static int map_gpa_large(struct l2_vcpu *v, u64 gpa)
{
	const struct l2_memslot *s = slot_of(v->vm, gpa);
	if (s != NULL && map_large(v->vm->priv, s, gpa))
		return 0;
	return vmx_map_gpa(v, gpa);
}

/* The slot recorded by the back end's own set_memslot (without its 4 KiB eager pass); eager:
 * every 2 MiB range of it mapped now, 4 KiB pages where a large leaf does not fit. */
static int set_memslot_large(struct l2_vm *vm, const struct l2_memslot *slot)
{
	large_ok = (rdmsr(MSR_IA32_VMX_EPT_VPID_CAP) & EPT_CAP_2M) != 0;
	if (!large_ok)
		kprintf("l1hv: ept=2m: the CPU has no 2 MiB EPT pages (IA32_VMX_EPT_VPID_CAP[16] = 0): 4 KiB leaves\n");
	int eager = vm->eager;
	vm->eager = 0;
	int rc = base_set_memslot(vm, slot);
	vm->eager = eager;
	if (rc || !eager)
		return rc;
	struct l2_vcpu any = { .vm = vm };
	for (u64 gpa = slot->gpa; gpa < slot->gpa + slot->size;) {
		if (map_large(vm->priv, slot, gpa)) {
			gpa = (gpa & ~(LARGE - 1)) + LARGE;
		} else {
			vmx_map_gpa(&any, gpa);
			gpa += PAGE_SIZE;
		}
	}
	return 0;
}

/* `backend=` values with ",ept=2m": the vmx back end named before the comma, with 2 MiB leaves;
 * anything else stops L1 with main.c's unknown-backend message. */
const struct l1_backend *vmx_ept2m_backend(const char *value, const char *unknown)
{
	const struct l1_backend *base;
	if (!strncmp(value, "vmx,ept=2m", 11))
		base = &vmx_backend;
	else if (!strncmp(value, "vmx-evmcs,ept=2m", 17))
		base = &vmx_evmcs_backend;
	else
		panic(unknown, value);
	large = *base;
	large.name = base == &vmx_backend ? "vmx,ept=2m" : "vmx-evmcs,ept=2m";
	base_set_memslot = base->set_memslot;
	large.set_memslot = set_memslot_large;
	vmx_map_ram = map_gpa_large;
	return &large;
}
