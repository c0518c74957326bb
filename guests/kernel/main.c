/* kmain: boot-info intake, bring-up, command line, workload dispatch. */
#include "bootinfo.h"
#include "layout.h"
#include "lib.h"
#include "cpu.h"
#include "mm.h"
#include "apic.h"
#include "fwcfg.h"
#include "proc.h"
#include "virtio.h"
#include "workload.h"
#include "abi.h"
#include "x86.h"
#include "pti.h"

#define MMAP_MAX 64
static struct nl_mmap_entry memmap[MMAP_MAX];
static u32 memmap_n;
static char cmdline[512];
extern char __kernel_end[];

/* find "key=value" on the command line; returns value length or -1 */
static int cmd_get(const char *key, const char **val)
{
	size_t kl = strlen(key);
	const char *s = cmdline;
	while (*s) {
		while (*s == ' ')
			s++;
		const char *tok = s;
		while (*s && *s != ' ')
			s++;
		if ((size_t)(s - tok) > kl && !strncmp(tok, key, kl) && tok[kl] == '=') {
			*val = tok + kl + 1;
			return (int)(s - tok - kl - 1);
		}
	}
	return -1;
}

static u64 cmd_num(const char *key, u64 def)
{
	const char *v;
	int n = cmd_get(key, &v);
	if (n <= 0)
		return def;
	u64 r = 0;
	for (int i = 0; i < n && v[i] >= '0' && v[i] <= '9'; i++)
		r = r * 10 + (u64)(v[i] - '0');
	return r;
}

static void take_bootinfo(u64 bi_pa)
{
	const struct nl_bootinfo *bi = P2V(bi_pa);
	if (bi->magic != NLBI_MAGIC)
		panic("bad boot-info magic 0x%x at 0x%lx", bi->magic, bi_pa);
	u64 n = bi->cmdline_addr ? bi->cmdline_len : 0;
	if (n >= sizeof(cmdline))
		n = sizeof(cmdline) - 1;
	memcpy(cmdline, P2V(bi->cmdline_addr), n);
	cmdline[n] = 0;
	u32 es = bi->mmap_entry_size ? bi->mmap_entry_size : sizeof(struct nl_mmap_entry);
	for (u32 i = 0; i < bi->mmap_count && memmap_n < MMAP_MAX; i++)
		memmap[memmap_n++] = *(const struct nl_mmap_entry *)((const u8 *)P2V(bi->mmap_addr) + (u64)i * es);
}

void kmain(u64 bi_pa)
{
	serial_init();
	take_bootinfo(bi_pa); /* copy first: the allocator may reuse that memory */
	int multiboot = ((const struct nl_bootinfo *)P2V(bi_pa))->flags & NLBI_FLAG_MULTIBOOT;
	cpu_init();

	u64 max_phys = 0, usable = 0;
	for (u32 i = 0; i < memmap_n; i++) {
		if (memmap[i].type != NLBI_MEM_USABLE)
			continue;
		usable += memmap[i].length;
		if (memmap[i].base + memmap[i].length > max_phys)
			max_phys = memmap[i].base + memmap[i].length;
	}
	struct fwcfg_info fi;
	int have_fw = fwcfg_probe(&fi) == 0;
	u64 mem = have_fw ? fi.ram : max_phys;
	u32 cpus = have_fw ? fi.cpus : 1;

	u64 kend = (V2P(__kernel_end) + PAGE_SIZE - 1) & ~(u64)(PAGE_SIZE - 1);
	pmm_init(memmap, memmap_n, kend);
	const char *pv;
	pti_enabled = cmd_get("pti", &pv) == 2 && !strncmp(pv, "on", 2);
	vmm_init(max_phys);
	if (pti_enabled)
		pti_init();

	kprintf("nestlab-kernel: boot=%s mem=%lu MiB cpus=%u\n", multiboot ? "multiboot" : "direct64",
		(mem + (1UL << 20) - 1) >> 20, cpus);
	if (have_fw)
		kprintf("fw_cfg: signature=QEMU cpus=%u ram=%lu\n", fi.cpus, fi.ram);
	else
		kprintf("fw_cfg: absent\n");
	kprintf("cmdline: %s\n", cmdline);
	kprintf("memory: usable=%lu KiB kernel_end=0x%lx pcid=%d pge=%d pti=%s\n", usable >> 10, kend, cpu_has_pcid,
		cpu_has_pge, pti_enabled ? "on" : "off");

	if (cmd_num("debug", 0))
		kprintf("msr: efer=0x%lx star=0x%lx lstar=0x%lx sfmask=0x%lx cr0=0x%lx cr4=0x%lx\n", rdmsr(MSR_EFER),
			rdmsr(MSR_STAR), rdmsr(MSR_LSTAR), rdmsr(MSR_SFMASK), read_cr0(), read_cr4());
	pic_init();
	lapic_init((u32)cmd_num("tick", 100000));
	proc_init();
	int vr = virtio_blk_init();
	if (vr == 0) {
		virtio_blk_use_irq((int)cmd_num("blkirq", 99));
		kprintf("virtio-blk: mmio=0x%lx capacity=%ld sectors completion=", virtio_blk_mmio_base(),
			virtio_blk_capacity());
		if (virtio_blk_irq_line >= 0)
			kprintf("irq%d\n", virtio_blk_irq_line);
		else
			kprintf("polled\n");
	}
	else
		kprintf("virtio-blk: not found (%d)\n", vr);

	const char *wl = "all";
	int wn = cmd_get("workload", &wl);
	if (wn < 0)
		wn = 3;
	u64 iters = cmd_num("iters", 0);
	/* negative self-tests of the fault reporting (not part of `all`) */
	if (wn == 5 && !strncmp(wl, "crash", 5)) {
		kprintf("crash: kernel write to unmapped 0xdead0000\n");
		*(volatile u64 *)0xdead0000UL = 1; /* -> PANIC line, DONE status=1, exit 1 */
	}
	if (wn == 5 && !strncmp(wl, "kread", 5)) {
		int f = run_kread_selftest();
		kprintf("DONE status=%d\n", f);
		machine_exit(f);
	}
	if (wn == 4 && !strncmp(wl, "segv", 4)) {
		run_workload(W_COUNT, 1); /* user program faults -> FAIL line */
		kprintf("DONE status=1\n");
		machine_exit(1);
	}
	int failed = 0;
	/* workload=NAME, workload=all, or a comma-separated list (run in the order given) */
	for (int i = 0; i < wn;) {
		int j = i;
		while (j < wn && wl[j] != ',')
			j++;
		int len = j - i, found = 0;
		for (int w = 0; w < W_COUNT; w++) {
			int all = len == 3 && !strncmp(wl + i, "all", 3);
			if (all || ((int)strlen(workload_names[w]) == len && !strncmp(wl + i, workload_names[w], (size_t)len))) {
				found = 1;
				failed |= run_workload(w, iters);
			}
		}
		if (!found) {
			kprintf("FAIL name=");
			for (int k = i; k < j; k++)
				kputc(wl[k]);
			kprintf(" reason=unknown_workload\n");
			failed = 1;
		}
		i = j + 1;
	}
	kprintf("DONE status=%d\n", failed);
	machine_exit(failed ? 1 : 0);
}
