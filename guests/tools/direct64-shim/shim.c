/* Reference implementation (in C) of nestlab's direct 64-bit ELF loader, used to
 * test the kernel's entry64 path under QEMU.  See docs/boot.md. */
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

struct mb_info { u32 flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr, syms[4], mmap_length, mmap_addr; };
struct mb_mod { u32 start, end, string, rsv; };
struct ehdr { u8 ident[16]; u16 type, machine; u32 version; u64 entry, phoff, shoff; u32 flags; u16 ehsize, phentsize, phnum, shentsize, shnum, shstrndx; };
struct phdr { u32 type, flags; u64 offset, vaddr, paddr, filesz, memsz, align; };
struct nl_mmap_entry { u64 base, length; u32 type, reserved; };
struct nl_bootinfo { u32 magic, version, size, flags; u64 cmdline_addr, cmdline_len, mmap_addr; u32 mmap_count, mmap_entry_size; };

static struct nl_bootinfo bi __attribute__((aligned(8)));
static struct nl_mmap_entry map[64];
static u64 pml4[512] __attribute__((aligned(4096)));
static u64 pdpt[512] __attribute__((aligned(4096)));
static u64 pd[4][512] __attribute__((aligned(4096)));

void enter64(u32 pml4, u32 entry, u32 bootinfo) __attribute__((noreturn));

static void outb(u16 p, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(p)); }
static u8 inb(u16 p) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static void putc_(char c) { while (!(inb(0x3FD) & 0x20)); outb(0x3F8, (u8)c); }
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void die(const char *s) { puts_("shim: "); puts_(s); puts_("\n"); __asm__ volatile("outl %0, %1" ::"a"(3u), "Nd"((u16)0xF4)); for (;;) __asm__ volatile("hlt"); }

void shim_main(u32 magic, struct mb_info *mbi)
{
	if (magic != 0x2BADB002 || !(mbi->flags & 8) || mbi->mods_count < 1)
		die("need multiboot with the kernel as module (-initrd)");
	struct mb_mod *mod = (struct mb_mod *)mbi->mods_addr;
	const u8 *img = (const u8 *)mod->start;
	const struct ehdr *eh = (const struct ehdr *)img;
	if (img[0] != 0x7F || img[1] != 'E' || img[4] != 2 || eh->machine != 62)
		die("module is not an ELF64 x86-64 image");
	u64 entry = 0;
	for (u32 i = 0; i < eh->phnum; i++) {
		const struct phdr *ph = (const struct phdr *)(img + eh->phoff + (u64)i * eh->phentsize);
		if (ph->type == 1) { /* PT_LOAD: copy filesz from offset to paddr, zero the rest */
			u8 *d = (u8 *)(u32)ph->paddr;
			for (u64 k = 0; k < ph->memsz; k++)
				d[k] = k < ph->filesz ? img[ph->offset + k] : 0;
		} else if (ph->type == 4) { /* PT_NOTE */
			u32 off = 0;
			while (off + 12 <= ph->filesz) {
				const u32 *n = (const u32 *)(img + ph->offset + off);
				u32 namesz = n[0], descsz = n[1], type = n[2];
				const char *name = (const char *)(n + 3);
				const u8 *desc = (const u8 *)(n + 3) + ((namesz + 3) & ~3u);
				if (namesz == 8 && type == 1 && descsz == 8 && name[0] == 'n' && name[1] == 'e' &&
				    name[2] == 's' && name[6] == 'b' && name[7] == 0)
					entry = *(const u64 *)desc;
				off += 12 + ((namesz + 3) & ~3u) + ((descsz + 3) & ~3u);
			}
		}
	}
	if (!entry)
		die("no nestlab note");

	u32 n = 0;
	if (mbi->flags & 0x40) {
		for (u32 p = mbi->mmap_addr; p < mbi->mmap_addr + mbi->mmap_length && n < 64; n++) {
			const u32 *e = (const u32 *)p;
			map[n].base = e[1] | ((u64)e[2] << 32);
			map[n].length = e[3] | ((u64)e[4] << 32);
			map[n].type = e[5] == 1 ? 1 : 2;
			map[n].reserved = 0;
			p += e[0] + 4;
		}
	}
	const char *cl = (const char *)mod->string;
	u32 len = 0;
	while (cl && cl[len])
		len++;
	bi = (struct nl_bootinfo){0x49424C4E, 1, 48, 0, (u32)cl, len, (u32)map, n, 24};

	for (u32 i = 0; i < 2048; i++)
		pd[i / 512][i % 512] = ((u64)i << 21) | 0x83;
	for (u32 i = 0; i < 4; i++)
		pdpt[i] = (u32)pd[i] | 3;
	pml4[0] = (u32)pdpt | 3;
	puts_("shim: entering kernel via nestlab direct64 note\n");
	enter64((u32)pml4, (u32)entry, (u32)&bi);
}
