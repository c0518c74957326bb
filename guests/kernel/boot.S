/*
 * Boot entry points.
 *  _start32 : multiboot v1 entry (32-bit protected mode, EAX=0x2BADB002, EBX=mbi).
 *             Converts the multiboot info into an NLBI boot-info structure, builds
 *             an identity map of the first 4 GiB, enters long mode and jumps to
 *             entry64 with RSI = &bootinfo -- exactly the state nestlab's direct
 *             64-bit loader provides.  Everything after entry64 is shared.
 *  entry64  : direct 64-bit entry, published in the "nestlab" ELF note.
 * This code runs at its physical (= virtual, identity-mapped) address.
 */
#include "bootinfo.h"
#include "layout.h"

#define MB_MAGIC  0x1BADB002
#define MB_FLAGS  0x00000003          /* page-align modules, want memory info */
#define MB_MMAP_MAX 64
#define PA(x) ((x) - KERNEL_VMA)

	.section .multiboot, "a"
	.align 4
mb_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	/* ELF note: name "nestlab", type 1, desc = u64 physical address of entry64 */
	.section .note.nestlab, "a", @note
	.align 4
	.long 8                       /* namesz, including NUL */
	.long 8                       /* descsz */
	.long NL_NOTE_ENTRY64         /* type */
	.asciz "nestlab"
	.quad entry64

	.section .boot.data, "a"
	.align 16
boot_gdt:
	.quad 0
	.quad 0x00AF9A000000FFFF      /* 0x08: 64-bit code */
	.quad 0x00CF92000000FFFF      /* 0x10: data */
boot_gdt_end:
	.align 16
boot_gdtr:
	.word boot_gdt_end - boot_gdt - 1
	.quad boot_gdt                /* < 4 GiB: fine for 32- and 64-bit LGDT */

	.section .boot.text, "ax"
	.code32
	.globl _start32
_start32:
	cli
	cld
	cmpl $0x2BADB002, %eax
	jne bad_magic
	movl $PA(boot_stack_top), %esp
	movl %ebx, %esi                       /* esi = multiboot info */

	/* ---- NLBI header ---- */
	movl $PA(mb_bi), %edi
	movl $NLBI_MAGIC, NLBI_OFF_MAGIC(%edi)
	movl $NLBI_VERSION, NLBI_OFF_VERSION(%edi)
	movl $NLBI_SIZE, NLBI_OFF_SIZE(%edi)
	movl $NLBI_FLAG_MULTIBOOT, NLBI_OFF_FLAGS(%edi)
	movl $0, NLBI_OFF_CMDLINE(%edi)
	movl $0, NLBI_OFF_CMDLINE+4(%edi)
	movl $0, NLBI_OFF_CMDLINE_LEN(%edi)
	movl $0, NLBI_OFF_CMDLINE_LEN+4(%edi)
	movl $PA(mb_mmap), NLBI_OFF_MMAP(%edi)
	movl $0, NLBI_OFF_MMAP+4(%edi)
	movl $0, NLBI_OFF_MMAP_COUNT(%edi)
	movl $NLBI_MMAP_ESIZE, NLBI_OFF_MMAP_ESIZE(%edi)

	/* ---- command line (mbi flag bit 2, mbi+16) ---- */
	testl $4, (%esi)
	jz 1f
	movl 16(%esi), %eax
	movl %eax, NLBI_OFF_CMDLINE(%edi)
	xorl %ecx, %ecx
2:	cmpb $0, (%eax,%ecx)
	je 3f
	incl %ecx
	jmp 2b
3:	movl %ecx, NLBI_OFF_CMDLINE_LEN(%edi)
1:
	/* ---- memory map (mbi flag bit 6: mmap_length at +44, mmap_addr at +48) ---- */
	movl $PA(mb_mmap), %ebp
	xorl %edx, %edx
	testl $0x40, (%esi)
	jz 5f
	movl 48(%esi), %ebx
	movl 44(%esi), %ecx
	addl %ebx, %ecx
4:	cmpl %ecx, %ebx
	jae 6f
	cmpl $MB_MMAP_MAX, %edx
	jae 6f
	movl 4(%ebx), %eax
	movl %eax, 0(%ebp)
	movl 8(%ebx), %eax
	movl %eax, 4(%ebp)
	movl 12(%ebx), %eax
	movl %eax, 8(%ebp)
	movl 16(%ebx), %eax
	movl %eax, 12(%ebp)
	movl 20(%ebx), %eax
	cmpl $1, %eax
	je 7f
	movl $2, %eax
7:	movl %eax, 16(%ebp)
	movl $0, 20(%ebp)
	addl $NLBI_MMAP_ESIZE, %ebp
	incl %edx
	movl (%ebx), %eax
	leal 4(%ebx,%eax), %ebx
	jmp 4b
