/*
 * The vmx back end: a minimal KVM (arch/x86/kvm/vmx/vmx.c is the model; own code). VMXON once,
 * one VMCS per L2 vCPU, EPT12 in L1 memory filled on EPT violations (or eagerly), VPID 1, and a
 * table of exit handlers (vmx_exits.c). Every VMCS access is vmcs_read/vmcs_write (vmcs.h), so
 * an enlightened-VMCS variant can replace the accessors.
 */
#include "vmx.h"
#include "l1hv.h"
#include "layout.h"
#include "lib.h"
#include "mm.h"
#include "x86.h"
#include "vmx_variant.h"

#define CR4_VMXE (1ul << 13)
#define RFLAGS_IF (1ul << 9)

/* ---- VMREAD/VMWRITE: the default VMCS accessors (one copy, in the plain build) ---- */
#ifndef VMX_EVMCS
static u64 insn_vmread(u32 field)
{
	u64 v;
	__asm__ volatile("vmread %1, %0" : "=r"(v) : "r"((u64)field) : "cc");
	return v;
}
static void insn_vmwrite(u32 field, u64 value)
{
	__asm__ volatile("vmwrite %0, %1" ::"r"(value), "r"((u64)field) : "cc", "memory");
}
static const struct vmcs_ops insn_ops = { insn_vmread, insn_vmwrite };
const struct vmcs_ops *vmcs_ops = &insn_ops;
u64 vmcs_accesses;
#endif

/* A VMX instruction with a 64-bit memory operand; returns RFLAGS.CF|ZF (0 = VMsucceed). */
#define VMX_MEM_OP(name, insn)                                                              \
	static int name(u64 pa)                                                                 \
	{                                                                                       \
		u8 fail;                                                                            \
		__asm__ volatile(insn " %1; setbe %0" : "=r"(fail) : "m"(pa) : "cc", "memory");     \
		return fail;                                                                        \
	}
VMX_MEM_OP(vmxon, "vmxon")
VMX_MEM_OP(vmclear, "vmclear")
VMX_MEM_OP(vmptrld, "vmptrld")

int vmx_enter(u64 *gprs, int launched);
static u64 preemption_shift;
extern char vmx_exit_host[];

/* A control value adjusted to what the capability MSR allows (KVM's adjust_vmx_controls). */
static u32 adjust_controls(u32 want, u32 msr)
{
	u64 cap = rdmsr(msr);
	u32 v = (want | (u32)cap) & (u32)(cap >> 32);
	if ((v & want) != want)
		kprintf("l1hv: vmx: control MSR 0x%x lacks 0x%x\n", msr, want & ~v);
	return v;
}

static int vmx_init(void)
{
	u32 a, b, c, d;
	cpuid(1, 0, &a, &b, &c, &d);
	if (!(c & (1u << 5)))
		return -1;
	u64 fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
	if (!(fc & 1))
		wrmsr(MSR_IA32_FEATURE_CONTROL, fc | 1 | 4);  /* lock + VMX outside SMX */
	else if (!(fc & 4))
		return -2;
	write_cr0((read_cr0() | rdmsr(MSR_IA32_VMX_CR0_FIXED0)) & rdmsr(MSR_IA32_VMX_CR0_FIXED1));
	write_cr4((read_cr4() | CR4_VMXE | rdmsr(MSR_IA32_VMX_CR4_FIXED0)) & rdmsr(MSR_IA32_VMX_CR4_FIXED1));
	preemption_shift = rdmsr(MSR_IA32_VMX_MISC) & 31;  /* TSC bits per timer tick */
	u64 region = pmm_alloc();
	*(u32 *)P2V(region) = (u32)rdmsr(MSR_IA32_VMX_BASIC) & 0x7fffffff;
	return VMX_AFTER_VMXON(vmxon(region) ? -3 : 0);
}

static int vmx_vm_create(struct l2_vm *vm)
{
	static struct vmx_vm one;  /* L1 runs one L2 */
	one.ept_root = ept_new_root();
	one.eptp = one.ept_root | 6 | (3 << 3);  /* WB, 4-level walk (SDM 24.6.11) */
	one.vpid = 1;
	vm->priv = &one;
	return 0;
}

