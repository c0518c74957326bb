/*
 * The test hypervisor's VMCS set-up: a 64-bit L2 sharing vmxtest's code and data (identity EPT
 * over the first GiB, 2 MiB pages), its own page tables (l2_pml4) so EPT and #PF checks can use
 * the test range at 1 GiB, and its own IDT (l2_idt: every vector halts where it was delivered).
 * Controls are the capability MSRs' must-be-1 bits plus what a check needs and the MSRs allow
 * (vol. 3C 24.6-24.8, appendix A.3-A.5); guest and host state follow 26.2.2-26.3.1.
 */
#include "vmxtest.h"

u8 vmxon_region[4096] PAGE, vmcs_a[4096] PAGE, vmcs_b[4096] PAGE, vmcs_shadow[4096] PAGE;
volatile u64 vmxon_ptr, vmcs_ptr;
volatile u64 l2_out[8], l2_arg[2];
extern u64 idt[64];

/* EPT: PML4 -> PDPT; PDPT[0] -> 512 x 2 MiB identity; PDPT[1] -> PD -> PT for [1 GiB, +2 MiB). */
static u64 ept_pml4[512] PAGE, ept_pdpt[512] PAGE, ept_pd0[512] PAGE, ept_pd1[512] PAGE;
u64 ept_pt[512] PAGE;
u8 ept_target[4096] PAGE;
/* L2 page tables: [0, 1 GiB) through vmxtest's own PD; [1 GiB, +2 MiB) in 4 KiB pages (entry 5
 * not present); PDPT[2] names a page directory at GPA 0x40100000, which EPT does not map. */
static u64 l2_pml4[512] PAGE, l2_pdpt[512] PAGE, l2_pd1[512] PAGE, l2_pt[512] PAGE;
int have_ept, have_vpid;
static int launched;

#define EPT_RWX 7
#define EPT_WB (6 << 3)
#define EPT_LARGE 0x80
#define PTE_P_RW_U_A 0x27
#define PTE_4K 0x67 /* P RW U A D */

static void tables_init(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	for (u64 i = 0; i < 512; i++)
		ept_pd0[i] = (i << 21) | EPT_RWX | EPT_WB | EPT_LARGE;
	ept_pd1[0] = PA(ept_pt) | EPT_RWX;
	ept_pdpt[0] = PA(ept_pd0) | EPT_RWX;
	ept_pdpt[1] = PA(ept_pd1) | EPT_RWX;
	ept_pml4[0] = PA(ept_pdpt) | EPT_RWX;
	extern u64 pd[];
	l2_pdpt[0] = PA(pd) | PTE_P_RW_U_A;
	l2_pdpt[1] = PA(l2_pd1) | PTE_P_RW_U_A;
	l2_pdpt[2] = 0x40100000 | PTE_P_RW_U_A;
	l2_pml4[0] = PA(l2_pdpt) | PTE_P_RW_U_A;
	l2_pd1[0] = PA(l2_pt) | PTE_P_RW_U_A;
	for (u64 i = 0; i < 512; i++)
		l2_pt[i] = i == 5 ? 0 : (0x40000000 + (i << 12)) | PTE_4K;
	ept_set_test_page(EPT_RWX);
}

/* GPA 0x40000000 -> ept_target with the given R/W/X permissions; INVEPT single context. */
void ept_set_test_page(u64 perms)
{
	ept_pt[0] = PA(ept_target) | perms | EPT_WB;
	if (!have_ept)
		return;
	u64 desc[2] = { PA(ept_pml4) | 0x1e, 0 };
	int r = invept(1, desc);
	if (r != VMX_OK)
		check("invept-single", 0, "INVEPT single context: %s", outcome_name(r));
}

static void set_ctl(u64 enc, u32 bits, int on)
{
	u64 v = vmr(enc);
	vmw(enc, on ? v | bits : v & ~(u64)bits);
}
void set_proc(u32 bits, int on) { set_ctl(F_PROC, bits, on); }
void set_proc2(u32 bits, int on) { set_ctl(F_PROC2, bits, on); }
void set_pin(u32 bits, int on) { set_ctl(F_PIN, bits, on); }

