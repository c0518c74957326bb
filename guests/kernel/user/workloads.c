/* User-mode (ring 3) workloads. Entered by the kernel as user_main(workload, iters, 0).
 * Each reports through SYS_RESULT / SYS_FAIL and exits with 0 on success. */
#include "ulib.h"
#include "compute.h"

#define NOINLINE __attribute__((noinline))

static long w_syscall(long n)
{
	long pid = u_getpid(), bad = 0;
	u64 t1 = urdtsc();
	for (long i = 0; i < n; i++)
		bad |= u_getpid() ^ pid;
	u64 t2 = urdtsc();
	if (bad)
		return u_fail(W_SYSCALL, "getpid_mismatch");
	u_result(W_SYSCALL, n, t2 - t1);
	return 0;
}

/* touch n fresh anonymous pages: one demand-paging fault each */
static long w_pagefault(long n)
{
	u8 *p = u_mmap((u64)n * 4096);
	if (!p)
		return u_fail(W_PAGEFAULT, "mmap");
	u64 t1 = urdtsc();
	for (long i = 0; i < n; i++)
		*(volatile u64 *)(p + i * 4096 + (i & 63) * 8) = (u64)i ^ 0x5a5a5a5aUL;
	u64 t2 = urdtsc();
	long bad = 0;
	for (long i = 0; i < n; i++) {
		bad += *(volatile u64 *)(p + i * 4096 + (i & 63) * 8) != ((u64)i ^ 0x5a5a5a5aUL);
		bad += *(volatile u64 *)(p + i * 4096 + 4088 - (i & 63) * 8) != 0; /* fresh page is zeroed */
	}
	if (u_munmap(p, (u64)n * 4096))
		return u_fail(W_PAGEFAULT, "munmap");
	if (bad)
		return u_fail(W_PAGEFAULT, "data_mismatch");
	u_result(W_PAGEFAULT, n, t2 - t1);
	return 0;
}

/* fork + child exit + wait; the child dirties its stack (COW) by calling u_exit */
static long w_fork(long n)
{
	volatile long marker = 0x1234;
	long bad = 0;
	u64 t1 = urdtsc();
	for (long i = 0; i < n; i++) {
		long pid = u_fork();
		if (pid == 0) {
			marker = i;             /* COW break on the stack page */
			u_exit(marker & 0x7f);
		}
		if (pid < 0)
			return u_fail(W_FORK, "fork");
		int st = -1;
		long w = u_wait(&st);
		bad += (w != pid) || (st != (i & 0x7f));
	}
	u64 t2 = urdtsc();
	if (bad || marker != 0x1234)
		return u_fail(W_FORK, "wait_status_or_cow");
	u_result(W_FORK, n, t2 - t1);
	return 0;
}

/* two processes ping-pong one byte over two pipes: one iteration = round trip */
static long w_ctxsw(long n)
{
	int a[2], b[2];
	if (u_pipe(a) || u_pipe(b))
		return u_fail(W_CTXSW, "pipe");
	long pid = u_fork();
	if (pid < 0)
		return u_fail(W_CTXSW, "fork");
	if (pid == 0) {
		u8 c;
		for (long i = 0; i < n; i++) {
			if (u_read(a[0], &c, 1) != 1)
				u_exit(2);
			c++;
			if (u_write(b[1], &c, 1) != 1)
				u_exit(3);
		}
		u_exit(0);
	}
	long bad = 0;
	u64 t1 = urdtsc();
	for (long i = 0; i < n; i++) {
		u8 c = (u8)i;
		if (u_write(a[1], &c, 1) != 1 || u_read(b[0], &c, 1) != 1)
			return u_fail(W_CTXSW, "pipe_io");
		bad += c != (u8)(i + 1);
	}
	u64 t2 = urdtsc();
	int st = -1;
	if (u_wait(&st) != pid || st != 0)
		return u_fail(W_CTXSW, "child_status");
	u_close(a[0]);
	u_close(a[1]);
	u_close(b[0]);
	u_close(b[1]);
	if (bad)
		return u_fail(W_CTXSW, "data_mismatch");
	u_result(W_CTXSW, n, t2 - t1);
	return 0;
}

/* exec chain: each step replaces the address space (build + teardown);
 * `remaining` more execs follow this one. */
void exec_step(long remaining, long t1, long packed)
{
	volatile long touch = remaining; /* fault in the new stack page */
	long n = packed & 0xFFFFFFFF, pid = packed >> 32;
	if (u_getpid() != pid) {
		u_fail(W_EXEC, "pid_changed");
		u_exit(1);
	}
	if (touch > 0)
		u_exec(exec_step, touch - 1, t1, packed);
	if (touch == 0) {
		u64 t2 = urdtsc();
		u_result(W_EXEC, (u64)n, t2 - (u64)t1);
		u_exit(0);
	}
	u_fail(W_EXEC, "exec_failed");
	u_exit(1);
}

