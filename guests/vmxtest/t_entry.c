/*
 * VM-entry checks (vol. 3C 26.2 and 26.3): invalid VM-execution, exit and entry controls fail
 * VMLAUNCH with VMfailValid(7) (26.2.1), invalid host state with VMfailValid(8) (26.2.2-26.2.4);
 * invalid guest state makes the entry fail after the instruction's checks: a VM exit with
 * reason 33 and bit 31 set, exit qualification 0 (4 for the VMCS link pointer), host state
 * loaded, launch state still clear (26.3.1, 26.8). Each case starts from a valid VMCS (vmcs_b).
 */
#include "vmxtest.h"

/* A fresh valid VMCS with one field changed. */
static void with_field(u64 enc, u64 value)
{
	vmcs_setup(vmcs_b, FN(l2_hlt));
	vmw(enc, value);
}

static void expect_ctl(const char *name, u64 enc, u64 value)
{
	with_field(enc, value);
	check_fail_valid(name, vm_run(0), 7);
}

static void expect_host(const char *name, u64 enc, u64 value)
{
	with_field(enc, value);
	check_fail_valid(name, vm_run(0), 8);
}

static void expect_guest(const char *name, u64 enc, u64 value, u64 qual)
{
	with_field(enc, value);
	int r = vm_run(0);
	u64 reason = r == 0 ? vmr(F_EXIT_REASON) : 0, q = r == 0 ? vmr(F_EXIT_QUAL) : 0;
	check(name, r == 0 && reason == (ENTRY_FAILURE | EXIT_INVALID_GUEST) && q == qual,
	      "%s, exit reason %lx qualification %lx, want 80000021 / %lx", r ? outcome_name(r) : "exit", reason, q, qual);
}

/* The lowest bit of a 32-bit control that may not be 1, or 0. */
static u32 forbidden_bit(u64 capmsr)
{
	u32 may = (u32)(capmsr >> 32);
	for (int b = 0; b < 32; b++)
		if (!(may & (1u << b)))
			return 1u << b;
	return 0;
}

