/*
 * The npv back end: the nested paravirtual ABI (docs/npv-abi.md) from L1's kernel. Where the vmx
 * back end programs a VMCS and fills EPT12, this one asks L0 by VMCALL: create the VM, map L2
 * memory (L1 keeps its map as a bitmap over the one linear memory slot: L2 page n is L1 page
 * slot.hpa + n), register CPUID and MSR policies (L0 then answers L2's CPUID and MSRs itself),
 * leave L2's LAPIC to L0 (timer, EOI, self-IPI, HLT), hand L2's block queue to L0 (BLK_SETUP:
 * L1 keeps the virtio-mmio control path, L0 takes the data path) and RUN. L0 returns only what L1
 * must handle: I/O, MMIO of L1's devices, memory faults on unmapped pages, stops.
 */
#include "npv.h"
#include "devproc.h"
#include "l1hv.h"
#include "layout.h"
#include "lib.h"
#include "mm.h"
#include "x86.h"

_Static_assert(sizeof(struct npv_batch_entry) == 24, "batch entry");
_Static_assert(sizeof(struct npv_cpuid_entry) == 32, "cpuid entry");
_Static_assert(sizeof(struct npv_msr_entry) == 16, "msr entry");
_Static_assert(__builtin_offsetof(struct npv_state, gprs) == 0x48, "state gprs");
_Static_assert(__builtin_offsetof(struct npv_state, cs) == 0xc8, "state selectors");
_Static_assert(__builtin_offsetof(struct npv_run, insn_len) == 0xb8, "run insn_len");
_Static_assert(__builtin_offsetof(struct npv_run, data) == 0xc0, "run data");
_Static_assert(__builtin_offsetof(struct npv_run, data.mmio.value) == 0xd0, "run mmio value");
_Static_assert(sizeof(struct npv_blk_desc) == 56, "blk descriptor");

/* L2's virtio-mmio block window (core.c's mmio_access) and the registers of its control path
 * the back end follows (virtio 1.x, 4.2.2). */
#define VBLK_WINDOW        0xfeb00000ul
#define VBLK_DRV_FEAT      0x020
#define VBLK_DRV_FEAT_SEL  0x024
#define VBLK_QUEUE_NUM     0x038
#define VBLK_QUEUE_READY   0x044
#define VBLK_STATUS        0x070
#define VBLK_QUEUE_DESC    0x080
#define VBLK_QUEUE_DRIVER  0x090
#define VBLK_QUEUE_DEVICE  0x0a0
/* L0 assigns block backends per L1, numbered from 1 (ABI 4, BLK_SETUP): L1's disk is the first. */
#define NPV_L1_DISK_BACKEND 1
/* On a memory fault L1 maps the aligned group of this many pages around it, in one call (the
 * batching the ABI encourages; the TypeScript L1's default fault batch). */
#define FAULT_BATCH 8
/* The MSRs L2 owns outright, as KVM passes them through (vmx_possible_passthrough_msrs) and as
 * the ABI allows: EFER, STAR, LSTAR, CSTAR, SFMASK, FS/GS/KERNEL_GS base, TSC_AUX, PAT. */
static const u32 passthrough_msrs[] = { 0xc0000080, 0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084,
					0xc0000100, 0xc0000101, 0xc0000102, 0xc0000103, 0x277 };

u64 npv_exits_by_reason[NPV_EXIT_REASONS];
u64 npv_pages_mapped;

struct npv_vm {
	u64 handle;
	u8 *mapped;                /* bitmap over the slot's pages: L2 page mapped for L2 (L0 told) */
	u64 mapped_bytes;
};

struct npv_vcpu {
	u64 handle;                /* 0 until the first run creates it (VCPU_CREATE needs the state) */
	u64 run_pa, state_pa, arg_pa;
	struct npv_run *run;
	struct npv_state *state;
	u32 last;                  /* the exit the core is completing (NPV_EXIT_*), 0 none */
	u64 mmio_gpa;              /* of that exit, when MMIO */
	struct { u64 desc, avail, used, features; u32 num, feat_sel, mediated, vector; } blk;
};

