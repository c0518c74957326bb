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
