/* virtio-mmio (version 2, modern) block device at 0xFEB00000, one split
 * virtqueue of up to 8 entries, one request in flight, completion by polling
 * the used ring (IRQ 11 stays masked at the 8259: deterministic). */
#include "virtio.h"
#include "layout.h"
#include "lib.h"
#include "mm.h"
#include "x86.h"

#define MMIO_MAGIC 0x000
#define MMIO_VERSION 0x004
#define MMIO_DEVICE_ID 0x008
#define MMIO_DEV_FEATURES 0x010
#define MMIO_DEV_FEATURES_SEL 0x014
#define MMIO_DRV_FEATURES 0x020
#define MMIO_DRV_FEATURES_SEL 0x024
#define MMIO_QUEUE_SEL 0x030
#define MMIO_QUEUE_NUM_MAX 0x034
#define MMIO_QUEUE_NUM 0x038
#define MMIO_QUEUE_READY 0x044
#define MMIO_QUEUE_NOTIFY 0x050
#define MMIO_INT_STATUS 0x060
#define MMIO_INT_ACK 0x064
#define MMIO_STATUS 0x070
#define MMIO_QUEUE_DESC 0x080
#define MMIO_QUEUE_DRIVER 0x090
#define MMIO_QUEUE_DEVICE 0x0a0
#define MMIO_CONFIG 0x100

#define ST_ACK 1
#define ST_DRIVER 2
#define ST_DRIVER_OK 4
#define ST_FEATURES_OK 8

#define VRING_NEXT 1
#define VRING_WRITE 2
#define QSZ_MAX 8

struct vq_desc { u64 addr; u32 len; u16 flags, next; };
struct vq_avail { u16 flags, idx, ring[QSZ_MAX], used_event; };
struct vq_used_elem { u32 id, len; };
struct vq_used { u16 flags, idx; struct vq_used_elem ring[QSZ_MAX]; u16 avail_event; };
struct blk_req { u32 type, reserved; u64 sector; };

static volatile u8 *mmio;
static u64 mmio_pa;
static int present;
static u64 capacity;
static u32 qsz;
static u16 last_used;
static struct vq_desc *desc;
static struct vq_avail *avail;
static struct vq_used *used;
static struct blk_req *req;
static volatile u8 *status;
static u8 *bounce;
int virtio_blk_irq_line = -1;
static u64 irq_count;
static u64 ring_pa, bounce_pa;

static u32 rd(u32 off) { return *(volatile u32 *)(mmio + off); }
static void wr(u32 off, u32 v) { *(volatile u32 *)(mmio + off) = v; }
static void wr64(u32 off, u64 v) { wr(off, (u32)v); wr(off + 4, (u32)(v >> 32)); }