/* Map L2-physical page `gpa` if it is RAM (KVM's tdp page fault: memslot → pfn → leaf). */
int vmx_map_gpa(struct l2_vcpu *v, u64 gpa)
{
	struct l2_vm *vm = v->vm;
	struct vmx_vm *xv = vm->priv;
	for (u32 i = 0; i < vm->nslots; i++) {
		const struct l2_memslot *s = &vm->slots[i];
		if (gpa < s->gpa || gpa >= s->gpa + s->size)
			continue;
		u64 page = gpa & ~0xffful;
		u64 hpa = s->hpa + (page - s->gpa);
		u64 *e = ept_entry(xv->ept_root, page, 1);
		if (!(*e & EPT_R)) {
			l2_back(page, PAGE_SIZE);  /* a fresh (zeroed) page unless L1 already wrote it */
			*e = hpa | EPT_R | EPT_W | EPT_X | EPT_MT_WB;
			xv->ept_faults++;
		}
		return 0;
	}
	return 1;
}

static int vmx_set_memslot(struct l2_vm *vm, const struct l2_memslot *slot)
{
	if (vm->nslots == L2_MAX_SLOTS)
		return -1;
	vm->slots[vm->nslots++] = *slot;
	if (vm->eager) {
		struct vmx_vm *xv = vm->priv;
		for (u64 off = 0; off < slot->size; off += PAGE_SIZE) {
			l2_back(slot->gpa + off, PAGE_SIZE);
			u64 *e = ept_entry(xv->ept_root, slot->gpa + off, 1);
			*e = (slot->hpa + off) | EPT_R | EPT_W | EPT_X | EPT_MT_WB;
		}
	}
	return 0;
}

/* MSR bitmap: intercept everything except the MSRs KVM passes through (vmx_possible_passthrough_msrs). */
static void msr_bitmap_allow(u8 *bm, u32 msr)
{
	u32 off = msr >= 0xc0000000 ? 1024 : 0;
	u32 bit = msr & 0x1fff;
	bm[off + bit / 8] &= (u8)~(1u << (bit % 8));         /* read */
	bm[2048 + off + bit / 8] &= (u8)~(1u << (bit % 8));  /* write */
}

static u64 seg_base(u16 sel, u64 gdt)
{
	const u8 *d = (const u8 *)(gdt + (sel & ~7u));
	u64 base = d[2] | (d[3] << 8) | ((u64)d[4] << 16) | ((u64)d[7] << 24);
	if (!(d[5] & 0x10))  /* system descriptor (TSS): 16 bytes, base 63:32 in the next 8 */
		base |= (u64)(*(const u32 *)(d + 8)) << 32;
	return base;
}

