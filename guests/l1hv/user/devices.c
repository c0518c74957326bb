/*
 * L2's userspace device models in L1's device process (ring 3): COM1 (bytes to L1's console by
 * system call), isa-debug-exit, fw_cfg (signature, CPU count, RAM size), port 0x80, and the
 * virtio-mmio (v2) block device with one split queue whose requests become block system calls,
 * as QEMU's models turn them into pwrite/pread. Entered once per exit with the run page; ends
 * with DEVSYS_DONE. No data segment: all state is in the run page.
 */
#include "../devproc.h"

static inline long devsys(long n, long a, long b, long c, long d)
{
	long r;
	register long r10 __asm__("r10") = d;
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "memory");
	return r;
}

static void *l2(struct devrun *r, u64 gpa, u64 len)
{
	if (gpa + len > r->l2_size || gpa + len < gpa)
		return 0;
	return (void *)(DEVPROC_L2RAM + gpa);
}

static u8 fwcfg_byte(struct devrun *r)
{
	u32 off = r->fw_off++;
	switch (r->fw_sel) {
	case 0x0000: return off < 4 ? (u8)("QEMU"[off]) : 0;
	case 0x0005: return off == 0 ? 1 : 0;
	case 0x0003: return off < 8 ? (u8)(r->l2_size >> (8 * off)) : 0;
	}
	return 0;
}

static void port_io(struct devrun *r)
{
	u16 port = (u16)r->addr;
	u32 v = (u32)r->value;
	if (!r->write) {
		u32 in = 0xffffffffu;  /* no device: the bus floats high */
		switch (port) {
		case 0x3f8: in = 0; break;
		case 0x3f9: in = r->uart_lcr & 0x80 ? 0 : r->uart_ier; break;
		case 0x3fa: in = 0x01; break;
		case 0x3fb: in = r->uart_lcr; break;
		case 0x3fc: in = r->uart_mcr; break;
		case 0x3fd: in = 0x60; break;  /* LSR: transmitter empty */
		case 0x3fe: in = 0xb0; break;
		case 0x3ff: in = r->uart_scr; break;
		case 0x511: in = fwcfg_byte(r); break;
		}
		r->value = in;
		return;
	}
	switch (port) {
	case 0x3f8: if (!(r->uart_lcr & 0x80)) devsys(DEVSYS_PUTC, v & 0xff, 0, 0, 0); break;
	case 0x3f9: if (!(r->uart_lcr & 0x80)) r->uart_ier = (u8)v; break;
	case 0x3fb: r->uart_lcr = (u8)v; break;
	case 0x3fc: r->uart_mcr = (u8)v; break;
	case 0x3ff: r->uart_scr = (u8)v; break;
	case 0xf4: devsys(DEVSYS_EXIT, v, 0, 0, 0); break;
	case 0x510: r->fw_sel = (u16)v; r->fw_off = 0; break;
	}
}

struct vq_desc { u64 addr; u32 len; u16 flags, next; };

/* One request: header (type, sector), data, status byte (virtio 1.x, 5.2.6). */
static void vq_serve(struct devrun *r, u16 head)
{
	struct vq_desc *d[3];
	u16 idx = head;
	for (int k = 0; k < 3; k++) {
		d[k] = l2(r, r->vq_desc + 16ul * (idx % r->vq_num), 16);
		if (!d[k])
			return;
		idx = d[k]->next;
	}
	const u32 *hdr = l2(r, d[0]->addr, 16);
	u8 *data = l2(r, d[1]->addr, d[1]->len);
	u8 *st = l2(r, d[2]->addr, 1);
	if (!hdr || !data || !st)
		return;
	int write = hdr[0] == 1;
	u64 sector = hdr[2] | ((u64)hdr[3] << 32);
	*st = devsys(DEVSYS_BLK, write, (long)sector, (long)data, d[1]->len / 512) == 0 ? 0 : 1;
	u16 *used_idx = l2(r, r->vq_device + 2, 2);
	u32 *elem = l2(r, r->vq_device + 4 + 8ul * (*used_idx % r->vq_num), 8);
	elem[0] = head;
	elem[1] = write ? 1 : d[1]->len + 1;
	__asm__ volatile("" ::: "memory");
	(*used_idx)++;
	r->vq_isr |= 1;
}

static void set64(u64 *q, u64 off, u32 v)
{
	*q = (off & 4) ? ((*q & 0xffffffffu) | ((u64)v << 32)) : ((*q & ~0xffffffffull) | v);
}

static void virtio_mmio(struct devrun *r)
{
	u64 off = r->addr - 0xfeb00000ul;
	if (!r->write) {
		u32 v = 0;
		switch (off) {
		case 0x000: v = 0x74726976; break;
		case 0x004: v = 2; break;
		case 0x008: v = r->blk_capacity >= 0 ? 2 : 0; break;
		case 0x00c: v = 0x554d4551; break;
		case 0x010: v = r->vq_dev_feat_sel == 1 ? 1 : 0; break;  /* VIRTIO_F_VERSION_1 only */
		case 0x034: v = 8; break;
		case 0x044: v = r->vq_ready; break;
		case 0x060: v = r->vq_isr; break;
		case 0x070: v = r->vq_status; break;
		case 0x100: v = (u32)r->blk_capacity; break;
		case 0x104: v = (u32)((u64)r->blk_capacity >> 32); break;
		}
		r->value = v;
		return;
	}
	u32 v = (u32)r->value;
	switch (off) {
	case 0x014: r->vq_dev_feat_sel = v; break;
	case 0x020: r->vq_drv_features[r->vq_drv_feat_sel & 1] = v; break;
	case 0x024: r->vq_drv_feat_sel = v; break;
	case 0x038: r->vq_num = v && v <= 8 ? v : 8; break;
	case 0x044: r->vq_ready = v & 1; break;
	case 0x050: {
		const u16 *avail = l2(r, r->vq_driver, 4 + 2 * 8);
		if (!avail || !r->vq_ready)
			break;
		while (r->vq_last_avail != avail[1]) {
			vq_serve(r, avail[2 + r->vq_last_avail % r->vq_num]);
			r->vq_last_avail++;
		}
		break;
	}
	case 0x064: r->vq_isr &= ~v; break;
	case 0x070:
		r->vq_status = v;
		if (!v)
			r->vq_ready = r->vq_last_avail = r->vq_isr = 0;
		break;
	case 0x080: case 0x084: set64(&r->vq_desc, off, v); break;
	case 0x090: case 0x094: set64(&r->vq_driver, off, v); break;
	case 0x0a0: case 0x0a4: set64(&r->vq_device, off, v); break;
	}
}

void devproc_main(struct devrun *r)
{
	if (r->mmio)
		virtio_mmio(r);
	else
		port_io(r);
	/* virtio-mmio's interrupt line follows InterruptStatus (QEMU's virtio_update_irq → qemu_set_irq) */
	u32 level = r->vq_isr != 0;
	if (level != r->irq_level) {
		r->irq_level = level;
		devsys(DEVSYS_IRQ, VBLK_IRQ, level, 0, 0);
	}
	devsys(DEVSYS_DONE, 0, 0, 0, 0);
	for (;;)
		;
}
