/*
 * VMCS shadowing (vol. 3C 24.6.15, 25.1.3, 26.3.1.5; vol. 2 "VMREAD"/"VMWRITE" in non-root
 * operation): with "VMCS shadowing", L2's VMREAD/VMWRITE of a field whose bit is clear in the
 * VMREAD/VMWRITE bitmap accesses the VMCS the link pointer names, without a VM exit; a set bit,
 * or an encoding with bits 63:15 set, exits (23 / 25). A link pointer of all ones makes such an
 * access VMfailInvalid. Without the control every VMREAD/VMWRITE exits.
 */
#include "vmxtest.h"

static u8 vmread_bm[4096] PAGE, vmwrite_bm[4096] PAGE;

static void bit(u8 *bm, u32 enc, int on)
{
	if (on)
		bm[enc >> 3] |= (u8)(1 << (enc & 7));
	else
		bm[enc >> 3] &= (u8)~(1 << (enc & 7));
}

static int l2_flags_ok(void) { return (l2_out[1] & 0x41) == 0; }

void t_shadow(void)
{
	if (!may1(caps.proc2, PROC2_SHADOW_VMCS))
		return info("VMCS shadowing not offered: shadow checks skipped");
	/* The shadow VMCS: guest RIP 0x1234, guest RSP 0x5678 (written in root operation). */
	*(u32 *)vmcs_shadow = caps.revision | 0x80000000u;
	vmclear(PA(vmcs_shadow));
	vmptrld(PA(vmcs_shadow));
	vmw(F_GUEST_RIP, 0x1234);
	vmw(F_GUEST_RSP, 0x5678);
	vmclear(PA(vmcs_shadow));
	vmcs_setup(vmcs_a, FN(l2_hlt));
	for (int i = 0; i < 4096; i++) {
		vmread_bm[i] = 0;
		vmwrite_bm[i] = 0xff;
	}
	bit(vmread_bm, F_EXIT_QUAL, 1);
	bit(vmwrite_bm, F_GUEST_RSP, 0);
	vmw(F_VMREAD_BITMAP, PA(vmread_bm));
	vmw(F_VMWRITE_BITMAP, PA(vmwrite_bm));
	vmw(F_LINK_PTR, PA(vmcs_shadow));
	set_proc2(PROC2_SHADOW_VMCS, 1);

	l2_arg[0] = F_GUEST_RIP;
	u32 r = run_l2(FN(l2_vmread));
	check("shadow-vmread-no-exit", r == EXIT_HLT && l2_out[0] == 0x1234 && l2_flags_ok(),
	      "reason %x, L2 read %lx flags %lx, want HLT / 1234 / VMsucceed", r, l2_out[0], l2_out[1]);
	l2_out[3] = 0;
	r = run_l2(FN(l2_vmread_mem));
	check("shadow-vmread-mem-no-exit", r == EXIT_HLT && l2_out[3] == 0x1234, "reason %x, L2 stored %lx", r, l2_out[3]);
	l2_arg[0] = F_EXIT_QUAL;
	r = run_l2(FN(l2_vmread));
	check("shadow-vmread-bitmap-set-exits", r == EXIT_VMREAD && vmr(F_GUEST_RIP) == (u64)l2_vmread_at,
	      "reason %x rip %lx", r, vmr(F_GUEST_RIP));
	l2_arg[0] = 0x8000ul | F_GUEST_RIP;
	r = run_l2(FN(l2_vmread));
	check("shadow-vmread-encoding-bit15-exits", r == EXIT_VMREAD, "reason %x, want 23", r);
	l2_arg[0] = F_GUEST_RSP;
	l2_arg[1] = 0xabcd;
	r = run_l2(FN(l2_vmwrite));
	check("shadow-vmwrite-no-exit", r == EXIT_HLT && l2_flags_ok(), "reason %x flags %lx", r, l2_out[1]);
	l2_arg[0] = F_GUEST_RIP;
	r = run_l2(FN(l2_vmwrite));
	u64 ii = vmr(F_EXIT_INSN_INFO);
	check("shadow-vmwrite-bitmap-set-exits", r == EXIT_VMWRITE && (ii & 0xf0000478) == (1 << 10 | 3 << 3),
	      "reason %x instruction information %lx", r, ii);
	/* The shadow VMCS holds L2's write (root operation reads it after VMPTRLD). */
	vmptrld(PA(vmcs_shadow));
	u64 rsp = vmr(F_GUEST_RSP), rip = vmr(F_GUEST_RIP);
	vmptrld(PA(vmcs_a));
	check("shadow-vmwrite-reached-shadow", rsp == 0xabcd && rip == 0x1234, "shadow RSP %lx RIP %lx", rsp, rip);
	/* Link pointer all ones: VMREAD the bitmap allows is VMfailInvalid in L2, no exit. */
	vmw(F_LINK_PTR, ~0ul);
	l2_arg[0] = F_GUEST_RIP;
	r = run_l2(FN(l2_vmread));
	check("shadow-vmread-no-link-failinvalid", r == EXIT_HLT && (l2_out[1] & 0x41) == 1, "reason %x flags %lx", r,
	      l2_out[1]);
	/* Without the control, the same VMREAD exits (the link pointer stays all ones: 26.3.1.5
	 * requires a shadow VMCS's indicator to match the control). */
	set_proc2(PROC2_SHADOW_VMCS, 0);
	r = run_l2(FN(l2_vmread));
	check("vmread-without-shadowing-exits", r == EXIT_VMREAD, "reason %x, want 23", r);
}
