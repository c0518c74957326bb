/*
 * VM exits the CPU implements, from an L2 that runs one instruction each time: basic exit reason
 * (appendix C), guest RIP at the instruction (27.3.3: instruction-caused exits save the RIP of the
 * instruction), VM-exit instruction length (27.2.4), and the exit qualification (27.2.1, tables
 * 27-3 control-register accesses, 27-5 I/O instructions) or interruption information
 * (27.2.2, table 27-9: valid | type << 8 | vector, bit 11 error code valid). Which instructions
 * exit under which controls: 25.1.2 (unconditional) and 25.1.3 (controls).
 */
#include "vmxtest.h"

static u8 io_a[4096] PAGE, io_b[4096] PAGE, msr_bm[4096] PAGE;

/* Reason, guest RIP and (len > 0) instruction length of the last exit. */
static int exit_is(const char *name, u32 reason, u32 want, void *at, u64 len)
{
	u64 rip = vmr(F_GUEST_RIP), l = vmr(F_EXIT_INSN_LEN);
	return check(name, reason == want && rip == (u64)at && (len == 0 || l == len),
		     "exit reason %x rip %lx length %lu, want %u at %lx length %lu", reason, rip, l, want, (u64)at, len);
}

static void exit_qual(const char *name, u64 want)
{
	u64 q = vmr(F_EXIT_QUAL);
	check(name, q == want, "exit qualification %lx, want %lx", q, want);
}

static void exc_exit(const char *name, void *start, void *at, u32 info, u64 err, u64 len)
{
	u32 r = run_l2(FN(start));
	u64 i = vmr(F_EXIT_INTR_INFO), e = vmr(F_EXIT_INTR_ERROR), rip = vmr(F_GUEST_RIP), l = vmr(F_EXIT_INSN_LEN);
	check(name, r == EXIT_EXCEPTION && i == info && ((info & (1 << 11)) == 0 || e == err) && rip == (u64)at &&
			    (len == 0 || l == len),
	      "reason %x info %lx error %lx rip %lx length %lu, want 0 / %x / %lx / %lx / %lu", r, i, e, rip, l, info, err,
	      (u64)at, len);
}

static void io(void)
{
	if (!may1(caps.proc, PROC_UNCOND_IO))
		return info("unconditional I/O exiting not offered: I/O checks skipped");
	set_proc(PROC_UNCOND_IO, 1);
	exit_is("exit-io-out-imm", run_l2(FN(l2_out80)), EXIT_IO, l2_out80_at, 2);
	exit_qual("exit-io-out-imm-qual", 0x80u << 16 | 1 << 6);
	exit_is("exit-io-in-dx-word", run_l2(FN(l2_inw)), EXIT_IO, l2_inw_at, 2);
	exit_qual("exit-io-in-dx-word-qual", 0x1234u << 16 | 1 << 3 | 1);
	exit_is("exit-io-rep-outs", run_l2(FN(l2_repouts)), EXIT_IO, l2_repouts_at, 2);
	exit_qual("exit-io-rep-outs-qual", 0x3000u << 16 | 1 << 5 | 1 << 4);
	/* 27.2.1: INS/OUTS exits give the linear address of the memory operand; with BASIC[54] the
	 * instruction information has the address size (bits 9:7) and the segment (bits 17:15). */
	check("exit-io-outs-linear-address", vmr(F_GUEST_LINEAR_ADDR) == (u64)l2_out, "guest linear address %lx, want %lx",
	      vmr(F_GUEST_LINEAR_ADDR), (u64)l2_out);
	if ((caps.basic >> 54) & 1) {
		u64 ii = vmr(F_EXIT_INSN_INFO);
		check("exit-io-outs-insn-info", (ii & 0x38380) == (2 << 7 | 3 << 15), "instruction information %lx", ii);
	}
	set_proc(PROC_UNCOND_IO, 0);
	if (!may1(caps.proc, PROC_IO_BITMAPS))
		return info("I/O bitmaps not offered: bitmap checks skipped");
	/* 25.1.3: with I/O bitmaps, an access exits if the bit of any port it touches is set. */
	io_a[0x80 / 8] = 1 << (0x80 % 8);
	vmw(F_IO_BITMAP_A, PA(io_a));
	vmw(F_IO_BITMAP_B, PA(io_b));
	set_proc(PROC_IO_BITMAPS | PROC_UNCOND_IO, 1); /* the bitmaps win over unconditional exiting */
	exit_is("exit-io-bitmap-clear-no-exit", run_l2(FN(l2_out81)), EXIT_HLT, l2_out81_at, 1);
	exit_is("exit-io-bitmap-set", run_l2(FN(l2_out80)), EXIT_IO, l2_out80_at, 2);
	exit_is("exit-io-bitmap-spanning", run_l2(FN(l2_outw7f)), EXIT_IO, l2_outw7f_at, 2);
	exit_qual("exit-io-bitmap-spanning-qual", 0x7fu << 16 | 1);
	set_proc(PROC_IO_BITMAPS | PROC_UNCOND_IO, 0);
}

