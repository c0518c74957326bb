/*
 * EPT violations and misconfigurations (vol. 3C 28.3.3; exit qualification table 27-7): bits 0-2
 * the access (read, write, fetch), bits 3-5 the permissions of the translation (AND of the R/W/X
 * bits of every EPT entry used), bit 7 guest-linear address valid, bit 8 set for an access to the
 * translated address and clear for an access to a guest paging-structure entry; the
 * guest-physical address field and the guest-linear address field (27.2.1). An EPT entry with
 * write but not read permission is a misconfiguration (28.3.3.1): exit 49, GPA only.
 * GPA 0x40000000 maps ept_target through a 4 KiB EPT entry whose permissions each check sets.
 */
#include "vmxtest.h"

#define QUAL_BITS 0x1ff /* bits 8:0 (bits 9-11 need mode-based control / advanced information) */

static void violation(const char *name, void *snippet, void *at, u64 perms, u64 qual, u64 gpa, u64 gla)
{
	ept_set_test_page(perms);
	u32 r = run_l2(FN(snippet));
	u64 q = vmr(F_EXIT_QUAL), g = vmr(F_GUEST_PHYS_ADDR), l = vmr(F_GUEST_LINEAR_ADDR), rip = vmr(F_GUEST_RIP);
	check(name, r == EXIT_EPT_VIOLATION && (q & QUAL_BITS) == qual && g == gpa && l == gla && rip == (u64)at,
	      "reason %x qual %lx gpa %lx gla %lx rip %lx, want 48 / %lx / %lx / %lx / %lx", r, q, g, l, rip, qual, gpa, gla,
	      (u64)at);
}

static void misconfig(const char *name, u64 perms)
{
	ept_set_test_page(perms);
	u32 r = run_l2(FN(l2_ept_read));
	check(name, r == 49 && vmr(F_GUEST_PHYS_ADDR) == 0x40000010, "reason %x gpa %lx, want 49 / 40000010", r,
	      vmr(F_GUEST_PHYS_ADDR));
}

void t_ept(void)
{
	if (!have_ept)
		return info("EPT not offered (IA32_VMX_PROCBASED_CTLS2 / IA32_VMX_EPT_VPID_CAP): EPT checks skipped");
	vmcs_setup(vmcs_a, FN(l2_hlt));
	for (int i = 0; i < 4096; i++)
		ept_target[i] = (u8)(i * 7 + 1);
	l2_out[0] = 0;
	ept_set_test_page(7);
	u32 r = run_l2(FN(l2_ept_read));
	check("ept-read-mapped", r == EXIT_HLT && l2_out[0] == *(u64 *)(ept_target + 0x10),
	      "reason %x, L2 read %lx want %lx", r, l2_out[0], *(u64 *)(ept_target + 0x10));
	violation("ept-violation-read-not-present", l2_ept_read, l2_ept_read_at, 0, 0x181, 0x40000010, 0x40000010);
	violation("ept-violation-write-read-only", l2_ept_write, l2_ept_write_at, 1, 0x18a, 0x40000020, 0x40000020);
	violation("ept-violation-fetch-not-executable", l2_ept_fetch, (void *)0x40000000, 3, 0x19c, 0x40000000,
		  0x40000000);
	violation("ept-violation-paging-structure", l2_ept_walk, l2_ept_walk_at, 7, 0x081, 0x40100000, 0x80000018);
	/* 28.3.3.1: write without read is a misconfiguration; so is execute-only without
	 * EPT_VPID_CAP[0], with which it is a violation of a read (bit 5 executable). */
	misconfig("ept-misconfig-write-only", 2);
	if (caps.ept_vpid & 1) {
		violation("ept-violation-read-exec-only", l2_ept_read, l2_ept_read_at, 4, 0x1a1, 0x40000010, 0x40000010);
		ept_target[0] = 0xf4; /* HLT */
		r = run_l2(FN(l2_ept_fetch));
		check("ept-exec-only-fetch-runs", r == EXIT_HLT && vmr(F_GUEST_RIP) == 0x40000000,
		      "reason %x rip %lx, want HLT at 40000000", r, vmr(F_GUEST_RIP));
	} else
		misconfig("ept-misconfig-exec-only-unsupported", 4);
	/* 27.2.4: an exception whose delivery causes the exit (L2's stack in a not-present EPT page)
	 * is reported in the IDT-vectoring information; the exit is the EPT violation (a write). */
	vmw(F_EXC_BITMAP, ~(1u << 6));
	ept_set_test_page(0);
	next_rsp = 0x40000800;
	r = run_l2(FN(l2_ud));
	u64 vi = vmr(F_IDT_VECTORING_INFO), q = vmr(F_EXIT_QUAL);
	check("ept-violation-during-delivery-vectoring-info", r == EXIT_EPT_VIOLATION && vi == 0x80000306 && (q & 0x1ff) == 0x182,
	      "reason %x IDT-vectoring %lx qual %lx, want 48 / 80000306 / 182", r, vi, q);
	vmw(F_EXC_BITMAP, 0xffffffff);
	ept_set_test_page(7);
	r = run_l2(FN(l2_ept_write));
	check("ept-write-after-fix", r == EXIT_HLT && *(u64 *)(ept_target + 0x20) == 0x77, "reason %x, page holds %lx", r,
	      *(u64 *)(ept_target + 0x20));
}
