/*
 * The vmx back end's exit handlers, one per basic exit reason, as KVM's kvm_vmx_exit_handlers[]
 * (arch/x86/kvm/vmx/vmx.c). Each reads and writes the VMCS fields KVM's handler does for that exit;
 * docs/l1hv.md has the table with the KVM functions followed. Handlers return 1 when L2 can resume,
 * 0 when the exit record `e` goes to the core (device models, halt, timer).
 */
#include "vmx.h"
#include "l1hv.h"
#include "lib.h"
#include "x86.h"

#define UD_VECTOR 6
#define GP_VECTOR 13
#define INTR_INFO_TYPE_MASK (7u << 8)  /* interruption type, bits 10:8 (SDM 24.9.2) */

static struct vmx_vcpu *X(struct l2_vcpu *v) { return v->priv; }

/* CPUID (handle_cpuid → kvm_emulate_cpuid): RAX/RCX in, RAX–RDX out from the policy; skip. */
static int handle_cpuid(struct l2_vcpu *v, struct l2_exit *e)
{
	(void)e;
	struct vmx_vcpu *x = X(v);
	u32 leaf = (u32)x->gprs[0], sub = (u32)x->gprs[1];
	u32 out[4] = { 0, 0, 0, 0 };
	for (u32 i = 0; i < x->ncpuid; i++) {
		const struct l2_cpuid_entry *c = &x->cpuid[i];
		/* subleaf-indexed leaves (4, 7, 0xb, 0xd) match on the subleaf too */
		int indexed = leaf == 4 || leaf == 7 || leaf == 0xb || leaf == 0xd;
		if (c->leaf == leaf && (!indexed || c->subleaf == sub)) {
			out[0] = c->eax; out[1] = c->ebx; out[2] = c->ecx; out[3] = c->edx;
			break;
		}
	}
	x->gprs[0] = out[0];
	x->gprs[3] = out[1];
	x->gprs[1] = out[2];
	x->gprs[2] = out[3];
	vmx_skip_instruction(x);
	return 1;
}

/* HLT (kvm_emulate_halt): skip, then the core blocks the vCPU until an event. */
static int handle_halt(struct l2_vcpu *v, struct l2_exit *e)
{
	vmx_skip_instruction(X(v));
	e->kind = L2_EXIT_HLT;
	return 0;
}

/*
 * String I/O, INS/OUTS with or without REP (KVM's handle_io sends these to its emulator, em_in /
 * em_out): one element per exit. The element's linear address is GUEST_LINEAR_ADDRESS (SDM
 * 27.2.1: for INS/OUTS, the linear address of the string element), translated through L2's page
 * tables (GUEST_CR3); the address size is VMX_INSTRUCTION_INFO bits 9:7 (SDM 27.2.5); RSI (OUTS)
 * or RDI (INS) steps by the element size, down when RFLAGS.DF; REP counts RCX down and RIP moves
 * only past the last element, so the instruction re-executes and exits once per element.
 */
__attribute__((noinline, cold)) static int string_io(struct l2_vcpu *v, u64 q, struct l2_exit *e)
{
	struct vmx_vcpu *x = X(v);
	u32 size = (u32)(q & 7) + 1, in = (q >> 3) & 1, rep = (q >> 5) & 1;
	u32 asz = ((u32)vmcs_read(VMX_INSTRUCTION_INFO) >> 7) & 7;  /* 0: 16-bit, 1: 32-bit, 2: 64-bit */
	u64 amask = asz == 2 ? ~0ul : asz == 1 ? 0xfffffffful : 0xfffful;
	u64 *count = &x->gprs[1];
	if (rep && !(*count & amask)) {  /* REP with a zero count: nothing to transfer */
		vmx_skip_instruction(x);
		return 1;
	}
	u64 la = vmcs_read(GUEST_LINEAR_ADDRESS);
	i64 gpa = l2_gva_to_gpa(vmcs_read(GUEST_CR3), la);
	u8 *p = gpa < 0 ? NULL : l2_gpa_ptr((u64)gpa, size);
	if (p == NULL) {
		e->kind = L2_EXIT_FAIL;
		e->fail.reason = "string I/O element outside L2 RAM";
		e->fail.code = la;
		return 0;
	}
	u64 step = (vmcs_read(GUEST_RFLAGS) & (1ul << 10)) ? (u64)-(i64)size : size;
	u64 *index = &x->gprs[in ? 7 : 6];
	/* a 32-bit address-size update zero-extends; a 16-bit one keeps bits 63:16 */
	*index = asz == 1 ? (u32)(*index + step) : (*index & ~amask) | ((*index + step) & amask);
	int last = 1;
	if (rep) {
		*count = asz == 1 ? (u32)(*count - 1) : (*count & ~amask) | ((*count - 1) & amask);
		last = !(*count & amask);
	}
	e->kind = L2_EXIT_PIO;
	e->pio.size = (u8)size;
	e->pio.in = (u8)in;
	e->pio.port = (u16)(q >> 16);
	if (in) {
		x->complete = 3;
		x->complete_ptr = p;
		x->complete_size = (u8)size;
		x->complete_last = (u8)last;
		return 0;
	}
	e->pio.value = size == 1 ? p[0] : size == 2 ? (u32)(p[0] | (p[1] << 8)) : (u32)(p[0] | (p[1] << 8) | (p[2] << 16) | ((u32)p[3] << 24));
	if (last)
		vmx_skip_instruction(x);
	return 0;
}

