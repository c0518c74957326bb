/*
 * The core of L1: what KVM's userspace (QEMU) and the generic parts of KVM do around a back end:
 * set up the VM (memory slot, CPUID and MSR policy, boot state), then the run loop: each exit the
 * back end cannot finish goes to a device model here, and L2's LAPIC timer is fired on time.
 */
#include "l1hv.h"
#include "lib.h"
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

int mmio_access(struct l2_exit *e)
{
	u64 gpa = e->mmio.gpa;
	if (gpa >= 0xfee00000ul && gpa < 0xfee01000ul)
		return lapic_mmio(gpa - 0xfee00000ul, e->mmio.write, &e->mmio.value);
	if (gpa >= 0xfeb00000ul && gpa < 0xfeb00200ul)
		return vblk_mmio(gpa - 0xfeb00000ul, e->mmio.write, e->mmio.size, &e->mmio.value);
	if (!e->mmio.write)
		e->mmio.value = ~0ul;  /* nothing there: reads float high, writes vanish */
	return 0;
}

int l1_core_run(const struct l1_backend *be, const u8 *image, u64 image_len, const char *l2_cmdline, int eager)
{
	static struct l2_vm vm;
	static struct l2_vcpu vcpu;
	static struct l2_cpuid_entry cpuid_table[48];
	struct l2_regs regs;
	struct l2_sregs sregs;
	struct l2_exit exit;

	if (vblk_init() != 0)
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
		if (be->run(&vcpu, &exit) != 0 && exit.kind != L2_EXIT_FAIL)
			panic("l1hv: run failed");
		if (exit.kind < 8)
			l1_exit_count[exit.kind]++;
		switch (exit.kind) {
		case L2_EXIT_PIO:
			pio_access(&exit);
			break;
		case L2_EXIT_MMIO:
			mmio_access(&exit);
			break;
		case L2_EXIT_TIMER:
		case L2_EXIT_HLT: {
			/* HLT: wait for the next timer expiry (the only wake-up source L2 has) */
			u64 now = rdtsc();
			if (exit.kind == L2_EXIT_HLT) {
				if (!lapic_deadline())
					panic("l1hv: L2 halted with no timer armed");
				while ((now = rdtsc()) < lapic_deadline())
					__asm__ volatile("pause");
			}
			int vec = lapic_timer_expired(now);
			if (vec >= 0)
				be->inject_irq(&vcpu, (u8)vec);
			break;
		}
		case L2_EXIT_SHUTDOWN:
			panic("l1hv: L2 triple fault");
		case L2_EXIT_FAIL:
			panic("l1hv: %s back end: %s (0x%lx)", be->name, exit.fail.reason, exit.fail.code);
		default:
			panic("l1hv: unexpected exit kind %u", exit.kind);
		}
	}
}
