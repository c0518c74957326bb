/*
 * l1hv: a small hypervisor kernel (docs/l1hv.md). Booted like the guest kernel (it shares its
 * boot.S, console, lib and page allocator), it loads the L2 kernel image the loader placed in its
 * memory, runs it as a VM with the back end the command line selects, and exits with L2's status.
 *
 * Command line: backend=vmx|npv  l2image=ADDR,LEN  l2mem=MIB  map=demand|eager  -- L2'S COMMAND LINE
 */
#include "l1hv.h"
#include "bootinfo.h"
#include "layout.h"
#include "lib.h"
#include "mm.h"
#include "apic.h"

#define MMAP_MAX 64
static struct nl_mmap_entry memmap[MMAP_MAX];
static u32 memmap_n;
static char cmdline[512];
extern char __kernel_end[];

void l1_cpu_init(void);
extern const struct l1_backend vmx_evmcs_backend;
const struct l1_backend *vmx_ept2m_backend(const char *backend_value, const char *unknown);
int l1_core_run(const struct l1_backend *be, const u8 *image, u64 image_len, const char *l2_cmdline, int eager);

/* The value of `key=` among the words before " -- ", copied into `out`; 0 if absent. */
static int opt(const char *key, char *out, int cap)
{
	u64 kl = strlen(key);
	for (const char *s = cmdline; *s;) {
		while (*s == ' ')
			s++;
		if (s[0] == '-' && s[1] == '-' && (s[2] == ' ' || !s[2]))
			break;
		const char *w = s;
		while (*s && *s != ' ')
			s++;
		if ((u64)(s - w) > kl && !strncmp(w, key, kl) && w[kl] == '=') {
			int n = 0;
			for (const char *p = w + kl + 1; p < s && n < cap - 1; p++)
				out[n++] = *p;
			out[n] = 0;
			return 1;
		}
	}
	return 0;
}

static u64 parse_num(const char *s, const char **end)
{
	u64 v = 0;
	int base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (;; s++) {
		int d = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 : -1;
		if (d < 0 || d >= base)
			break;
		v = v * (u64)base + (u64)d;
	}
	if (end)
		*end = s;
	return v;
}

void kmain(u64 bi_pa)
{
	serial_init();
	const struct nl_bootinfo *bi = P2V(bi_pa);
	if (bi->magic != NLBI_MAGIC)
		panic("l1hv: bad boot-info magic");
	u64 n = bi->cmdline_addr ? bi->cmdline_len : 0;
	if (n >= sizeof(cmdline))
		n = sizeof(cmdline) - 1;
	memcpy(cmdline, P2V(bi->cmdline_addr), n);
	u32 es = bi->mmap_entry_size ? bi->mmap_entry_size : sizeof(struct nl_mmap_entry);
	for (u32 i = 0; i < bi->mmap_count && memmap_n < MMAP_MAX; i++)
		memmap[memmap_n++] = *(const struct nl_mmap_entry *)((const u8 *)P2V(bi->mmap_addr) + (u64)i * es);
	l1_cpu_init();
	pic_init();    /* the machine's 8259s remapped and masked: L1's drivers poll */
	lapic_init(0); /* L1's LAPIC enabled */
	char v[64];
	/* its own scheduler tick (l1timer.c); taken once the run loop enables interrupts. l1tick=0:
	 * none (the timer then only wakes an idle L1), for runs that must not depend on timing. */
	l1_timer_init(!(opt("l1tick", v, sizeof(v)) && v[0] == '0'));

	const struct l1_backend *be = &vmx_backend;
	if (opt("backend", v, sizeof(v)) && !strncmp(v, "npv", 4)) {
		if (&npv_backend == NULL)
			panic("l1hv: backend=npv, but this image was built without npv.c");
		be = &npv_backend;
	} else if (opt("backend", v, sizeof(v)) && strncmp(v, "vmx", 4)) {
		/* vmx-evmcs: vmx.c built with -DVMX_EVMCS (vmx_variant.h); the plain path is unchanged.
		 * Anything else: ept_2m.c's vmx,ept=2m or vmx-evmcs,ept=2m, or a stop with this message
		 * (passed from here so that the image's code and strings keep their addresses). */
		if (strncmp(v, vmx_evmcs_backend.name, 10))
			be = vmx_ept2m_backend(v, "l1hv: unknown backend=%s (vmx or npv)");
		else
			be = &vmx_evmcs_backend;
	}
	if (!opt("l2image", v, sizeof(v)))
		panic("l1hv: no l2image=ADDR,LEN on the command line");
	const char *p;
	u64 img = parse_num(v, &p);
	u64 img_len = *p == ',' ? parse_num(p + 1, NULL) : 0;
	if (!img_len)
		panic("l1hv: l2image=%s: want ADDR,LEN", v);
	u64 l2mib = opt("l2mem", v, sizeof(v)) ? parse_num(v, NULL) : 128;
	int eager = opt("map", v, sizeof(v)) && !strncmp(v, "eager", 6);
	const char *l2cmd = "";
	for (const char *s = cmdline; *s; s++)
		if (s[0] == '-' && s[1] == '-' && (s == cmdline || s[-1] == ' ') && (s[2] == ' ' || !s[2])) {
			l2cmd = s[2] ? s + 3 : s + 2;
			break;
		}

	/* L2 RAM: 2 MiB-aligned above L1's image and the L2 image; L1's allocator gets the rest. */
	u64 base = (u64)__kernel_end - KERNEL_VMA;
	if (img + img_len > base)
		base = img + img_len;
	base = (base + (2ul << 20) - 1) & ~((2ul << 20) - 1);
	l2_ram_size = l2mib << 20;
	l2_ram.gpa = 0;
	l2_ram.size = l2_ram_size;
	l2_ram.hpa = base;
	pmm_init(memmap, memmap_n, base + l2_ram_size);
	kprintf("l1hv: backend=%s l2mem=%luM map=%s\n", be->name, l2mib, eager ? "eager" : "demand");
	int rc = l1_core_run(be, P2V(img), img_len, l2cmd, eager);
	panic("l1hv: L2 stopped (%d)", rc);
}
