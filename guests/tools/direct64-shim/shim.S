/* Test-only multiboot "loader" that boots kernel.elf (given as a multiboot module)
 * through the nestlab direct 64-bit protocol; mirrors what the TypeScript loader does. */
	.section .multiboot, "a"
	.align 4
	.long 0x1BADB002
	.long 0x00000003
	.long -(0x1BADB002 + 0x00000003)

	.text
	.code32
	.globl _start
_start:
	cli
	movl $stack_top, %esp
	pushl %ebx
	pushl %eax
	call shim_main
1:	hlt
	jmp 1b

/* void enter64(u32 pml4, u32 entry, u32 bootinfo) -- never returns */
	.globl enter64
enter64:
	movl 4(%esp), %ebx
	movl 8(%esp), %edi
	movl 12(%esp), %esi
	movl %cr4, %eax
	orl $0x20, %eax
	movl %eax, %cr4
	movl %ebx, %cr3
	movl $0xC0000080, %ecx
	rdmsr
	orl $0x100, %eax
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax
	movl %eax, %cr0
	lgdt gdtr
	ljmp $0x18, $long64           /* deliberately not selector 0x08 */
	.code64
long64:
	movl $0x20, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %esi, %esi                /* zero-extend: RSI = bootinfo */
	movl %edi, %eax
	movq $0xdeadbeefdeadbeef, %rdi /* garbage in everything else */
	movq %rdi, %rbx
	movq %rdi, %rbp
	xorl %esp, %esp                /* no stack provided */
	jmp *%rax

	.data
	.align 16
gdt:
	.quad 0, 0, 0
	.quad 0x00AF9A000000FFFF       /* 0x18: 64-bit code */
	.quad 0x00CF92000000FFFF       /* 0x20: data */
gdt_end:
gdtr:
	.word gdt_end - gdt - 1
	.long gdt

	.bss
	.align 16
	.skip 16384
stack_top:
