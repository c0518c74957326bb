#ifndef NL_CPU_H
#define NL_CPU_H
#include "types.h"

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define USER_DS   0x23
#define USER_CS   0x2b
#define TSS_SEL   0x30

struct trapframe {
	u64 r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	u64 vec, err, rip, cs, rflags, rsp, ss;
};

struct percpu {
	u64 kstack_top; /* %gs:0 */
	u64 user_rsp;   /* %gs:8 */
};

extern struct percpu percpu;
extern int cpu_has_pcid, cpu_has_pge, cpu_has_tsc_deadline;

void cpu_init(void);             /* GDT, TSS, IDT, GS, SYSCALL MSRs, CR0/CR4 features */
void set_kernel_stack(u64 top);  /* TSS.rsp0 + percpu */
void cpu_use_entry_area(u64 idt_va, u64 gdt_va, u64 tss_va, u64 rsp0, u64 ist1, u64 gs_base); /* pti=on */
#endif
