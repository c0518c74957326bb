/* L1's own CPU tables: a GDT with a TSS (VMX host state needs a usable TR) and an IDT whose
 * every vector reports a fault in L1 and stops the machine (L1 takes no interrupts). */
#include "l1hv.h"
#include "lib.h"

static u64 gdt[5] __attribute__((aligned(16)));
static u8 tss[104] __attribute__((aligned(16)));
static u64 idt[512] __attribute__((aligned(16)));
extern char l1_trap_stubs[];

void l1_fault(u64 vector, u64 *frame)
{
	panic("l1hv: exception %lu in L1 (frame: %lx %lx %lx)", vector, frame[0], frame[1], frame[2]);
}

void l1_cpu_init(void)
{
	u64 t = (u64)tss;
	gdt[1] = 0x00AF9A000000FFFFul;  /* 0x08: 64-bit code */
	gdt[2] = 0x00CF92000000FFFFul;  /* 0x10: data */
	gdt[3] = 103 | ((t & 0xffffff) << 16) | (0x89ul << 40) | (((t >> 24) & 0xff) << 56);  /* 0x18: TSS */
	gdt[4] = t >> 32;
	for (int v = 0; v < 256; v++) {
		u64 h = (u64)l1_trap_stubs + 16 * (u64)v;
		idt[2 * v] = (h & 0xffff) | (0x08ul << 16) | (0x8eul << 40) | ((h >> 16) << 48);
		idt[2 * v + 1] = h >> 32;
	}
	struct { u16 limit; u64 base; } __attribute__((packed)) gdtr = { sizeof(gdt) - 1, (u64)gdt },
		idtr = { sizeof(idt) - 1, (u64)idt };
	__asm__ volatile("lgdt %0; lidt %1; ltr %w2" ::"m"(gdtr), "m"(idtr), "r"(0x18) : "memory");
}