static void msr(void)
{
	/* 25.1.3: without MSR bitmaps every RDMSR/WRMSR exits. */
	exit_is("exit-rdmsr-no-bitmap", run_l2(FN(l2_rdmsr)), EXIT_RDMSR, l2_rdmsr_at, 2);
	exit_qual("exit-rdmsr-qual-0", 0);
	exit_is("exit-wrmsr-no-bitmap", run_l2(FN(l2_wrmsr)), EXIT_WRMSR, l2_wrmsr_at, 2);
	if (!may1(caps.proc, PROC_MSR_BITMAPS))
		return info("MSR bitmaps not offered: bitmap checks skipped");
	/* 24.6.9: read-low at 0, read-high at 1024, write-low at 2048, write-high at 3072. */
	msr_bm[0x174 / 8] = 1 << (0x174 % 8);
	msr_bm[1024 + 0x100 / 8] = 1 << (0x100 % 8);
	vmw(F_MSR_BITMAP, PA(msr_bm));
	set_proc(PROC_MSR_BITMAPS, 1);
	exit_is("exit-rdmsr-bitmap-set", run_l2(FN(l2_rdmsr)), EXIT_RDMSR, l2_rdmsr_at, 2);
	exit_is("exit-wrmsr-bitmap-clear-no-exit", run_l2(FN(l2_wrmsr)), EXIT_HLT, l2_wrmsr_at + 2, 1);
	exit_is("exit-rdmsr-bitmap-high-range", run_l2(FN(l2_rdmsr_hi)), EXIT_RDMSR, l2_rdmsr_hi_at, 2);
	set_proc(PROC_MSR_BITMAPS, 0);
}

