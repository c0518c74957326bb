/*
 * Code the checks run outside vmxtest's own CPL-0 64-bit context: snippets for CPL 3 and
 * compatibility mode (call_guarded), and the L2 guest snippets. Each L2 snippet ends in an
 * instruction that exits (HLT unless said otherwise); the label *_at marks the instruction whose
 * exit a check expects, so guest RIP and instruction length can be compared exactly.
 * L2 writes what it observed to l2_out[] (shared memory: L2's EPT maps it identically).
 */
#define G(x) .globl x; x:
	.text
	.code64
/* ---- CPL 3, 64-bit (call_guarded mode 1) ---- */
G(u_vmxon)
	vmxon vmxon_ptr(%rip)
	ud2
G(u_vmread)
	movl $0x4402, %eax
G(u_vmread_at)
	vmread %rax, %rbx
	ud2

/* ---- compatibility mode (call_guarded mode 2) ---- */
	.code32
G(c_vmread)
	vmread %eax, %ebx
	ud2
G(c_vmxoff)
	vmxoff
	ud2
	.code64

/* ---- L2 snippets ---- */
G(l2_hlt)
	hlt
G(l2_trap)			/* L2's own IDT handlers (l2_idt): halt where the fault was delivered */
	hlt
	jmp l2_trap
G(l2_cpuid)
	xorl %eax, %eax
	xorl %ecx, %ecx
G(l2_cpuid_at)
	cpuid
	hlt
G(l2_out80)
	movb $0x5a, %al
G(l2_out80_at)
	outb %al, $0x80
	hlt
G(l2_inw)
	movw $0x1234, %dx
G(l2_inw_at)
	inw %dx, %ax
	hlt
G(l2_repouts)
	movw $0x3000, %dx
	leaq l2_out(%rip), %rsi
	movl $1, %ecx
G(l2_repouts_at)
	rep outsb
	hlt
G(l2_out81)			/* port 0x81: clear in the I/O bitmap: no exit, then HLT */
	outb %al, $0x81
G(l2_out81_at)
	hlt
G(l2_outw7f)			/* ports 0x7f and 0x80: 0x80 set in the bitmap: exits */
	movw $0x7f, %dx
G(l2_outw7f_at)
	outw %ax, %dx
	hlt
G(l2_rdmsr)
	movl $0x174, %ecx
G(l2_rdmsr_at)
	rdmsr
	hlt
G(l2_wrmsr)
	movl $0x174, %ecx
	xorl %eax, %eax
	xorl %edx, %edx
G(l2_wrmsr_at)
	wrmsr
	hlt
G(l2_rdmsr_hi)
	movl $0xc0000100, %ecx
G(l2_rdmsr_hi_at)
	rdmsr
	hlt
G(l2_cr0_read)			/* CR0 as L2 sees it (read shadow for host-owned bits) */
	movq %cr0, %rax
	movq %rax, l2_out(%rip)
G(l2_cr0_read_at)
	hlt
G(l2_cr0_ts)
	movq %cr0, %rax
	orq $8, %rax
G(l2_cr0_ts_at)
	movq %rax, %cr0
	hlt
G(l2_cr4_rw)			/* read CR4 (VMXE owned, shadow 0), write it back: no exit */
	movq %cr4, %rax
	movq %rax, l2_out(%rip)
	movq %rax, %cr4
G(l2_cr4_rw_at)
	hlt
G(l2_cr4_set)
	movq %cr4, %rcx
	orq $0x2000, %rcx
G(l2_cr4_set_at)
	movq %rcx, %cr4
	hlt
G(l2_cr3_store)
G(l2_cr3_store_at)
	movq %cr3, %rbx
	hlt
G(l2_cr3_load)
	movq %cr3, %rdx
G(l2_cr3_load_at)
	movq %rdx, %cr3
	hlt
G(l2_cr8_store)
G(l2_cr8_store_at)
	movq %cr8, %rdx
	hlt
G(l2_cr8_load)
	xorl %esi, %esi
G(l2_cr8_load_at)
	movq %rsi, %cr8
	hlt
G(l2_clts)
G(l2_clts_at)
	clts
	hlt
G(l2_lmsw)
	movl $0x9, %eax
G(l2_lmsw_at)
	lmsw %ax
	hlt
G(l2_smsw)
	smsw %rax
	movq %rax, l2_out(%rip)
G(l2_smsw_at)
	hlt
G(l2_invlpg)
	movq $0x123456, %rax
G(l2_invlpg_at)
	invlpg (%rax)
	hlt
G(l2_rdtsc)
G(l2_rdtsc_at)
	rdtsc
	hlt
G(l2_ud)
G(l2_ud_at)
	ud2
	hlt
G(l2_int3)
G(l2_int3_at)
	int3
	hlt
