/* Kernel <-> user ABI: syscall numbers and workload ids (shared by kernel and user/). */
#ifndef NL_ABI_H
#define NL_ABI_H

#define SYS_GETPID 0
#define SYS_EXIT   1
#define SYS_FORK   2
#define SYS_WAIT   3   /* (int *status) -> pid or -1 */
#define SYS_WRITE  4   /* (fd, buf, len); fd 1 without a file = console */
#define SYS_READ   5   /* (fd, buf, len) */
#define SYS_PIPE   6   /* (int fds[2]) */
#define SYS_MMAP   7   /* (len) -> address, anonymous, demand-paged */
#define SYS_MUNMAP 8   /* (addr, len) */
#define SYS_EXEC   9   /* (entry, a0, a1, a2): fresh address space, entry(a0, a1, a2) */
#define SYS_YIELD  10
#define SYS_RESULT 11  /* (workload, iterations, cycles) */
#define SYS_FAIL   12  /* (workload, reason string) */
#define SYS_BLK    13  /* (op 0=read 1=write, sector, buf, nsectors <= 8) */
#define SYS_CLOSE  14  /* (fd) */
#define SYS_BLKCAP 15  /* () -> capacity in sectors, -1 without device */

enum {
	W_CPUID, W_MSR, W_WRMSR, W_EXCEPTION, W_PIO,             /* kernel-side */
	W_SYSCALL, W_PAGEFAULT, W_FORK, W_CTXSW, W_EXEC, W_TLB, W_COMPUTE, W_IO, /* user */
	W_COUNT
};
#define W_FIRST_USER W_SYSCALL
#define W_SEGV  W_COUNT        /* self-tests, not part of `all` */
#define W_KREAD (W_COUNT + 1)

#define TLB_WS_BYTES (8UL << 20)
#define COMPUTE_N 1024

#endif