static void controls(void)
{
	vmcs_setup(vmcs_b, FN(l2_hlt));
	u32 reason = run_l2(FN(l2_hlt));
	check("entry-baseline-valid", reason == EXIT_HLT, "the baseline VMCS does not enter: %x", reason);
	u32 b;
	if (must1(caps.pin))
		expect_ctl("entry-pin-must1-clear-7", F_PIN, 0);
	if ((b = forbidden_bit(caps.pin)))
		expect_ctl("entry-pin-not-allowed-7", F_PIN, must1(caps.pin) | b);
	if ((b = forbidden_bit(caps.proc)))
		expect_ctl("entry-proc-not-allowed-7", F_PROC, vmr(F_PROC) | b);
	if (caps.proc2 && (b = forbidden_bit(caps.proc2)))
		expect_ctl("entry-proc2-not-allowed-7", F_PROC2, vmr(F_PROC2) | b);
	if ((b = forbidden_bit(caps.exit)))
		expect_ctl("entry-exit-ctl-not-allowed-7", F_EXIT_CTLS, vmr(F_EXIT_CTLS) | b);
	if ((b = forbidden_bit(caps.entry)))
		expect_ctl("entry-entry-ctl-not-allowed-7", F_ENTRY_CTLS, vmr(F_ENTRY_CTLS) | b);
	/* 26.2.1.1: CR3-target count at most IA32_VMX_MISC[24:16]. */
	expect_ctl("entry-cr3-target-count-7", F_CR3_TARGET_COUNT, ((caps.misc >> 16) & 0x1ff) + 1);
	/* I/O and MSR bitmap addresses 4 KiB-aligned, within MAXPHYADDR. */
	if (may1(caps.proc, PROC_IO_BITMAPS)) {
		with_field(F_IO_BITMAP_A, PA(ept_target) + 0x800);
		vmw(F_IO_BITMAP_B, PA(ept_target));
		set_proc(PROC_IO_BITMAPS, 1);
		check_fail_valid("entry-io-bitmap-unaligned-7", vm_run(0), 7);
	}
	if (may1(caps.proc, PROC_MSR_BITMAPS)) {
		with_field(F_MSR_BITMAP, 1ul << caps.maxphyaddr);
		set_proc(PROC_MSR_BITMAPS, 1);
		check_fail_valid("entry-msr-bitmap-beyond-maxphyaddr-7", vm_run(0), 7);
	}
	/* Virtual NMIs need NMI exiting; NMI-window exiting needs virtual NMIs. */
	if (may1(caps.pin, PIN_VIRTUAL_NMIS))
		expect_ctl("entry-virtual-nmis-without-nmi-exiting-7", F_PIN, must1(caps.pin) | PIN_VIRTUAL_NMIS);
	if (may1(caps.proc, PROC_NMI_WINDOW) && may1(caps.pin, PIN_NMI_EXITING)) {
		with_field(F_PIN, must1(caps.pin) | PIN_NMI_EXITING);
		set_proc(PROC_NMI_WINDOW, 1);
		check_fail_valid("entry-nmi-window-without-virtual-nmis-7", vm_run(0), 7);
	}
	if (have_vpid)
		expect_ctl("entry-vpid-zero-7", F_VPID, 0);
	if (have_ept) {
		u64 eptp = vmr(F_EPTP);
		/* 24.6.11: memory type UC only if EPT_VPID_CAP[8]; walk length must be 4 (bits 5:3 = 3). */
		if (!((caps.ept_vpid >> 8) & 1))
			expect_ctl("entry-eptp-uc-unsupported-7", F_EPTP, eptp & ~7ul);
		expect_ctl("entry-eptp-walk-length-7", F_EPTP, (eptp & ~0x38ul) | (2 << 3));
		expect_ctl("entry-eptp-reserved-bits-7", F_EPTP, eptp | 0x80);
	}
	/* 26.2.1.3: VM-entry interruption information: type 1 is reserved; #UD has no error code;
	 * a software interrupt needs an instruction length in 1..15 unless MISC[30]. */
	expect_ctl("entry-event-reserved-type-7", F_ENTRY_INTR_INFO, 0x80000000u | (1 << 8) | 32);
	expect_ctl("entry-event-ud-with-error-code-7", F_ENTRY_INTR_INFO, 0x80000000u | (3 << 8) | (1 << 11) | 6);
	if (!((caps.misc >> 30) & 1)) {
		with_field(F_ENTRY_INTR_INFO, 0x80000000u | (4 << 8) | 0x80);
		vmw(F_ENTRY_INSN_LEN, 0);
		check_fail_valid("entry-event-swint-length-0-7", vm_run(0), 7);
	}
}

static void host_state(void)
{
	u64 cr0 = READ_CR(0), cr4 = READ_CR(4);
	/* 26.2.2: host CR0/CR4 fixed bits; CR4 reserved bits; CR3 within MAXPHYADDR. */
	expect_host("entry-host-cr0-ne-clear-8", F_HOST_CR0, cr0 & ~0x20ul);
	expect_host("entry-host-cr0-pg-clear-8", F_HOST_CR0, cr0 & ~0x80000000ul);
	expect_host("entry-host-cr4-vmxe-clear-8", F_HOST_CR4, cr4 & ~0x2000ul);
	u64 bad4 = 0;
	for (int b = 0; b < 32 && !bad4; b++)
		if (!((caps.cr4_fixed1 >> b) & 1))
			bad4 = 1ul << b;
	if (bad4)
		expect_host("entry-host-cr4-reserved-8", F_HOST_CR4, cr4 | bad4);
	expect_host("entry-host-cr3-beyond-maxphyaddr-8", F_HOST_CR3, READ_CR(3) | (1ul << caps.maxphyaddr));
	/* 26.2.3: selectors with RPL/TI 0, CS and TR not null; bases canonical. */
	expect_host("entry-host-cs-null-8", F_HOST_CS_SEL, 0);
	expect_host("entry-host-tr-null-8", F_HOST_TR_SEL, 0);
	expect_host("entry-host-ds-rpl-8", F_HOST_DS_SEL, 0x13);
	expect_host("entry-host-ss-ti-8", F_HOST_SS_SEL, 0x14);
	expect_host("entry-host-fs-base-noncanonical-8", F_HOST_FS_BASE, 0x0000800000000000ul);
	expect_host("entry-host-gdtr-base-noncanonical-8", F_HOST_GDTR_BASE, 0x8000000000000000ul);
	/* 26.2.4: a processor in IA-32e mode needs "host address-space size" = 1; RIP canonical. */
	expect_host("entry-host-addr-space-size-clear-8", F_EXIT_CTLS, vmr(F_EXIT_CTLS) & ~(u64)EXIT_HOST_64);
}