static void cr(void)
{
	/* 25.3: reads of CR0 see the read shadow in host-owned bits; 25.1.3: MOV to CR0/CR4 exits when
	 * a host-owned bit would differ from the shadow; CLTS when TS is owned and set in the shadow. */
	vmw(F_CR0_MASK, 8);
	vmw(F_CR0_SHADOW, 8);
	l2_out[0] = 0;
	exit_is("cr0-read-shadow-no-exit", run_l2(FN(l2_cr0_read)), EXIT_HLT, l2_cr0_read_at, 1);
	check("cr0-read-shadow-value", (l2_out[0] & 8) == 8 && (READ_CR(0) & 8) == 0, "L2 read CR0 %lx", l2_out[0]);
	vmw(F_CR0_SHADOW, 0);
	exit_is("exit-cr0-write-owned-bit", run_l2(FN(l2_cr0_ts)), EXIT_CR, l2_cr0_ts_at, 3);
	exit_qual("exit-cr0-write-qual", 0);
	vmw(F_CR0_SHADOW, 8);
	exit_is("exit-clts", run_l2(FN(l2_clts)), EXIT_CR, l2_clts_at, 2);
	exit_qual("exit-clts-qual", 2 << 4);
	/* 25.3: SMSW reads the shadow in host-owned bits; 25.1.3: LMSW exits when it would write an
	 * owned bit (3:1) different from the shadow; qualification type 3, source in 31:16. */
	exit_is("smsw-read-shadow-no-exit", run_l2(FN(l2_smsw)), EXIT_HLT, l2_smsw_at, 1);
	check("smsw-read-shadow-value", (l2_out[0] & 8) == 8, "L2's SMSW read %lx", l2_out[0]);
	vmw(F_CR0_SHADOW, 0);
	exit_is("exit-lmsw", run_l2(FN(l2_lmsw)), EXIT_CR, l2_lmsw_at, 3);
	exit_qual("exit-lmsw-qual", 0x9u << 16 | 3 << 4);
	vmw(F_CR0_MASK, 0);
	vmw(F_CR4_MASK, 0x2000);
	vmw(F_CR4_SHADOW, 0);
	u64 cr4 = vmr(F_GUEST_CR4);
	exit_is("cr4-write-shadow-equal-no-exit", run_l2(FN(l2_cr4_rw)), EXIT_HLT, l2_cr4_rw_at, 1);
	check("cr4-read-shadow-value", (l2_out[0] & 0x2000) == 0, "L2 read CR4 %lx with VMXE owned, shadow 0", l2_out[0]);
	check("cr4-owned-bit-kept", vmr(F_GUEST_CR4) == cr4, "guest CR4 %lx after L2's write, was %lx (25.3)",
	      vmr(F_GUEST_CR4), cr4);
	exit_is("exit-cr4-write-owned-bit", run_l2(FN(l2_cr4_set)), EXIT_CR, l2_cr4_set_at, 3);
	exit_qual("exit-cr4-write-qual", 4 | 1 << 8);
	vmw(F_CR4_MASK, 0);
	if (may1(caps.proc, PROC_CR3_STORE)) {
		set_proc(PROC_CR3_STORE, 1);
		exit_is("exit-cr3-store", run_l2(FN(l2_cr3_store)), EXIT_CR, l2_cr3_store_at, 3);
		exit_qual("exit-cr3-store-qual", 3 | 1 << 4 | 3 << 8);
		set_proc(PROC_CR3_STORE, 0);
	}
	if (may1(caps.proc, PROC_CR3_LOAD)) {
		set_proc(PROC_CR3_LOAD, 1);
		exit_is("exit-cr3-load", run_l2(FN(l2_cr3_load)), EXIT_CR, l2_cr3_load_at, 3);
		exit_qual("exit-cr3-load-qual", 3 | 2 << 8);
		set_proc(PROC_CR3_LOAD, 0);
	}
	if (!(must1(caps.proc) & (PROC_CR3_LOAD | PROC_CR3_STORE)))
		exit_is("cr3-no-exiting-no-exit", run_l2(FN(l2_cr3_load)), EXIT_HLT, l2_cr3_load_at + 3, 1);
	if (may1(caps.proc, PROC_CR8_STORE | PROC_CR8_LOAD)) {
		set_proc(PROC_CR8_STORE | PROC_CR8_LOAD, 1);
		exit_is("exit-cr8-store", run_l2(FN(l2_cr8_store)), EXIT_CR, l2_cr8_store_at, 4);
		exit_qual("exit-cr8-store-qual", 8 | 1 << 4 | 2 << 8);
		exit_is("exit-cr8-load", run_l2(FN(l2_cr8_load)), EXIT_CR, l2_cr8_load_at, 4);
		exit_qual("exit-cr8-load-qual", 8 | 6 << 8);
		set_proc(PROC_CR8_STORE | PROC_CR8_LOAD, 0);
	}
}

