/* 256 trap stubs, 16 bytes apart: vector in RDI, the CPU's frame in RSI, then l1_fault(). */
	.text
	.globl l1_trap_stubs
	.align 16
l1_trap_stubs:
	.set v, 0
	.rept 256
	.align 16
	movl $v, %edi
	movq %rsp, %rsi
	jmp l1_trap_common
	.set v, v + 1
	.endr
l1_trap_common:
	andq $-16, %rsp
	call l1_fault
1:	hlt
	jmp 1b

/* L1's own interrupt handlers (interrupt gates: IF is clear inside). The caller-saved registers
 * are kept around the C handler, with the stack aligned for the call; then IRETQ. */
	.globl l1_timer_entry
l1_timer_entry:
	pushq %rax; pushq %rcx; pushq %rdx; pushq %rsi; pushq %rdi
	pushq %r8; pushq %r9; pushq %r10; pushq %r11; pushq %rbp
	movq %rsp, %rbp
	andq $-16, %rsp
	call l1_timer_interrupt
	movq %rbp, %rsp
	popq %rbp; popq %r11; popq %r10; popq %r9; popq %r8
	popq %rdi; popq %rsi; popq %rdx; popq %rcx; popq %rax
	iretq

/* The LAPIC's spurious vector: no EOI (SDM vol. 3A 11.9). */
	.globl l1_spurious_entry
l1_spurious_entry:
	iretq

/*
 * l1_dispatch_irq(handler): run an IDT handler for an interrupt the CPU acknowledged on a VM exit
 * (VM_EXIT_INTR_INFO), as KVM's vmx_do_interrupt_irqoff: build the frame the CPU would push (SS,
 * RSP, RFLAGS, CS) and CALL the handler, whose IRETQ returns here. Called with IF = 0.
 */
	.globl l1_dispatch_irq
l1_dispatch_irq:
	pushq %rbp
	movq %rsp, %rbp
	andq $-16, %rsp
	movq %ss, %rax
	pushq %rax
	pushq %rbp
	pushfq
	movq %cs, %rax
	pushq %rax
	call *%rdi
	leave
	ret