static void guest_state(void)
{
	u64 cr0 = READ_CR(0), cr4 = READ_CR(4);
	/* 26.3.1.1: CR0/CR4 fixed bits (no unrestricted guest: PE and PG fixed), IA-32e needs PAE. */
	expect_guest("entry-guest-cr0-pg-clear-33", F_GUEST_CR0, cr0 & ~0x80000000ul, 0);
	expect_guest("entry-guest-cr0-ne-clear-33", F_GUEST_CR0, cr0 & ~0x20ul, 0);
	expect_guest("entry-guest-cr4-vmxe-clear-33", F_GUEST_CR4, cr4 & ~0x2000ul, 0);
	expect_guest("entry-guest-ia32e-without-pae-33", F_GUEST_CR4, cr4 & ~0x20ul, 0);
	/* 26.3.1.4: RFLAGS bit 1 set, reserved bits clear. */
	expect_guest("entry-guest-rflags-bit1-clear-33", F_GUEST_RFLAGS, 0, 0);
	expect_guest("entry-guest-rflags-reserved-33", F_GUEST_RFLAGS, 0x8002, 0);
	/* 26.3.1.2: TR usable, a busy 64-bit TSS in an IA-32e guest; CS usable. */
	expect_guest("entry-guest-tr-unusable-33", F_GUEST_TR_AR, 0x1008b, 0);
	expect_guest("entry-guest-tr-16bit-busy-ia32e-33", F_GUEST_TR_AR, 0x83, 0);
	/* 26.3.1.5: activity state supported by IA32_VMX_MISC[8:6]; interruptibility reserved bits. */
	if (!((caps.misc >> 8) & 1))
		expect_guest("entry-guest-activity-wait-sipi-unsupported-33", F_GUEST_ACTIVITY, 3, 0);
	expect_guest("entry-guest-interruptibility-reserved-33", F_GUEST_INTERRUPTIBILITY, 1u << 5, 0);
	/* 26.3.1.4: RFLAGS.IF must be 1 when an external interrupt is injected. */
	expect_guest("entry-guest-inject-extint-if-clear-33", F_ENTRY_INTR_INFO, 0x80000000u | 32, 0);
	/* 26.3.1.5: STI blocking requires the active state. */
	with_field(F_GUEST_INTERRUPTIBILITY, 1);
	vmw(F_GUEST_ACTIVITY, 1);
	int r = vm_run(0);
	check("entry-guest-sti-blocking-hlt-state-33", r == 0 && vmr(F_EXIT_REASON) == (ENTRY_FAILURE | EXIT_INVALID_GUEST),
	      "%s, exit reason %lx", r ? outcome_name(r) : "exit", vmr(F_EXIT_REASON));
	/* 26.3.1.5 / 26.8: a VMCS link pointer that is not all ones must name a VMCS with the
	 * processor's revision and the right shadow indicator; failure reports qualification 4. */
	*(u32 *)vmcs_shadow = caps.revision + 1;
	expect_guest("entry-guest-link-pointer-bad-revision-33-qual4", F_LINK_PTR, PA(vmcs_shadow), 4);
	*(u32 *)vmcs_shadow = caps.revision | 0x80000000u;
	/* 26.7: a VM entry that failed on guest state leaves the launch state clear. */
	check_fail_valid("entry-guest-failure-stays-clear-5", vm_run(1), 5);
}

void t_entry(void)
{
	controls();
	host_state();
	guest_state();
}