static int vmx_vcpu_create(struct l2_vm *vm, struct l2_vcpu *v)
{
	static struct vmx_vcpu one;
	struct vmx_vm *xv = vm->priv;
	struct vmx_vcpu *x = &one;
	v->vm = vm;
	v->priv = x;
	x->vmcs_pa = pmm_alloc();
	*(u32 *)P2V(x->vmcs_pa) = (u32)rdmsr(MSR_IA32_VMX_BASIC) & 0x7fffffff;
	if (vmclear(x->vmcs_pa) || VMX_LOAD_VMCS(x->vmcs_pa))
		return -1;
	x->msr_bitmap_pa = pmm_alloc();
	u8 *bm = P2V(x->msr_bitmap_pa);
	memset(bm, 0xff, PAGE_SIZE);
	/* + EFER, which the VMCS saves and loads at every exit and entry (as nestlab's L0 passes it) */
	static const u32 passthrough[] = { 0xc0000080, 0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084,
					   0xc0000100, 0xc0000101, 0xc0000102, 0xc0000103,
					   0x174, 0x175, 0x176 };
	for (u32 i = 0; i < sizeof(passthrough) / sizeof(passthrough[0]); i++)
		msr_bitmap_allow(bm, passthrough[i]);

	/* Execution controls as KVM's vmx_exec_control / pin / secondary setup: HLT and all port
	 * I/O exit, MSRs through the bitmap, EPT + VPID, the preemption timer for L2's LAPIC timer. */
	x->pin = adjust_controls(PIN_EXT_INTR_EXITING | VMX_PIN_TIMER, MSR_IA32_VMX_TRUE_PINBASED);
	x->proc = adjust_controls(CPU_HLT_EXITING | CPU_UNCOND_IO_EXITING | CPU_USE_MSR_BITMAPS | CPU_SECONDARY,
				  MSR_IA32_VMX_TRUE_PROCBASED);
	/* CR3 load/store exiting are default1 bits the TRUE MSR lets us clear (EPT guests own CR3). */
	x->proc &= ~((1u << 15) | (1u << 16)) | (u32)rdmsr(MSR_IA32_VMX_TRUE_PROCBASED);
	vmcs_write(PIN_BASED_VM_EXEC_CONTROL, x->pin);
	vmcs_write(CPU_BASED_VM_EXEC_CONTROL, x->proc);
	vmcs_write(SECONDARY_VM_EXEC_CONTROL, adjust_controls(CPU2_ENABLE_EPT | CPU2_ENABLE_VPID, MSR_IA32_VMX_PROCBASED2));
	vmcs_write(VM_EXIT_CONTROLS, adjust_controls(EXIT_HOST_ADDR_SPACE_SIZE | EXIT_ACK_INTR_ON_EXIT | EXIT_SAVE_IA32_EFER | EXIT_LOAD_IA32_EFER,
						    MSR_IA32_VMX_TRUE_EXIT));
	vmcs_write(VM_ENTRY_CONTROLS, adjust_controls(ENTRY_IA32E_MODE | ENTRY_LOAD_IA32_EFER, MSR_IA32_VMX_TRUE_ENTRY));
	/* #UD and #MC intercepted, as KVM's update_exception_bitmap with EPT (no #PF). */
	vmcs_write(EXCEPTION_BITMAP, (1u << 6) | (1u << 18));
	vmcs_write(MSR_BITMAP, x->msr_bitmap_pa);
	vmcs_write(EPT_POINTER, xv->eptp);
	vmcs_write(VPID, xv->vpid);
	vmcs_write(VMCS_LINK_POINTER, ~0ul);
	/* L1 owns CR4.VMXE (never guest-owned in KVM); L2 reads it as 0. */
	vmcs_write(CR4_GUEST_HOST_MASK, CR4_VMXE);
	vmcs_write(CR4_READ_SHADOW, 0);
	vmcs_write(CR0_GUEST_HOST_MASK, 0);

	/* Host state: L1's own (KVM's vmx_set_constant_host_state). */
	struct { u16 limit; u64 base; } __attribute__((packed)) gdtr, idtr;
	__asm__ volatile("sgdt %0; sidt %1" : "=m"(gdtr), "=m"(idtr));
	u16 cs, ss, ds, tr;
	__asm__ volatile("mov %%cs, %0; mov %%ss, %1; mov %%ds, %2; str %3" : "=r"(cs), "=r"(ss), "=r"(ds), "=r"(tr));
	vmcs_write(HOST_CR0, read_cr0());
	vmcs_write(HOST_CR3, read_cr3());
	vmcs_write(HOST_CR4, read_cr4());
	vmcs_write(HOST_CS_SELECTOR, cs);
	vmcs_write(HOST_SS_SELECTOR, ss);
	vmcs_write(HOST_DS_SELECTOR, ds);
	vmcs_write(HOST_ES_SELECTOR, ds);
	vmcs_write(HOST_FS_SELECTOR, 0);
	vmcs_write(HOST_GS_SELECTOR, 0);
	vmcs_write(HOST_TR_SELECTOR, tr);
	vmcs_write(HOST_TR_BASE, seg_base(tr, gdtr.base));
	vmcs_write(HOST_GDTR_BASE, gdtr.base);
	vmcs_write(HOST_IDTR_BASE, idtr.base);
	vmcs_write(HOST_FS_BASE, 0);
	vmcs_write(HOST_GS_BASE, 0);
	vmcs_write(HOST_IA32_EFER, rdmsr(MSR_EFER));
	vmcs_write(HOST_RIP, (u64)vmx_exit_host);
	return 0;
}

