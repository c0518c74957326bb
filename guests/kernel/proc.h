#ifndef NL_PROC_H
#define NL_PROC_H
#include "types.h"
#include "mm.h"
#include "cpu.h"

#define NPROC 32
#define NFD 8
#define KSTACK_SIZE 16384

enum { P_FREE = 0, P_RUNNABLE, P_BLOCKED, P_ZOMBIE };

struct file;

struct proc {
	int state, pid, slot, exit_status;
	struct proc *parent;
	u64 ksp;              /* saved kernel stack pointer (switch_to) */
	u64 kstack_top;
	struct mm mm;
	u16 pcid;
	u8 pcid_fresh;        /* first CR3 load with this PCID must flush */
	void *wait_chan;
	struct file *fds[NFD];
};

extern struct proc *current;
extern struct proc idle_proc;
extern int nlive;

void proc_init(void);
struct proc *proc_spawn(u64 entry, u64 a0, u64 a1, u64 a2);   /* new root process */
int proc_fork(struct trapframe *tf);
int proc_exec(struct trapframe *tf, u64 entry, u64 a0, u64 a1, u64 a2);
void proc_exit(int status) __attribute__((noreturn));
int proc_wait(int *status);
void schedule(void);
void sleep_on(void *chan);
void wakeup(void *chan);
void flush_current_tlb(void);
int run_processes(void);    /* idle loop: runs until no live process; -1 on deadlock */
#endif
