/* SYSCALL dispatcher. Runs with interrupts off on the process's kernel stack. */
#include "abi.h"
#include "proc.h"
#include "pipe.h"
#include "lib.h"
#include "layout.h"
#include "virtio.h"
#include "workload.h"
#include "stats.h"

static int user_ok(u64 p, u64 n) { return p < USER_TOP && n <= USER_TOP - p; }

static int fd_alloc(struct file *f)
{
	for (int i = 0; i < NFD; i++)
		if (!current->fds[i]) {
			current->fds[i] = f;
			return i;
		}
	return -1;
}

static struct file *fd_get(u64 fd) { return fd < NFD ? current->fds[fd] : NULL; }

static i64 sys_blk(u64 op, u64 sector, u64 buf, u64 n)
{
	if (n == 0 || n > 8 || !user_ok(buf, n * 512))
		return -1;
	return virtio_blk_rw((int)op, sector, (u8 *)buf, (u32)n);
}

void syscall_dispatch(struct trapframe *tf)
{
	u64 a0 = tf->rdi, a1 = tf->rsi, a2 = tf->rdx, a3 = tf->r10;
	i64 r = -1;
	kstats.syscalls++;
	switch (tf->rax) {
	case SYS_GETPID:
		r = current->pid;
		break;
	case SYS_EXIT:
		proc_exit((int)a0);
	case SYS_FORK:
		r = proc_fork(tf);
		break;
	case SYS_WAIT: {
		int st = 0;
		r = proc_wait(&st);
		if (a0 && user_ok(a0, 4))
			*(int *)a0 = st;
		break;
	}
	case SYS_WRITE: {
		if (!user_ok(a1, a2))
			break;
		struct file *f = fd_get(a0);
		if (f) {
			r = file_write(f, (const u8 *)a1, a2);
		} else if (a0 == 1) {
			for (u64 i = 0; i < a2; i++)
				kputc(((const char *)a1)[i]);
			r = (i64)a2;
		}
		break;
	}
	case SYS_READ: {
		struct file *f = fd_get(a0);
		if (f && user_ok(a1, a2))
			r = file_read(f, (u8 *)a1, a2);
		break;
	}
	case SYS_PIPE: {
		struct file *rd, *wr;
		if (!user_ok(a0, 8) || pipe_create(&rd, &wr))
			break;
		int fr = fd_alloc(rd), fw = fd_alloc(wr);
		if (fr < 0 || fw < 0)
			break;
		((int *)a0)[0] = fr;
		((int *)a0)[1] = fw;
		r = 0;
		break;
	}
	case SYS_CLOSE: {
		struct file *f = fd_get(a0);
		if (f) {
			file_close(f);
			current->fds[a0] = NULL;
			r = 0;
		}
		break;
	}
	case SYS_MMAP:
		r = (i64)mm_mmap(&current->mm, a0);
		break;
	case SYS_MUNMAP:
		r = mm_munmap(&current->mm, a0, a1, 1);
		break;
	case SYS_EXEC:
		r = proc_exec(tf, a0, a1, a2, a3);
		break;
	case SYS_YIELD:
		schedule();
		r = 0;
		break;
	case SYS_RESULT:
		workload_result((int)a0, a1, a2);
		r = 0;
		break;
	case SYS_FAIL: {
		char reason[64];
		u64 i = 0;
		if (user_ok(a1, 1))
			for (; i < sizeof(reason) - 1 && ((const char *)a1)[i]; i++)
				reason[i] = ((const char *)a1)[i];
		reason[i] = 0;
		workload_fail((int)a0, reason);
		r = 0;
		break;
	}
	case SYS_BLK:
		r = sys_blk(a0, a1, a2, a3);
		break;
	case SYS_BLKCAP:
		r = virtio_blk_capacity();
		break;
	}
	tf->rax = (u64)r;
}
