/* COM1 16550 console (polled, LSR bit 5) and a tiny printf. */
#include "lib.h"
#include "x86.h"

#define COM1 0x3F8

void serial_init(void)
{
	outb(COM1 + 1, 0x00); /* IER: no interrupts */
	outb(COM1 + 3, 0x80); /* LCR: DLAB */
	outb(COM1 + 0, 0x01); /* divisor 1 = 115200 */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1 */
	outb(COM1 + 2, 0xC7); /* FIFO on, cleared */
	outb(COM1 + 4, 0x03); /* DTR|RTS, OUT2 off: no IRQ */
}

void kputc(char c)
{
	while (!(inb(COM1 + 5) & 0x20))
		;
	outb(COM1, (u8)c);
}

void kputs(const char *s)
{
	while (*s)
		kputc(*s++);
}

static void put_num(u64 v, unsigned base, int neg, int width, char pad)
{
	char buf[24];
	int i = 0;
	do {
		unsigned d = v % base;
		buf[i++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v);
	if (neg)
		buf[i++] = '-';
	while (i < width--)
		kputc(pad);
	while (i)
		kputc(buf[--i]);
}

static void kvprintf(const char *fmt, __builtin_va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			kputc(*fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0, lng = 0;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l') {
			lng = 1;
			fmt++;
		}
		switch (*fmt) {
		case 'd': {
			i64 v = lng ? __builtin_va_arg(ap, i64) : __builtin_va_arg(ap, int);
			put_num(v < 0 ? (u64)-v : (u64)v, 10, v < 0, width, pad);
			break;
		}
		case 'u':
			put_num(lng ? __builtin_va_arg(ap, u64) : __builtin_va_arg(ap, unsigned), 10, 0, width, pad);
			break;
		case 'x':
			put_num(lng ? __builtin_va_arg(ap, u64) : __builtin_va_arg(ap, unsigned), 16, 0, width, pad);
			break;
		case 'p':
			kputs("0x");
			put_num(__builtin_va_arg(ap, u64), 16, 0, 16, '0');
			break;
		case 's': {
			const char *s = __builtin_va_arg(ap, const char *);
			kputs(s ? s : "(null)");
			break;
		}
		case 'c':
			kputc((char)__builtin_va_arg(ap, int));
			break;
		case '%':
			kputc('%');
			break;
		default:
			kputc('?');
		}
	}
}

void kprintf(const char *fmt, ...)
{
	__builtin_va_list ap;
	__builtin_va_start(ap, fmt);
	kvprintf(fmt, ap);
	__builtin_va_end(ap);
}

/* QEMU isa-debug-exit at 0xF4: the machine exits with status (v << 1) | 1. */
void machine_exit(u32 code)
{
	outl(0xF4, code);
	for (;;)
		__asm__ volatile("cli; hlt");
}

void panic(const char *fmt, ...)
{
	__builtin_va_list ap;
	kputs("PANIC: ");
	__builtin_va_start(ap, fmt);
	kvprintf(fmt, ap);
	__builtin_va_end(ap);
	kputs("\nDONE status=1\n");
	machine_exit(1);
}