static u32 features;

static i64 hypercall(u64 nr, u64 a1, u64 a2, u64 a3, u64 a4, u64 *rbx)
{
	u64 rax = nr, b = a1;
	__asm__ volatile("vmcall" : "+a"(rax), "+b"(b) : "c"(a2), "d"(a3), "S"(a4) : "memory");
	if (rbx)
		*rbx = b;
	return (i64)rax;
}

/* Discovery (ABI 2): the signature and the version before any hypercall. */
static int npv_init(void)
{
	u32 a, b, c, d;
	cpuid(NPV_CPUID_SIGNATURE, 0, &a, &b, &c, &d);
	if (b != 0x7473654eu || c != 0x56506465u || d != 0x31696241u)
		return -1;  /* not "NestedPVAbi1" (little-endian words) */
	if (a < NPV_CPUID_FEATURES)
		return -2;
	cpuid(NPV_CPUID_FEATURES, 0, &a, &b, &c, &d);
	if (a != NPV_ABI_VERSION)
		return -3;
	features = b;
	return 0;
}

static int npv_vm_create(struct l2_vm *vm)
{
	static struct npv_vm one;  /* L1 runs one L2 */
	u64 h;
	if (vm->eager && !(features & NPV_FEAT_EAGER_MAP))
		vm->eager = 0;
	if (hypercall(NPV_HC_VM_CREATE, vm->eager ? NPV_VM_EAGER : 0, 0, 0, 0, &h) != NPV_OK)
		return -1;
	one.handle = h;
	vm->priv = &one;
	/* The virtio-mmio window is L1's device: L2's accesses come back as MMIO exits. */
	return hypercall(NPV_HC_MMIO_REGION, h, VBLK_WINDOW, 1, 0, NULL) == NPV_OK ? 0 : -1;
}

/* Tell L0 that L2 pages [first, first + n) of slot `s` are L1 pages s->hpa + ...: one MAP. */
static int map_run(struct npv_vm *nv, const struct l2_memslot *s, u64 first, u64 n)
{
	u64 l2 = s->gpa + (first << 12);
	if (hypercall(NPV_HC_MAP, nv->handle, l2, s->hpa + (first << 12), n | ((u64)NPV_PERM_RWX << 32), NULL) != NPV_OK)
		return -1;
	for (u64 p = first; p < first + n; p++)
		nv->mapped[p / 8] |= (u8)(1u << (p % 8));
	npv_pages_mapped += n;
	return 0;
}

static int npv_set_memslot(struct l2_vm *vm, const struct l2_memslot *slot)
{
	struct npv_vm *nv = vm->priv;
	if (vm->nslots != 0)
		return -1;  /* L1's map is one linear slot */
	vm->slots[vm->nslots++] = *slot;
	u64 pages = slot->size >> 12;
	u64 bm_pages = (pages / 8 + PAGE_SIZE - 1) / PAGE_SIZE;
	u64 first = pmm_alloc();
	for (u64 i = 1; i < bm_pages; i++)
		if (pmm_alloc() != first + i * PAGE_SIZE)
			panic("l1hv: npv: the map bitmap needs contiguous pages");
	nv->mapped = P2V(first);
	nv->mapped_bytes = bm_pages * PAGE_SIZE;
	if (!vm->eager)
		return 0;
	/* Eager: back (zero) every page, as the vmx back end does, and map the slot in one call. */
	for (u64 off = 0; off < slot->size; off += PAGE_SIZE)
		l2_back(slot->gpa + off, PAGE_SIZE);
	return map_run(nv, slot, 0, pages);
}

static int npv_vcpu_create(struct l2_vm *vm, struct l2_vcpu *v)
{
	static struct npv_vcpu one;
	struct npv_vcpu *n = &one;
	v->vm = vm;
	v->priv = n;
	n->run_pa = pmm_alloc();
	n->state_pa = pmm_alloc();
	n->arg_pa = pmm_alloc();
	n->run = P2V(n->run_pa);
	n->state = P2V(n->state_pa);
	n->blk.num = 8;
	return 0;
}

