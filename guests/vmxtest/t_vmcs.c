/*
 * VMCLEAR, VMPTRLD, VMPTRST and the launch state (vol. 2 "VMCLEAR", "VMPTRLD", "VMPTRST",
 * "VMLAUNCH/VMRESUME"; vol. 3C 24.1 launch state, 24.11.3; error numbers from table 31-1).
 */
#include "vmxtest.h"

/* vol. 2 "INVEPT", "INVVPID": unsupported types and invalid descriptors are VMfailValid(28)
 * (table 31-1, "invalid operand to INVEPT/INVPCID/INVVPID"); types from EPT_VPID_CAP 25-26, 40-43. */
static void inv(void)
{
	if (!(caps.ept_vpid & (1ul << 20)) && !(caps.ept_vpid & (1ul << 32)))
		return info("INVEPT and INVVPID not offered: not checked");
	u64 d[2] = { 0, 0 };
	if (caps.ept_vpid & (1ul << 20)) {
		check_fail_valid("invept-type-0-reserved-28", invept(0, d), 28);
		if (!((caps.ept_vpid >> 25) & 1))
			info("INVEPT single-context not offered");
		else
			check_fail_valid("invept-single-invalid-eptp-28", invept(1, d), 28);
		if ((caps.ept_vpid >> 26) & 1)
			check_outcome("invept-all-contexts", invept(2, d), VMX_OK);
		check_fail_valid("invept-type-3-28", invept(3, d), 28);
	}
	if (caps.ept_vpid & (1ul << 32)) {
		u64 v[2] = { 0, 0 };
		if ((caps.ept_vpid >> 41) & 1)
			check_fail_valid("invvpid-single-vpid-0-28", invvpid(1, v), 28);
		v[0] = 1ul << 16; /* bits 63:16 of the descriptor are reserved */
		if ((caps.ept_vpid >> 42) & 1)
			check_fail_valid("invvpid-reserved-bits-28", invvpid(2, v), 28);
		v[0] = 1;
		v[1] = 0x0000800000000000ul;
		if ((caps.ept_vpid >> 40) & 1)
			check_fail_valid("invvpid-address-noncanonical-28", invvpid(0, v), 28);
		v[1] = 0;
		if ((caps.ept_vpid >> 41) & 1)
			check_outcome("invvpid-single-context", invvpid(1, v), VMX_OK);
		check_fail_valid("invvpid-type-4-28", invvpid(4, v), 28);
	}
}

void t_vmcs(void)
{
	vmcs_ptr = PA(vmcs_a);
	vmptrld(vmcs_ptr);
	u64 p = 0;
	int r = vmptrst(&p);
	check("vmptrst-current", r == VMX_OK && p == PA(vmcs_a), "%s, stored %lx want %lx", outcome_name(r), p,
	      PA(vmcs_a));
	check_fail_valid("vmclear-unaligned-2", vmclear(PA(vmcs_b) + 0x10), 2);
	check_fail_valid("vmclear-beyond-maxphyaddr-2", vmclear(1ul << caps.maxphyaddr), 2);
	check_fail_valid("vmclear-vmxon-region-3", vmclear(PA(vmxon_region)), 3);
	check_fail_valid("vmptrld-unaligned-9", vmptrld(PA(vmcs_b) + 8), 9);
	check_fail_valid("vmptrld-beyond-maxphyaddr-9", vmptrld(1ul << caps.maxphyaddr), 9);
	check_fail_valid("vmptrld-vmxon-region-10", vmptrld(PA(vmxon_region)), 10);
	*(u32 *)vmcs_b = caps.revision + 1;
	check_fail_valid("vmptrld-bad-revision-11", vmptrld(PA(vmcs_b)), 11);
	*(u32 *)vmcs_b = caps.revision;
	/* 24.10: a shadow VMCS (indicator bit 31) can be made current only if VMCS shadowing exists. */
	*(u32 *)vmcs_shadow = caps.revision | 0x80000000u;
	vmclear(PA(vmcs_shadow));
	*(u32 *)vmcs_shadow = caps.revision | 0x80000000u;
	if (may1(caps.proc2, PROC2_SHADOW_VMCS)) {
		r = vmptrld(PA(vmcs_shadow));
		check_outcome("vmptrld-shadow-vmcs", r, VMX_OK);
		/* vol. 2 VMLAUNCH: a shadow VMCS current: VMfailInvalid. */
		check_outcome("vmlaunch-shadow-vmcs-failinvalid", vm_run(0), VMX_FAIL_INVALID);
	} else {
		check_fail_valid("vmptrld-shadow-vmcs-11", vmptrld(PA(vmcs_shadow)), 11);
	}
	inv();
	/* Launch state: VMLAUNCH needs clear (else 4), VMRESUME needs launched (else 5). */
	vmcs_setup(vmcs_a, FN(l2_hlt));
	check_fail_valid("vmresume-clear-vmcs-5", vm_run(1), 5);
	u32 reason = run_l2(FN(l2_hlt));
	check("vmlaunch-clear-vmcs", reason == EXIT_HLT, "exit reason %x, want HLT (12)", reason);
	check_fail_valid("vmlaunch-launched-vmcs-4", vm_run(0), 4);
	reason = run_l2(FN(l2_hlt));
	check("vmresume-launched-vmcs", reason == EXIT_HLT, "exit reason %x, want HLT (12)", reason);
	/* VMCLEAR sets the launch state to clear and makes no VMCS current if it was current. */
	check_outcome("vmclear-current", vmclear(PA(vmcs_a)), VMX_OK);
	r = vmptrst(&p);
	check("vmclear-current-no-current", r == VMX_OK && p == ~0ul, "VMPTRST stored %lx", p);
	check_outcome("vmclear-bad-addr-no-vmcs-failinvalid", vmclear(PA(vmcs_a) + 8), VMX_FAIL_INVALID);
	vmptrld(PA(vmcs_a));
	check_fail_valid("vmresume-after-vmclear-5", vm_run(1), 5);
	vmw(F_GUEST_RIP, (u64)l2_hlt);
	vmw(F_GUEST_RSP, PA(l2_stack_top));
	r = vm_run(0);
	check("vmlaunch-after-vmclear", r == 0 && vmr(F_EXIT_REASON) == EXIT_HLT, "%s, exit reason %lx",
	      r ? outcome_name(r) : "exit", vmr(F_EXIT_REASON));
}
