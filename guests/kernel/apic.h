#ifndef NL_APIC_H
#define NL_APIC_H
#include "types.h"
#define VEC_PIC_BASE 0x20
#define VEC_TIMER 0x40
#define VEC_SPURIOUS 0xFF
void pic_init(void);            /* remap to 0x20/0x28, mask everything */
void lapic_init(u32 tick);      /* xAPIC enable, periodic timer (0 = off) */
void lapic_eoi(void);
extern u64 timer_ticks;
#endif