static void exceptions(void)
{
	/* Exception bitmap all ones (vmcs_setup): every exception exits (25.2). */
	exc_exit("exit-exception-ud", l2_ud, l2_ud_at, 0x80000000u | 3 << 8 | 6, 0, 0);
	exc_exit("exit-exception-int3", l2_int3, l2_int3_at, 0x80000000u | 6 << 8 | 3, 0, 1);
	exc_exit("exit-exception-gp-error-code", l2_gp, l2_gp_at, 0x80000000u | 1 << 11 | 3 << 8 | 13, 0x1000, 0);
	exc_exit("exit-exception-pf-read", l2_pf_read, l2_pf_read_at, 0x80000000u | 1 << 11 | 3 << 8 | 14, 0, 0);
	exit_qual("exit-exception-pf-qual-cr2", 0x40005008);
	exc_exit("exit-exception-pf-write", l2_pf_write, l2_pf_write_at, 0x80000000u | 1 << 11 | 3 << 8 | 14, 2, 0);
	/* 27.1: a #PF that exits does not load CR2 (the qualification carries the address). */
	WRITE_CR(2, 0x1111000);
	run_l2(FN(l2_pf_read));
	check("exit-exception-pf-cr2-unchanged", READ_CR(2) == 0x1111000, "CR2 %lx after a #PF exit", READ_CR(2));
	/* 25.2: #PF exits iff (PFEC & mask) == match when bit 14 is set; else it is delivered (l2_idt). */
	vmw(F_PFEC_MASK, 2);
	vmw(F_PFEC_MATCH, 2);
	exit_is("pfec-mismatch-delivered", run_l2(FN(l2_pf_read)), EXIT_HLT, l2_trap, 1);
	exc_exit("pfec-match-exits", l2_pf_write, l2_pf_write_at, 0x80000000u | 1 << 11 | 3 << 8 | 14, 2, 0);
	vmw(F_PFEC_MASK, 0);
	vmw(F_PFEC_MATCH, 0);
	/* Bit clear: #UD goes through L2's IDT. */
	vmw(F_EXC_BITMAP, ~(1u << 6));
	exit_is("exception-bitmap-clear-delivered", run_l2(FN(l2_ud)), EXIT_HLT, l2_trap, 1);
	/* 25.2: a triple fault in non-root operation is a VM exit (reason 2): no exception exits and an
	 * IDT that cannot deliver anything. */
	vmw(F_EXC_BITMAP, 0);
	vmw(F_GUEST_IDTR_LIMIT, 0);
	u32 r = run_l2(FN(l2_ud));
	check("exit-triple-fault", r == EXIT_TRIPLE_FAULT, "exit reason %x, want 2", r);
	vmw(F_GUEST_IDTR_LIMIT, 32 * 16 - 1);
	vmw(F_EXC_BITMAP, 0xffffffff);
}

/* 26.5: event injection at VM entry delivers through L2's IDT (the exception bitmap does not
 * apply to injected events); 27.2 ("... updating VM-entry control fields"): VM exits clear the
 * valid bit of the VM-entry interruption-information field. */
static void injection(void)
{
	vmw(F_ENTRY_INTR_INFO, 0x80000000u | 3 << 8 | 6); /* #UD, hardware exception */
	u32 r = run_l2(FN(l2_hlt));
	check("entry-inject-ud-delivered", r == EXIT_HLT && vmr(F_GUEST_RIP) == (u64)l2_trap,
	      "reason %x rip %lx, want HLT in L2's #UD handler %lx", r, vmr(F_GUEST_RIP), (u64)l2_trap);
	check("entry-inject-valid-cleared", (vmr(F_ENTRY_INTR_INFO) & 0x80000000u) == 0, "entry interruption info %lx",
	      vmr(F_ENTRY_INTR_INFO));
	/* A software exception pushes RIP + the VM-entry instruction length (26.5.1.1). */
	vmw(F_ENTRY_INTR_INFO, 0x80000000u | 6 << 8 | 3); /* INT3, software exception */
	vmw(F_ENTRY_INSN_LEN, 1);
	r = run_l2(FN(l2_hlt));
	u64 pushed = *(volatile u64 *)(PA(l2_stack_top) - 40); /* SS, RSP, RFLAGS, CS, RIP */
	check("entry-inject-int3-return-address", r == EXIT_HLT && pushed == (u64)l2_hlt + 1,
	      "reason %x, pushed RIP %lx want %lx", r, pushed, (u64)l2_hlt + 1);
}

