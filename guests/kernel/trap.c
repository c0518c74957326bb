/* Exception / interrupt dispatch. */
#include "cpu.h"
#include "proc.h"
#include "apic.h"
#include "lib.h"
#include "x86.h"
#include "stats.h"
#include "virtio.h"

volatile int ud_expected;   /* exception workload: skip UD2 in kernel mode */
volatile u64 ud_count;
u64 last_user_pf_err, last_user_pf_addr; /* the kread self-test reads these */

static const char *const exc_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "?",
	"#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "?",   "?",   "?",   "?",   "?",   "?",   "?",   "?",   "#SX", "?",
};

static void fatal(struct trapframe *tf)
{
	panic("exception %s vec=%lu err=0x%lx rip=0x%lx cr2=0x%lx rsp=0x%lx cs=0x%lx", tf->vec < 32 ? exc_names[tf->vec] : "irq",
	      tf->vec, tf->err, tf->rip, read_cr2(), tf->rsp, tf->cs);
}

void trap_dispatch(struct trapframe *tf)
{
	u64 v = tf->vec;
	int user = (tf->cs & 3) == 3;

	if (v == 14) {
		u64 cr2 = read_cr2();
		if (current != &idle_proc && mm_fault(&current->mm, cr2, tf->err) == 0)
			return;
		if (user) {
			last_user_pf_err = tf->err;
			last_user_pf_addr = cr2;
			kprintf("user fault: pid %d #PF err=0x%lx rip=0x%lx cs=0x%lx rsp=0x%lx rflags=0x%lx cr2=0x%lx\n", current->pid, tf->err, tf->rip, tf->cs, tf->rsp, tf->rflags,
				cr2);
			proc_exit(128 + 14);
		}
		fatal(tf);
	}
	if (v == 6 && !user && ud_expected) {
		tf->rip += 2; /* skip UD2 */
		ud_count++;
		return;
	}
	if (v == VEC_TIMER) {
		timer_ticks++;
		kstats.ticks++;
		lapic_eoi();
		if (user)
			schedule(); /* preempt: round robin */
		return;
	}
	if (v == VEC_SPURIOUS)
		return;
	if (virtio_blk_irq_line >= 0 && v == (u64)(VEC_PIC_BASE + virtio_blk_irq_line)) {
		kstats.blk_irqs++;
		virtio_blk_irq();
		return;
	}
	if (v >= VEC_PIC_BASE && v < VEC_PIC_BASE + 16)
		return; /* spurious 8259 IRQ (all lines are masked) */
	if (user && v < 32) {
		kprintf("user exception: pid %d %s vec=%lu err=0x%lx rip=0x%lx\n", current->pid, exc_names[v], v,
			tf->err, tf->rip);
		proc_exit((int)(128 + v));
	}
	fatal(tf);
}
