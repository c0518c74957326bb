/*
 * Exceptions, guarded calls and VM entry for vmxtest.
 *
 * - stubN / trap_common: every exception vector 0..31 saves the GPRs and calls trap_handler
 *   (main.c), which either resumes (at recover_rip when a check expected a fault) or asks for
 *   guard_restore: the way back from call_guarded's CPL-3 and compatibility-mode excursions.
 * - call_guarded(fn, mode): run fn at CPL 0 (mode 0), at CPL 3 in 64-bit mode (1) or at CPL 0 in
 *   compatibility mode (2); returns the vector of the first exception, or -1 if fn returned.
 * - vm_run(resume): VMLAUNCH (0) or VMRESUME (1) with HOST_RSP/HOST_RIP set to come back here
 *   (evm_run: the same with an enlightened VMCS);
 *   returns 0 after a VM exit (or a VM-entry failure, which also loads the host state), 1 on
 *   VMfailInvalid, 2 on VMfailValid.
 */
	.text
	.code64

.macro STUB v, err
	.globl stub\v
stub\v:
	.if \err == 0
	pushq $0
	.endif
	pushq $\v
	jmp trap_common
.endm

STUB 0,0
STUB 1,0
STUB 2,0
STUB 3,0
STUB 4,0
STUB 5,0
STUB 6,0
STUB 7,0
STUB 8,1
STUB 9,0
STUB 10,1
STUB 11,1
STUB 12,1
STUB 13,1
STUB 14,1
STUB 15,0
STUB 16,0
STUB 17,1
STUB 18,0
STUB 19,0
STUB 20,0
STUB 21,1
STUB 22,0
STUB 23,0
STUB 24,0
STUB 25,0
STUB 26,0
STUB 27,0
STUB 28,0
STUB 29,0
STUB 30,0
STUB 31,0

	.section .rodata
	.align 8
	.globl stub_table
stub_table:
	.irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad stub\n
	.endr

	.text
trap_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	cld
	call trap_handler
	testl %eax, %eax
	jnz guard_restore
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp
	iretq

	.globl call_guarded
call_guarded:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, guard_rsp(%rip)
	movl $1, guard_active(%rip)
	cmpl $1, %esi
	je 1f
	cmpl $2, %esi
	je 2f
	call *%rdi
	movl $0, guard_active(%rip)
	movq $-1, %rax
	jmp 3f
1:	pushq $0x1b                       /* SS: user data */
	leaq user_stack_top(%rip), %rax
	pushq %rax
	pushq $2                          /* RFLAGS: IF = 0 */
	pushq $0x23                       /* CS: user code, 64-bit */
	pushq %rdi
	iretq
2:	pushq $0x28                       /* CS: 32-bit code: compatibility mode */
	pushq %rdi
	lretq
guard_restore:
	movl $0x10, %eax
	movl %eax, %ss
	movl %eax, %ds
	movl %eax, %es
	movq guard_rsp(%rip), %rsp
	movl $0, guard_active(%rip)
	movslq guard_vector(%rip), %rax
3:	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret

	.globl vm_run
vm_run:
	xorl %esi, %esi
/* evm_run(resume, host_rsp_slot, host_rip_slot): the same for an enlightened VMCS (t_hyperv.c),
 * whose HOST_RSP and HOST_RIP are plain stores into the slots given, not VMWRITEs. */
	.globl evm_run
evm_run:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	testq %rsi, %rsi
	jz 6f
	movq %rsp, (%rsi)
	leaq vm_exit_point(%rip), %rax
	movq %rax, (%rdx)
	jmp 7f
6:	movl $0x6c14, %eax                /* HOST_RSP */
	vmwrite %rsp, %rax
	leaq vm_exit_point(%rip), %rdx
	movl $0x6c16, %eax                /* HOST_RIP */
	vmwrite %rdx, %rax
7:	testl %edi, %edi
	jnz 1f
	vmlaunch
	jmp 2f
1:	vmresume
2:	pushfq
	popq %rdx
	xorl %eax, %eax
	testl $1, %edx                    /* CF: VMfailInvalid */
	jz 3f
	movl $1, %eax
3:	testl $0x40, %edx                 /* ZF: VMfailValid */
	jz 4f
	movl $2, %eax
4:	jmp 5f
vm_exit_point:
	movq %rax, exit_rax(%rip)          /* the guest's RAX at its exit (GPRs are not switched) */
	xorl %eax, %eax
5:	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret

	.bss
	.align 8
	.globl exit_rax
exit_rax:
	.skip 8
	.align 16
	.skip 8192
	.globl user_stack_top
user_stack_top:
