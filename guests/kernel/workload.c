/* Workload runner + the kernel-side workloads (cpuid, msr, wrmsr, exception, pio).
 * Timing follows kvm-unit-tests x86/vmexit.c: RDTSC before and after the loop. */
#include "workload.h"
#include "abi.h"
#include "proc.h"
#include "mm.h"
#include "lib.h"
#include "x86.h"
#include "virtio.h"
#include "stats.h"
#include "pti.h"

const char *const workload_names[W_COUNT] = {
	"cpuid", "msr", "wrmsr", "exception", "pio", "syscall", "pagefault",
	"fork",  "ctxsw", "exec", "tlb", "compute", "io",
};
static const u64 default_iters[W_COUNT] = {
	[W_CPUID] = 2000,   [W_MSR] = 2000,  [W_WRMSR] = 2000, [W_EXCEPTION] = 2000, [W_PIO] = 2000,
	[W_SYSCALL] = 5000, [W_PAGEFAULT] = 1000, [W_FORK] = 100, [W_CTXSW] = 500, [W_EXEC] = 100,
	[W_TLB] = 20000,    [W_COMPUTE] = 5, [W_IO] = 32,
};

#define PIO_PORT 0x80
extern volatile int ud_expected;
extern volatile u64 ud_count;
extern void user_main(long w, long iters, long arg);

static int got_result, got_fail;

void workload_result(int w, u64 iters, u64 cycles)
{
	if (w < 0 || w >= W_COUNT || !iters)
		return;
	kprintf("RESULT name=%s iterations=%lu cycles=%lu cycles_per_iter=%lu\n", workload_names[w], iters, cycles,
		cycles / iters);
	got_result = 1;
}

void workload_fail(int w, const char *reason)
{
	kprintf("FAIL name=%s reason=%s\n", (w >= 0 && w < W_COUNT) ? workload_names[w] : "?", reason);
	got_fail = 1;
}

static void k_cpuid(u64 n)
{
	u32 a0, a, b, c, d, bad = 0;
	cpuid(0, 0, &a0, &b, &c, &d);
	u64 t1 = rdtsc();
	for (u64 i = 0; i < n; i++) {
		cpuid(0, 0, &a, &b, &c, &d);
		bad |= a ^ a0;
	}
	u64 t2 = rdtsc();
	if (bad)
		workload_fail(W_CPUID, "inconsistent_leaf0");
	else
		workload_result(W_CPUID, n, t2 - t1);
}

/* RDMSR IA32_APIC_BASE (0x1B): intercepted by hypervisors (KVM exits on it) */
static void k_msr(u64 n)
{
	u64 v0 = rdmsr(MSR_APIC_BASE), bad = 0;
	u64 t1 = rdtsc();
	for (u64 i = 0; i < n; i++)
		bad |= rdmsr(MSR_APIC_BASE) ^ v0;
	u64 t2 = rdtsc();
	if (bad || !(v0 & (1UL << 11)))
		workload_fail(W_MSR, "apic_base_changed_or_disabled");
	else
		workload_result(W_MSR, n, t2 - t1);
}

/* WRMSR IA32_APIC_BASE with its current value (no state change) */
static void k_wrmsr(u64 n)
{
	u64 v0 = rdmsr(MSR_APIC_BASE);
	u64 t1 = rdtsc();
	for (u64 i = 0; i < n; i++)
		wrmsr(MSR_APIC_BASE, v0);
	u64 t2 = rdtsc();
	if (rdmsr(MSR_APIC_BASE) != v0)
		workload_fail(W_WRMSR, "apic_base_changed");
	else
		workload_result(W_WRMSR, n, t2 - t1);
}

static void k_exception(u64 n)
{
	ud_count = 0;
	ud_expected = 1;
	u64 t1 = rdtsc();
	for (u64 i = 0; i < n; i++)
		__asm__ volatile("ud2" ::: "memory");
	u64 t2 = rdtsc();
	ud_expected = 0;
	if (ud_count != n)
		workload_fail(W_EXCEPTION, "ud_count_mismatch");
	else
		workload_result(W_EXCEPTION, n, t2 - t1);
}

static void k_pio(u64 n)
{
	u64 i, t1 = rdtsc();
	for (i = 0; i < n; i++)
		outb(PIO_PORT, (u8)i);
	u64 t2 = rdtsc();
	if (i != n)
		workload_fail(W_PIO, "loop");
	else
		workload_result(W_PIO, n, t2 - t1);
}

int run_workload(int w, u64 iters)
{
	if (!iters)
		iters = w < W_COUNT ? default_iters[w] : 1;
	got_result = got_fail = 0;
	switch (w) {
	case W_CPUID: k_cpuid(iters); break;
	case W_MSR: k_msr(iters); break;
	case W_WRMSR: k_wrmsr(iters); break;
	case W_EXCEPTION: k_exception(iters); break;
	case W_PIO: k_pio(iters); break;
	default: {
		if (w == W_IO && virtio_blk_capacity() < 0) {
			kprintf("RESULT name=io skipped=1\n");
			return 0;
		}
		u64 before = pmm_in_use();
		kstats = (struct kstats){0};
		struct proc *p = proc_spawn((u64)user_main, w, (long)iters, 0);
		if (!p) {
			workload_fail(w, "spawn");
			break;
		}
		if (run_processes()) {
			workload_fail(w, "deadlock");
			break;
		}
		if (p->exit_status && !got_fail) {
			kprintf("FAIL name=%s reason=exit_status_%d\n", w < W_COUNT ? workload_names[w] : "segv",
				p->exit_status);
			got_fail = 1;
		}
		if (!got_result && !got_fail)
			workload_fail(w, "no_result");
		kprintf("STATS name=%s ticks=%lu switches=%lu syscalls=%lu demand_faults=%lu cow_copies=%lu "
			"cow_reuse=%lu forks=%lu execs=%lu blk_irqs=%lu\n",
			w < W_COUNT ? workload_names[w] : "segv", kstats.ticks, kstats.switches, kstats.syscalls, kstats.demand_faults,
			kstats.cow_copies, kstats.cow_reuse, kstats.forks, kstats.execs, kstats.blk_irqs);
		if (pmm_in_use() != before && !got_fail) {
			kprintf("FAIL name=%s reason=page_leak_%ld\n", w < W_COUNT ? workload_names[w] : "segv", (long)(pmm_in_use() - before));
			got_fail = 1;
		}
	}
	}
	if (!got_result && !got_fail)
		workload_fail(w, "no_result");
	return got_fail;
}

/* workload=kread: a user program reads a kernel address and must take a #PF. Which kind says which
 * page table it ran on: with pti=on kernel data is absent from the user table (error code P=0),
 * the entry text is present but supervisor-only (P=1); without pti both are present (P=1). */
extern u64 last_user_pf_err, last_user_pf_addr;
extern char __entry_text_start[];

int run_kread_selftest(void)
{
	static const char *const what[2] = {"kernel_data", "entry_text"};
	u64 addr[2] = {(u64)&kstats, (u64)__entry_text_start};
	int failed = 0;
	for (int i = 0; i < 2; i++) {
		last_user_pf_err = last_user_pf_addr = ~0UL;
		struct proc *p = proc_spawn((u64)user_main, W_KREAD, 1, (long)addr[i]);
		if (!p || run_processes())
			return 1;
		int present = (int)(last_user_pf_err & 1), want = i == 1 || !pti_enabled;
		int ok = p->exit_status == 128 + 14 && last_user_pf_addr == addr[i] && present == want;
		kprintf("KREAD what=%s addr=0x%lx status=%d err=0x%lx present=%d expected=%d %s\n", what[i], addr[i],
			p->exit_status, last_user_pf_err, present, want, ok ? "ok" : "FAIL");
		failed |= !ok;
	}
	return failed;
}
