#ifndef NL_VIRTIO_H
#define NL_VIRTIO_H
#include "types.h"
#define VIRTIO_MMIO_BASE 0xFEB00000UL
int virtio_blk_init(void);                      /* 0 = device found and ready */
i64 virtio_blk_capacity(void);
u64 virtio_blk_mmio_base(void);                  /* sectors, -1 if absent */
int virtio_blk_rw(int write, u64 sector, u8 *buf, u32 nsect); /* 0 = ok */
#endif
