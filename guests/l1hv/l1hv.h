/* The L1 hypervisor's core: L2 memory, the device models, the boot of L2 (see docs/l1hv.md). */
#ifndef L1HV_H
#define L1HV_H
#include "types.h"
#include "backend.h"

/* ---- L2 memory (l2mem.c): one slot, L2-physical [0, size) at L1-physical `hpa` ---- */
extern struct l2_memslot l2_ram;
void *l2_gpa_ptr(u64 gpa, u64 len);                /* NULL unless [gpa, gpa+len) is L2 RAM */
/* The same, first backing (zeroing) the pages nobody touched yet, as a host hands out fresh pages. */
void *l2_back(u64 gpa, u64 len);
extern u64 l2_pages_backed;
/* Translate an L2 linear address through L2's 4-level page tables (cr3); -1 if not mapped. */
i64 l2_gva_to_gpa(u64 cr3, u64 gva);

/* ---- MMIO instruction decoding (mmio_decode.c): the MOV forms the guest kernel uses ---- */
struct mmio_insn {
	u8 len;          /* instruction length */
	u8 size;         /* access size 1/2/4/8 */
	u8 write;        /* 1 = store */
	u8 reg;          /* register number of the source (store) or destination (load); 0xff = imm */
	u8 zero_extend;  /* load: MOVZX (upper bits cleared) vs MOV (32-bit clears 63:32, 8/16 merge) */
	u64 imm;         /* store of an immediate */
};
int mmio_decode(const u8 *code, int n, struct mmio_insn *out);  /* 0 = ok */

/* ---- device models: in L1's kernel (pio.c: the PICs; lapic.c) and in the device process
 * (devproc.c; user/devices.c: COM1, debug-exit, fw_cfg, port 0x80, virtio-blk) ---- */
int pic_access(struct l2_exit *e);                 /* 0 = a PIC port, handled */
void pic_set_irq(int irq, int level);              /* a device's interrupt line (KVM_IRQ_LINE) */
int pic_has_interrupt(void);
int pic_ack(void);                                 /* INTA: the vector to inject, -1 if none */
u32 pic_line_vector(int irq);                      /* its vector while unmasked, else 0 */
void devproc_init(void);
void devproc_call(struct l2_exit *e);              /* the userspace round trip for one exit */
extern u64 devproc_calls;
void lapic_reset(void);
int lapic_mmio(u64 off, int write, u64 *value);
u64 lapic_deadline(void);                          /* TSC of the next timer expiry, 0 = none */
int lapic_timer_expired(u64 now);                  /* vector to raise, or -1 */

/* ---- L1's own CPU and timer (l1cpu.c, traps.S, l1timer.c) ---- */
u64 l1_idt_handler(u8 vector);                     /* the gate's handler address */
void l1_dispatch_irq(u64 handler);                 /* run an IDT handler as the CPU would (IF = 0) */
void l1_timer_init(int tick);                      /* the scheduler tick starts (tick = 0: wake-ups only) */
void l1_idle_until(u64 tsc);                       /* STI; HLT until the TSC reaches tsc */
void l1_timer_wake_at(u64 tsc);                    /* also fire at tsc (0: tick only) */
extern u64 l1_ticks, l1_timer_irqs, l1_halts;

/* ---- boot of L2 (loader.c) ---- */
int l2_load(const u8 *elf, u64 len, const char *cmdline, struct l2_regs *regs, struct l2_sregs *sregs);

/* ---- status ---- */
extern u64 l2_ram_size;
extern u64 l1_exit_count[8];   /* core-handled exits by l2_exit_kind */
#endif
