/* Ring-3 runtime: syscall stubs and tiny helpers. Linked at USER_IMAGE. */
#ifndef NL_ULIB_H
#define NL_ULIB_H
#include "../types.h"
#include "../abi.h"

static inline long sys4(long n, long a, long b, long c, long d)
{
	long r;
	register long r10 __asm__("r10") = d;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
	return r;
}
#define sys0(n) sys4(n, 0, 0, 0, 0)
#define sys1(n, a) sys4(n, (long)(a), 0, 0, 0)
#define sys2(n, a, b) sys4(n, (long)(a), (long)(b), 0, 0)
#define sys3(n, a, b, c) sys4(n, (long)(a), (long)(b), (long)(c), 0)

static inline u64 urdtsc(void)
{
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

static inline long u_getpid(void) { return sys0(SYS_GETPID); }
static inline __attribute__((noreturn)) void u_exit(long st)
{
	sys1(SYS_EXIT, st);
	__builtin_unreachable();
}
static inline long u_fork(void) { return sys0(SYS_FORK); }
static inline long u_wait(int *st) { return sys1(SYS_WAIT, st); }
static inline long u_write(long fd, const void *b, u64 n) { return sys3(SYS_WRITE, fd, b, n); }
static inline long u_read(long fd, void *b, u64 n) { return sys3(SYS_READ, fd, b, n); }
static inline long u_pipe(int fds[2]) { return sys1(SYS_PIPE, fds); }
static inline long u_close(long fd) { return sys1(SYS_CLOSE, fd); }
static inline void *u_mmap(u64 len) { return (void *)sys1(SYS_MMAP, len); }
static inline long u_munmap(void *a, u64 len) { return sys2(SYS_MUNMAP, a, len); }
static inline long u_exec(void (*f)(long, long, long), long a, long b, long c)
{
	return sys4(SYS_EXEC, (long)f, a, b, c);
}
static inline void u_result(long w, u64 iters, u64 cycles) { sys3(SYS_RESULT, w, iters, cycles); }
static inline long u_fail(long w, const char *why)
{
	sys2(SYS_FAIL, w, why);
	return 1;
}
static inline long u_blk(long op, u64 sector, void *buf, long n) { return sys4(SYS_BLK, op, (long)sector, (long)buf, n); }
static inline long u_blkcap(void) { return sys0(SYS_BLKCAP); }

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void uputs(const char *s);
#endif
