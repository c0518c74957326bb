/*
 * L2's virtio-blk: a virtio-mmio (version 2) transport with one split virtqueue, modelled in L1
 * (virtio 1.x spec, 4.2.2 register layout; 5.2 block device). Requests are served by L1's own
 * virtio-blk driver (guests/kernel/virtio_blk.c, shared) on the machine's device, synchronously
 * at the queue notify; L2 polls the used ring (no interrupt to L2).
 */
#include "l1hv.h"
#include "lib.h"
#include "virtio.h"

#define QSZ_MAX 8

static u32 status, dev_feat_sel, drv_feat_sel, queue_num = QSZ_MAX, queue_ready, isr;
static u32 drv_features[2];
static u64 q_desc, q_driver, q_device;
static u16 last_avail;
static i64 capacity = -1;

int vblk_init(void)
{
	if (virtio_blk_init() != 0)
		return -1;
	capacity = virtio_blk_capacity();
	return 0;
}

struct vq_desc { u64 addr; u32 len; u16 flags, next; };

/* One request: header (type, sector), data, status byte (virtio 5.2.6). */
static void serve(u16 head)
{
	struct vq_desc *d[3];
	u16 idx = head;
	for (int k = 0; k < 3; k++) {
		d[k] = l2_gpa_ptr(q_desc + 16ul * (idx % queue_num), 16);
		if (d[k] == NULL)
			return;
		idx = d[k]->next;
	}
	const u32 *hdr = l2_gpa_ptr(d[0]->addr, 16);
	u8 *data = l2_gpa_ptr(d[1]->addr, d[1]->len);
	u8 *st = l2_gpa_ptr(d[2]->addr, 1);
	if (hdr == NULL || data == NULL || st == NULL)
		return;
	u64 sector = hdr[2] | ((u64)hdr[3] << 32);
	int write = hdr[0] == 1;
	*st = virtio_blk_rw(write, sector, data, d[1]->len / 512) == 0 ? 0 : 1;
	u16 *used_idx = l2_gpa_ptr(q_device + 2, 2);
	u32 *elem = l2_gpa_ptr(q_device + 4 + 8ul * (*used_idx % queue_num), 8);
	elem[0] = head;
	elem[1] = write ? 1 : d[1]->len + 1;
	__asm__ volatile("" ::: "memory");
	(*used_idx)++;
	isr |= 1;
}

static void notify(void)
{
	const u16 *avail = l2_gpa_ptr(q_driver, 4 + 2 * QSZ_MAX);
	if (avail == NULL || !queue_ready)
		return;
	while (last_avail != avail[1]) {
		serve(avail[2 + last_avail % queue_num]);
		last_avail++;
	}
}

static void set64(u64 *q, u64 off, u32 v)
{
	*q = (off & 4) ? ((*q & 0xffffffffu) | ((u64)v << 32)) : ((*q & ~0xffffffffull) | v);
}

int vblk_mmio(u64 off, int write, u32 size, u64 *value)
{
	(void)size;
	if (!write) {
		u32 v = 0;
		switch (off) {
		case 0x000: v = 0x74726976; break;      /* "virt" */
		case 0x004: v = 2; break;
		case 0x008: v = capacity >= 0 ? 2 : 0; break;
		case 0x00c: v = 0x554d4551; break;      /* vendor "QEMU" */
		case 0x010: v = dev_feat_sel == 1 ? 1 : 0; break;  /* VIRTIO_F_VERSION_1 only */
		case 0x034: v = QSZ_MAX; break;
		case 0x044: v = queue_ready; break;
		case 0x060: v = isr; break;
		case 0x070: v = status; break;
		case 0x100: v = (u32)capacity; break;
		case 0x104: v = (u32)((u64)capacity >> 32); break;
		}
		*value = v;
		return 0;
	}
	u32 v = (u32)*value;
	switch (off) {
	case 0x014: dev_feat_sel = v; break;
	case 0x020: drv_features[drv_feat_sel & 1] = v; break;
	case 0x024: drv_feat_sel = v; break;
	case 0x038: queue_num = v && v <= QSZ_MAX ? v : QSZ_MAX; break;
	case 0x044: queue_ready = v & 1; break;
	case 0x050: notify(); break;
	case 0x064: isr &= ~v; break;
	case 0x070: status = v; if (!v) { queue_ready = 0; last_avail = 0; isr = 0; } break;
	case 0x080: case 0x084: set64(&q_desc, off, v); break;
	case 0x090: case 0x094: set64(&q_driver, off, v); break;
	case 0x0a0: case 0x0a4: set64(&q_device, off, v); break;
	}
	return 0;
}
