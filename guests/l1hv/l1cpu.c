/* L1's own CPU tables: a GDT with user segments and a TSS (VMX host state needs a usable TR; RSP0
 * for the device process's system calls and interrupts) and an IDT: L1's LAPIC timer and
 * spurious vectors, the device process's INT 0x80 (DPL 3); every other vector reports a fault in
 * L1 and stops the machine. */
#include "l1hv.h"
#include "apic.h"
#include "lib.h"

static u64 gdt[7] __attribute__((aligned(16)));
static u8 rsp0_stack[8192] __attribute__((aligned(16)));
static u8 tss[104] __attribute__((aligned(16)));
static u64 idt[512] __attribute__((aligned(16)));
extern char l1_trap_stubs[], devproc_int80[], l1_timer_entry[], l1_spurious_entry[];

void l1_fault(u64 vector, u64 *frame)
{
	panic("l1hv: exception %lu in L1 (frame: %lx %lx %lx)", vector, frame[0], frame[1], frame[2]);
}

/* A 64-bit interrupt gate (type/DPL byte `attr`) for `vector` at `h`, kernel code segment. */
static void set_gate(int vector, u64 h, u64 attr)
{
	idt[2 * vector] = (h & 0xffff) | (0x08ul << 16) | (attr << 40) | ((h >> 16) << 48);
	idt[2 * vector + 1] = h >> 32;
}

/* The handler address in `vector`'s gate (KVM's gate_offset, for interrupts acknowledged on exit). */
u64 l1_idt_handler(u8 vector)
{
	return (idt[2 * vector] & 0xffff) | ((idt[2 * vector] >> 48) << 16) | (idt[2 * vector + 1] << 32);
}

void l1_cpu_init(void)
{
	u64 t = (u64)tss;
	gdt[1] = 0x00AF9A000000FFFFul;  /* 0x08: 64-bit code */
	gdt[2] = 0x00CF92000000FFFFul;  /* 0x10: data */
	gdt[3] = 0x00CFF2000000FFFFul;  /* 0x18: user data (SS 0x1b) */
	gdt[4] = 0x00AFFA000000FFFFul;  /* 0x20: user 64-bit code (CS 0x23) */
	gdt[5] = 103 | ((t & 0xffffff) << 16) | (0x89ul << 40) | (((t >> 24) & 0xff) << 56);  /* 0x28: TSS */
	gdt[6] = t >> 32;
	*(u64 *)(tss + 4) = (u64)rsp0_stack + sizeof(rsp0_stack);  /* RSP0: the device process's system calls */
	for (int v = 0; v < 256; v++)
		set_gate(v, (u64)l1_trap_stubs + 16 * (u64)v, 0x8e);
	set_gate(0x80, (u64)devproc_int80, 0xee);  /* INT 0x80 from ring 3: the device process's system calls */
	set_gate(VEC_TIMER, (u64)l1_timer_entry, 0x8e);
	set_gate(VEC_SPURIOUS, (u64)l1_spurious_entry, 0x8e);
	struct { u16 limit; u64 base; } __attribute__((packed)) gdtr = { sizeof(gdt) - 1, (u64)gdt },
		idtr = { sizeof(idt) - 1, (u64)idt };
	__asm__ volatile("lgdt %0; lidt %1; ltr %w2" ::"m"(gdtr), "m"(idtr), "r"(0x28) : "memory");
}