5:	/* no map: fall back to mem_lower / mem_upper (KiB) */
	testl $1, (%esi)
	jz 6f
	movl 4(%esi), %eax
	shll $10, %eax
	movl $0, 0(%ebp)
	movl $0, 4(%ebp)
	movl %eax, 8(%ebp)
	movl $0, 12(%ebp)
	movl $1, 16(%ebp)
	movl $0, 20(%ebp)
	movl 8(%esi), %eax
	shll $10, %eax
	movl $0x100000, 24(%ebp)
	movl $0, 28(%ebp)
	movl %eax, 32(%ebp)
	movl $0, 36(%ebp)
	movl $1, 40(%ebp)
	movl $0, 44(%ebp)
	movl $2, %edx
6:	movl %edx, NLBI_OFF_MMAP_COUNT(%edi)

	/* ---- identity map 0..4 GiB with 2 MiB pages (same tables entry64 builds) ---- */
	movl $PA(boot_pd), %ebx
	xorl %ecx, %ecx
8:	movl %ecx, %eax
	shll $21, %eax
	orl $0x83, %eax
	movl %eax, (%ebx,%ecx,8)
	movl %ecx, %eax
	shrl $11, %eax
	movl %eax, 4(%ebx,%ecx,8)
	incl %ecx
	cmpl $2048, %ecx
	jb 8b
	movl $PA(boot_pdpt_lo), %edi
	leal 3(%ebx), %eax
	movl %eax, 0(%edi)
	addl $4096, %eax
	movl %eax, 8(%edi)
	addl $4096, %eax
	movl %eax, 16(%edi)
	addl $4096, %eax
	movl %eax, 24(%edi)
	movl $PA(boot_pml4), %edi
	movl $(PA(boot_pdpt_lo) + 3), 0(%edi)

	movl %cr4, %eax
	orl $0x20, %eax                       /* PAE */
	movl %eax, %cr4
	movl %edi, %cr3
	movl $0xC0000080, %ecx
	rdmsr
	orl $0x100, %eax                      /* EFER.LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax                 /* PG | PE */
	movl %eax, %cr0
	lgdt boot_gdtr
	ljmp $0x08, $mb_long

bad_magic:
	movw $0x3F8, %dx
	movb $'?', %al
	outb %al, %dx
9:	hlt
	jmp 9b

	.code64
mb_long:
	movl $PA(mb_bi), %esi
	/* fall through: same state as a direct 64-bit boot */

	.globl entry64
entry64:
	cli
	cld
	movq %rsi, %r12                       /* r12 = bootinfo (physical) */

	/* PD: 2048 x 2 MiB pages = 0..4 GiB */
	movl $PA(boot_pd), %edi
	xorl %ecx, %ecx
1:	movq %rcx, %rax
	shlq $21, %rax
	orq $0x83, %rax
	movq %rax, (%rdi,%rcx,8)
	incl %ecx
	cmpl $2048, %ecx
	jb 1b
	/* PDPT low: 4 PDs */
	movl $PA(boot_pdpt_lo), %esi
	leaq 3(%rdi), %rax
	movq %rax, 0(%rsi)
	addq $4096, %rax
	movq %rax, 8(%rsi)
	addq $4096, %rax
	movq %rax, 16(%rsi)
	addq $4096, %rax
	movq %rax, 24(%rsi)
	/* PDPT high: slot 510 -> first PD (phys 0..1 GiB at KERNEL_VMA) */
	movl $PA(boot_pdpt_hi), %edx
	leaq 3(%rdi), %rax
	movq %rax, 510*8(%rdx)
	/* PML4: [0] identity, [256] direct map, [511] kernel image */
	movl $PA(boot_pml4), %edi
	leaq 3(%rsi), %rax
	movq %rax, 0(%rdi)
	movq %rax, 256*8(%rdi)
	leaq 3(%rdx), %rax
	movq %rax, 511*8(%rdi)
	movq %rdi, %cr3
	movabsq $boot_stack_top, %rsp         /* the loader provides no stack */

	lgdt boot_gdtr
	pushq $0x08
	leaq 2f(%rip), %rax
	pushq %rax
	lretq
2:	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs

	movq %r12, %rdi
	movabsq $kmain, %rax
	callq *%rax
3:	hlt
	jmp 3b

	.section .bss
	.align 4096
	.globl boot_pml4
boot_pml4:	.skip 4096
boot_pdpt_lo:	.skip 4096
boot_pdpt_hi:	.skip 4096
boot_pd:	.skip 4 * 4096
	.align 16
	.globl boot_stack_top
boot_stack:	.skip 16384
boot_stack_top:
	.align 16
mb_bi:		.skip NLBI_SIZE
mb_mmap:	.skip NLBI_MMAP_ESIZE * MB_MMAP_MAX
