/*
 * vmxtest: VMX from the guest side, checked against the SDM (vol. 3C chapters 23-31, vol. 2 VMX
 * instruction pages). Prints "PASS name" / "FAIL name: detail" per check, INFO lines for what the
 * capability MSRs say (checks the SDM makes conditional adapt to them), "SUMMARY passed=N
 * failed=M", and writes the number of failures to the debug-exit port (0 = all passed).
 */
#include "vmxtest.h"

int n_pass, n_fail;
volatile u64 recover_rip;
volatile int fault_vector = -1;
volatile u64 fault_error;
volatile int guard_active;
volatile u64 guard_rsp;
volatile int guard_vector;
volatile u64 guard_rip;
volatile u64 guard_error;
struct caps caps;

u8 tss[104] __attribute__((aligned(16)));
u64 idt[64] __attribute__((aligned(16)));
u64 l2_idt[64] __attribute__((aligned(16)));
static u8 trap_stack[8192] __attribute__((aligned(16)));
extern u64 stub_table[32];

/* ---- serial output (COM1, polled) ---- */
static void putc_(char ch)
{
	while ((inb(0x3fd) & 0x20) == 0)
		;
	outb(0x3f8, (u8)ch);
}
void puts_(const char *s)
{
	while (*s)
		putc_(*s++);
}
static void putnum(u64 v, int base, int width)
{
	char buf[24];
	int n = 0;
	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n < width)
		buf[n++] = '0';
	while (n)
		putc_(buf[--n]);
}
/* %d %u %x %lx %lu %s (no padding but %0Nx). */
static void vprintf_(const char *f, __builtin_va_list ap)
{
	for (; *f; f++) {
		if (*f != '%') {
			putc_(*f);
			continue;
		}
		f++;
		int width = 0, lng = 0;
		if (*f == '0')
			f++;
		while (*f >= '0' && *f <= '9')
			width = width * 10 + (*f++ - '0');
		if (*f == 'l') {
			lng = 1;
			f++;
		}
		u64 v;
		switch (*f) {
		case 'd': {
			i64 s = lng ? __builtin_va_arg(ap, i64) : __builtin_va_arg(ap, int);
			if (s < 0) {
				putc_('-');
				s = -s;
			}
			putnum((u64)s, 10, width);
			break;
		}
		case 'u':
		case 'x':
			v = lng ? __builtin_va_arg(ap, u64) : __builtin_va_arg(ap, u32);
			putnum(v, *f == 'x' ? 16 : 10, width);
			break;
		case 's':
			puts_(__builtin_va_arg(ap, const char *));
			break;
		default:
			putc_(*f);
		}
	}
}
void printf_(const char *fmt, ...)
{
	__builtin_va_list ap;
	__builtin_va_start(ap, fmt);
	vprintf_(fmt, ap);
	__builtin_va_end(ap);
}
int check(const char *name, int ok, const char *fmt, ...)
{
	if (ok) {
		n_pass++;
		printf_("PASS %s\n", name);
		return 1;
	}
	n_fail++;
	printf_("FAIL %s: ", name);
	__builtin_va_list ap;
	__builtin_va_start(ap, fmt);
	vprintf_(fmt, ap);
	__builtin_va_end(ap);
	puts_("\n");
	return 0;
}
void info(const char *fmt, ...)
{
	puts_("INFO ");
	__builtin_va_list ap;
	__builtin_va_start(ap, fmt);
	vprintf_(fmt, ap);
	__builtin_va_end(ap);
	puts_("\n");
}

const char *outcome_name(int r)
{
	static char buf[16];
	if (r == VMX_OK)
		return "VMsucceed";
	if (r == VMX_FAIL_INVALID)
		return "VMfailInvalid";
	if (r == VMX_FAIL_VALID)
		return "VMfailValid";
	buf[0] = '#';
	buf[1] = 'v';
	buf[2] = '0' + ((r & 0xff) / 10);
	buf[3] = '0' + ((r & 0xff) % 10);
	buf[4] = 0;
	return buf;
}

