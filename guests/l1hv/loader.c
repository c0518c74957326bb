/*
 * Booting L2: the guest kernel's direct 64-bit protocol (docs/boot.md), done by L1 the way
 * nestlab's loader (src/machine/boot.ts loadDirect64) or the direct64 shim do it: PT_LOAD
 * segments by p_paddr, the entry from the "nestlab" ELF note, the boot-info structure, a memory
 * map, the command line, an identity map of 4 GiB with 2 MiB pages, long mode at entry.
 */
#include "l1hv.h"
#include "bootinfo.h"
#include "lib.h"

/* L2-physical addresses of the boot structures (below 1 MiB, outside the kernel's load range). */
#define L2_GDT     0x8000ul
#define L2_BI      0x9000ul
#define L2_MMAP    0x9100ul
#define L2_CMDLINE 0x9800ul
#define L2_PML4    0x10000ul   /* + PDPT at 0x11000, 4 PDs at 0x12000..0x15fff */

struct elf64_ehdr {
	u8 ident[16];
	u16 type, machine;
	u32 version;
	u64 entry, phoff, shoff;
	u32 flags;
	u16 ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};
struct elf64_phdr {
	u32 type, flags;
	u64 offset, vaddr, paddr, filesz, memsz, align;
};
#define PT_LOAD 1
#define PT_NOTE 4

static u64 note_entry(const u8 *elf, u64 len, const struct elf64_phdr *ph)
{
	u64 off = ph->offset, end = ph->offset + ph->filesz;
	while (off + 12 <= end && end <= len) {
		const u32 *n = (const u32 *)(elf + off);
		u32 namesz = n[0], descsz = n[1], type = n[2];
		const char *name = (const char *)(n + 3);
		u64 desc = off + 12 + ((namesz + 3) & ~3u);
		if (type == NL_NOTE_ENTRY64 && namesz == 8 && !memcmp(name, NL_NOTE_NAME, 8) && descsz == 8)
			return *(const u64 *)(elf + desc);
		off = desc + ((descsz + 3) & ~3u);
	}
	return 0;
}

int l2_load(const u8 *elf, u64 len, const char *cmdline, struct l2_regs *regs, struct l2_sregs *sregs)
{
	const struct elf64_ehdr *eh = (const void *)elf;
	if (len < sizeof(*eh) || memcmp(eh->ident, "\177ELF", 4) || eh->ident[4] != 2 || eh->machine != 62)
		return -1;
	u64 entry = 0;
	for (u32 i = 0; i < eh->phnum; i++) {
		const struct elf64_phdr *ph = (const void *)(elf + eh->phoff + (u64)i * eh->phentsize);
		if (ph->type == PT_NOTE && !entry)
			entry = note_entry(elf, len, ph);
		if (ph->type != PT_LOAD || ph->memsz == 0)
			continue;
		u8 *dst = l2_back(ph->paddr, ph->memsz);
		if (dst == NULL || ph->offset + ph->filesz > len)
			return -2;
		memcpy(dst, elf + ph->offset, ph->filesz);  /* the .bss rest stays zero (fresh pages) */
	}
	if (!entry)
		return -3;

	/* boot info, memory map (all L2 RAM usable), command line */
	struct nl_bootinfo *bi = l2_back(L2_BI, sizeof(*bi));
	struct nl_mmap_entry *mm = l2_back(L2_MMAP, 3 * sizeof(*mm));
	u64 clen = strlen(cmdline);
	char *cl = l2_back(L2_CMDLINE, clen + 1);
	memcpy(cl, cmdline, clen + 1);
	/* a PC's map, as nestlab's loader writes it: conventional memory less the EBDA, the BIOS
	 * area reserved, then RAM from 1 MiB */
	mm[0] = (struct nl_mmap_entry){ 0, 0x9fc00, NLBI_MEM_USABLE, 0 };
	mm[1] = (struct nl_mmap_entry){ 0x9fc00, 0x100000 - 0x9fc00, 2, 0 };
	mm[2] = (struct nl_mmap_entry){ 0x100000, l2_ram_size - 0x100000, NLBI_MEM_USABLE, 0 };
	bi->magic = NLBI_MAGIC;
	bi->version = NLBI_VERSION;
	bi->size = sizeof(*bi);
	bi->cmdline_addr = L2_CMDLINE;
	bi->cmdline_len = clen;
	bi->mmap_addr = L2_MMAP;
	bi->mmap_count = 3;
	bi->mmap_entry_size = sizeof(*mm);

	/* identity map of [0, 4 GiB) with 2 MiB pages: PML4[0] → PDPT[0..3] → 4 PDs */
	u64 *pml4 = l2_back(L2_PML4, 6 * 4096);
	u64 *pdpt = pml4 + 512, *pd = pml4 + 1024;
	pml4[0] = (L2_PML4 + 0x1000) | 3;
	for (u64 i = 0; i < 4; i++)
		pdpt[i] = (L2_PML4 + 0x2000 + i * 0x1000) | 3;
	for (u64 i = 0; i < 2048; i++)
		pd[i] = (i << 21) | 0x83;
	u64 *gdt = l2_back(L2_GDT, 24);
	gdt[1] = 0x00AF9A000000FFFFul;  /* 0x08: 64-bit code */
	gdt[2] = 0x00CF92000000FFFFul;  /* 0x10: data */

	memset(regs, 0, sizeof(*regs));
	regs->rip = entry;
	regs->rsi = L2_BI;
	regs->rsp = 0x7ff0;
	regs->rflags = 2;
	memset(sregs, 0, sizeof(*sregs));
	struct l2_segment code = { 0x08, 0xffffffff, 0xa09b, 0 };   /* L, P, S, type 11, G */
	struct l2_segment data = { 0x10, 0xffffffff, 0xc093, 0 };
	struct l2_segment unusable = { 0, 0, 0x10000, 0 };
	sregs->cs = code;
	sregs->ds = sregs->es = sregs->ss = data;
	sregs->fs = sregs->gs = unusable;
	sregs->ldt = unusable;
	sregs->tr = (struct l2_segment){ 0, 0x67, 0x8b, 0 };       /* busy 64-bit TSS (entry checks) */
	sregs->gdt_base = L2_GDT;
	sregs->gdt_limit = 23;
	sregs->idt_limit = 0;
	sregs->cr0 = 0x80000031ul;   /* PG, NE, ET, PE */
	sregs->cr3 = L2_PML4;
	sregs->cr4 = 0x20;           /* PAE */
	sregs->efer = 0x500;         /* LME, LMA */
	return 0;
}