static void windows(void)
{
	/* 25.2 / 26.7.5: interrupt-window exiting with RFLAGS.IF = 1 and no STI blocking exits before
	 * the first instruction; with STI blocking the first instruction runs. */
	if (may1(caps.proc, PROC_INTR_WINDOW)) {
		set_proc(PROC_INTR_WINDOW, 1);
		next_rflags = 0x202;
		exit_is("exit-interrupt-window", run_l2(FN(l2_hlt)), EXIT_INTR_WINDOW, l2_hlt, 0);
		vmw(F_GUEST_INTERRUPTIBILITY, 1);
		next_rflags = 0x202;
		exit_is("interrupt-window-sti-blocking", run_l2(FN(l2_hlt)), EXIT_HLT, l2_hlt, 1);
		vmw(F_GUEST_INTERRUPTIBILITY, 0);
		exit_is("interrupt-window-if-clear", run_l2(FN(l2_hlt)), EXIT_HLT, l2_hlt, 1);
		set_proc(PROC_INTR_WINDOW, 0);
	}
	/* 26.7.6: NMI-window exiting without virtual-NMI blocking exits before the first instruction. */
	if (may1(caps.proc, PROC_NMI_WINDOW) && may1(caps.pin, PIN_VIRTUAL_NMIS | PIN_NMI_EXITING)) {
		set_pin(PIN_VIRTUAL_NMIS | PIN_NMI_EXITING, 1);
		set_proc(PROC_NMI_WINDOW, 1);
		exit_is("exit-nmi-window", run_l2(FN(l2_hlt)), EXIT_NMI_WINDOW, l2_hlt, 0);
		vmw(F_GUEST_INTERRUPTIBILITY, 8);
		exit_is("nmi-window-blocked", run_l2(FN(l2_hlt)), EXIT_HLT, l2_hlt, 1);
		vmw(F_GUEST_INTERRUPTIBILITY, 0);
		set_proc(PROC_NMI_WINDOW, 0);
		set_pin(PIN_VIRTUAL_NMIS | PIN_NMI_EXITING, 0);
	}
	/* 25.5.1 / 26.7.4: the VMX-preemption timer at 0 exits before the first instruction. */
	if (may1(caps.pin, PIN_PREEMPT_TIMER)) {
		set_pin(PIN_PREEMPT_TIMER, 1);
		vmw(F_PREEMPT_TIMER, 0);
		exit_is("exit-preemption-timer-zero", run_l2(FN(l2_hlt)), EXIT_PREEMPT_TIMER, l2_hlt, 0);
		set_pin(PIN_PREEMPT_TIMER, 0);
	} else {
		info("VMX-preemption timer not offered (IA32_VMX_PINBASED_CTLS[38] = 0): not checked");
	}
}

/* 25.1.2: every VMX instruction exits in non-root operation (appendix C reasons). Table 27-13:
 * memory operand [rbx]: address size 64 (9:7 = 2), DS (17:15 = 3), no index (bit 22), base RBX
 * (26:23 = 3); INVEPT/INVVPID name their register operand in 31:28; qualification = displacement. */
static void insn_exit(const char *name, void *start, void *at, u32 reason, u64 len, u32 reg2)
{
	u32 r = run_l2(FN(start));
	u64 ii = vmr(F_EXIT_INSN_INFO), q = vmr(F_EXIT_QUAL), rip = vmr(F_GUEST_RIP), l = vmr(F_EXIT_INSN_LEN);
	u64 mask = reg2 ? 0xffff8783ul : 0x0fff8783ul, want = 2 << 7 | 3 << 15 | 1 << 22 | 3 << 23 | (u64)reg2 << 28;
	check(name, r == reason && rip == (u64)at && l == len && (ii & mask) == want && q == 0,
	      "reason %u rip %lx length %lu info %lx qual %lx, want %u / %lx / %lu / %lx / 0", r, rip, l, ii, q, reason,
	      (u64)at, len, want);
}

