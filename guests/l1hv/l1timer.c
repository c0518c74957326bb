/*
 * L1's own timer: a scheduler tick, as the host kernel under KVM has, and the wake-up of an idle
 * L1 (L2 halted) at L2's next timer deadline. One LAPIC timer in one-shot mode serves both, as
 * Linux's tick-sched programs its clock event to the nearest of the tick and the next timer
 * (NOHZ idle). The tick is the guest kernel's default (tick=100000 with divide-by-16: 1.6M TSC
 * cycles, 640 us at 2.5 GHz). L1's LAPIC is the machine's on bare-l1 and L0's model for its VM
 * under nvmx and npv, so every reprogramming and EOI is an access L0 may see.
 */
#include "l1hv.h"
#include "apic.h"
#include "layout.h"
#include "x86.h"

#define LAPIC_EOI        0x0b0
#define LAPIC_LVT_TIMER  0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_DIV  0x3e0
#define L1_TICK_TSC      (100000ul * 16)

static u64 next_tick, wake_at;
static int tick_on = 1;
u64 l1_ticks, l1_timer_irqs, l1_halts;

static void lapic_w(u32 reg, u32 v)
{
	*(volatile u32 *)((u8 *)P2V(0xfee00000ul) + reg) = v;
}

/* One-shot to the nearer of the next tick and the wake-up (ticks of 16 TSC cycles, rounded up);
 * with the tick off and no wake-up, stopped (initial count 0). */
static void program(u64 now)
{
	u64 t = tick_on ? next_tick : 0;
	if (wake_at > now && (t == 0 || wake_at < t))
		t = wake_at;
	if (t == 0) {
		lapic_w(LAPIC_TIMER_INIT, 0);
		return;
	}
	u64 n = t > now ? (t - now + 15) / 16 : 1;
	lapic_w(LAPIC_TIMER_INIT, n > 0xffffffffu ? 0xffffffffu : (u32)n);
}

void l1_timer_init(int tick)
{
	tick_on = tick;
	lapic_w(LAPIC_TIMER_DIV, 0x3);          /* divide by 16 */
	lapic_w(LAPIC_LVT_TIMER, VEC_TIMER);    /* one-shot, unmasked */
	u64 now = rdtsc();
	next_tick = now + L1_TICK_TSC;
	program(now);
}

/* The timer's interrupt handler (from l1_timer_entry in traps.S, IF = 0). */
void l1_timer_interrupt(void)
{
	u64 now = rdtsc();
	l1_timer_irqs++;
	if (tick_on && now >= next_tick) {
		l1_ticks++;
		while (next_tick <= now)
			next_tick += L1_TICK_TSC;
	}
	lapic_w(LAPIC_EOI, 0);
	program(now);
}

/* A wake-up at `tsc` (0: none) while L2 runs: with the eVMCS, which has no VMX-preemption timer,
 * L2's timer deadline rides on this one-shot timer (vmx_evmcs.c); it fires as an external-interrupt
 * exit whose handler (above) runs, and then L1 finds L2's deadline due. */
void l1_timer_wake_at(u64 tsc)
{
	wake_at = tsc;
	program(rdtsc());
}

/* Idle until the TSC reaches `tsc`: the timer armed for it, then STI; HLT (the STI shadow makes
 * the pair atomic: no wake-up lost), woken by L1's own timer interrupt. Called with IF = 0. */
void l1_idle_until(u64 tsc)
{
	wake_at = tsc;
	u64 now = rdtsc();
	program(now);
	while (now < tsc) {
		l1_halts++;
		__asm__ volatile("sti; hlt; cli" ::: "memory");
		now = rdtsc();
	}
	wake_at = 0;
}
