/*
 * L2's local APIC (xAPIC MMIO page at 0xFEE00000), modelled in L1 the way KVM's lapic.c models it
 * for a guest: the registers the guest kernel programs, and the timer (one-shot/periodic, divide
 * configuration) driven by L1's own time source, the TSC; its expiry reaches L1 through the
 * back end's deadline (the VMX-preemption timer under vmx). One tick = 1 TSC cycle × divide,
 * as nestlab's machine LAPIC (src/devices/lapic.ts) counts.
 */
#include "l1hv.h"
#include "x86.h"

static u32 tpr, svr = 0xff, ldr, dfr = 0xffffffffu, esr;
static u32 lvt_timer = 0x10000, lvt_lint0 = 0x700, lvt_lint1 = 0x10000, lvt_error = 0x10000;
static u32 tdcr, initial;
static u64 start, period, deadline;

void lapic_reset(void)
{
	deadline = 0;
}

static u64 tick_cycles(void)
{
	u32 v = (tdcr & 3) | ((tdcr >> 1) & 4);
	return 1ul << ((v + 1) & 7);
}

static void arm(void)
{
	start = rdtsc();
	period = (u64)initial * tick_cycles();
	deadline = initial ? start + period : 0;
}

u64 lapic_deadline(void) { return deadline; }

int lapic_timer_expired(u64 now)
{
	if (!deadline || now < deadline)
		return -1;
	if (lvt_timer & 0x20000) {   /* periodic: next period from this expiry (KVM's advance_periodic_target_expiration) */
		while (deadline <= now)
			deadline += period;
	} else {
		deadline = 0;
	}
	return (lvt_timer & 0x10000) || !(svr & 0x100) ? -1 : (int)(lvt_timer & 0xff);
}

int lapic_mmio(u64 off, int write, u64 *value)
{
	u32 v = (u32)*value;
	if (!write) {
		u32 r = 0;
		switch (off & 0xff0) {
		case 0x020: r = 0; break;              /* ID */
		case 0x030: r = 0x00050014; break;     /* version (as the machine's LAPIC) */
		case 0x080: r = tpr; break;
		case 0x0d0: r = ldr; break;
		case 0x0e0: r = dfr; break;
		case 0x0f0: r = svr; break;
		case 0x280: r = esr; break;
		case 0x320: r = lvt_timer; break;
		case 0x350: r = lvt_lint0; break;
		case 0x360: r = lvt_lint1; break;
		case 0x370: r = lvt_error; break;
		case 0x380: r = initial; break;
		case 0x390: {
			u64 now = rdtsc();
			r = deadline > now ? (u32)((deadline - now) / tick_cycles()) : 0;
			break;
		}
		case 0x3e0: r = tdcr; break;
		}
		*value = r;
		return 0;
	}
	switch (off & 0xff0) {
	case 0x080: tpr = v & 0xff; break;
	case 0x0b0: break;                         /* EOI: no in-service tracking needed (one source) */
	case 0x0d0: ldr = v; break;
	case 0x0e0: dfr = v; break;
	case 0x0f0: svr = v; break;
	case 0x280: esr = 0; break;
	case 0x320: lvt_timer = v; break;
	case 0x350: lvt_lint0 = v; break;
	case 0x360: lvt_lint1 = v; break;
	case 0x370: lvt_error = v; break;
	case 0x380: initial = v; arm(); break;
	case 0x3e0: tdcr = v; break;
	}
	return 0;
}