int check_outcome(const char *name, int r, int want)
{
	return check(name, r == want, "got %s, want %s", outcome_name(r), outcome_name(want));
}

int check_fail_valid(const char *name, int r, u64 n)
{
	if (r != VMX_FAIL_VALID)
		return check(name, 0, "got %s, want VMfailValid(%lu)", outcome_name(r), n);
	u64 e = vmerr();
	return check(name, e == n, "VM-instruction error %lu, want %lu", e, n);
}

static int vmr_failed;
u64 vmr(u64 enc)
{
	u64 v;
	int r = vmread_r(enc, &v);
	if (r != VMX_OK) {
		if (!vmr_failed)
			check("vmread-helper", 0, "VMREAD %x: %s", (u32)enc, outcome_name(r));
		vmr_failed = 1;
		return 0;
	}
	return v;
}
static int vmw_failed;
void vmw(u64 enc, u64 val)
{
	int r = vmwrite_r(enc, val);
	if (r != VMX_OK && !vmw_failed) {
		vmw_failed = 1;
		check("vmwrite-helper", 0, "VMWRITE %x: %s (error %lu)", (u32)enc, outcome_name(r),
		      r == VMX_FAIL_VALID ? vmerr() : 0);
	}
}

int wrmsr_safe(u32 i, u64 v)
{
	u64 fl;
	__asm__ volatile(GUARD_PRE "wrmsr" GUARD_POST
			 : [fl] "=r"(fl) : "c"(i), "a"((u32)v), "d"((u32)(v >> 32)) : "r11", "cc", "memory");
	return fault_vector >= 0 ? FAULT(fault_vector) : 0;
}

/* The frame trap_common builds: 15 GPRs (r15 first), vector, error code, then the CPU's frame. */
struct frame {
	u64 r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	u64 vector, error, rip, cs, rflags, rsp, ss;
};

