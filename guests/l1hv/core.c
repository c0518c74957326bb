/*
 * The core of L1: what KVM's userspace (QEMU) and the generic parts of KVM do around a back end:
 * set up the VM (memory slot, CPUID and MSR policy, boot state), then the run loop: each exit the
 * back end cannot finish goes to a device model, in L1's kernel (PICs, LAPIC: an in-kernel
 * irqchip) or in the ring-3 device process (the rest, as QEMU's), and L2's LAPIC timer is fired
 * on time.
 */
#include "l1hv.h"
#include "lib.h"
#include "virtio.h"
#include "x86.h"

u64 l2_ram_size;
u64 l1_exit_count[8];

/* L2's CPUID: the machine's, with VMX hidden and the hypervisor bit and KVM's signature leaves
 * shown, as L0's policy for its VMs (src/hypervisors/l0/vm.ts). */
static u32 build_cpuid(struct l2_cpuid_entry *t, u32 cap)
{
	u32 n = 0, a, b, c, d;
	cpuid(0, 0, &a, &b, &c, &d);
	u32 max = a;
	for (u32 leaf = 0; leaf <= max && n < cap - 4; leaf++) {
		cpuid(leaf, 0, &a, &b, &c, &d);
		if (leaf == 1)
			c = (c | (1u << 31)) & ~(1u << 5);
		t[n++] = (struct l2_cpuid_entry){ leaf, 0, a, b, c, d };
	}
	t[n++] = (struct l2_cpuid_entry){ 0x40000000, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d };
	t[n++] = (struct l2_cpuid_entry){ 0x40000001, 0, 0, 0, 0, 0 };
	cpuid(0x80000000, 0, &a, &b, &c, &d);
	for (u32 leaf = 0x80000000; leaf <= a && n < cap; leaf++) {
		u32 ea, eb, ec, ed;
		cpuid(leaf, 0, &ea, &eb, &ec, &ed);
		t[n++] = (struct l2_cpuid_entry){ leaf, 0, ea, eb, ec, ed };
	}
	return n;
}

/* MMIO: the LAPIC in L1's kernel, virtio-mmio in the device process, nothing elsewhere. */
static void mmio_access(struct l2_exit *e)
{
	u64 gpa = e->mmio.gpa;
	if (gpa >= 0xfee00000ul && gpa < 0xfee01000ul)
		lapic_mmio(gpa - 0xfee00000ul, e->mmio.write, &e->mmio.value);
	else if (gpa >= 0xfeb00000ul && gpa < 0xfeb00200ul)
		devproc_call(e);
	else if (!e->mmio.write)
		e->mmio.value = ~0ul;  /* nothing there: reads float high, writes vanish */
}

/* Interrupts for L2 (KVM's inject_pending_event): one vector at a time goes to the back end,
 * which injects it when L2 can take it; the 8259's (ExtINT) before the LAPIC's, as KVM's
 * kvm_cpu_get_interrupt asks the PIC first. The PIC's vector is acknowledged (INTA) here. */
static int timer_irr = -1;
static void deliver_irqs(const struct l1_backend *be, struct l2_vcpu *v)
{
	if (v->pending_irq)
		return;
	if (pic_has_interrupt()) {
		be->inject_irq(v, (u8)pic_ack());
	} else if (timer_irr >= 0) {
		be->inject_irq(v, (u8)timer_irr);
		timer_irr = -1;
	}
}

int l1_core_run(const struct l1_backend *be, const u8 *image, u64 image_len, const char *l2_cmdline, int eager)
{
	static struct l2_vm vm;
	static struct l2_vcpu vcpu;
	static struct l2_cpuid_entry cpuid_table[48];
	struct l2_regs regs;
	struct l2_sregs sregs;
	struct l2_exit exit;

	if (virtio_blk_init() != 0)
		kprintf("l1hv: no virtio-blk on the machine: L2 gets none\n");
	int rc = be->init();
	if (rc)
		panic("l1hv: %s back end: init failed (%d)", be->name, rc);
	vm.be = be;
	vm.eager = eager;
	if (be->vm_create(&vm) || be->vcpu_create(&vm, &vcpu))
		panic("l1hv: cannot create the VM");
	if (be->set_memslot(&vm, &l2_ram))
		panic("l1hv: cannot add L2's memory");
	devproc_init();
	u32 n = build_cpuid(cpuid_table, 48);
	static const struct l2_msr_policy msrs[] = {
		{ 0x1b, L2_MSR_VALUE, 0xfee00900ul },   /* IA32_APIC_BASE: BSP, xAPIC enabled */
		{ 0x277, L2_MSR_PASS, 0 },              /* IA32_PAT (in the VMCS) */
	};
	if (be->set_cpuid(&vcpu, cpuid_table, n) || be->set_msrs(&vcpu, msrs, 2))
		panic("l1hv: cannot set CPUID/MSR policy");
	if ((rc = l2_load(image, image_len, l2_cmdline, &regs, &sregs)) != 0)
		panic("l1hv: cannot load the L2 image (%d)", rc);
	if (be->set_sregs(&vcpu, &sregs) || be->set_regs(&vcpu, &regs))
		panic("l1hv: cannot set L2's boot state");
	lapic_reset();
	memset(&exit, 0, sizeof(exit));
	for (;;) {
		vcpu.deadline = lapic_deadline();
		/* interrupts off around the entry and the exit's irqoff part, on while L1 handles the
		 * exit (KVM's vcpu_enter_guest: local_irq_disable ... handle_exit_irqoff, local_irq_enable) */
		__asm__ volatile("cli" ::: "memory");
		if (be->run(&vcpu, &exit) != 0 && exit.kind != L2_EXIT_FAIL)
			panic("l1hv: run failed");
		__asm__ volatile("sti" ::: "memory");
		if (exit.kind < 8)
			l1_exit_count[exit.kind]++;
		switch (exit.kind) {
		case L2_EXIT_PIO:
			if (pic_access(&exit) != 0)
				devproc_call(&exit);
			break;
		case L2_EXIT_MMIO:
			mmio_access(&exit);
			break;
		case L2_EXIT_TIMER:
		case L2_EXIT_HLT: {
			/* HLT: wait for the next timer expiry unless an interrupt is already pending
			 * (KVM's kvm_vcpu_has_events before blocking) */
			if (exit.kind == L2_EXIT_HLT && !vcpu.pending_irq && !pic_has_interrupt()) {
				if (!lapic_deadline())
					panic("l1hv: L2 halted with no timer armed");
				/* L1 idles too: its timer armed for L2's deadline, STI; HLT */
				__asm__ volatile("cli" ::: "memory");
				l1_idle_until(lapic_deadline());
				__asm__ volatile("sti" ::: "memory");
			}
			int vec = lapic_timer_expired(rdtsc());
			/* one IRR bit: an expiry while the vector still waits for L2 coalesces */
			if (vec >= 0 && vcpu.pending_irq != (0x100u | (u32)vec))
				timer_irr = vec;
			break;
		}
		case L2_EXIT_SHUTDOWN:
			panic("l1hv: L2 triple fault");
		case L2_EXIT_FAIL:
			panic("l1hv: %s back end: %s (0x%lx)", be->name, exit.fail.reason, exit.fail.code);
		default:
			panic("l1hv: unexpected exit kind %u", exit.kind);
		}
		deliver_irqs(be, &vcpu);
	}
}
