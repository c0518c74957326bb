/*
 * L2's port devices, modelled in L1: COM1 (output to L1's own COM1), isa-debug-exit (L2's status
 * becomes L1's), fw_cfg (what the guest kernel reads: signature, CPU count, RAM size), the two
 * 8259 PICs (initialisation and masks; L2 gets no PIC interrupts) and port 0x80 (ignored).
 */
#include "l1hv.h"
#include "lib.h"
#include "x86.h"

static u8 uart_lcr, uart_ier, uart_mcr, uart_scr;
static u8 pic_mask[2] = { 0xff, 0xff };
static u8 pic_icw_step[2];
static u16 fw_sel;
static u32 fw_off;

static u8 fwcfg_byte(void)
{
	u8 item[8] = { 0 };
	u32 len = 0;
	switch (fw_sel) {
	case 0x0000: item[0] = 'Q'; item[1] = 'E'; item[2] = 'M'; item[3] = 'U'; len = 4; break;
	case 0x0005: item[0] = 1; len = 2; break;
	case 0x0003:
		for (int i = 0; i < 8; i++)
			item[i] = (u8)(l2_ram_size >> (8 * i));
		len = 8;
		break;
	}
	return fw_off < len ? item[fw_off++] : 0;
}

static u32 port_in(u16 port)
{
	switch (port) {
	case 0x3f8: return 0;                       /* RBR: no input */
	case 0x3f9: return uart_lcr & 0x80 ? 0 : uart_ier;
	case 0x3fa: return 0x01;                    /* IIR: no interrupt pending */
	case 0x3fb: return uart_lcr;
	case 0x3fc: return uart_mcr;
	case 0x3fd: return 0x60;                    /* LSR: transmitter empty */
	case 0x3fe: return 0xb0;                    /* MSR: CTS, DSR, DCD */
	case 0x3ff: return uart_scr;
	case 0x21: return pic_mask[0];
	case 0xa1: return pic_mask[1];
	case 0x511: return fwcfg_byte();
	}
	return 0xffffffffu;                         /* no device: the bus floats high */
}

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

static void port_out(u16 port, u32 v)
{
	switch (port) {
	case 0x3f8:
		if (!(uart_lcr & 0x80))
			kputc((char)v);
		return;
	case 0x3f9: if (!(uart_lcr & 0x80)) uart_ier = (u8)v; return;
	case 0x3fb: uart_lcr = (u8)v; return;
	case 0x3fc: uart_mcr = (u8)v; return;
	case 0x3ff: uart_scr = (u8)v; return;
	case 0xf4:
		outl(0xf4, v);                          /* L2's status is L1's: the machine stops here */
		for (;;)
			__asm__ volatile("cli; hlt");
	case 0x20: case 0x21: pic_write(0, port, (u8)v); return;
	case 0xa0: case 0xa1: pic_write(1, port, (u8)v); return;
	case 0x510: fw_sel = (u16)v; fw_off = 0; return;
	}
}

void pio_access(struct l2_exit *e)
{
	if (e->pio.in)
		e->pio.value = port_in(e->pio.port);
	else
		port_out(e->pio.port, e->pio.value);
}