static void machine_exit(u32 code)
{
	outl(0xf4, code);
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* 1: return through guard_restore (call_guarded's context); 0: iretq. */
int trap_handler(struct frame *f)
{
	if (recover_rip != 0 && (f->cs & 3) == 0) {
		fault_vector = (int)f->vector;
		fault_error = f->error;
		f->rip = recover_rip;
		recover_rip = 0;
		return 0;
	}
	if (guard_active) {
		guard_vector = (int)f->vector;
		guard_rip = f->rip;
		guard_error = f->error;
		return 1;
	}
	printf_("FAIL unexpected-exception: vector %lu error %lx at rip %lx cs %lx\n", f->vector, f->error,
		f->rip, f->cs);
	n_fail++;
	printf_("SUMMARY passed=%d failed=%d\n", n_pass, n_fail);
	machine_exit(n_fail);
	return 0;
}

static void set_gate(u64 *table, int v, u64 handler)
{
	table[2 * v] = (handler & 0xffff) | (0x08ul << 16) | (0x8eul << 40) | ((handler >> 16 & 0xffff) << 48);
	table[2 * v + 1] = handler >> 32;
}

static void cpu_init(void)
{
	for (int v = 0; v < 32; v++) {
		set_gate(idt, v, stub_table[v]);
		set_gate(l2_idt, v, (u64)l2_trap);
	}
	struct {
		u16 limit;
		u64 base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (u64)idt };
	__asm__ volatile("lidt %0" ::"m"(idtr));
	/* TSS: RSP0 for the CPL-3 excursions; descriptor at GDT 0x30 (available 64-bit TSS). */
	u64 t = (u64)tss, top = (u64)(trap_stack + sizeof(trap_stack));
	*(u64 *)(tss + 4) = top;
	gdt[6] = 0x67 | ((t & 0xffffff) << 16) | (0x89ul << 40) | ((t >> 24 & 0xff) << 56);
	gdt[7] = t >> 32;
	__asm__ volatile("ltr %w0" ::"r"(0x30));
}

static void read_caps(void)
{
	u32 a, b, c, d;
	cpuid(0x80000000, 0, &a, &b, &c, &d);
	caps.maxphyaddr = 36;
	if (a >= 0x80000008) {
		cpuid(0x80000008, 0, &a, &b, &c, &d);
		caps.maxphyaddr = a & 0xff;
	}
	caps.basic = rdmsr(MSR_VMX_BASIC);
	caps.revision = (u32)caps.basic & 0x7fffffff;
	int tru = (caps.basic >> 55) & 1;
	caps.pin = rdmsr(tru ? MSR_VMX_TRUE_PIN : 0x481);
	caps.proc = rdmsr(tru ? MSR_VMX_TRUE_PROC : 0x482);
	caps.exit = rdmsr(tru ? MSR_VMX_TRUE_EXIT : 0x483);
	caps.entry = rdmsr(tru ? MSR_VMX_TRUE_ENTRY : 0x484);
	caps.proc2 = may1(caps.proc, PROC_SECONDARY) ? rdmsr(MSR_VMX_PROCBASED_CTLS2) : 0;
	caps.misc = rdmsr(MSR_VMX_MISC);
	caps.cr0_fixed0 = rdmsr(MSR_VMX_CR0_FIXED0);
	caps.cr0_fixed1 = rdmsr(MSR_VMX_CR0_FIXED1);
	caps.cr4_fixed0 = rdmsr(MSR_VMX_CR4_FIXED0);
	caps.cr4_fixed1 = rdmsr(MSR_VMX_CR4_FIXED1);
	caps.vmcs_enum = rdmsr(MSR_VMX_VMCS_ENUM);
	caps.ept_vpid = (caps.proc2 >> 32) & (PROC2_EPT | PROC2_VPID) ? rdmsr(MSR_VMX_EPT_VPID_CAP) : 0;
	info("MAXPHYADDR %d", caps.maxphyaddr);
	info("IA32_VMX_BASIC %lx (revision %x, TRUE controls %d)", caps.basic, caps.revision, tru);
	info("pin %lx proc %lx proc2 %lx exit %lx entry %lx", caps.pin, caps.proc, caps.proc2, caps.exit,
	     caps.entry);
	info("misc %lx cr0 fixed %lx/%lx cr4 fixed %lx/%lx vmcs-enum %lx ept/vpid %lx", caps.misc,
	     caps.cr0_fixed0, caps.cr0_fixed1, caps.cr4_fixed0, caps.cr4_fixed1, caps.vmcs_enum, caps.ept_vpid);
}

void vmxtest_main(void)
{
	puts_("vmxtest: VMX conformance checks (SDM vol. 3C ch. 23-31)\n");
	cpu_init();
	u32 a, b, c, d;
	cpuid(1, 0, &a, &b, &c, &d);
	/* 23.6: VMX support is CPUID.1:ECX.VMX[bit 5]. Without it there is nothing to test. */
	if (!check("cpuid-vmx", (c >> 5) & 1, "CPUID.1:ECX.VMX is 0")) {
		printf_("SUMMARY passed=%d failed=%d\n", n_pass, n_fail);
		machine_exit(n_fail);
	}
	read_caps();
	static const struct {
		const char *name;
		void (*fn)(void);
	} groups[] = {
		{ "capability-msrs", t_caps }, { "vmxon", t_vmxon },	{ "vmread-vmwrite", t_fields },
		{ "vmcs-pointers-launch-state", t_vmcs }, { "entry-checks", t_entry }, { "exits", t_exits },
		{ "ept", t_ept }, { "shadow-vmcs", t_shadow },		{ "hyperv-flush", t_hyperv },
		{ "vmxoff", t_after },
	};
	for (unsigned g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		int before = n_pass + n_fail;
		groups[g].fn();
		info("group %s: %d checks", groups[g].name, n_pass + n_fail - before);
	}
	printf_("SUMMARY passed=%d failed=%d\n", n_pass, n_fail);
	machine_exit(n_fail);
}
