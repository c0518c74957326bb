/*
 * Capability MSRs (vol. 3C appendix A), VMXON preconditions and failures (vol. 3C 23.7, 23.8;
 * vol. 2 "VMXON"), the #UD/#GP conditions every VMX instruction shares (vol. 3C 31.3: real,
 * virtual-8086 and compatibility mode #UD; outside VMX operation #UD; CPL > 0 #GP(0)), and VMXOFF.
 */
#include "vmxtest.h"

static int rdmsr_fault(u32 idx)
{
	u64 fl;
	u32 lo, hi;
	__asm__ volatile(GUARD_PRE "rdmsr" GUARD_POST : [fl] "=r"(fl), "=a"(lo), "=d"(hi) : "c"(idx) : "r11", "cc", "memory");
	return fault_vector;
}

static int write_cr4(u64 v)
{
	u64 fl;
	__asm__ volatile(GUARD_PRE "mov %[v], %%cr4" GUARD_POST : [fl] "=r"(fl) : [v] "r"(v) : "r11", "cc", "memory");
	return fault_vector;
}

static int write_cr0(u64 v)
{
	u64 fl;
	__asm__ volatile(GUARD_PRE "mov %[v], %%cr0" GUARD_POST : [fl] "=r"(fl) : [v] "r"(v) : "r11", "cc", "memory");
	return fault_vector;
}

/* A.1-A.8: the capability MSRs are self-consistent. */
void t_caps(void)
{
	u32 size = (caps.basic >> 32) & 0x1fff;
	check("caps-basic-region-size", size > 0 && size <= 4096, "VMCS region size %u (A.1: at most 4096)", size);
	check("caps-basic-memtype-wb", ((caps.basic >> 50) & 0xf) == 6, "memory type %lu, want 6 (WB)",
	      (caps.basic >> 50) & 0xf);
	check("caps-basic-physaddr-width", ((caps.basic >> 48) & 1) == 0, "BASIC[48] set on an Intel 64 processor");
	const u64 ctl[5] = { caps.pin, caps.proc, caps.exit, caps.entry, caps.proc2 };
	int ok = 1;
	for (int i = 0; i < 5; i++)
		ok &= (must1(ctl[i]) & ~(u32)(ctl[i] >> 32)) == 0;
	check("caps-controls-must1-allowed", ok, "a control bit must be 1 but is not allowed to be 1 (A.3-A.5)");
	check("caps-cr0-fixed", (caps.cr0_fixed0 & ~caps.cr0_fixed1) == 0 && (caps.cr0_fixed0 & 0x80000021) == 0x80000021,
	      "CR0 fixed0 %lx fixed1 %lx (A.7: PE, NE, PG fixed to 1)", caps.cr0_fixed0, caps.cr0_fixed1);
	check("caps-cr4-fixed", (caps.cr4_fixed0 & ~caps.cr4_fixed1) == 0 && (caps.cr4_fixed0 & 0x2000),
	      "CR4 fixed0 %lx fixed1 %lx (A.8: VMXE fixed to 1)", caps.cr4_fixed0, caps.cr4_fixed1);
	check("caps-msr-readonly", wrmsr_safe(MSR_VMX_BASIC, caps.basic) == FAULT(GP), "WRMSR IA32_VMX_BASIC did not #GP");
	if (!may1(caps.proc2, 1u << 13))
		check("caps-vmfunc-absent", rdmsr_fault(0x491) == GP,
		      "IA32_VMX_VMFUNC readable without \"enable VM functions\" (A.11)");
}