static void vmx_insn_exits(void)
{
	insn_exit("exit-vmclear-l2-insn-info", l2_vmclear, l2_vmclear_at, 19, 4, 0);
	insn_exit("exit-vmxon-l2-insn-info", l2_vmxon, l2_vmxon_at, 27, 4, 0);
	insn_exit("exit-vmptrst-l2-insn-info", l2_vmptrst, l2_vmptrst_at, 22, 3, 0);
	insn_exit("exit-invept-l2-insn-info", l2_invept, l2_invept_at, 50, 5, 1);
	insn_exit("exit-invvpid-l2-insn-info", l2_invvpid, l2_invvpid_at, 53, 5, 2);
	exit_is("exit-vmlaunch-l2", run_l2(FN(l2_vmlaunch)), 20, l2_vmlaunch_at, 3);
	exit_is("exit-vmresume-l2", run_l2(FN(l2_vmresume)), 24, l2_vmresume_at, 3);
	exit_is("exit-vmxoff-l2", run_l2(FN(l2_vmxoff)), 26, l2_vmxoff_at, 3);
}

void t_exits(void)
{
	vmcs_setup(vmcs_a, FN(l2_hlt));
	exit_is("exit-hlt", run_l2(FN(l2_hlt)), EXIT_HLT, l2_hlt, 1);
	exit_qual("exit-hlt-qual-0", 0);
	exit_is("exit-cpuid", run_l2(FN(l2_cpuid)), EXIT_CPUID, l2_cpuid_at, 2);
	exit_is("exit-vmcall", run_l2(FN(l2_vmcall)), EXIT_VMCALL, l2_vmcall_at, 3);
	if (may1(caps.proc, PROC_INVLPG)) {
		set_proc(PROC_INVLPG, 1);
		exit_is("exit-invlpg", run_l2(FN(l2_invlpg)), EXIT_INVLPG, l2_invlpg_at, 3);
		exit_qual("exit-invlpg-qual-linear", 0x123456);
		set_proc(PROC_INVLPG, 0);
	}
	if (may1(caps.proc, PROC_RDTSC)) {
		set_proc(PROC_RDTSC, 1);
		exit_is("exit-rdtsc", run_l2(FN(l2_rdtsc)), EXIT_RDTSC, l2_rdtsc_at, 2);
		set_proc(PROC_RDTSC, 0);
		exit_is("rdtsc-no-exiting-no-exit", run_l2(FN(l2_rdtsc)), EXIT_HLT, l2_rdtsc_at + 2, 1);
	}
	if (may1(caps.proc2, PROC2_WBINVD)) {
		set_proc2(PROC2_WBINVD, 1);
		exit_is("exit-wbinvd", run_l2(FN(l2_wbinvd)), EXIT_WBINVD, l2_wbinvd_at, 2);
		set_proc2(PROC2_WBINVD, 0);
	}
	/* 25.1.2: VMX instructions in non-root operation exit (no shadowing here); 27.2.5 table 27-14:
	 * VMREAD's instruction information, register form: bit 10, reg1 in 6:3, reg2 in 31:28. */
	l2_arg[0] = F_GUEST_RIP;
	exit_is("exit-vmread-l2", run_l2(FN(l2_vmread)), EXIT_VMREAD, l2_vmread_at, 3);
	u64 ii = vmr(F_EXIT_INSN_INFO);
	check("exit-vmread-insn-info-reg", (ii & 0xf0000478) == (1 << 10 | 3 << 3), "instruction information %lx", ii);
	exit_is("exit-vmread-mem-l2", run_l2(FN(l2_vmread_mem)), EXIT_VMREAD, l2_vmread_mem_at, 5);
	ii = vmr(F_EXIT_INSN_INFO);
	/* scale 3, address size 64, memory, DS, index RCX, base RBX, reg2 RAX; qualification = disp. */
	check("exit-vmread-insn-info-mem", (ii & 0xfffff783) == (3 | 2 << 7 | 3 << 15 | 1 << 18 | 3 << 23),
	      "instruction information %lx", ii);
	exit_qual("exit-vmread-qual-displacement", 0x10);
	exit_is("exit-vmptrld-l2", run_l2(FN(l2_vmptrld)), EXIT_VMPTRLD, l2_vmptrld_at, 7);
	vmx_insn_exits();
	io();
	msr();
	cr();
	exceptions();
	injection();
	windows();
}
