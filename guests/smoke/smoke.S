/*
 * nestlab boot smoke image: exercises the CPU core's system instructions end to end.
 *
 * Loaded as a flat binary at physical 0x100000 and entered there in 32-bit protected mode
 * (CPL 0, flat segments, paging off: the CPU's reset state in nestlab). It
 *   1. builds 4-level page tables (0-2 MiB with 4 KiB pages, 2-4 MiB with one 2 MiB page;
 *      page 0x1F0000 left unmapped, page 0x1F1000 read-only),
 *   2. loads a GDT, sets CR4.PAE, CR3, EFER.LME, CR0.PG|WP -> compatibility mode,
 *   3. far-jumps to a 64-bit code segment,
 *   4. installs an IDT (#BP, #UD, #GP, #PF),
 *   5. reads the unmapped page (#PF, not present: the handler maps it and returns),
 *      writes the read-only page (#PF, protection: the handler makes it writable),
 *      executes UD2 (#UD: the handler skips 2 bytes) and INT3 (#BP),
 *   6. writes status 0 to port 0xF4 and halts.
 * Every step is reported through port I/O: ASCII markers as bytes to port 0xE9, values as
 * dwords to port 0xE8 (see tests/boot/smoke.test.ts for the exact expected sequence).
 *
 * Build: make -C guests/smoke (GNU as + ld + objcopy). The binary is committed.
 */
	.intel_syntax noprefix

	.set PML4, 0x70000
	.set PDPT, 0x71000
	.set PD, 0x72000
	.set PT, 0x73000
	.set IDT, 0x74000
	.set STACK_TOP, 0x80000
	.set UNMAPPED, 0x1F0000
	.set READONLY, 0x1F1000
	.set MARK, 0xE9
	.set VALUE, 0xE8
	.set STATUS, 0xF4

	.text
	.code32
	.globl start
start:
	mov esp, STACK_TOP
	mov al, 'P'
	out MARK, al

	/* Clear the four paging structures (4 x 4 KiB). DEC ECX is the one-byte 0x49 form here. */
	mov edi, PML4
	xor eax, eax
	mov ecx, 4096
1:	mov [edi], eax
	add edi, 4
	dec ecx
	jnz 1b

	mov dword ptr [PML4], PDPT + 3
	mov dword ptr [PDPT], PD + 3
	mov dword ptr [PD], PT + 3
	mov dword ptr [PD + 8], 0x200000 + 0x83     /* 2 MiB page: P|RW|PS */

	/* PT: identity map 0-2 MiB, 4 KiB pages, P|RW. */
	mov edi, PT
	mov eax, 3
	mov ecx, 512
2:	mov [edi], eax
	add edi, 8
	add eax, 4096
	dec ecx
	jnz 2b
	mov dword ptr [PT + (UNMAPPED >> 12) * 8], 0              /* not present */
	mov dword ptr [PT + (READONLY >> 12) * 8], READONLY + 1   /* present, read-only */

	lgdt [gdtr]
	mov eax, cr4
	or eax, 0x20                    /* PAE */
	mov cr4, eax
	mov eax, PML4
	mov cr3, eax
	mov ecx, 0xC0000080             /* IA32_EFER */
	rdmsr
	or eax, 0x100                   /* LME */
	wrmsr
	rdmsr
	out VALUE, eax                  /* expect 0x100 */
	mov eax, cr0
	or eax, 0x80010001              /* PG | WP | PE */
	mov cr0, eax
	/* Compatibility mode now: IA-32e paging, 32-bit code segment. */
	mov al, 'C'
	out MARK, al
	mov ecx, 0xC0000080
	rdmsr
	out VALUE, eax                  /* expect 0x500: LME | LMA */

	.byte 0xEA                      /* ljmp 0x08:start64 */
	.long start64
	.word 0x08

	.code64
start64:
	mov ax, 0x10
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov rsp, STACK_TOP
	mov al, 'L'
	out MARK, al

	/* Clear the IDT and install the handlers. */
	mov edi, IDT
	xor eax, eax
	mov ecx, 1024