void vmcs_setup(u8 *region, void (*rip)(void))
{
	tables_init();
	*(u32 *)region = caps.revision;
	vmcs_ptr = PA(region);
	int r = vmclear(vmcs_ptr);
	if (r == VMX_OK)
		r = vmptrld(vmcs_ptr);
	if (r != VMX_OK)
		check("vmcs-setup", 0, "VMCLEAR/VMPTRLD: %s", outcome_name(r));
	launched = 0;
	have_ept = may1(caps.proc2, PROC2_EPT) && ((caps.ept_vpid >> 6) & 1) && ((caps.ept_vpid >> 14) & 1);
	have_vpid = may1(caps.proc2, PROC2_VPID);
	u32 proc = must1(caps.proc) | PROC_HLT | (caps.proc2 ? PROC_SECONDARY : 0);
	u32 proc2 = (have_ept ? PROC2_EPT : 0) | (have_vpid ? PROC2_VPID : 0);
	vmw(F_PIN, must1(caps.pin));
	vmw(F_PROC, proc);
	if (caps.proc2)
		vmw(F_PROC2, proc2);
	vmw(F_EXIT_CTLS, must1(caps.exit) | EXIT_HOST_64);
	vmw(F_ENTRY_CTLS, must1(caps.entry) | ENTRY_IA32E);
	vmw(F_EXC_BITMAP, 0xffffffff);
	vmw(F_PFEC_MASK, 0);
	vmw(F_PFEC_MATCH, 0);
	vmw(F_CR3_TARGET_COUNT, 0);
	vmw(F_CR0_MASK, 0);
	vmw(F_CR4_MASK, 0);
	vmw(F_ENTRY_INTR_INFO, 0);
	if (have_ept)
		vmw(F_EPTP, PA(ept_pml4) | 0x1e); /* WB, 4-level walk (24.6.11) */
	if (have_vpid)
		vmw(F_VPID, 1);
	/* Host state: this CPU's (26.2.2, 26.2.3). HOST_RSP/RIP are vm_run's. */
	vmw(F_HOST_CR0, READ_CR(0));
	vmw(F_HOST_CR3, READ_CR(3));
	vmw(F_HOST_CR4, READ_CR(4));
	vmw(F_HOST_CS_SEL, 0x08);
	vmw(F_HOST_SS_SEL, 0x10);
	vmw(F_HOST_DS_SEL, 0x10);
	vmw(F_HOST_ES_SEL, 0x10);
	vmw(F_HOST_FS_SEL, 0);
	vmw(F_HOST_GS_SEL, 0);
	vmw(F_HOST_TR_SEL, 0x30);
	vmw(F_HOST_FS_BASE, 0);
	vmw(F_HOST_GS_BASE, 0);
	vmw(F_HOST_TR_BASE, PA(tss));
	vmw(F_HOST_GDTR_BASE, PA(gdt));
	vmw(F_HOST_IDTR_BASE, PA(idt));
	/* Guest state: a 64-bit CPL-0 L2 (26.3.1). */
	vmw(F_GUEST_CR0, READ_CR(0));
	vmw(F_GUEST_CR3, PA(l2_pml4));
	vmw(F_GUEST_CR4, READ_CR(4));
	static const u16 sel[6] = { F_GUEST_ES_SEL, F_GUEST_CS_SEL, F_GUEST_SS_SEL, F_GUEST_DS_SEL, F_GUEST_FS_SEL,
				    F_GUEST_GS_SEL };
	for (int s = 0; s < 6; s++) {
		int code = s == 1, usable = s < 4;
		vmw(sel[s], usable ? (code ? 0x08 : 0x10) : 0);
		vmw(sel[s] + 0x4000, usable ? 0xffffffff : 0);			  /* limit */
		vmw(sel[s] + 0x4014, usable ? (code ? 0xa09b : 0xc093) : 0x10000); /* access rights */
		vmw(sel[s] + 0x6006, 0);						  /* base */
	}
	vmw(F_GUEST_LDTR_SEL, 0);
	vmw(F_GUEST_LDTR_AR, 0x10000);
	vmw(F_GUEST_LDTR_LIMIT, 0);
	vmw(F_GUEST_LDTR_BASE, 0);
	vmw(F_GUEST_TR_SEL, 0x30);
	vmw(F_GUEST_TR_BASE, PA(tss));
	vmw(F_GUEST_TR_LIMIT, 0x67);
	vmw(F_GUEST_TR_AR, 0x8b);
	vmw(F_GUEST_GDTR_BASE, PA(gdt));
	vmw(F_GUEST_GDTR_LIMIT, 0x3f);
	vmw(F_GUEST_IDTR_BASE, PA(l2_idt));
	vmw(F_GUEST_IDTR_LIMIT, 32 * 16 - 1);
	vmw(F_GUEST_DR7, 0x400);
	vmw(F_GUEST_RFLAGS, 2);
	vmw(F_GUEST_INTERRUPTIBILITY, 0);
	vmw(F_GUEST_ACTIVITY, 0);
	vmw(F_LINK_PTR, ~0ul);
	vmw(F_GUEST_RIP, (u64)rip);
	vmw(F_GUEST_RSP, PA(l2_stack_top));
}

u64 next_rflags = 2, next_rsp;
u32 run_l2(void (*rip)(void))
{
	vmw(F_GUEST_RIP, (u64)rip);
	vmw(F_GUEST_RSP, next_rsp ? next_rsp : PA(l2_stack_top));
	vmw(F_GUEST_RFLAGS, next_rflags);
	vmw(F_GUEST_ACTIVITY, 0);
	next_rflags = 2;
	next_rsp = 0;
	int r = vm_run(launched);
	if (r != 0)
		return 0xffff0000u | (u32)r;
	u32 reason = (u32)vmr(F_EXIT_REASON);
	if (!(reason & ENTRY_FAILURE))
		launched = 1;
	return reason;
}
