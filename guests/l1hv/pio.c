/*
 * L2's 8259 PICs, modelled in L1's kernel as KVM's in-kernel irqchip (arch/x86/kvm/i8259.c is the
 * model; own code): ICW1-4 (vector base from ICW2), the mask (OCW1), non-specific and specific
 * EOI (OCW2), IRR/ISR reads (OCW3), edge-triggered lines with fully nested priority (IRQ 0
 * highest; the slave cascades into master line 2). A device model raises a line with
 * pic_set_irq (QEMU's KVM_IRQ_LINE); the core injects pic_ack()'s vector into L2.
 * Every other port goes to the device process.
 */
#include "l1hv.h"

struct pic {
	u8 irr, isr, imr, base, lines;  /* lines: the input levels (an edge sets IRR) */
	u8 icw_step, icw4, single, read_isr;
};
static struct pic pics[2] = { { .imr = 0xff }, { .imr = 0xff } };

/* The highest-priority line that may interrupt (requested, unmasked, above every in-service
 * line), or -1. Line 2 of the master is the slave's output. */
static int pic_line(const struct pic *p, u8 irr)
{
	u8 req = irr & (u8)~p->imr;
	if (!req)
		return -1;  /* the common case: nothing requested */
	for (int n = 0; n < 8; n++) {
		if (p->isr & (1u << n))
			return -1;  /* fully nested: nothing of lower priority than an in-service line */
		if (req & (1u << n))
			return n;
	}
	return -1;
}

static u8 master_irr(void)
{
	return pics[0].irr | (pics[1].irr && pic_line(&pics[1], pics[1].irr) >= 0 ? 4 : 0);
}

void pic_set_irq(int irq, int level)
{
	struct pic *p = &pics[irq >> 3];
	u8 bit = (u8)(1u << (irq & 7));
	if (level && !(p->lines & bit))
		p->irr |= bit;  /* rising edge */
	p->lines = level ? p->lines | bit : p->lines & (u8)~bit;
}

int pic_has_interrupt(void)
{
	return pic_line(&pics[0], master_irr()) >= 0;
}

/* INTA: the vector of the highest-priority request, which moves from IRR to ISR (0xff: none). */
int pic_ack(void)
{
	int n = pic_line(&pics[0], master_irr());
	if (n < 0)
		return -1;
	pics[0].irr &= (u8)~(1u << n);
	pics[0].isr |= (u8)(1u << n);
	if (n != 2)
		return pics[0].base + n;
	int s = pic_line(&pics[1], pics[1].irr);
	pics[1].irr &= (u8)~(1u << s);
	pics[1].isr |= (u8)(1u << s);
	return pics[1].base + s;
}

/* The vector line `irq` raises while L2 has it unmasked (a slave line also needs master line 2);
 * 0 while masked or before ICW2 set the base. */
u32 pic_line_vector(int irq)
{
	const struct pic *p = &pics[irq >> 3];
	if ((p->imr & (1u << (irq & 7))) || (irq >= 8 && (pics[0].imr & 4)) || p->base < 0x20)
		return 0;
	return p->base + (u32)(irq & 7);
}

static void pic_write(struct pic *p, u16 port, u8 v)
{
	if ((port & 1) == 0) {
		if (v & 0x10) {                         /* ICW1: IMR, ISR, IRR cleared; ICW2 follows */
			p->icw_step = 1;
			p->icw4 = v & 1;
			p->single = (v >> 1) & 1;
			p->imr = p->isr = p->irr = 0;
		} else if (v & 0x08) {                  /* OCW3: which of IRR/ISR a read returns */
			if (v & 2)
				p->read_isr = v & 1;
		} else if ((v & 0xe0) == 0x20) {        /* OCW2 non-specific EOI: the highest ISR bit */
			p->isr &= (u8)(p->isr - 1);
		} else if ((v & 0xe0) == 0x60) {        /* OCW2 specific EOI */
			p->isr &= (u8)~(1u << (v & 7));
		}
		return;
	}
	switch (p->icw_step) {
	case 1: p->base = v & 0xf8; p->icw_step = !p->single ? 2 : p->icw4 ? 3 : 0; return;  /* ICW2 */
	case 2: p->icw_step = p->icw4 ? 3 : 0; return;                                     /* ICW3 */
	case 3: p->icw_step = 0; return;                              /* ICW4 */
	}
	p->imr = v;                                                     /* OCW1 */
}

int pic_access(struct l2_exit *e)
{
	u16 port = e->pio.port;
	int n = port == 0x20 || port == 0x21 ? 0 : port == 0xa0 || port == 0xa1 ? 1 : -1;
	if (n < 0)
		return -1;
	struct pic *p = &pics[n];
	if (e->pio.in)
		e->pio.value = (port & 1) ? p->imr : p->read_isr ? p->isr : p->irr;
	else
		pic_write(p, port, (u8)e->pio.value);
	return 0;
}