/* I/O (handle_io → kvm_fast_pio): EXIT_QUALIFICATION; OUT takes RAX; IN completes on the next run. */
static int handle_io(struct l2_vcpu *v, struct l2_exit *e)
{
	struct vmx_vcpu *x = X(v);
	u64 q = vmcs_read(EXIT_QUALIFICATION);
	if (q & 16)
		return string_io(v, q, e);
	e->kind = L2_EXIT_PIO;
	e->pio.size = (u8)((q & 7) + 1);
	e->pio.in = (u8)((q >> 3) & 1);
	e->pio.port = (u16)(q >> 16);
	e->pio.value = (u32)x->gprs[0];
	if (e->pio.in) {
		x->complete = 1;
		x->complete_reg = 0;
		x->complete_size = e->pio.size;
		x->complete_zext = 0;
	} else {
		vmx_skip_instruction(x);
	}
	return 0;
}

static const struct l2_msr_policy *msr_policy(struct vmx_vcpu *x, u32 index)
{
	for (u32 i = 0; i < x->nmsrs; i++)
		if (x->msrs[i].index == index)
			return &x->msrs[i];
	return NULL;
}

/* RDMSR (handle_rdmsr → kvm_emulate_rdmsr): RCX in, EDX:EAX out; #GP for an MSR outside the policy. */
static int handle_rdmsr(struct l2_vcpu *v, struct l2_exit *e)
{
	(void)e;
	struct vmx_vcpu *x = X(v);
	u32 index = (u32)x->gprs[1];
	u64 val;
	const struct l2_msr_policy *p = msr_policy(x, index);
	if (index == 0xc0000080)
		val = vmcs_read(GUEST_IA32_EFER);  /* EFER lives in the VMCS (load/save controls) */
	else if (p != NULL)
		val = p->action == L2_MSR_PASS ? rdmsr(index) : p->value;
	else {
		vmx_queue_exception(GP_VECTOR, 1, 0);
		return 1;
	}
	x->gprs[0] = (u32)val;
	x->gprs[2] = val >> 32;
	vmx_skip_instruction(x);
	return 1;
}

/* WRMSR (handle_wrmsr → kvm_emulate_wrmsr): RCX, EDX:EAX in. */
static int handle_wrmsr(struct l2_vcpu *v, struct l2_exit *e)
{
	(void)e;
	struct vmx_vcpu *x = X(v);
	u32 index = (u32)x->gprs[1];
	u64 val = (x->gprs[2] << 32) | (u32)x->gprs[0];
	const struct l2_msr_policy *p = msr_policy(x, index);
	if (index == 0xc0000080) {
		/* vmx_set_efer: the guest's EFER, with LMA following the IA-32e entry control */
		u64 old = vmcs_read(GUEST_IA32_EFER);
		vmcs_write(GUEST_IA32_EFER, (val & ~0x400ul) | (old & 0x400ul));
	} else if (p != NULL && p->action == L2_MSR_PASS) {
		wrmsr(index, val);
	} else if (p == NULL || val != p->value) {
		vmx_queue_exception(GP_VECTOR, 1, 0);
		return 1;
	}
	vmx_skip_instruction(x);
	return 1;
}