static int npv_set_cpuid(struct l2_vcpu *v, const struct l2_cpuid_entry *e, u32 count)
{
	struct npv_vcpu *n = v->priv;
	struct npv_vm *nv = v->vm->priv;
	struct npv_cpuid_entry *t = P2V(n->arg_pa);
	if (count > NPV_MAX_CPUID)
		return -1;
	for (u32 i = 0; i < count; i++)
		t[i] = (struct npv_cpuid_entry){ e[i].leaf, e[i].subleaf, 0, 0, e[i].eax, e[i].ebx, e[i].ecx, e[i].edx };
	return hypercall(NPV_HC_SET_CPUID, nv->handle, n->arg_pa, count, 0, NULL) == NPV_OK ? 0 : -1;
}

static int is_lapic_msr(u32 index)
{
	return index == 0x1b || index == 0x6e0 || (index >= 0x800 && index <= 0x8ff);
}

/* The core's policy, less the LAPIC's MSRs (L0's LAPIC answers them: LAPIC offload), plus the
 * MSRs L2 owns outright. */
static int npv_set_msrs(struct l2_vcpu *v, const struct l2_msr_policy *p, u32 count)
{
	struct npv_vcpu *n = v->priv;
	struct npv_vm *nv = v->vm->priv;
	struct npv_msr_entry *t = P2V(n->arg_pa);
	u32 k = 0;
	for (u32 i = 0; i < sizeof(passthrough_msrs) / sizeof(passthrough_msrs[0]); i++)
		t[k++] = (struct npv_msr_entry){ passthrough_msrs[i], NPV_MSR_PASSTHROUGH, 0 };
	for (u32 i = 0; i < count && k < 255; i++) {
		int dup = 0;
		for (u32 j = 0; j < k; j++)
			dup |= t[j].index == p[i].index;
		if (dup || is_lapic_msr(p[i].index))
			continue;
		t[k++] = (struct npv_msr_entry){ p[i].index,
						 p[i].action == L2_MSR_PASS ? NPV_MSR_PASSTHROUGH : NPV_MSR_VALUE,
						 p[i].value };
	}
	return hypercall(NPV_HC_SET_MSRS, nv->handle, n->arg_pa, k, 0, NULL) == NPV_OK ? 0 : -1;
}

/* ModRM order of the run page and the state page. */
static void regs_to_gprs(const struct l2_regs *r, u64 *g)
{
	g[0] = r->rax; g[1] = r->rcx; g[2] = r->rdx; g[3] = r->rbx;
	g[4] = r->rsp; g[5] = r->rbp; g[6] = r->rsi; g[7] = r->rdi;
	g[8] = r->r8; g[9] = r->r9; g[10] = r->r10; g[11] = r->r11;
	g[12] = r->r12; g[13] = r->r13; g[14] = r->r14; g[15] = r->r15;
}

static int npv_get_regs(struct l2_vcpu *v, struct l2_regs *r)
{
	struct npv_vcpu *n = v->priv;
	const u64 *g = n->handle ? n->run->gprs : n->state->gprs;
	r->rax = g[0]; r->rcx = g[1]; r->rdx = g[2]; r->rbx = g[3];
	r->rsp = g[4]; r->rbp = g[5]; r->rsi = g[6]; r->rdi = g[7];
	r->r8 = g[8]; r->r9 = g[9]; r->r10 = g[10]; r->r11 = g[11];
	r->r12 = g[12]; r->r13 = g[13]; r->r14 = g[14]; r->r15 = g[15];
	r->rip = n->handle ? n->run->rip : n->state->rip;
	r->rflags = n->handle ? n->run->rflags : n->state->rflags;
	return 0;
}

