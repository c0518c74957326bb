/*
 * vmxtest boot: multiboot v1 (32-bit entry, as QEMU -kernel) and nestlab's direct 64-bit entry
 * (the "nestlab" ELF note, docs/boot.md). Both end in entry64 with an identity map of the first
 * 4 GiB (2 MiB pages, user-accessible so the CPL-3 checks can run the same code), the GDT below,
 * a TSS and the IDT of entry.S, then call vmxtest_main. Linked and run at its physical address.
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003
#define PTE_FLAGS 0xE7  /* P | RW | US | A | D | PS: A/D preset so no walk writes them */

	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.section .note.nestlab, "a", @note
	.align 4
	.long 8
	.long 8
	.long 1                       /* NL_NOTE_ENTRY64 */
	.asciz "nestlab"
	.quad entry64

	.data
	.align 16
	.globl gdt
gdt:
	.quad 0
	.quad 0x00AF9A000000FFFF      /* 0x08 kernel code, 64-bit */
	.quad 0x00CF92000000FFFF      /* 0x10 kernel data */
	.quad 0x00CFF2000000FFFF      /* 0x18 user data (DPL 3) */
	.quad 0x00AFFA000000FFFF      /* 0x20 user code, 64-bit (DPL 3) */
	.quad 0x00CF9A000000FFFF      /* 0x28 kernel code, 32-bit (compatibility mode) */
	.quad 0, 0                    /* 0x30 TSS, filled by tss_init */
gdt_end:
	.align 16
	.globl gdtr
gdtr:
	.word gdt_end - gdt - 1
	.quad gdt

	.text
	.code32
	.globl _start32
_start32:
	cli
	cmpl $0x2BADB002, %eax
	jne 9f
	movl $boot_stack_top, %esp
	call build_tables32
	movl %cr4, %eax
	orl $0x20, %eax               /* PAE */
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $0xC0000080, %ecx
	rdmsr
	orl $0x100, %eax              /* EFER.LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax
	movl %eax, %cr0
	lgdt gdtr
	ljmp $0x08, $entry64
9:	hlt
	jmp 9b

/* Identity map of [0, 4 GiB): PML4[0] -> PDPT -> 4 PDs of 2 MiB pages. */
build_tables32:
	movl $pd, %edi
	xorl %ecx, %ecx
1:	movl %ecx, %eax
	shll $21, %eax
	orl $PTE_FLAGS, %eax
	movl %eax, (%edi,%ecx,8)
	movl %ecx, %eax
	shrl $11, %eax
	movl %eax, 4(%edi,%ecx,8)
	incl %ecx
	cmpl $2048, %ecx
	jb 1b
	movl $pdpt, %edi
	movl $pd + 7, %eax
	xorl %ecx, %ecx
2:	movl %eax, (%edi,%ecx,8)
	movl $0, 4(%edi,%ecx,8)
	addl $4096, %eax
	incl %ecx
	cmpl $4, %ecx
	jb 2b
	movl $pml4, %edi
	movl $pdpt + 7, (%edi)
	movl $0, 4(%edi)
	ret

	.code64
	.globl entry64
entry64:
	cli
	cld
	movl $boot_stack_top, %esp
	/* A direct-64 loader's tables may be anywhere: build ours (same as the 32-bit path). */
	movl $pd, %edi
	xorl %ecx, %ecx
1:	movq %rcx, %rax
	shlq $21, %rax
	orq $PTE_FLAGS, %rax
	movq %rax, (%rdi,%rcx,8)
	incl %ecx
	cmpl $2048, %ecx
	jb 1b
	movl $pdpt, %edi
	movq $pd + 7, %rax
	xorl %ecx, %ecx
2:	movq %rax, (%rdi,%rcx,8)
	addq $4096, %rax
	incl %ecx
	cmpl $4, %ecx
	jb 2b
	movq $pdpt + 7, %rax
	movq %rax, pml4
	movq $pml4, %rax
	movq %rax, %cr3
	lgdt gdtr
	pushq $0x08
	pushq $3f
	lretq
3:	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	call vmxtest_main
4:	cli
	hlt
	jmp 4b

	.bss
	.align 4096
	.globl pml4, pdpt, pd
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4 * 4096
	.align 16
boot_stack:	.skip 32768
	.globl boot_stack_top
boot_stack_top:
