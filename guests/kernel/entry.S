/* Interrupt/exception stubs, SYSCALL entry, context switch. */
#define USER_CS 0x2b
#define USER_SS 0x23

	.text
	.macro PUSH_GPRS
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
	.endm
	.macro POP_GPRS
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
	.endm

/* 256 stubs, 16 bytes apart: isr_base + 16 * vector */
	.align 16
	.globl isr_base
isr_base:
	.set vec, 0
	.rept 256
	.align 16
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	pushq $vec
	.else
	pushq $0
	pushq $vec
	.endif
	jmp isr_common
	.set vec, vec + 1
	.endr

isr_common:
	testb $3, 24(%rsp)                /* CS of the interrupted context */
	jz 1f
	swapgs
1:	PUSH_GPRS
	movq %rsp, %rdi
	cld
	call trap_dispatch
	.globl trap_return
trap_return:
	POP_GPRS
	addq $16, %rsp                    /* vector, error code */
	testb $3, 8(%rsp)
	jz 2f
	swapgs
2:	iretq

/* SYSCALL: rcx = user rip, r11 = user rflags; IF cleared by SFMASK.
 * Builds the same trapframe as an interrupt from ring 3. */
	.globl syscall_entry
syscall_entry:
	swapgs
	movq %rsp, %gs:8                  /* percpu.user_rsp */
	movq %gs:0, %rsp                  /* percpu.kstack_top */
	pushq $USER_SS
	pushq %gs:8
	pushq %r11
	pushq $USER_CS
	pushq %rcx
	pushq $0
	pushq $0x100
	PUSH_GPRS
	movq %rsp, %rdi
	cld
	call syscall_dispatch
	POP_GPRS
	addq $16, %rsp
	popq %rcx                         /* rip */
	addq $8, %rsp                     /* cs */
	popq %r11                         /* rflags */
	popq %rsp                         /* user rsp */
	swapgs
	sysretq

/* void switch_to(u64 *save_sp, u64 new_sp) */
	.globl switch_to
switch_to:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, (%rdi)
	movq %rsi, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret

/* first switch into a new process lands here, trapframe on top of the stack */
	.globl ret_from_fork
ret_from_fork:
	jmp trap_return
