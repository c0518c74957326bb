/*
 * VM entry and exit of the vmx back end (after KVM's arch/x86/kvm/vmx/vmenter.S __vmx_vcpu_run:
 * host callee-saved registers on the stack, HOST_RSP updated only when it changed, guest GPRs
 * loaded last, VMLAUNCH or VMRESUME; at the exit the host resumes at vmx_exit_host with RSP =
 * HOST_RSP and saves the guest GPRs). Own code.
 *
 * int vmx_enter(u64 *gprs, int launched)
 *   gprs: 16 slots indexed by register number (RAX=0 … R15=15; slot 4, RSP, lives in the VMCS)
 *   returns 0 after a VM exit, 1 when VMLAUNCH/VMRESUME failed (VMfailValid/VMfailInvalid)
 */
#include "calls.h"
#include "vmx_variant.h"
	.text
	.globl vmx_enter
vmx_enter:
	PUSH_CALLEE_SAVED
	pushq %rdi                         /* gprs pointer, found again at [HOST_RSP] after the exit */
	cmpq %rsp, vmx_host_rsp(%rip)
	je 1f
	movq %rsp, vmx_host_rsp(%rip)
#ifdef VMX_EVMCS
	cmpl $0, evmcs_active(%rip)
	je 5f
	movq evmcs_va(%rip), %rax          /* the eVMCS: a store, and HOST_POINTER is dirty */
	movq %rsp, EVMCS_HOST_RSP(%rax)
	andl $~EVMCS_CLEAN_HOST_POINTER, EVMCS_CLEAN_FIELDS(%rax)
	incq vmcs_accesses(%rip)
	jmp 1f
5:
#endif
	movl $0x6c14, %eax                 /* HOST_RSP */
	vmwrite %rsp, %rax
	incq vmcs_accesses(%rip)
1:	movl %esi, %ebx                    /* launched? (rbx is overwritten below, test first) */
	testl %ebx, %ebx
	movq 0(%rdi), %rax
	movq 8(%rdi), %rcx
	movq 16(%rdi), %rdx
	movq 24(%rdi), %rbx
	movq 40(%rdi), %rbp
	movq 48(%rdi), %rsi
	movq 64(%rdi), %r8
	movq 72(%rdi), %r9
	movq 80(%rdi), %r10
	movq 88(%rdi), %r11
	movq 96(%rdi), %r12
	movq 104(%rdi), %r13
	movq 112(%rdi), %r14
	movq 120(%rdi), %r15
	movq 56(%rdi), %rdi                /* MOVs leave ZF from the TEST above */
	jnz 2f
	vmlaunch
	jmp 3f
2:	vmresume
3:	/* VMfail: CF or ZF set, nothing entered; guest values in the registers are dropped */
	popq %rdi
	movl $1, %eax
	jmp 4f

	.globl vmx_exit_host
vmx_exit_host:
	pushq %rdi                         /* guest RDI; [rsp+8] = gprs pointer */
	movq 8(%rsp), %rdi
	movq %rax, 0(%rdi)
	movq %rcx, 8(%rdi)
	movq %rdx, 16(%rdi)
	movq %rbx, 24(%rdi)
	movq %rbp, 40(%rdi)
	movq %rsi, 48(%rdi)
	movq %r8, 64(%rdi)
	movq %r9, 72(%rdi)
	movq %r10, 80(%rdi)
	movq %r11, 88(%rdi)
	movq %r12, 96(%rdi)
	movq %r13, 104(%rdi)
	movq %r14, 112(%rdi)
	movq %r15, 120(%rdi)
	popq %rax
	movq %rax, 56(%rdi)
	addq $8, %rsp                      /* the gprs pointer */
	xorl %eax, %eax
4:	POP_CALLEE_SAVED
	ret

	.bss
	.align 8
vmx_host_rsp:	.quad 0