static int npv_set_regs(struct l2_vcpu *v, const struct l2_regs *r)
{
	struct npv_vcpu *n = v->priv;
	if (!n->handle) {
		regs_to_gprs(r, n->state->gprs);
		n->state->rip = r->rip;
		n->state->rsp = r->rsp;
		n->state->rflags = r->rflags | 2;
		return 0;
	}
	/* After an exit: L0 reloads GPRs and RIP at the next RUN (flag bit 0); RFLAGS stays L2's. */
	regs_to_gprs(r, n->run->gprs);
	n->run->rip = r->rip;
	n->run->flags |= NPV_RUN_REGS_DIRTY;
	return 0;
}

static int npv_set_sregs(struct l2_vcpu *v, const struct l2_sregs *s)
{
	struct npv_vcpu *n = v->priv;
	struct npv_state *st = n->state;
	if (n->handle)
		return -1;  /* npv sets the system state once, at VCPU_CREATE */
	st->cr0 = s->cr0;
	st->cr3 = s->cr3;
	st->cr4 = s->cr4;
	st->efer = s->efer;
	st->gdtr_base = s->gdt_base;
	st->gdtr_limit = s->gdt_limit;
	st->cs = s->cs.selector;
	st->ss = s->ss.selector;
	st->ds = s->ds.selector;
	return 0;
}

static int npv_inject_irq(struct l2_vcpu *v, u8 vector)
{
	v->pending_irq = 0x100u | vector;
	return 0;
}

/* QueueReady: the queue's data path goes to L0; L1 keeps feature negotiation and set-up. */
static int blk_setup(struct npv_vcpu *n, struct npv_vm *nv)
{
	struct npv_blk_desc *d = P2V(n->arg_pa);
	*d = (struct npv_blk_desc){ .window = VBLK_WINDOW, .queue_size = n->blk.num, .backend = NPV_L1_DISK_BACKEND,
				    .desc = n->blk.desc, .avail = n->blk.avail, .used = n->blk.used,
				    .vector = n->blk.vector, .irq_type = NPV_BLK_IRQ_EXTINT, .features = n->blk.features };
	if (hypercall(NPV_HC_BLK_SETUP, nv->handle, n->arg_pa, 0, 0, NULL) != NPV_OK)
		return -1;
	n->blk.mediated = 1;
	return 0;
}

/* The completion interrupt follows L2's PIC (KVM's irqfd follows its GSI routing): the device's
 * line's vector while L2 has it unmasked (ExtINT: L2 acknowledges it at the PIC L1 emulates), 0
 * (L2 polls) while masked. A change re-hands the queue to L0 with the new vector. */
static int blk_route_irq(struct npv_vcpu *n, struct npv_vm *nv)
{
	u32 vector = (u32)pic_line_vector(VBLK_IRQ);
	if (!n->blk.mediated || vector == n->blk.vector)
		return 0;
	n->blk.vector = vector;
	if (hypercall(NPV_HC_BLK_TEARDOWN, nv->handle, VBLK_WINDOW, 0, 0, NULL) != NPV_OK)
		return -1;
	n->blk.mediated = 0;
	return blk_setup(n, nv);
}

static void set_half(u64 *q, u64 off, u64 v)
{
	*q = (off & 4) ? ((*q & 0xffffffffu) | (v << 32)) : ((*q & ~0xffffffffull) | (v & 0xffffffffu));
}

/* Follow the driver's writes to the control registers the BLK_SETUP descriptor needs (the
 * core's vblk model saw them too), and hand the queue over at QueueReady / take it back at reset. */