G(l2_gp)
	movl $0x1000, %eax
G(l2_gp_at)
	movl %eax, %ds
	hlt
G(l2_pf_read)
G(l2_pf_read_at)
	movq 0x40005008, %rax
	hlt
G(l2_pf_write)
G(l2_pf_write_at)
	movq %rax, 0x40005010
	hlt
G(l2_vmcall)
G(l2_vmcall_at)
	vmcall
	hlt
G(l2_invd)
G(l2_invd_at)
	invd
	hlt
G(l2_wbinvd)
G(l2_wbinvd_at)
	wbinvd
	hlt
G(l2_ept_read)
G(l2_ept_read_at)
	movq 0x40000010, %rax
	movq %rax, l2_out(%rip)
	hlt
G(l2_ept_write)
	movq $0x77, %rax
G(l2_ept_write_at)
	movq %rax, 0x40000020
	hlt
G(l2_ept_fetch)
	movq $0x40000000, %rax
G(l2_ept_fetch_at)
	jmp *%rax
G(l2_ept_walk)
G(l2_ept_walk_at)
	movq 0x80000018, %rax
	hlt
/* VMREAD/VMWRITE in non-root operation; results and RFLAGS to l2_out[0..3]. */
G(l2_vmread)			/* rax = encoding (set by the host through guest RAX? no: l2_arg) */
	movq l2_arg(%rip), %rax
	xorl %ebx, %ebx
G(l2_vmread_at)
	vmread %rax, %rbx
	pushfq
	popq %rcx
	movq %rbx, l2_out(%rip)
	movq %rcx, l2_out+8(%rip)
	hlt
G(l2_vmread_mem)
	movq l2_arg(%rip), %rax
	leaq l2_out(%rip), %rbx
	movl $1, %ecx
G(l2_vmread_mem_at)
	vmread %rax, 0x10(%rbx,%rcx,8)
	hlt
G(l2_vmwrite)
	movq l2_arg(%rip), %rax
	movq l2_arg+8(%rip), %rbx
G(l2_vmwrite_at)
	vmwrite %rbx, %rax
	pushfq
	popq %rcx
	movq %rcx, l2_out+8(%rip)
	hlt
G(l2_vmptrld)
G(l2_vmptrld_at)
	vmptrld vmcs_ptr(%rip)
	hlt
/* VMX instructions with a base-register memory operand: [rbx] (instruction information) */
G(l2_vmclear)
	leaq vmcs_ptr(%rip), %rbx
G(l2_vmclear_at)
	vmclear (%rbx)
	hlt
G(l2_vmxon)
	leaq vmxon_ptr(%rip), %rbx
G(l2_vmxon_at)
	vmxon (%rbx)
	hlt
G(l2_vmptrst)
	leaq l2_out(%rip), %rbx
G(l2_vmptrst_at)
	vmptrst (%rbx)
	hlt
G(l2_invept)
	leaq l2_arg(%rip), %rbx
	movl $1, %ecx
G(l2_invept_at)
	invept (%rbx), %rcx
	hlt
G(l2_invvpid)
	leaq l2_arg(%rip), %rbx
	movl $2, %edx
G(l2_invvpid_at)
	invvpid (%rbx), %rdx
	hlt
G(l2_vmlaunch)
G(l2_vmlaunch_at)
	vmlaunch
	hlt
G(l2_vmresume)
G(l2_vmresume_at)
	vmresume
	hlt
G(l2_vmxoff)
G(l2_vmxoff_at)
	vmxoff
	hlt

	.bss
	.align 16
	.skip 16384
	.globl l2_stack_top
l2_stack_top:

/* ---- Hyper-V hypercalls (t_hyperv.c) ---- */
	.text
G(u_hvcall)			/* CPL 3: a hypercall is #UD (TLFS); HLT would be #GP instead */
	movl $2, %ecx
G(u_hvcall_at)
	vmcall
	hlt
G(l2_hvcall)			/* L2: the hypercall in l2_arg[0] (input value), l2_arg[1] (input GPA); RAX to l2_out[0] */
	movq l2_arg(%rip), %rcx
	movq l2_arg+8(%rip), %rdx
	xorl %r8d, %r8d
	movq $-1, %rax
G(l2_hvcall_at)
	vmcall
	movq %rax, l2_out(%rip)
	hlt
G(l2_hvloop)			/* L2: l2_out[2] flush hypercalls (l2_arg as l2_hvcall), then HLT; the count lives in memory (L1 does not keep L2's GPRs) */
	movq l2_arg(%rip), %rcx
	movq l2_arg+8(%rip), %rdx
	xorl %r8d, %r8d
	vmcall
	decq l2_out+16(%rip)
	jnz l2_hvloop
	hlt