/* CR access (handle_cr): EXIT_QUALIFICATION; MOV to CR0/CR4 sets the guest value and its shadow. */
static int handle_cr(struct l2_vcpu *v, struct l2_exit *e)
{
	struct vmx_vcpu *x = X(v);
	u64 q = vmcs_read(EXIT_QUALIFICATION);
	u32 cr = q & 15, type = (q >> 4) & 3, reg = (q >> 8) & 15;
	u64 val = reg == 4 ? vmcs_read(GUEST_RSP) : x->gprs[reg];
	if (type != 0 || (cr != 0 && cr != 4)) {
		e->kind = L2_EXIT_FAIL;
		e->fail.reason = "CR access not emulated";
		e->fail.code = q;
		return 0;
	}
	if (cr == 0) {
		vmcs_write(GUEST_CR0, val);
		vmcs_write(CR0_READ_SHADOW, val);
	} else {
		if (val & (1ul << 13)) {  /* L2 has no VMX: CR4.VMXE is reserved for it */
			vmx_queue_exception(GP_VECTOR, 1, 0);
			return 1;
		}
		vmcs_write(GUEST_CR4, val | (1ul << 13));
		vmcs_write(CR4_READ_SHADOW, val);
	}
	vmx_skip_instruction(x);
	return 1;
}

/* Decode and hand the core an MMIO access at `gpa` (KVM's x86_emulate_instruction path:
 * fetch the instruction at GUEST_RIP through L2's page tables, GUEST_CR3). */
int vmx_emulate_mmio(struct l2_vcpu *v, u64 gpa, struct l2_exit *e)
{
	struct vmx_vcpu *x = X(v);
	u64 rip = vmx_rip(x);
	u64 cr3 = vmcs_read(GUEST_CR3);
	u8 code[15];
	int n = 0;
	while (n < 15) {  /* the bytes up to the end of the page, then the next page */
		i64 pa = l2_gva_to_gpa(cr3, rip + (u64)n);
		const u8 *p = pa < 0 ? NULL : l2_gpa_ptr((u64)pa, 1);
		if (p == NULL)
			break;
		code[n++] = *p;
	}
	struct mmio_insn mi;
	if (mmio_decode(code, n, &mi)) {
		e->kind = L2_EXIT_FAIL;
		e->fail.reason = "MMIO instruction not decoded";
		e->fail.code = ((u64)code[0] << 8) | code[1];
		return 0;
	}
	e->kind = L2_EXIT_MMIO;
	e->mmio.gpa = gpa;
	e->mmio.size = mi.size;
	e->mmio.write = mi.write;
	if (mi.write) {
		u64 val = mi.reg == 0xff ? mi.imm : (mi.reg == 4 ? vmcs_read(GUEST_RSP) : x->gprs[mi.reg]);
		e->mmio.value = mi.size == 8 ? val : val & ((1ul << (8 * mi.size)) - 1);
		x->rip = rip + mi.len;
		x->rip_dirty = 1;
	} else {
		x->complete = 2;
		x->complete_reg = mi.reg;
		x->complete_size = mi.size;
		x->complete_zext = mi.zero_extend;
		x->complete_len = mi.len;
	}
	return 0;
}

/* EPT violation (handle_ept_violation): EXIT_QUALIFICATION, GUEST_PHYSICAL_ADDRESS; RAM is
 * mapped (tdp page fault); a device page becomes a misconfigured entry (KVM's MMIO SPTE) and
 * the access is emulated. */
static int handle_ept_violation(struct l2_vcpu *v, struct l2_exit *e)
{
	(void)vmcs_read(EXIT_QUALIFICATION);
	u64 gpa = vmcs_read(GUEST_PHYSICAL_ADDRESS);
	if (vmx_map_ram(v, gpa) == 0)
		return 1;
	struct vmx_vm *xv = v->vm->priv;
	u64 *slot = ept_entry(xv->ept_root, gpa & ~0xffful, 1);
	*slot = EPT_W;  /* write-only: an EPT misconfiguration on every later access */
	xv->mmio_sptes++;
	return vmx_emulate_mmio(v, gpa, e);
}

