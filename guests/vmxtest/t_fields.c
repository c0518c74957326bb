/*
 * VMREAD/VMWRITE (vol. 2 "VMREAD", "VMWRITE"; vol. 3C 24.11.2 field widths and the "high" access
 * type of 64-bit fields; appendix B encodings): every width, register and memory operands, 64-bit
 * high halves, unsupported encodings (VMfailValid 12), read-only fields (VMfailValid 13 unless
 * IA32_VMX_MISC[29] allows VMWRITE to any field). In 64-bit mode the operand size is 64 bits
 * (the 32-bit forms exist only outside IA-32e mode, which nestlab cannot reach in VMX operation:
 * see docs/vmx.md).
 */
#include "vmxtest.h"

static void rw(const char *name, u64 enc, u64 written, u64 want)
{
	u64 v = 0;
	int w = vmwrite_r(enc, written), r = vmread_r(enc, &v);
	check(name, w == VMX_OK && r == VMX_OK && v == want, "VMWRITE %s VMREAD %s, read %lx want %lx", outcome_name(w),
	      outcome_name(r), v, want);
}

static void rw_mem(const char *name, u64 enc, u64 written, u64 want)
{
	u64 src = written, dst = 0x5555555555555555ul;
	int w = vmwrite_m(enc, &src), r = vmread_m(enc, &dst);
	check(name, w == VMX_OK && r == VMX_OK && dst == want, "VMWRITE %s VMREAD %s, stored %lx want %lx",
	      outcome_name(w), outcome_name(r), dst, want);
}

void t_fields(void)
{
	/* vmcs_a is current (t_vmxon). A field narrower than the operand keeps its low bits. */
	rw("vmrw-16bit-reg", F_GUEST_ES_SEL, 0x123456789abcdef0ul, 0xdef0);
	rw("vmrw-32bit-reg", F_EXC_BITMAP, 0xffffffff12345678ul, 0x12345678);
	rw("vmrw-64bit-reg", F_TSC_OFFSET, 0x1122334455667788ul, 0x1122334455667788ul);
	rw("vmrw-natural-reg", F_GUEST_RIP, 0xfedcba9876543210ul, 0xfedcba9876543210ul);
	rw_mem("vmrw-16bit-mem", F_GUEST_TR_SEL, 0xffff0000ffff0030ul, 0x30);
	rw_mem("vmrw-32bit-mem", F_GUEST_CS_LIMIT, 0x00000001fffff000ul, 0xfffff000ul);
	rw_mem("vmrw-64bit-mem", F_LINK_PTR, 0x0123456789abc000ul, 0x0123456789abc000ul);
	rw_mem("vmrw-natural-mem", F_GUEST_RSP, 0x8000000000001000ul, 0x8000000000001000ul);
	/* 24.11.2: the "high" access (encoding bit 0 set) of a 64-bit field is bits 63:32. */
	u64 v = 0;
	vmw(F_TSC_OFFSET, 0x1122334455667788ul);
	int r = vmread_r(F_TSC_OFFSET + 1, &v);
	check("vmread-64bit-high", r == VMX_OK && v == 0x11223344, "%s %lx", outcome_name(r), v);
	r = vmwrite_r(F_TSC_OFFSET + 1, 0xffffffffaabbccddul);
	check("vmwrite-64bit-high", r == VMX_OK && vmr(F_TSC_OFFSET) == 0xaabbccdd55667788ul, "%s, field now %lx",
	      outcome_name(r), vmr(F_TSC_OFFSET));
	/* VMfailValid(12): no such field. High access of a 16-, 32- or natural-width field; bits 63:32 of
	 * the encoding set; an index no processor defines. */
	check_fail_valid("vmread-high-of-32bit-12", vmread_r(F_EXC_BITMAP + 1, &v), 12);
	check_fail_valid("vmread-high-of-natural-12", vmread_r(F_GUEST_RIP + 1, &v), 12);
	check_fail_valid("vmwrite-high-of-16bit-12", vmwrite_r(F_GUEST_ES_SEL + 1, 0), 12);
	check_fail_valid("vmread-encoding-bits-63-32-12", vmread_r(0x100000000ul | F_GUEST_RIP, &v), 12);
	check_fail_valid("vmwrite-encoding-bits-63-32-12", vmwrite_r(0x100000000ul | F_GUEST_RIP, 0), 12);
	check_fail_valid("vmread-unknown-field-12", vmread_r(0x6c7e, &v), 12);
	/* Read-only data fields (type 1, bits 11:10 = 1). */
	if ((caps.misc >> 29) & 1) {
		info("IA32_VMX_MISC[29]: VMWRITE may write read-only fields; the VMfailValid(13) checks are skipped");
		check_outcome("vmwrite-exit-reason-allowed", vmwrite_r(F_EXIT_REASON, 0), VMX_OK);
	} else {
		check_fail_valid("vmwrite-readonly-exit-reason-13", vmwrite_r(F_EXIT_REASON, 0), 13);
		check_fail_valid("vmwrite-readonly-exit-qual-13", vmwrite_r(F_EXIT_QUAL, 0), 13);
		u64 m = 0;
		check_fail_valid("vmwrite-readonly-mem-13", vmwrite_m(F_GUEST_PHYS_ADDR, &m), 13);
		check_fail_valid("vmwrite-readonly-insn-error-13", vmwrite_r(F_VM_INSN_ERROR, 0), 13);
	}
	/* 31.2: VMsucceed clears CF and ZF, and the error field keeps the last error. */
	r = vmread_r(F_VM_INSN_ERROR, &v);
	check("vmread-readonly-field", r == VMX_OK && v == ((caps.misc >> 29) & 1 ? 0 : 13) , "%s, error field %lu",
	      outcome_name(r), v);
	/* 24.11.1: fields live with their VMCS: B's writes do not touch A's; VMCLEAR writes A back. */
	*(u32 *)vmcs_b = caps.revision;
	vmw(F_GUEST_RIP, 0xaaaa);
	vmclear(PA(vmcs_b));
	vmptrld(PA(vmcs_b));
	vmw(F_GUEST_RIP, 0xbbbb);
	vmptrld(PA(vmcs_a));
	check("vmcs-fields-per-vmcs", vmr(F_GUEST_RIP) == 0xaaaa, "VMCS A's guest RIP %lx after writing B's",
	      vmr(F_GUEST_RIP));
	vmclear(PA(vmcs_a));
	vmptrld(PA(vmcs_a));
	check("vmclear-keeps-fields", vmr(F_GUEST_RIP) == 0xaaaa, "guest RIP %lx after VMCLEAR and VMPTRLD",
	      vmr(F_GUEST_RIP));
}
