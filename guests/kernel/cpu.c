/* GDT, TSS (IST1 for #DF), IDT, per-CPU GS area, SYSCALL MSRs, CR4 features. */
#include "cpu.h"
#include "lib.h"
#include "x86.h"

struct tss {
	u32 rsv0;
	u64 rsp0, rsp1, rsp2;
	u64 rsv1;
	u64 ist[7];
	u64 rsv2;
	u16 rsv3, iomap;
} __attribute__((packed));

struct idt_entry {
	u16 off0, sel;
	u8 ist, type;
	u16 off1;
	u32 off2, rsv;
} __attribute__((packed));

static u64 gdt[8] __attribute__((aligned(16)));
static struct tss tss __attribute__((aligned(16)));
static struct idt_entry idt[256] __attribute__((aligned(16)));
static u8 df_stack[8192] __attribute__((aligned(16)));
struct percpu percpu;
int cpu_has_pcid, cpu_has_pge, cpu_has_tsc_deadline;

extern char isr_base[];
extern void syscall_entry(void), syscall_entry_pti(void);

struct dtr {
	u16 limit;
	u64 base;
} __attribute__((packed));

void set_kernel_stack(u64 top)
{
	tss.rsp0 = top;
	percpu.kstack_top = top;
}

/* 64-bit available TSS descriptor (type 9) in slots 6-7 */
static void set_tss_desc(u64 *g, u64 tb)
{
	u64 tl = sizeof(struct tss) - 1;
	g[6] = (tl & 0xFFFF) | ((tb & 0xFFFFFF) << 16) | (0x89UL << 40) | (((tl >> 16) & 0xF) << 48) |
	       (((tb >> 24) & 0xFF) << 56);
	g[7] = tb >> 32;
}

static void set_gate(int v, int ist, int dpl)
{
	u64 h = (u64)isr_base + 16 * v;
	idt[v].off0 = (u16)h;
	idt[v].sel = KERNEL_CS;
	idt[v].ist = (u8)ist;
	idt[v].type = (u8)(0x8E | (dpl << 5)); /* present, interrupt gate */
	idt[v].off1 = (u16)(h >> 16);
	idt[v].off2 = (u32)(h >> 32);
	idt[v].rsv = 0;
}

void cpu_init(void)
{
	gdt[0] = 0;
	gdt[1] = 0x00AF9A000000FFFF; /* 0x08 kernel code 64 */
	gdt[2] = 0x00CF92000000FFFF; /* 0x10 kernel data */
	gdt[3] = 0x00CFFA000000FFFF; /* 0x18 user code 32 (unused, SYSRET base) */
	gdt[4] = 0x00CFF2000000FFFF; /* 0x20 user data */
	gdt[5] = 0x00AFFA000000FFFF; /* 0x28 user code 64 */
	set_tss_desc(gdt, (u64)&tss);
	tss.iomap = sizeof(tss);
	tss.ist[0] = (u64)(df_stack + sizeof(df_stack));

	struct dtr g = {sizeof(gdt) - 1, (u64)gdt};
	__asm__ volatile("lgdt %0" ::"m"(g));
	__asm__ volatile("pushq $0x08\n\tleaq 1f(%%rip), %%rax\n\tpushq %%rax\n\tlretq\n1:\n\t"
			 "movl $0x10, %%eax\n\tmovl %%eax, %%ds\n\tmovl %%eax, %%es\n\tmovl %%eax, %%ss\n\t"
			 "xorl %%eax, %%eax\n\tmovl %%eax, %%fs\n\tmovl %%eax, %%gs" ::: "rax", "memory");
	__asm__ volatile("ltr %w0" ::"r"(TSS_SEL));

	for (int v = 0; v < 256; v++)
		set_gate(v, v == 8 ? 1 : 0, 0);
	struct dtr i = {sizeof(idt) - 1, (u64)idt};
	__asm__ volatile("lidt %0" ::"m"(i));

	wrmsr(MSR_GS_BASE, (u64)&percpu);
	wrmsr(MSR_KERNEL_GS_BASE, 0);

	/* SYSCALL: kernel CS 0x08 / SS 0x10; SYSRET base 0x18 -> CS 0x2b, SS 0x23 */
	wrmsr(MSR_STAR, (0x18UL << 48) | (0x08UL << 32));
	wrmsr(MSR_LSTAR, (u64)syscall_entry);
	wrmsr(MSR_SFMASK, 0x47700); /* clear IF, TF, DF, AC, NT, IOPL */
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);

	u32 a, b, c, d;
	cpuid(1, 0, &a, &b, &c, &d);
	cpu_has_pge = (d >> 13) & 1;
	cpu_has_pcid = (c >> 17) & 1;
	cpu_has_tsc_deadline = (c >> 24) & 1;

	write_cr0(read_cr0() | CR0_WP); /* kernel writes honour R/O (needed for COW) */
	if (cpu_has_pge)
		write_cr4(read_cr4() | CR4_PGE);
}

/* pti=on: run on copies of the IDT, GDT and TSS in the CPU entry area (mapped in the user table
 * too), RSP0 = the entry stack, IST1 = the area's #DF stack, GS_BASE = its pti_percpu, SYSCALL
 * into the PTI entry. The static TSS is no longer loaded; set_kernel_stack still writes it. */
void cpu_use_entry_area(u64 idt_va, u64 gdt_va, u64 tss_va, u64 rsp0, u64 ist1, u64 gs_base)
{
	memcpy((void *)idt_va, idt, sizeof(idt));
	memcpy((void *)gdt_va, gdt, sizeof(gdt));
	struct tss *t = (struct tss *)tss_va;
	*t = tss;
	t->rsp0 = rsp0;
	t->ist[0] = ist1;
	set_tss_desc((u64 *)gdt_va, tss_va);
	struct dtr g = {sizeof(gdt) - 1, gdt_va}, i = {sizeof(idt) - 1, idt_va};
	__asm__ volatile("lgdt %0" ::"m"(g));
	__asm__ volatile("ltr %w0" ::"r"(TSS_SEL));
	__asm__ volatile("lidt %0" ::"m"(i));
	wrmsr(MSR_GS_BASE, gs_base);
	wrmsr(MSR_LSTAR, (u64)syscall_entry_pti);
}