static int vmx_set_cpuid(struct l2_vcpu *v, const struct l2_cpuid_entry *e, u32 n)
{
	struct vmx_vcpu *x = v->priv;
	if (n > VMX_MAX_CPUID)
		return -1;
	memcpy(x->cpuid, e, n * sizeof(*e));
	x->ncpuid = n;
	return 0;
}

static int vmx_set_msrs(struct l2_vcpu *v, const struct l2_msr_policy *p, u32 n)
{
	struct vmx_vcpu *x = v->priv;
	if (n > VMX_MAX_MSRS)
		return -1;
	memcpy(x->msrs, p, n * sizeof(*p));
	x->nmsrs = n;
	u8 *bm = P2V(x->msr_bitmap_pa);
	for (u32 i = 0; i < n; i++)
		if (p[i].action == L2_MSR_PASS)
			msr_bitmap_allow(bm, p[i].index);
	VMX_MSR_BITMAP_CHANGED();
	return 0;
}

static int vmx_get_regs(struct l2_vcpu *v, struct l2_regs *r)
{
	struct vmx_vcpu *x = v->priv;
	u64 *g = x->gprs;
	r->rax = g[0]; r->rcx = g[1]; r->rdx = g[2]; r->rbx = g[3];
	r->rbp = g[5]; r->rsi = g[6]; r->rdi = g[7];
	r->r8 = g[8]; r->r9 = g[9]; r->r10 = g[10]; r->r11 = g[11];
	r->r12 = g[12]; r->r13 = g[13]; r->r14 = g[14]; r->r15 = g[15];
	r->rsp = vmcs_read(GUEST_RSP);
	r->rip = vmx_rip(x);
	r->rflags = vmcs_read(GUEST_RFLAGS);
	return 0;
}

static int vmx_set_regs(struct l2_vcpu *v, const struct l2_regs *r)
{
	struct vmx_vcpu *x = v->priv;
	u64 *g = x->gprs;
	g[0] = r->rax; g[1] = r->rcx; g[2] = r->rdx; g[3] = r->rbx;
	g[5] = r->rbp; g[6] = r->rsi; g[7] = r->rdi;
	g[8] = r->r8; g[9] = r->r9; g[10] = r->r10; g[11] = r->r11;
	g[12] = r->r12; g[13] = r->r13; g[14] = r->r14; g[15] = r->r15;
	vmcs_write(GUEST_RSP, r->rsp);
	vmcs_write(GUEST_RFLAGS, r->rflags | 2);
	x->rip = r->rip;
	x->rip_avail = x->rip_dirty = 1;
	return 0;
}

static void write_segment(u32 sel_field, const struct l2_segment *s)
{
	/* selector, limit, AR and base fields are at fixed distances per segment (appendix B) */
	u32 i = (sel_field - GUEST_ES_SELECTOR) / 2;
	vmcs_write(sel_field, s->selector);
	vmcs_write(GUEST_ES_LIMIT + 2 * i, s->limit);
	vmcs_write(GUEST_ES_AR_BYTES + 2 * i, s->ar);
	vmcs_write(GUEST_ES_BASE + 2 * i, s->base);
}

static int vmx_set_sregs(struct l2_vcpu *v, const struct l2_sregs *s)
{
	(void)v;
	write_segment(GUEST_ES_SELECTOR, &s->es);
	write_segment(GUEST_CS_SELECTOR, &s->cs);
	write_segment(GUEST_SS_SELECTOR, &s->ss);
	write_segment(GUEST_DS_SELECTOR, &s->ds);
	write_segment(GUEST_FS_SELECTOR, &s->fs);
	write_segment(GUEST_GS_SELECTOR, &s->gs);
	write_segment(GUEST_LDTR_SELECTOR, &s->ldt);
	write_segment(GUEST_TR_SELECTOR, &s->tr);
	vmcs_write(GUEST_GDTR_BASE, s->gdt_base);
	vmcs_write(GUEST_GDTR_LIMIT, s->gdt_limit);
	vmcs_write(GUEST_IDTR_BASE, s->idt_base);
	vmcs_write(GUEST_IDTR_LIMIT, s->idt_limit);
	vmcs_write(GUEST_CR0, s->cr0);
	vmcs_write(CR0_READ_SHADOW, s->cr0);
	vmcs_write(GUEST_CR3, s->cr3);
	vmcs_write(GUEST_CR4, s->cr4 | CR4_VMXE);
	vmcs_write(CR4_READ_SHADOW, s->cr4 & CR4_VMXE);
	vmcs_write(GUEST_IA32_EFER, s->efer);
	vmcs_write(GUEST_DR7, 0x400);
	vmcs_write(GUEST_IA32_PAT, 0x0007040600070406ul);
	vmcs_write(GUEST_INTERRUPTIBILITY_INFO, 0);
	vmcs_write(GUEST_ACTIVITY_STATE, 0);
	return 0;
}

/* ---- the register cache and the instruction skip (KVM's kvm_rip_read / skip_emulated_instruction) ---- */

u64 vmx_rip(struct vmx_vcpu *x)
{
	if (!x->rip_avail) {
		x->rip = vmcs_read(GUEST_RIP);
		x->rip_avail = 1;
	}
	return x->rip;
}

void vmx_skip_instruction(struct vmx_vcpu *x)
{
	x->rip = vmx_rip(x) + vmcs_read(VM_EXIT_INSTRUCTION_LEN);
	x->rip_dirty = 1;
	/* vmx_set_interrupt_shadow(vcpu, 0): an STI/MOV-SS shadow ends with the skipped instruction */
	u32 intr = (u32)vmcs_read(GUEST_INTERRUPTIBILITY_INFO);
	if (intr & 3)
		vmcs_write(GUEST_INTERRUPTIBILITY_INFO, intr & ~3u);
}

/* KVM's vmx_inject_exception: the VM-entry interruption-information field (and error code). */
void vmx_queue_exception(u8 vector, int has_error, u32 error)
{
	if (has_error)
		vmcs_write(VM_ENTRY_EXCEPTION_ERROR_CODE, error);
	vmcs_write(VM_ENTRY_INTR_INFO_FIELD,
		   INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | vector | (has_error ? INTR_INFO_DELIVER_CODE : 0));
}

static void set_proc(struct vmx_vcpu *x, u32 proc)
{
	if (proc != x->proc) {
		x->proc = proc;
		vmcs_write(CPU_BASED_VM_EXEC_CONTROL, proc);
	}
}

/* Deliver the core's pending interrupt if L2 can take it, else ask for an interrupt window
 * (KVM's vmx_interrupt_allowed / vmx_inject_irq / enable_irq_window). */
static void inject_pending(struct l2_vcpu *v, struct vmx_vcpu *x)
{
	if (!v->pending_irq)
		return;
	u64 rflags = vmcs_read(GUEST_RFLAGS);
	u32 intr = (u32)vmcs_read(GUEST_INTERRUPTIBILITY_INFO);
	if ((rflags & RFLAGS_IF) && !(intr & 3) && !(vmcs_read(VM_ENTRY_INTR_INFO_FIELD) & INTR_INFO_VALID)) {
		vmcs_write(VM_ENTRY_INTR_INFO_FIELD, INTR_INFO_VALID | INTR_TYPE_EXT_INTR | (v->pending_irq & 0xff));
		v->pending_irq = 0;
		set_proc(x, x->proc & ~CPU_INTR_WINDOW_EXITING);
	} else {
		set_proc(x, x->proc | CPU_INTR_WINDOW_EXITING);
	}
}

static int vmx_inject_irq(struct l2_vcpu *v, u8 vector)
{
	v->pending_irq = 0x100u | vector;
	return 0;
}

