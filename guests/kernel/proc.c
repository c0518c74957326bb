/* Processes: creation, fork (COW), exec, exit/wait, round-robin scheduler. */
#include "proc.h"
#include "layout.h"
#include "lib.h"
#include "x86.h"
#include "pipe.h"
#include "stats.h"
#include "pti.h"

static struct proc procs[NPROC];
static u8 kstacks[NPROC][KSTACK_SIZE] __attribute__((aligned(16)));
struct proc idle_proc = {.state = P_RUNNABLE, .slot = -1};
struct proc *current = &idle_proc;
int nlive;
static int next_pid = 1;
static u64 loaded_cr3 = ~0UL;

extern void switch_to(u64 *save, u64 sp);
extern char ret_from_fork[];
extern char __user_start[], __user_end[];

void proc_init(void)
{
	for (int i = 0; i < NPROC; i++) {
		procs[i].slot = i;
		procs[i].kstack_top = (u64)kstacks[i] + KSTACK_SIZE;
		procs[i].pcid = (u16)(i + 1);
	}
}

/* always inlined, as gcc did before the KPTI hooks grew proc.c: pti=off keeps its scheduler code */
static inline __attribute__((always_inline)) void load_mm(struct proc *p)
{
	u64 cr3 = p->mm.pml4;
	if (cpu_has_pcid) {
		cr3 |= p->pcid;
		if (!p->pcid_fresh && cr3 == loaded_cr3)
			return;
		if (!p->pcid_fresh)
			cr3 |= 1UL << 63; /* keep this PCID's TLB entries */
		p->pcid_fresh = 0;
		write_cr3(cr3);
		loaded_cr3 = cr3 & ~(1UL << 63);
	} else {
		if (cr3 == loaded_cr3)
			return;
		write_cr3(cr3);
		loaded_cr3 = cr3;
	}
}

static void load_kernel_mm(void)
{
	write_cr3(kernel_pml4 | (cpu_has_pcid ? 1UL << 63 : 0));
	loaded_cr3 = kernel_pml4;
}

void flush_current_tlb(void)
{
	/* reload CR3 without the no-flush bit: drops this PCID's non-global entries */
	u64 cr3 = current->mm.pml4 | (cpu_has_pcid ? current->pcid : 0);
	write_cr3(cr3);
	pti_flush_user(current->pcid);
	loaded_cr3 = cr3;
}

void schedule(void)
{
	struct proc *next = NULL;
	int start = current->slot + 1;
	for (int i = 0; i < NPROC; i++) {
		struct proc *p = &procs[(start + i) % NPROC];
		if (p->state == P_RUNNABLE) {
			next = p;
			break;
		}
	}
	if (!next)
		next = &idle_proc;
	if (next == current)
		return;
	struct proc *prev = current;
	current = next;
	if (next != &idle_proc) {
		load_mm(next);
		set_kernel_stack(next->kstack_top);
	}
	kstats.switches++;
	switch_to(&prev->ksp, next->ksp);
}

void sleep_on(void *chan)
{
	current->wait_chan = chan;
	current->state = P_BLOCKED;
	schedule();
	current->wait_chan = NULL;
}

void wakeup(void *chan)
{
	for (int i = 0; i < NPROC; i++)
		if (procs[i].state == P_BLOCKED && procs[i].wait_chan == chan)
			procs[i].state = P_RUNNABLE;
}

static struct proc *alloc_proc(void)
{
	for (int i = 0; i < NPROC; i++) {
		struct proc *p = &procs[i];
		if (p == current)
			continue;
		if (p->state == P_FREE || (p->state == P_ZOMBIE && !p->parent)) {
			p->state = P_BLOCKED; /* not runnable until fully built */
			p->pid = next_pid++;
			p->parent = NULL;
			p->exit_status = 0;
			p->wait_chan = NULL;
			p->pcid_fresh = 1;
			pti_flush_user(p->pcid); /* its user PCID starts clean too */
			for (int f = 0; f < NFD; f++)
				p->fds[f] = NULL;
			return p;
		}
	}
	return NULL;
}

