/* Interrupt/exception stubs, SYSCALL entry, context switch, and the KPTI entry/exit paths.
 * All but switch_to is in .entry.text: with pti=on the user page table maps exactly these pages
 * (plus the CPU entry area), as Linux maps its entry text into the user PGD (arch/x86/mm/pti.c). */
#include "pti.h"
#define USER_CS 0x2b
#define USER_SS 0x23

	.section .entry.text, "ax"
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
	jmp *isr_common_ptr(%rip)         /* isr_common, or isr_common_pti with pti=on */
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
	.text
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

	.section .entry.text, "ax"
/* first switch into a new process lands here, trapframe on top of the stack */
	.globl ret_from_fork
ret_from_fork:
	jmp *trap_return_ptr(%rip)        /* trap_return, or trap_return_pti with pti=on */

/* Patched once by pti_init (kernel table, before any user code runs); read by the stubs
 * before the CR3 switch, so they live in the entry text the user table maps. */
	.balign 8
	.globl isr_common_ptr, trap_return_ptr
isr_common_ptr:
	.quad isr_common
trap_return_ptr:
	.quad trap_return

/* ---- KPTI (pti=on) ----
 * Per process the kernel PML4 and the user PML4 are an 8 KiB-aligned pair (user = kernel + 4 KiB),
 * and user PCID = kernel PCID | 0x800, so switching tables is OR/AND of CR3 bits 12 and 11,
 * as Linux's SWITCH_TO_KERNEL_CR3 / SWITCH_TO_USER_CR3 (arch/x86/entry/calling.h).
 * GS_BASE (kernel) = the CPU entry area's pti_percpu, mapped in both tables. */
	.macro SWITCH_TO_KERNEL_CR3 reg
	movq %cr3, \reg
	andq $~PTI_SWITCH_MASK, \reg
	orq %gs:PTI_PCPU_NOFLUSH, \reg     /* bit 63 with PCID: the kernel PCID's entries stay */
	movq \reg, %cr3
	.endm

	/* clobbers %rax and %rdi; flushes the user PCID only when the kernel asked for it */
	.macro SWITCH_TO_USER_CR3
	movq %cr3, %rax
	movl %eax, %edi
	andl $0x7FF, %edi                  /* kernel PCID (0 without PCID) */
	btrq %rdi, %gs:PTI_PCPU_FLUSH_MASK
	jc 1f
	orq %gs:PTI_PCPU_NOFLUSH, %rax
1:	orq $PTI_SWITCH_MASK, %rax
	movq %rax, %cr3
	.endm

/* From ring 3 the CPU pushed the frame on the entry stack (TSS.RSP0 of the entry area): switch
 * CR3, then move the frame to the process's kernel stack and go on as isr_common does. */
	.globl isr_common_pti
isr_common_pti:
	testb $3, 24(%rsp)
	jz isr_common                      /* from ring 0: kernel table and stack already */
	swapgs
	pushq %rdi
	SWITCH_TO_KERNEL_CR3 %rdi
	movq %rsp, %rdi
	movq percpu(%rip), %rsp            /* percpu.kstack_top (kernel-only data) */
	pushq 56(%rdi)                     /* ss */
	pushq 48(%rdi)                     /* rsp */
	pushq 40(%rdi)                     /* rflags */
	pushq 32(%rdi)                     /* cs */
	pushq 24(%rdi)                     /* rip */
	pushq 16(%rdi)                     /* error code */
	pushq 8(%rdi)                      /* vector */
	movq (%rdi), %rdi
	PUSH_GPRS
	movq %rsp, %rdi
	cld
	call trap_dispatch
	.globl trap_return_pti
trap_return_pti:
	testb $3, 144(%rsp)                /* trapframe cs */
	jz trap_return
	POP_GPRS
	addq $16, %rsp                     /* vector, error code: rsp -> rip */
	pushq %rdi
	movq %rsp, %rdi
	movq %gs:PTI_PCPU_ENTRY_TOP, %rsp  /* copy the IRET frame to the entry stack */
	pushq 40(%rdi)
	pushq 32(%rdi)
	pushq 24(%rdi)
	pushq 16(%rdi)
	pushq 8(%rdi)
	pushq (%rdi)
	pushq %rax
	SWITCH_TO_USER_CR3
	popq %rax
	popq %rdi
	swapgs
	iretq

	.globl syscall_entry_pti
syscall_entry_pti:
	swapgs
	movq %rsp, %gs:PTI_PCPU_USER_RSP
	SWITCH_TO_KERNEL_CR3 %rsp          /* rsp is free as scratch here, as in Linux */
	movq percpu(%rip), %rsp
	pushq $USER_SS
	pushq %gs:PTI_PCPU_USER_RSP
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
	popq %rcx                          /* rip */
	addq $8, %rsp                      /* cs */
	popq %r11                          /* rflags */
	pushq %rdi                         /* kernel stack: rdi, user rsp, ss */
	movq %rsp, %rdi
	movq %gs:PTI_PCPU_ENTRY_TOP, %rsp
	pushq 8(%rdi)                      /* user rsp */
	pushq (%rdi)                       /* user rdi */
	pushq %rax
	SWITCH_TO_USER_CR3
	popq %rax
	popq %rdi
	popq %rsp
	swapgs
	sysretq