3:	mov [rdi], eax
	add rdi, 4
	dec ecx
	jnz 3b
	mov edi, 3
	lea rsi, [rip + bp_handler]
	call set_gate
	mov edi, 6
	lea rsi, [rip + ud_handler]
	call set_gate
	mov edi, 13
	lea rsi, [rip + gp_handler]
	call set_gate
	mov edi, 14
	lea rsi, [rip + pf_handler]
	call set_gate
	lidt [rip + idtr]

	/* #PF on a read of an unmapped page. */
	mov rax, [UNMAPPED]
	push rax
	mov al, 'r'
	out MARK, al
	pop rax
	out VALUE, eax                  /* the handler mapped a zeroed page: 0 */

	/* #PF on a write to a read-only page (CR0.WP = 1). */
	mov dword ptr [READONLY + 8], 0x12345678
	mov al, 'w'
	out MARK, al
	mov eax, [READONLY + 8]
	out VALUE, eax                  /* 0x12345678 */

	/* #UD. */
	.globl ud_site
ud_site:
	ud2
	mov al, 'u'
	out MARK, al

	/* #BP (a trap: the saved RIP is the next instruction). */
	int3
	.globl after_int3
after_int3:
	mov al, 'b'
	out MARK, al

	xor eax, eax
	out STATUS, eax
	mov al, 'H'
	out MARK, al
	cli
	hlt
	jmp .

/* set_gate(edi = vector, rsi = handler): 64-bit interrupt gate, CS 0x08, DPL 0. */
set_gate:
	mov rax, rdi
	shl rax, 4
	add rax, IDT
	mov rdx, rsi
	mov word ptr [rax], dx
	mov word ptr [rax + 2], 0x08
	mov word ptr [rax + 4], 0x8E00
	shr rdx, 16
	mov word ptr [rax + 6], dx
	shr rdx, 16
	mov dword ptr [rax + 8], edx
	mov dword ptr [rax + 12], 0
	ret

/* #PF: report vector, error code, CR2; map the page read-write; retry. */
pf_handler:
	push rax
	push rdx
	mov al, 'F'
	out MARK, al
	mov eax, 14
	out VALUE, eax
	mov eax, [rsp + 16]             /* error code */
	out VALUE, eax
	mov rax, cr2
	out VALUE, eax
	mov rdx, rax
	shr rdx, 12
	and edx, 511
	and rax, -4096
	or rax, 3
	mov [PT + rdx * 8], rax
	mov rax, cr2
	invlpg [rax]
	pop rdx
	pop rax
	add rsp, 8                      /* drop the error code */
	iretq

/* #UD: report vector and faulting RIP; skip the 2-byte UD2. */
ud_handler:
	push rax
	mov al, 'U'
	out MARK, al
	mov eax, 6
	out VALUE, eax
	mov rax, [rsp + 8]              /* saved RIP */
	out VALUE, eax
	add qword ptr [rsp + 8], 2
	pop rax
	iretq

/* #BP: report vector and saved RIP (after INT3). */
bp_handler:
	push rax
	mov al, 'B'
	out MARK, al
	mov eax, 3
	out VALUE, eax
	mov rax, [rsp + 8]
	out VALUE, eax
	pop rax
	iretq

/* #GP: unexpected here; report and stop with status 13. */
gp_handler:
	mov al, 'G'
	out MARK, al
	mov eax, [rsp]
	out VALUE, eax
	mov eax, 13
	out STATUS, eax
	cli
	hlt
	jmp .

	.p2align 3
gdt:
	.quad 0
	.quad 0x00AF9B000000FFFF        /* 0x08: 64-bit code, DPL 0 */
	.quad 0x00CF93000000FFFF        /* 0x10: data, DPL 0 */
	.quad 0x00CF9B000000FFFF        /* 0x18: 32-bit code, DPL 0 */
gdt_end:
gdtr:
	.word gdt_end - gdt - 1
	.long gdt
	.p2align 3
idtr:
	.word 256 * 16 - 1
	.quad IDT