void t_vmxon(void)
{
	u64 cr4 = READ_CR(4), cr0 = READ_CR(0);
	*(u32 *)vmxon_region = caps.revision;
	vmxon_ptr = PA(vmxon_region);
	/* vol. 2 VMXON: CR4.VMXE = 0 -> #UD; other VMX instructions outside VMX operation -> #UD. */
	WRITE_CR(4, cr4 & ~0x2000ul);
	check_outcome("vmxon-cr4-vmxe-clear-ud", vmxon(vmxon_ptr), FAULT(UD));
	check("cr4-vmxe-settable", write_cr4(cr4 | 0x2000) < 0, "MOV to CR4.VMXE faulted with CPUID.1:ECX.VMX set");
	u64 v;
	check_outcome("vmread-outside-vmx-ud", vmread_r(F_GUEST_RIP, &v), FAULT(UD));
	check_outcome("vmptrld-outside-vmx-ud", vmptrld(PA(vmcs_a)), FAULT(UD));
	check_outcome("vmxoff-outside-vmx-ud", vmxoff(), FAULT(UD));

	/* 23.7: VMXON #GPs unless IA32_FEATURE_CONTROL is locked with "VMXON outside SMX" (bit 2). */
	u64 fc = rdmsr(MSR_FEATURE_CONTROL);
	info("IA32_FEATURE_CONTROL at start %lx", fc);
	if (!(fc & 1)) {
		check_outcome("vmxon-feature-control-unlocked-gp", vmxon(vmxon_ptr), FAULT(GP));
		check("feature-control-lock", wrmsr_safe(MSR_FEATURE_CONTROL, 5) == 0 && rdmsr(MSR_FEATURE_CONTROL) == 5,
		      "WRMSR IA32_FEATURE_CONTROL = 5 failed or did not stick");
	} else {
		info("IA32_FEATURE_CONTROL already locked: the unlocked case is not checked");
	}
	fc = rdmsr(MSR_FEATURE_CONTROL);
	check("feature-control-locked-write-gp", wrmsr_safe(MSR_FEATURE_CONTROL, fc) == FAULT(GP),
	      "WRMSR to a locked IA32_FEATURE_CONTROL did not #GP (23.7)");
	if (!check("feature-control-vmxon-enabled", (fc & 5) == 5, "IA32_FEATURE_CONTROL %lx: VMX cannot be used", fc))
		return;

	/* 23.8: CR0 bits fixed to 1 in VMX operation (NE) must be 1 at VMXON: #GP. */
	if (caps.cr0_fixed0 & 0x20) {
		WRITE_CR(0, cr0 & ~0x20ul);
		check_outcome("vmxon-cr0-ne-clear-gp", vmxon(vmxon_ptr), FAULT(GP));
		WRITE_CR(0, cr0 | 0x20);
		cr0 |= 0x20;
	}
	/* CPL > 0 outside VMX operation: #GP(0). */
	long vec = call_guarded(FN(u_vmxon), 1);
	check("vmxon-cpl3-gp", vec == GP && guard_rip == (u64)u_vmxon && guard_error == 0,
	      "vector %ld at %lx error %lx, want #GP(0) at %lx", vec, guard_rip, guard_error, (u64)u_vmxon);
	/* vol. 2 VMXON: a pointer not 4 KiB-aligned, beyond MAXPHYADDR, or to a region whose revision
	 * identifier is not the processor's: VMfailInvalid. */
	check_outcome("vmxon-unaligned-failinvalid", vmxon(PA(vmxon_region) + 8), VMX_FAIL_INVALID);
	check_outcome("vmxon-beyond-maxphyaddr-failinvalid", vmxon(1ul << caps.maxphyaddr), VMX_FAIL_INVALID);
	*(u32 *)vmxon_region = caps.revision ^ 1;
	check_outcome("vmxon-bad-revision-failinvalid", vmxon(vmxon_ptr), VMX_FAIL_INVALID);
	*(u32 *)vmxon_region = caps.revision;
	check_outcome("vmxon-succeeds", vmxon(vmxon_ptr), VMX_OK);

	/* In VMX root operation without a current VMCS (vol. 2 VMXON, VMPTRST, VMREAD, VMCALL). */
	check_outcome("vmxon-in-root-no-vmcs-failinvalid", vmxon(vmxon_ptr), VMX_FAIL_INVALID);
	u64 p = 0;
	int r = vmptrst(&p);
	check("vmptrst-none-all-ones", r == VMX_OK && p == ~0ul, "%s, stored %lx", outcome_name(r), p);
	check_outcome("vmread-no-vmcs-failinvalid", vmread_r(F_GUEST_RIP, &v), VMX_FAIL_INVALID);
	check_outcome("vmcall-root-no-vmcs-failinvalid", vmcall_(), VMX_FAIL_INVALID);
	/* 23.8: CR4.VMXE and CR0's fixed bits cannot be cleared in VMX operation: #GP. */
	check("cr4-vmxe-clear-in-vmx-gp", write_cr4(READ_CR(4) & ~0x2000ul) == GP, "MOV to CR4 clearing VMXE did not #GP");
	check("cr0-ne-clear-in-vmx-gp", write_cr0(READ_CR(0) & ~0x20ul) == GP, "MOV to CR0 clearing NE did not #GP");
	/* CPL 3 and compatibility mode in VMX operation: #GP(0) and #UD. */
	vec = call_guarded(FN(u_vmread), 1);
	check("vmread-cpl3-gp", vec == GP && guard_rip == (u64)u_vmread_at && guard_error == 0,
	      "vector %ld at %lx, want #GP(0) at %lx", vec, guard_rip, (u64)u_vmread_at);
	vec = call_guarded(FN(c_vmread), 2);
	check("vmread-compat-mode-ud", vec == UD && guard_rip == (u64)c_vmread, "vector %ld at %lx, want #UD at %lx", vec,
	      guard_rip, (u64)c_vmread);
	vec = call_guarded(FN(c_vmxoff), 2);
	check("vmxoff-compat-mode-ud", vec == UD && guard_rip == (u64)c_vmxoff, "vector %ld at %lx, want #UD at %lx", vec,
	      guard_rip, (u64)c_vmxoff);
	/* With a current VMCS: VMfailValid(15) and VMfailValid(1). */
	*(u32 *)vmcs_a = caps.revision;
	vmcs_ptr = PA(vmcs_a);
	vmclear(vmcs_ptr);
	vmptrld(vmcs_ptr);
	check_fail_valid("vmxon-in-root-failvalid-15", vmxon(vmxon_ptr), 15);
	check_fail_valid("vmcall-root-failvalid-1", vmcall_(), 1);
}

/* VMXOFF (vol. 2 VMXOFF, 23.8): leaves VMX operation; VMX instructions #UD again; VMXE clearable. */
void t_after(void)
{
	check_outcome("vmxoff-succeeds", vmxoff(), VMX_OK);
	u64 v;
	check_outcome("vmread-after-vmxoff-ud", vmread_r(F_GUEST_RIP, &v), FAULT(UD));
	u64 fl, cr4 = READ_CR(4);
	__asm__ volatile(GUARD_PRE "mov %[v], %%cr4" GUARD_POST : [fl] "=r"(fl) : [v] "r"(cr4 & ~0x2000ul) : "r11", "cc", "memory");
	check("cr4-vmxe-clear-after-vmxoff", fault_vector < 0, "MOV to CR4 clearing VMXE faulted (%d)", fault_vector);
}