/* kernel stack: [switch frame -> ret_from_fork][trapframe] at the top */
static struct trapframe *init_kstack(struct proc *p)
{
	struct trapframe *tf = (struct trapframe *)(p->kstack_top - sizeof(*tf));
	u64 *sp = (u64 *)tf;
	*--sp = (u64)ret_from_fork;
	for (int i = 0; i < 6; i++)
		*--sp = 0;
	p->ksp = (u64)sp;
	return tf;
}

static void setup_user_frame(struct trapframe *tf, u64 entry, u64 a0, u64 a1, u64 a2)
{
	memset(tf, 0, sizeof(*tf));
	tf->rip = entry;
	tf->cs = USER_CS;
	tf->ss = USER_DS;
	tf->rflags = 0x202;
	tf->rsp = USER_STACK_TOP - 8; /* as if called: rsp+8 is 16-byte aligned */
	tf->rdi = a0;
	tf->rsi = a1;
	tf->rdx = a2;
}

struct proc *proc_spawn(u64 entry, u64 a0, u64 a1, u64 a2)
{
	struct proc *p = alloc_proc();
	if (!p)
		return NULL;
	mm_create(&p->mm);
	mm_map_image(&p->mm);
	setup_user_frame(init_kstack(p), entry, a0, a1, a2);
	p->state = P_RUNNABLE;
	nlive++;
	return p;
}

int proc_fork(struct trapframe *ptf)
{
	struct proc *c = alloc_proc();
	if (!c)
		return -1;
	mm_fork(&c->mm, &current->mm);
	flush_current_tlb();
	for (int f = 0; f < NFD; f++)
		if ((c->fds[f] = current->fds[f]))
			file_dup(c->fds[f]);
	struct trapframe *tf = init_kstack(c);
	*tf = *ptf;
	tf->rax = 0;
	c->parent = current;
	kstats.forks++;
	c->state = P_RUNNABLE;
	nlive++;
	return c->pid;
}

int proc_exec(struct trapframe *tf, u64 entry, u64 a0, u64 a1, u64 a2)
{
	if (entry < (u64)__user_start || entry >= (u64)__user_end)
		return -1;
	struct mm old = current->mm;
	mm_create(&current->mm);
	mm_map_image(&current->mm);
	kstats.execs++;
	current->pcid_fresh = 1; /* same PCID, new address space: flush on load */
	pti_flush_user(current->pcid);
	load_mm(current);
	mm_destroy(&old);
	setup_user_frame(tf, entry, a0, a1, a2);
	return 0;
}

void proc_exit(int status)
{
	struct proc *p = current;
	for (int f = 0; f < NFD; f++) {
		if (p->fds[f])
			file_close(p->fds[f]);
		p->fds[f] = NULL;
	}
	load_kernel_mm();
	mm_destroy(&p->mm);
	for (int i = 0; i < NPROC; i++) {
		if (procs[i].parent == p) {
			procs[i].parent = NULL;
			if (procs[i].state == P_ZOMBIE)
				procs[i].state = P_FREE;
		}
	}
	p->exit_status = status;
	p->state = P_ZOMBIE;
	nlive--;
	if (p->parent)
		wakeup(p->parent);
	schedule();
	panic("zombie ran");
}

int proc_wait(int *status)
{
	for (;;) {
		int have = 0;
		for (int i = 0; i < NPROC; i++) {
			struct proc *c = &procs[i];
			if (c->parent != current || c->state == P_FREE)
				continue;
			if (c->state == P_ZOMBIE) {
				int pid = c->pid;
				if (status)
					*status = c->exit_status;
				c->parent = NULL;
				c->state = P_FREE;
				return pid;
			}
			have = 1;
		}
		if (!have)
			return -1;
		sleep_on(current);
	}
}

/* Called from kmain (the idle context) with interrupts off. */
int run_processes(void)
{
	while (nlive > 0) {
		schedule();
		if (nlive > 0) {
			/* every live process is blocked: nothing (no async device) can wake them */
			int runnable = 0;
			for (int i = 0; i < NPROC; i++)
				runnable |= procs[i].state == P_RUNNABLE;
			if (!runnable) {
				for (int i = 0; i < NPROC; i++)
					if (procs[i].state == P_BLOCKED)
						kprintf("deadlock: pid %d blocked on 0x%lx\n", procs[i].pid,
							(u64)procs[i].wait_chan);
				return -1;
			}
		}
	}
	return 0;
}
