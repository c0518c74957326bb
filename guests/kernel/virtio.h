#ifndef NL_VIRTIO_H
#define NL_VIRTIO_H
#include "types.h"
#define VIRTIO_MMIO_BASE 0xFEB00000UL
int virtio_blk_init(void);                      /* 0 = device found and ready */
void virtio_blk_use_irq(int irq);               /* wait with STI;HLT for this 8259 IRQ instead of spinning */
void virtio_blk_irq(void);                      /* IRQ handler: acknowledge the device */
extern int virtio_blk_irq_line;                 /* -1 = polled (default) */
i64 virtio_blk_capacity(void);
u64 virtio_blk_mmio_base(void);                  /* sectors, -1 if absent */
int virtio_blk_rw(int write, u64 sector, u8 *buf, u32 nsect); /* 0 = ok */
#endif