/* Finish a PIO IN / MMIO load the core has answered: the value into L2's register, then skip. */
static void complete_exit(struct vmx_vcpu *x, const struct l2_exit *e)
{
	if (!x->complete)
		return;
	if (x->complete == 3) {  /* INS: the element into L2's memory; RIP moves after the last one */
		u32 v = e->pio.value;
		for (u32 i = 0; i < x->complete_size; i++)
			x->complete_ptr[i] = (u8)(v >> (8 * i));
		if (x->complete_last)
			vmx_skip_instruction(x);
		x->complete = 0;
		return;
	}
	u64 val = x->complete == 1 ? e->pio.value : e->mmio.value;
	u64 *r = &x->gprs[x->complete_reg];
	switch (x->complete_size) {
	case 1: *r = x->complete_zext ? (val & 0xff) : ((*r & ~0xfful) | (val & 0xff)); break;
	case 2: *r = x->complete_zext ? (val & 0xffff) : ((*r & ~0xfffful) | (val & 0xffff)); break;
	case 4: *r = val & 0xffffffffu; break;
	default: *r = val;
	}
	if (x->complete == 1) {
		vmx_skip_instruction(x);
	} else {
		x->rip = vmx_rip(x) + x->complete_len;
		x->rip_dirty = 1;
	}
	x->complete = 0;
}

static int vmx_run(struct l2_vcpu *v, struct l2_exit *e)
{
	struct vmx_vcpu *x = v->priv;
	complete_exit(x, e);
	for (;;) {
		inject_pending(v, x);
		if (x->rip_dirty)
			vmcs_write(GUEST_RIP, x->rip);
		x->rip_avail = x->rip_dirty = 0;
		/* L2's LAPIC timer through the VMX-preemption timer (KVM's vmx_update_hv_timer). */
		if (VMX_ARM_TIMER(v)) {
			/* vmx-evmcs: on L1's own LAPIC timer instead (the eVMCS has no timer value) */
		} else if (v->deadline) {
			u64 now = rdtsc();
			u64 shift = preemption_shift;
			u64 ticks = v->deadline > now ? ((v->deadline - now) >> shift) : 0;
			vmcs_write(VMX_PREEMPTION_TIMER_VALUE, ticks > 0xffffffffu ? 0xffffffffu : ticks);
		} else {
			vmcs_write(VMX_PREEMPTION_TIMER_VALUE, 0xffffffffu);
		}
		if (vmx_enter(x->gprs, x->launched)) {
			e->kind = L2_EXIT_FAIL;
			e->fail.reason = x->launched ? "VMRESUME failed" : "VMLAUNCH failed";
			e->fail.code = vmcs_read(VM_INSTRUCTION_ERROR);
			return -1;
		}
		x->launched = 1;
		v->exits++;
		u32 reason = (u32)vmcs_read(VM_EXIT_REASON);
		e->hw_reason = reason;
		if (reason & (1u << 31)) {
			e->kind = L2_EXIT_FAIL;
			e->fail.reason = "VM entry failed";
			e->fail.code = reason;
			return -1;
		}
		reason &= 0xffff;
		if (reason < EXIT_REASONS)
			x->exits_by_reason[reason]++;
		vmx_exit_handler h = reason < EXIT_REASONS ? vmx_exit_handlers[reason] : NULL;
		if (h == NULL) {
			e->kind = L2_EXIT_FAIL;
			e->fail.reason = "unhandled VM exit";
			e->fail.code = reason;
			return -1;
		}
		if (!h(v, e))
			return 0;
	}
}

const struct l1_backend vmx_backend = {
	.name = VMX_BACKEND_NAME,
	.init = vmx_init,
	.vm_create = vmx_vm_create,
	.set_memslot = vmx_set_memslot,
	.vcpu_create = vmx_vcpu_create,
	.set_cpuid = vmx_set_cpuid,
	.set_msrs = vmx_set_msrs,
	.get_regs = vmx_get_regs,
	.set_regs = vmx_set_regs,
	.set_sregs = vmx_set_sregs,
	.run = vmx_run,
	.inject_irq = vmx_inject_irq,
};
