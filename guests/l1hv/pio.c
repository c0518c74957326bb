/*
 * L2's 8259 PICs, modelled in L1's kernel (KVM's in-kernel irqchip): initialisation words and
 * masks kept; L2 gets no PIC interrupt. Every other port goes to the device process.
 */
#include "l1hv.h"

static u8 pic_mask[2] = { 0xff, 0xff };
static u8 pic_icw_step[2];

static void pic_write(int n, u16 port, u8 v)
{
	if ((port & 1) == 0) {
		if (v & 0x10)
			pic_icw_step[n] = 1;                /* ICW1: ICW2..4 follow on the data port */
		return;
	}
	if (pic_icw_step[n]) {
		pic_icw_step[n] = pic_icw_step[n] == 3 ? 0 : pic_icw_step[n] + 1;
		return;
	}
	pic_mask[n] = v;                            /* OCW1 */
}

int pic_access(struct l2_exit *e)
{
	u16 port = e->pio.port;
	int n = port == 0x20 || port == 0x21 ? 0 : port == 0xa0 || port == 0xa1 ? 1 : -1;
	if (n < 0)
		return -1;
	if (e->pio.in)
		e->pio.value = (port & 1) ? pic_mask[n] : 0;
	else
		pic_write(n, port, (u8)e->pio.value);
	return 0;
}