/* EPT misconfiguration (handle_ept_misconfig): GUEST_PHYSICAL_ADDRESS, then MMIO emulation. */
static int handle_ept_misconfig(struct l2_vcpu *v, struct l2_exit *e)
{
	return vmx_emulate_mmio(v, vmcs_read(GUEST_PHYSICAL_ADDRESS), e);
}

/* Exception or NMI in the bitmap (handle_exception_nmi): VM_EXIT_INTR_INFO, the error code when
 * valid; #UD is reflected to L2 (KVM's handle_ud emulates, then injects #UD for UD2). */
static int handle_exception(struct l2_vcpu *v, struct l2_exit *e)
{
	(void)v;
	u32 info = (u32)vmcs_read(VM_EXIT_INTR_INFO);
	u32 vector = info & 0xff;
	u32 err = (info & INTR_INFO_DELIVER_CODE) ? (u32)vmcs_read(VM_EXIT_INTR_ERROR_CODE) : 0;
	if (vector == UD_VECTOR) {
		vmx_queue_exception(UD_VECTOR, 0, 0);
		return 1;
	}
	e->kind = L2_EXIT_FAIL;
	e->fail.reason = "exception";
	e->fail.code = ((u64)err << 32) | info;
	return 0;
}

/* External interrupt (handle_external_interrupt_irqoff): VM_EXIT_INTR_INFO holds the vector the
 * CPU acknowledged on exit (L1's own LAPIC timer while L2 ran); L1's IDT handler for it runs now,
 * with IF = 0, through a frame built as the CPU would (vmx_do_interrupt_irqoff); L2 resumes. */
static int handle_external_interrupt(struct l2_vcpu *v, struct l2_exit *e)
{
	u32 info = (u32)vmcs_read(VM_EXIT_INTR_INFO);
	if ((info & INTR_INFO_VALID) && (info & INTR_INFO_TYPE_MASK) == INTR_TYPE_EXT_INTR) {
		l1_dispatch_irq(l1_idt_handler((u8)info));
		/* eVMCS: L2's timer rides on L1's (vmx_evmcs.c) */
		if (vmx_l1_timer_interrupt(v, info)) {
			e->kind = L2_EXIT_TIMER;
			return 0;
		}
		return 1;
	}
	e->kind = L2_EXIT_FAIL;
	e->fail.reason = "external-interrupt exit without an acknowledged vector";
	e->fail.code = info;
	return 0;
}

/* Interrupt window (handle_interrupt_window): clear the control; the pending IRQ goes in at entry. */
static int handle_interrupt_window(struct l2_vcpu *v, struct l2_exit *e)
{
	(void)v;
	(void)e;
	return 1;  /* inject_pending() at the next entry clears CPU_INTR_WINDOW_EXITING */
}

/* VMX-preemption timer (handle_preemption_timer → kvm_lapic_expired_hv_timer): the core fires
 * L2's LAPIC timer. */
static int handle_preemption_timer(struct l2_vcpu *v, struct l2_exit *e)
{
	(void)v;
	e->kind = L2_EXIT_TIMER;
	return 0;
}

static int handle_triple_fault(struct l2_vcpu *v, struct l2_exit *e)
{
	(void)v;
	e->kind = L2_EXIT_SHUTDOWN;
	return 0;
}

const vmx_exit_handler vmx_exit_handlers[EXIT_REASONS] = {
	[EXIT_REASON_EXCEPTION_NMI] = handle_exception,
	[EXIT_REASON_EXTERNAL_INTERRUPT] = handle_external_interrupt,
	[EXIT_REASON_TRIPLE_FAULT] = handle_triple_fault,
	[EXIT_REASON_INTERRUPT_WINDOW] = handle_interrupt_window,
	[EXIT_REASON_CPUID] = handle_cpuid,
	[EXIT_REASON_HLT] = handle_halt,
	[EXIT_REASON_CR_ACCESS] = handle_cr,
	[EXIT_REASON_IO_INSTRUCTION] = handle_io,
	[EXIT_REASON_MSR_READ] = handle_rdmsr,
	[EXIT_REASON_MSR_WRITE] = handle_wrmsr,
	[EXIT_REASON_EPT_VIOLATION] = handle_ept_violation,
	[EXIT_REASON_EPT_MISCONFIG] = handle_ept_misconfig,
	[EXIT_REASON_PREEMPTION_TIMER] = handle_preemption_timer,
};