static int blk_control_write(struct npv_vcpu *n, struct npv_vm *nv, u64 off, u64 v)
{
	switch (off) {
	case VBLK_DRV_FEAT_SEL: n->blk.feat_sel = (u32)v; break;
	case VBLK_DRV_FEAT: set_half(&n->blk.features, (n->blk.feat_sel & 1) ? 4 : 0, v); break;
	case VBLK_QUEUE_NUM: n->blk.num = (u32)v; break;
	case VBLK_QUEUE_DESC: case VBLK_QUEUE_DESC + 4: set_half(&n->blk.desc, off, v); break;
	case VBLK_QUEUE_DRIVER: case VBLK_QUEUE_DRIVER + 4: set_half(&n->blk.avail, off, v); break;
	case VBLK_QUEUE_DEVICE: case VBLK_QUEUE_DEVICE + 4: set_half(&n->blk.used, off, v); break;
	case VBLK_QUEUE_READY:
		if ((v & 1) && !n->blk.mediated && (features & NPV_FEAT_MEDIATED_BLK))
			return blk_setup(n, nv);
		break;
	case VBLK_STATUS:
		if (v == 0 && n->blk.mediated) {
			n->blk.mediated = 0;
			return hypercall(NPV_HC_BLK_TEARDOWN, nv->handle, VBLK_WINDOW, 0, 0, NULL) == NPV_OK ? 0 : -1;
		}
		break;
	}
	return 0;
}

/* Finish the exit the core handled: IN's value into RAX and RIP past IN/OUT (L1 completes
 * I/O); an MMIO load's value for L0 to complete (L0 decoded it); a block control write. */
static int complete_exit(struct npv_vcpu *n, struct npv_vm *nv, const struct l2_exit *e)
{
	struct npv_run *r = n->run;
	switch (n->last) {
	case NPV_EXIT_IO:
		if (e->pio.in) {
			u64 *rax = &r->gprs[0];
			u64 v = e->pio.value;
			*rax = e->pio.size == 4 ? (v & 0xffffffffu)
			     : e->pio.size == 2 ? ((*rax & ~0xfffful) | (v & 0xffff))
						 : ((*rax & ~0xfful) | (v & 0xff));
		}
		r->rip += r->insn_len;
		r->flags |= NPV_RUN_REGS_DIRTY;
		break;
	case NPV_EXIT_MMIO:
		if (!e->mmio.write)
			r->data.mmio.value = e->mmio.value;
		else if (n->mmio_gpa >= VBLK_WINDOW && n->mmio_gpa < VBLK_WINDOW + PAGE_SIZE)
			return blk_control_write(n, nv, n->mmio_gpa - VBLK_WINDOW, e->mmio.value);
		break;
	}
	n->last = 0;
	return 0;
}

/* MEMORY_FAULT on L2 RAM L1 has not mapped yet: back and map the aligned group around it. */
static int memory_fault(struct l2_vcpu *v, struct npv_vm *nv, u64 gpa)
{
	const struct l2_memslot *s = &v->vm->slots[0];
	if (v->vm->nslots == 0 || gpa < s->gpa || gpa >= s->gpa + s->size)
		return -1;
	u64 pages = s->size >> 12;
	u64 first = ((gpa - s->gpa) >> 12) & ~(u64)(FAULT_BATCH - 1);
	u64 end = first + FAULT_BATCH < pages ? first + FAULT_BATCH : pages;
	if (nv->mapped[((gpa - s->gpa) >> 12) / 8] & (1u << (((gpa - s->gpa) >> 12) % 8)))
		return -2;  /* mapped: a permission fault, which L1 never causes (it maps RWX) */
	for (u64 p = first; p < end;) {
		if (nv->mapped[p / 8] & (1u << (p % 8))) {
			p++;
			continue;
		}
		u64 q = p;
		while (q < end && !(nv->mapped[q / 8] & (1u << (q % 8)))) {
			l2_back(s->gpa + (q << 12), PAGE_SIZE);
			q++;
		}
		if (map_run(nv, s, p, q - p))
			return -3;
		p = q;
	}
	return 0;
}

static int create_vcpu(struct npv_vcpu *n, struct npv_vm *nv)
{
	u64 h;
	if (hypercall(NPV_HC_VCPU_CREATE, nv->handle, n->state_pa, 0, 0, &h) != NPV_OK)
		return -1;
	n->handle = h;
	return 0;
}

static int fail(struct l2_exit *e, const char *why, u64 code)
{
	e->kind = L2_EXIT_FAIL;
	e->fail.reason = why;
	e->fail.code = code;
	return -1;
}