int virtio_blk_init(void)
{
	/* nestlab: the block device is the transport at VIRTIO_MMIO_BASE.  If that
	 * transport exists but is empty (device id 0, as on QEMU microvm), scan the
	 * following 0x200-byte slots for a block device. */
	for (int slot = 0; slot < 32; slot++) {
		mmio = P2V(VIRTIO_MMIO_BASE + 0x200UL * slot);
		if (rd(MMIO_MAGIC) != 0x74726976)
			return -1;
		if (rd(MMIO_DEVICE_ID) == 2)
			break;
		if (rd(MMIO_DEVICE_ID) != 0 || slot == 31)
			return -1;
	}
	if (rd(MMIO_VERSION) != 2)
		return -5; /* legacy (version 1) transport: not supported */
	mmio_pa = VIRTIO_MMIO_BASE + (u64)((const u8 *)mmio - (const u8 *)P2V(VIRTIO_MMIO_BASE));
	wr(MMIO_STATUS, 0);
	wr(MMIO_STATUS, ST_ACK);
	wr(MMIO_STATUS, ST_ACK | ST_DRIVER);
	wr(MMIO_DEV_FEATURES_SEL, 1);
	if (!(rd(MMIO_DEV_FEATURES) & 1)) /* VIRTIO_F_VERSION_1 (bit 32) */
		return -2;
	wr(MMIO_DRV_FEATURES_SEL, 0);
	wr(MMIO_DRV_FEATURES, 0);
	wr(MMIO_DRV_FEATURES_SEL, 1);
	wr(MMIO_DRV_FEATURES, 1);
	wr(MMIO_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	if (!(rd(MMIO_STATUS) & ST_FEATURES_OK))
		return -3;
	wr(MMIO_QUEUE_SEL, 0);
	u32 max = rd(MMIO_QUEUE_NUM_MAX);
	if (!max || rd(MMIO_QUEUE_READY))
		return -4;
	qsz = max < QSZ_MAX ? max : QSZ_MAX;
	wr(MMIO_QUEUE_NUM, qsz);

	/* one page: desc @0, avail @512, used @1024, request header @2048, status @2064 */
	ring_pa = pmm_alloc();
	u8 *ring = P2V(ring_pa);
	desc = (struct vq_desc *)ring;
	avail = (struct vq_avail *)(ring + 512);
	used = (struct vq_used *)(ring + 1024);
	req = (struct blk_req *)(ring + 2048);
	status = ring + 2064;
	bounce_pa = pmm_alloc();
	bounce = P2V(bounce_pa);
	wr64(MMIO_QUEUE_DESC, ring_pa);
	wr64(MMIO_QUEUE_DRIVER, ring_pa + 512);
	wr64(MMIO_QUEUE_DEVICE, ring_pa + 1024);
	wr(MMIO_QUEUE_READY, 1);
	wr(MMIO_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
	capacity = rd(MMIO_CONFIG) | ((u64)rd(MMIO_CONFIG + 4) << 32);
	present = 1;
	return 0;
}

void virtio_blk_use_irq(int irq)
{
	if (!present || irq < 0 || irq > 15 || irq == 2)
		return;
	virtio_blk_irq_line = irq;
	if (irq < 8) {
		outb(0x21, inb(0x21) & (u8)~(1u << irq));
	} else {
		outb(0xA1, inb(0xA1) & (u8)~(1u << (irq - 8)));
		outb(0x21, inb(0x21) & (u8)~(1u << 2)); /* cascade */
	}
}

void virtio_blk_irq(void)
{
	irq_count++;
	u32 isr = present ? rd(MMIO_INT_STATUS) : 0;
	if (isr)
		wr(MMIO_INT_ACK, isr);
	if (virtio_blk_irq_line >= 8)
		outb(0xA0, 0x20); /* EOI slave */
	outb(0x20, 0x20);         /* EOI master */
}

u64 virtio_blk_mmio_base(void) { return mmio_pa; }

i64 virtio_blk_capacity(void) { return present ? (i64)capacity : -1; }

int virtio_blk_rw(int write, u64 sector, u8 *buf, u32 nsect)
{
	if (!present || nsect == 0 || nsect > 8 || sector + nsect > capacity)
		return -1;
	u32 len = nsect * 512;
	if (write)
		memcpy(bounce, buf, len);
	req->type = write ? 1 : 0; /* VIRTIO_BLK_T_OUT / T_IN */
	req->reserved = 0;
	req->sector = sector;
	*status = 0xFF;
	desc[0] = (struct vq_desc){ring_pa + 2048, 16, VRING_NEXT, 1};
	desc[1] = (struct vq_desc){bounce_pa, len, (u16)(VRING_NEXT | (write ? 0 : VRING_WRITE)), 2};
	desc[2] = (struct vq_desc){ring_pa + 2064, 1, VRING_WRITE, 0};
	avail->ring[avail->idx % qsz] = 0;
	barrier();
	avail->idx++;
	barrier();
	wr(MMIO_QUEUE_NOTIFY, 0);
	u64 spins = 0;
	while (*(volatile u16 *)&used->idx == last_used) {
		if (virtio_blk_irq_line >= 0) {
			/* STI's one-instruction shadow makes STI;HLT atomic: no lost wake-up */
			__asm__ volatile("sti; hlt; cli" ::: "memory");
			continue;
		}
		if (++spins > 200000000UL)
			return -2;
		barrier();
	}
	last_used++;
	if (virtio_blk_irq_line < 0) {
		u32 isr = rd(MMIO_INT_STATUS);
		if (isr)
			wr(MMIO_INT_ACK, isr);
	}
	barrier();
	if (*status != 0)
		return -3;
	if (!write)
		memcpy(buf, bounce, len);
	return 0;
}
