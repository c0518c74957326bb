/* 8259 PICs (remapped, fully masked) and the local APIC (xAPIC MMIO) timer. */
#include "apic.h"
#include "layout.h"
#include "x86.h"

#define LAPIC_PA 0xFEE00000UL
#define LAPIC_TPR 0x080
#define LAPIC_EOI 0x0B0
#define LAPIC_SVR 0x0F0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_DIV 0x3E0

static volatile u8 *lapic;
u64 timer_ticks;

void pic_init(void)
{
	outb(0x20, 0x11); /* ICW1: edge, cascade, ICW4 */
	outb(0xA0, 0x11);
	outb(0x21, VEC_PIC_BASE);     /* ICW2: master vectors 0x20-0x27 */
	outb(0xA1, VEC_PIC_BASE + 8); /* slave 0x28-0x2F */
	outb(0x21, 0x04);             /* ICW3: slave on IRQ2 */
	outb(0xA1, 0x02);
	outb(0x21, 0x01);             /* ICW4: 8086 mode */
	outb(0xA1, 0x01);
	outb(0x21, 0xFF);             /* mask all: the kernel polls virtio-blk */
	outb(0xA1, 0xFF);
}

static void lw(u32 reg, u32 v) { *(volatile u32 *)(lapic + reg) = v; }

void lapic_init(u32 tick)
{
	u64 base = rdmsr(MSR_APIC_BASE);
	u64 pa = base & 0xFFFFFF000UL;
	if (!(base & (1UL << 11)))
		wrmsr(MSR_APIC_BASE, base | (1UL << 11));
	lapic = P2V(pa ? pa : LAPIC_PA);
	lw(LAPIC_TPR, 0);
	lw(LAPIC_SVR, 0x100 | VEC_SPURIOUS);
	lw(LAPIC_LVT_LINT0, 0x700); /* virtual-wire mode: 8259 INTR arrives as ExtINT */
	lw(LAPIC_LVT_LINT1, 0x400); /* NMI */
	if (!tick) {
		lw(LAPIC_LVT_TIMER, 1u << 16); /* masked */
		return;
	}
	lw(LAPIC_TIMER_DIV, 0x3);                         /* divide by 16 */
	lw(LAPIC_LVT_TIMER, VEC_TIMER | (1u << 17));      /* periodic */
	lw(LAPIC_TIMER_INIT, tick);
}

void lapic_eoi(void) { lw(LAPIC_EOI, 0); }
