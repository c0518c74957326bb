/*
 * The device process's context switch. devproc_enter(rip, arg, rsp, cr3) saves L1's callee-saved
 * registers and stack, loads the process's CR3 and IRETQs to ring 3 at rip with RDI = arg. The
 * process's INT 0x80 arrives at devproc_int80 on the TSS's RSP0 stack: DEVSYS_DONE switches back
 * (kernel CR3, stack, registers) and returns from devproc_enter; other calls go to
 * devproc_syscall and IRETQ to the process.
 */
#include "calls.h"
#define USER_CS 0x23
#define USER_SS 0x1b

	.text
	.globl devproc_enter
devproc_enter:
	PUSH_CALLEE_SAVED
	movq %rsp, kernel_rsp(%rip)
	movq %cr3, %rax
	movq %rax, kernel_cr3(%rip)
	movq %rcx, %cr3
	pushq $USER_SS
	pushq %rdx
	pushq $0x202                       /* RFLAGS: IF = 1, user mode takes L1's interrupts */
	pushq $USER_CS
	pushq %rdi
	movq %rsi, %rdi
	xorl %esi, %esi
	xorl %edx, %edx
	xorl %ecx, %ecx
	xorl %eax, %eax
	iretq

	.globl devproc_int80
devproc_int80:
	testq %rax, %rax
	jz 1f
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	movq %r10, %r8
	movq %rdx, %rcx
	movq %rsi, %rdx
	movq %rdi, %rsi
	movq %rax, %rdi
	call devproc_syscall
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	iretq
1:	movq kernel_cr3(%rip), %rax
	movq %rax, %cr3
	movq kernel_rsp(%rip), %rsp
	POP_CALLEE_SAVED
	ret

	.bss
	.align 8
kernel_rsp:	.quad 0
kernel_cr3:	.quad 0