static long w_exec(long n)
{
	long packed = (u_getpid() << 32) | (n & 0xFFFFFFFF);
	u64 t1 = urdtsc();
	u_exec(exec_step, n - 1, (long)t1, packed); /* n execs in total */
	return u_fail(W_EXEC, "exec_failed");
}

/* random reads over an 8 MiB working set of 4 KiB pages (2048 pages) */
static long w_tlb(long n)
{
	const u64 pages = TLB_WS_BYTES / 4096;
	u8 *p = u_mmap(TLB_WS_BYTES);
	if (!p)
		return u_fail(W_TLB, "mmap");
	for (u64 i = 0; i < pages; i++)
		*(u64 *)(p + i * 4096 + ((i * 64) & 4095)) = i;
	u64 x = 0x9E3779B97F4A7C15UL, bad = 0;
	u64 t1 = urdtsc();
	for (long i = 0; i < n; i++) {
		x = x * 6364136223846793005UL + 1442695040888963407UL;
		u64 pg = (x >> 33) & (pages - 1);
		bad += *(volatile u64 *)(p + pg * 4096 + ((pg * 64) & 4095)) != pg;
	}
	u64 t2 = urdtsc();
	u_munmap(p, TLB_WS_BYTES);
	if (bad)
		return u_fail(W_TLB, "data_mismatch");
	u_result(W_TLB, n, t2 - t1);
	return 0;
}

static NOINLINE unsigned int compute_once(unsigned int *a, const unsigned int *t)
{
	return compute_round(a, COMPUTE_N, t);
}

static long w_compute(long n)
{
	unsigned int t[256], a[COMPUTE_N];
	crc32_table(t);
	if (crc32(t, (const unsigned char *)"123456789", 9) != 0xCBF43926u)
		return u_fail(W_COMPUTE, "crc32_check");
	long bad = 0;
	u64 t1 = urdtsc();
	for (long i = 0; i < n; i++)
		bad += compute_once(a, t) != COMPUTE_EXPECT;
	u64 t2 = urdtsc();
	if (bad)
		return u_fail(W_COMPUTE, "checksum_mismatch");
	u_result(W_COMPUTE, n, t2 - t1);
	return 0;
}

/* virtio-blk: write 4 KiB, read it back, verify; sectors advance by 8 */
static long w_io(long n)
{
	long cap = u_blkcap();
	if (cap < 16)
		return u_fail(W_IO, "no_device");
	u64 *wb = u_mmap(8192), *rb = wb + 512;
	long span = (cap / 8) * 8, bad = 0;
	u64 t1 = urdtsc();
	for (long i = 0; i < n; i++) {
		u64 sector = (u64)((i * 8) % span);
		for (int k = 0; k < 512; k++)
			wb[k] = ((u64)i << 32) ^ (sector << 12) ^ (u64)k ^ 0xA5A5000000000000UL;
		if (u_blk(1, sector, wb, 8) || u_blk(0, sector, rb, 8))
			return u_fail(W_IO, "request_failed");
		for (int k = 0; k < 512; k++)
			bad += rb[k] != wb[k];
	}
	u64 t2 = urdtsc();
	u_munmap(wb, 8192);
	if (bad)
		return u_fail(W_IO, "data_mismatch");
	u_result(W_IO, n, t2 - t1);
	return 0;
}

void user_main(long w, long n, long arg)
{
	(void)arg;
	long rc;
	switch (w) {
	case W_SYSCALL: rc = w_syscall(n); break;
	case W_PAGEFAULT: rc = w_pagefault(n); break;
	case W_FORK: rc = w_fork(n); break;
	case W_CTXSW: rc = w_ctxsw(n); break;
	case W_EXEC: rc = w_exec(n); break;
	case W_TLB: rc = w_tlb(n); break;
	case W_COMPUTE: rc = w_compute(n); break;
	case W_IO: rc = w_io(n); break;
	case W_COUNT: /* "segv" self-test: write to an unmapped user address */
		*(volatile long *)0x1000 = 1;
		rc = 0;
		break;
	case W_KREAD: /* "kread" self-test: read a kernel address; must fault (exit status 142) */
		rc = (long)(*(volatile u64 *)arg & 0);
		break;
	default: rc = u_fail(w, "not_a_user_workload");
	}
	u_exit(rc);
}