static int npv_run(struct l2_vcpu *v, struct l2_exit *e)
{
	struct npv_vcpu *n = v->priv;
	struct npv_vm *nv = v->vm->priv;
	struct npv_run *r = n->run;
	if (!n->handle && create_vcpu(n, nv))
		return fail(e, "VCPU_CREATE failed", 0);
	if (complete_exit(n, nv, e) || blk_route_irq(n, nv))
		return fail(e, "BLK_SETUP/BLK_TEARDOWN failed", 0);
	for (;;) {
		if (v->pending_irq) {
			if (hypercall(NPV_HC_INJECT, n->handle, v->pending_irq & 0xff, 0, 0, NULL) != NPV_OK)
				return fail(e, "INJECT failed", v->pending_irq & 0xff);
			v->pending_irq = 0;
		}
		i64 rc = hypercall(NPV_HC_RUN, n->handle, n->run_pa, 0, 0, NULL);
		if (rc != NPV_OK)
			return fail(e, "RUN failed", (u64)rc);
		u32 reason = r->reason;
		v->exits++;
		e->hw_reason = reason;
		if (reason < NPV_EXIT_REASONS)
			npv_exits_by_reason[reason]++;
		r->flags = 0;
		switch (reason) {
		case NPV_EXIT_IO:
			e->kind = L2_EXIT_PIO;
			e->pio.port = r->data.io.port;
			e->pio.size = r->data.io.size;
			e->pio.in = r->data.io.in;
			e->pio.value = r->data.io.value;
			n->last = reason;
			return 0;
		case NPV_EXIT_MMIO:
			e->kind = L2_EXIT_MMIO;
			e->mmio.gpa = r->data.mmio.gpa;
			e->mmio.size = r->data.mmio.size;
			e->mmio.write = r->data.mmio.write;
			e->mmio.value = r->data.mmio.value;
			n->last = reason;
			n->mmio_gpa = e->mmio.gpa;
			return 0;
		case NPV_EXIT_MEMORY_FAULT: {
			int m = memory_fault(v, nv, r->data.fault.gpa);
			if (m)
				return fail(e, m == -1 ? "L2 touched guest-physical memory that is neither RAM nor a device"
						: m == -2 ? "L2 access violates its mapping" : "MAP failed",
					    r->data.fault.gpa);
			break;
		}
		case NPV_EXIT_HYPERCALL:
			/* L2's own VMCALL: this L1 implements none (-KVM_ENOSYS, as KVM answers). */
			r->gprs[0] = (u64)-1000;
			r->rip += r->insn_len;
			r->flags |= NPV_RUN_REGS_DIRTY;
			break;
		case NPV_EXIT_TIMESLICE:
			/* L1's own timer fired while L2 ran: take the interrupt (STI's shadow covers the
			 * NOP, so the window is after it), then run L2 again */
			__asm__ volatile("sti; nop; cli" ::: "memory");
			break;
		case NPV_EXIT_SHUTDOWN:
			e->kind = L2_EXIT_SHUTDOWN;
			return 0;
		case NPV_EXIT_HALT:
			return fail(e, "L2 halted with nothing that can wake it", r->rip);
		case NPV_EXIT_MODE:
			return fail(e, "L2 left 64-bit long mode", r->rip);
		case NPV_EXIT_BLK_ERROR:
			return fail(e, "L0 stopped L2's block device (malformed queue)", r->data.blk.window);
		default:
			return fail(e, "unexpected npv exit", reason);
		}
	}
}

const struct l1_backend npv_backend = {
	.name = "npv",
	.init = npv_init,
	.vm_create = npv_vm_create,
	.set_memslot = npv_set_memslot,
	.vcpu_create = npv_vcpu_create,
	.set_cpuid = npv_set_cpuid,
	.set_msrs = npv_set_msrs,
	.get_regs = npv_get_regs,
	.set_regs = npv_set_regs,
	.set_sregs = npv_set_sregs,
	.run = npv_run,
	.inject_irq = npv_inject_irq,
};
