/*
 * Hyper-V's TLB-flush hypercalls and the direct (L2) TLB flush, under an L0 that offers the
 * enlightened VMCS (Hyper-V TLFS v6.0b "Hypercall Interface", "Virtual Processor Assist Page",
 * "Nested Virtualization"; what KVM as L0 serves: arch/x86/kvm/hyperv.c kvm_hv_hypercall,
 * kvm_hv_flush_tlb; vmx/nested.c nested_vmx_l0_wants_exit). Runs only when CPUID 0x40000000 says
 * "Microsoft Hv" and 0x4000000A offers eVMCS v1 and the direct flush (bit 17); otherwise it is
 * skipped with an INFO line, as on the bare machine.
 *
 * - L1's own hypercalls through the hypercall page: HvFlushVirtualAddressSpace/List(Ex)
 *   (0x0002/0x0003/0x0013/0x0014) succeed (reps completed = rep count); malformed input gets its
 *   HV_STATUS (3: reserved bits, a rep count where none belongs, none where one does, an _EX
 *   set whose size is not its bank count, input outside RAM; 2: a code not served, 0x00AF/0x00B0
 *   included); a fast (register) flush is #UD (no XMM input offered), so is CPL 3.
 * - L2 runs on an eVMCS made from a plain VMCS (every field VMREAD into its TLFS slot). L2's
 *   flush hypercall exits to L1 as VMCALL (18) unless L1 set both nested_flush_hypercall in the
 *   eVMCS and directhypercall in the VP assist page; then L0 answers it and L2 goes on to its HLT
 *   (exit 12) with the status in RAX; with the partition assist page's tlb_lock_count set, L1
 *   gets the synthetic exit 0x10000031 right after the VMCALL.
 */
#include "vmxtest.h"

#define HV_CPUID_VENDOR 0x40000000
#define HV_CPUID_RECOMMEND 0x40000004
#define HV_CPUID_NESTED 0x4000000a
#define HV_REMOTE_TLB_FLUSH (1u << 2)
#define HV_EX_PROCESSOR_MASKS (1u << 11)
#define HV_NESTED_DIRECT_FLUSH (1u << 17)
#define HV_NESTED_GUEST_MAPPING_FLUSH (1u << 18)
#define HV_MSR_GUEST_OS_ID 0x40000000
#define HV_MSR_HYPERCALL 0x40000001
#define HV_MSR_VP_ASSIST 0x40000073
#define HV_GUEST_OS_ID (1ul << 63 | 0x100ul << 48 | 1) /* open source, Linux's OS type */

#define HC_SPACE 0x0002
#define HC_LIST 0x0003
#define HC_SPACE_EX 0x0013
#define HC_LIST_EX 0x0014
#define HC_GPA_SPACE 0x00af
#define HC_GPA_LIST 0x00b0
#define HC_FAST (1ul << 16)
#define HC_VARHEAD(n) ((u64)(n) << 17)
#define HC_REP(n) ((u64)(n) << 32)
#define HC_REP_START(n) ((u64)(n) << 48)
#define ST_SUCCESS 0
#define ST_INVALID_CODE 2
#define ST_INVALID_INPUT 3
#define FLUSH_ALL_PROCESSORS 1
#define SET_SPARSE_4K 0
#define SET_ALL 1

#define EXIT_TRAP_AFTER_FLUSH 0x10000031u
/* VP assist page: nested_control.features (bit 0 directhypercall), enlighten_vmentry, current_nested_vmcs. */
#define VPA_NESTED_FEATURES 32
#define VPA_ENLIGHTEN_VMENTRY 40
#define VPA_CURRENT_NESTED_VMCS 48
/* eVMCS: revision, clean fields, enlightenments control (bit 0 nested_flush_hypercall), VP id, VM id, PA page. */
#define EV_CLEAN_FIELDS 824
#define EV_ENLIGHTENMENTS 836
#define EV_VP_ID 840
#define EV_VM_ID 848
#define EV_PA_PAGE 856

static u8 hcall_page[4096] PAGE, vp_assist[4096] PAGE, evmcs[4096] PAGE, pa_page[4096] PAGE;
static u64 hv_in[512] PAGE;

/*
 * Where each VMCS field lives in the eVMCS (encoding, offset, size): the TLFS structure
 * HV_VMX_ENLIGHTENED_VMCS, packed; the same transcription nestlab's L0 uses (evmcs-layout.ts),
 * so these checks are of the flush, not of the layout (l1hv's offsetof table checks that).
 */
static const struct {
	u16 enc, off, size;
} ev_fields[] = {
	{ 0x0000, 632, 2 }, { 0x0800, 128, 2 }, { 0x0802, 130, 2 }, { 0x0804, 132, 2 },
	{ 0x0806, 134, 2 }, { 0x0808, 136, 2 }, { 0x080a, 138, 2 }, { 0x080c, 140, 2 },
	{ 0x080e, 142, 2 }, { 0x0c00, 8, 2 }, { 0x0c02, 10, 2 }, { 0x0c04, 12, 2 },
	{ 0x0c06, 14, 2 }, { 0x0c08, 16, 2 }, { 0x0c0a, 18, 2 }, { 0x0c0c, 20, 2 },
	{ 0x2000, 104, 8 }, { 0x2002, 112, 8 }, { 0x2004, 120, 8 }, { 0x2010, 400, 8 },
	{ 0x201a, 624, 8 }, { 0x2400, 680, 8 }, { 0x2800, 416, 8 }, { 0x2804, 432, 8 },
	{ 0x2806, 440, 8 }, { 0x2c00, 24, 8 }, { 0x2c02, 32, 8 }, { 0x4000, 92, 4 },
	{ 0x4002, 788, 4 }, { 0x4004, 792, 4 }, { 0x4006, 376, 4 }, { 0x4008, 380, 4 },
	{ 0x400a, 384, 4 }, { 0x400c, 96, 4 }, { 0x400e, 388, 4 }, { 0x4010, 392, 4 },
	{ 0x4012, 796, 4 }, { 0x4014, 396, 4 }, { 0x4016, 800, 4 }, { 0x4018, 804, 4 },
	{ 0x401a, 808, 4 }, { 0x401c, 812, 4 }, { 0x401e, 100, 4 }, { 0x4400, 688, 4 },
	{ 0x4402, 692, 4 }, { 0x4404, 696, 4 }, { 0x4406, 700, 4 }, { 0x4408, 704, 4 },
	{ 0x440a, 708, 4 }, { 0x440c, 712, 4 }, { 0x440e, 716, 4 }, { 0x4800, 144, 4 },
	{ 0x4802, 148, 4 }, { 0x4804, 152, 4 }, { 0x4806, 156, 4 }, { 0x4808, 160, 4 },
	{ 0x480a, 164, 4 }, { 0x480c, 168, 4 }, { 0x480e, 172, 4 }, { 0x4810, 176, 4 },
	{ 0x4812, 180, 4 }, { 0x4814, 184, 4 }, { 0x4816, 188, 4 }, { 0x4818, 192, 4 },
	{ 0x481a, 196, 4 }, { 0x481c, 200, 4 }, { 0x481e, 204, 4 }, { 0x4820, 208, 4 },
	{ 0x4822, 212, 4 }, { 0x4824, 784, 4 }, { 0x4826, 504, 4 }, { 0x482a, 508, 4 },
	{ 0x4c00, 88, 4 }, { 0x6000, 512, 8 }, { 0x6002, 520, 8 }, { 0x6004, 528, 8 },
	{ 0x6006, 536, 8 }, { 0x6400, 720, 8 }, { 0x640a, 760, 8 }, { 0x6800, 544, 8 },
	{ 0x6802, 552, 8 }, { 0x6804, 560, 8 }, { 0x6806, 216, 8 }, { 0x6808, 224, 8 },
	{ 0x680a, 232, 8 }, { 0x680c, 240, 8 }, { 0x680e, 248, 8 }, { 0x6810, 256, 8 },
	{ 0x6812, 264, 8 }, { 0x6814, 272, 8 }, { 0x6816, 280, 8 }, { 0x6818, 288, 8 },
	{ 0x681a, 568, 8 }, { 0x681c, 768, 8 }, { 0x681e, 816, 8 }, { 0x6820, 776, 8 },
	{ 0x6822, 480, 8 }, { 0x6824, 488, 8 }, { 0x6826, 496, 8 }, { 0x6c00, 40, 8 },
	{ 0x6c02, 48, 8 }, { 0x6c04, 56, 8 }, { 0x6c06, 576, 8 }, { 0x6c08, 584, 8 },
	{ 0x6c0a, 592, 8 }, { 0x6c0c, 600, 8 }, { 0x6c0e, 608, 8 }, { 0x6c10, 64, 8 },
	{ 0x6c12, 72, 8 }, { 0x6c14, 616, 8 }, { 0x6c16, 80, 8 },
};
#define N_EV_FIELDS (sizeof(ev_fields) / sizeof(ev_fields[0]))

static u8 *ev_slot(u32 enc)
{
	for (unsigned i = 0; i < N_EV_FIELDS; i++)
		if (ev_fields[i].enc == enc)
			return evmcs + ev_fields[i].off;
	return evmcs + 4096 - 8; /* not reached: every field used here has a slot */
}
#define EV64(enc) (*(u64 *)ev_slot(enc))
#define EV32(enc) (*(u32 *)ev_slot(enc))
#define AT(base, off, type) (*(volatile type *)((base) + (off)))

/* The eVMCS from the current (plain) VMCS: every field VMREAD into its slot. */
static void evmcs_from_vmcs(void)
{
	for (unsigned i = 0; i < N_EV_FIELDS; i++) {
		u64 v;
		if (vmread_r(ev_fields[i].enc, &v) != VMX_OK)
			continue;
		u8 *p = evmcs + ev_fields[i].off;
		if (ev_fields[i].size == 2)
			*(u16 *)p = (u16)v;
		else if (ev_fields[i].size == 4)
			*(u32 *)p = (u32)v;
		else
			*(u64 *)p = v;
	}
	*(u32 *)evmcs = 1; /* revision = eVMCS version 1 */
}

static int ev_launched;
/* Enter L2 at rip (rip 0: where it stopped) through the eVMCS; the exit reason, or 0xffff0000 | VMfail << 8 | error. */
static u32 ev_run(void (*rip)(void))
{
	if (rip) {
		EV64(F_GUEST_RIP) = (u64)rip;
		EV64(F_GUEST_RSP) = PA(l2_stack_top);
		EV64(F_GUEST_RFLAGS) = 2;
		EV32(F_GUEST_ACTIVITY) = 0;
	}
	AT(evmcs, EV_CLEAN_FIELDS, u32) = 0; /* everything dirty: L0 copies it all */
	extern int evm_run(int resume, u64 *rsp_slot, u64 *rip_slot);
	int r = evm_run(ev_launched, (u64 *)ev_slot(F_HOST_RSP), (u64 *)ev_slot(F_HOST_RIP));
	if (r)
		return 0xffff0000u | (u32)r << 8 | (EV32(F_VM_INSN_ERROR) & 0xff);
	ev_launched = 1;
	return EV32(F_EXIT_REASON);
}

/* A hypercall through the hypercall page (RCX input, RDX input GPA, R8 output GPA): RAX. */
static u64 hv_call(u64 input, u64 gpa)
{
	register u64 r8 __asm__("r8") = 0;
	u64 rax;
	__asm__ volatile("call *%[p]" : "=a"(rax), "+c"(input), "+d"(gpa), "+r"(r8) : [p] "r"(hcall_page) : "memory", "cc");
	return rax;
}

/* VMCALL bracketed for a fault: the vector (-1 none). */
static int hv_call_faults(u64 input, u64 gpa)
{
	register u64 r8 __asm__("r8") = 0;
	u64 fl, rax = 0;
	__asm__ volatile(GUARD_PRE "vmcall" GUARD_POST
			 : [fl] "=r"(fl), "+a"(rax), "+c"(input), "+d"(gpa), "+r"(r8) : : "r11", "cc", "memory");
	return fault_vector;
}

static void expect(const char *name, u64 got, u64 want)
{
	check(name, got == want, "result %lx, want %lx", got, want);
}

static void t_l1_hypercalls(void)
{
	hv_in[0] = 0;			     /* address space */
	hv_in[1] = FLUSH_ALL_PROCESSORS; /* flags */
	hv_in[2] = 0;			     /* processor mask */
	hv_in[3] = 0x1000;		     /* GVA list (LIST) */
	hv_in[4] = 0x2000;
	u64 in = PA(hv_in);
	expect("hv-l1-flush-space", hv_call(HC_SPACE, in), ST_SUCCESS);
	expect("hv-l1-flush-list-reps", hv_call(HC_LIST | HC_REP(2), in), ST_SUCCESS | HC_REP(2));
	hv_in[1] = 0;
	hv_in[2] = 1; /* VP 0 */
	expect("hv-l1-flush-space-vp0", hv_call(HC_SPACE, in), ST_SUCCESS);
	/* _EX: {address space, flags, format, valid bank mask, banks...} */
	hv_in[2] = SET_ALL;
	hv_in[3] = 0;
	expect("hv-l1-flush-space-ex-all", hv_call(HC_SPACE_EX, in), ST_SUCCESS);
	hv_in[2] = SET_SPARSE_4K;
	hv_in[3] = 1;
	hv_in[4] = 1;
	expect("hv-l1-flush-space-ex-sparse", hv_call(HC_SPACE_EX | HC_VARHEAD(1), in), ST_SUCCESS);
	expect("hv-l1-flush-ex-bank-count-mismatch", hv_call(HC_SPACE_EX, in), ST_INVALID_INPUT);
	expect("hv-l1-flush-list-ex-reps", hv_call(HC_LIST_EX | HC_VARHEAD(1) | HC_REP(1), in), ST_SUCCESS | HC_REP(1));
	expect("hv-l1-flush-space-with-reps", hv_call(HC_SPACE | HC_REP(1), in), ST_INVALID_INPUT);
	expect("hv-l1-flush-list-no-reps", hv_call(HC_LIST, in), ST_INVALID_INPUT);
	expect("hv-l1-flush-list-rep-start", hv_call(HC_LIST | HC_REP(2) | HC_REP_START(1), in), ST_INVALID_INPUT);
	expect("hv-l1-flush-space-varhead", hv_call(HC_SPACE | HC_VARHEAD(1), in), ST_INVALID_INPUT);
	expect("hv-l1-reserved-bit-27", hv_call(HC_SPACE | (1ul << 27), in), ST_INVALID_INPUT);
	expect("hv-l1-reserved-bit-63", hv_call(HC_SPACE | (1ul << 63), in), ST_INVALID_INPUT);
	expect("hv-l1-input-not-ram", hv_call(HC_SPACE, 1ul << 40), ST_INVALID_INPUT);
	expect("hv-l1-unknown-code", hv_call(0x0001, in), ST_INVALID_CODE);
	expect("hv-l1-guest-mapping-flush-not-served", hv_call(HC_GPA_SPACE, in), ST_INVALID_CODE);
	expect("hv-l1-guest-mapping-flush-list-not-served", hv_call(HC_GPA_LIST | HC_REP(1), in), ST_INVALID_CODE);
	int v = hv_call_faults(HC_SPACE | HC_FAST, 0);
	check("hv-l1-fast-flush-ud", v == UD, "fast flush without XMM input: vector %d, want #UD", v);
	long g = call_guarded(FN(u_hvcall), 1);
	check("hv-l1-cpl3-ud", g == UD && guard_rip == (u64)u_hvcall_at, "CPL 3 hypercall: vector %ld at %lx", g,
	      guard_rip);
}

/* One L2 hypercall through the eVMCS: the exit reason; RAX in l2_out[0] once L2 reached its HLT. */
static u32 l2_hv(u64 input, u64 gpa)
{
	l2_arg[0] = input;
	l2_arg[1] = gpa;
	l2_out[0] = 0xdead;
	return ev_run(FN(l2_hvcall));
}

#define COST_CALLS 16
/*
 * What the direct flush saves, measured: L2 makes COST_CALLS flush hypercalls in a row, answered
 * by L0 (direct) or each reflected to this L1, which only steps over the VMCALL and resumes (the
 * least an L1 can do). Simulated cycles per call from L1's RDTSC: INFO, not a check.
 */
static u64 flush_loop(int direct)
{
	AT(vp_assist, VPA_NESTED_FEATURES, u32) = direct ? 1 : 0;
	l2_arg[0] = HC_SPACE;
	l2_arg[1] = PA(hv_in);
	l2_out[2] = COST_CALLS;
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	u64 t0 = (u64)hi << 32 | lo;
	u32 r = ev_run(FN(l2_hvloop));
	int reflected = 0;
	while (r == EXIT_VMCALL && reflected <= COST_CALLS) {
		reflected++;
		EV64(F_GUEST_RIP) += 3;
		r = ev_run(0);
	}
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	u64 t1 = (u64)hi << 32 | lo;
	check(direct ? "hv-l2-flush-loop-direct" : "hv-l2-flush-loop-reflected",
	      r == EXIT_HLT && reflected == (direct ? 0 : COST_CALLS), "reason %x after %d VMCALL exits", r, reflected);
	return (t1 - t0) / COST_CALLS;
}

static void flush_cost(void)
{
	AT(evmcs, EV_PA_PAGE, u64) = PA(pa_page);
	hv_in[1] = FLUSH_ALL_PROCESSORS;
	u64 direct = flush_loop(1), reflected = flush_loop(0);
	info("L2 flush hypercall, cycles per call: %lu answered by L0, %lu reflected to L1 (%d calls each)", direct,
	     reflected, COST_CALLS);
}

static void t_l2_flush(void)
{
	vmcs_setup(vmcs_a, FN(l2_hlt));
	evmcs_from_vmcs();
	AT(evmcs, EV_VM_ID, u64) = 1;
	AT(evmcs, EV_VP_ID, u32) = 0;
	AT(evmcs, EV_PA_PAGE, u64) = PA(pa_page);
	AT(pa_page, 0, u32) = 0; /* tlb_lock_count */
	for (int i = 0; i < 4096; i++)
		vp_assist[i] = 0;
	AT(vp_assist, VPA_ENLIGHTEN_VMENTRY, u32) = 1;
	AT(vp_assist, VPA_CURRENT_NESTED_VMCS, u64) = PA(evmcs);
	if (wrmsr_safe(HV_MSR_VP_ASSIST, PA(vp_assist) | 1))
		return (void)check("hv-vp-assist-page", 0, "WRMSR of the VP assist page faulted");
	ev_launched = 0;
	hv_in[0] = 0;
	hv_in[1] = FLUSH_ALL_PROCESSORS;
	hv_in[2] = 0;
	u64 in = PA(hv_in);
	u32 r = l2_hv(HC_SPACE, in);
	check("hv-l2-flush-reflected-without-enlightenment", r == EXIT_VMCALL && EV64(F_GUEST_RIP) == (u64)l2_hvcall_at,
	      "reason %x rip %lx, want 18 at %lx", r, EV64(F_GUEST_RIP), (u64)l2_hvcall_at);
	AT(evmcs, EV_ENLIGHTENMENTS, u32) |= 1; /* nested_flush_hypercall */
	r = l2_hv(HC_SPACE, in);
	check("hv-l2-flush-reflected-without-directhypercall", r == EXIT_VMCALL, "reason %x, want 18", r);
	AT(vp_assist, VPA_NESTED_FEATURES, u32) = 1; /* directhypercall */
	r = l2_hv(HC_SPACE, in);
	check("hv-l2-direct-flush-space", r == EXIT_HLT && l2_out[0] == ST_SUCCESS, "reason %x rax %lx, want 12 / 0", r,
	      l2_out[0]);
	hv_in[3] = 0x1000;
	hv_in[4] = 0x2000;
	hv_in[5] = 0x3000;
	r = l2_hv(HC_LIST | HC_REP(3), in);
	check("hv-l2-direct-flush-list", r == EXIT_HLT && l2_out[0] == (ST_SUCCESS | HC_REP(3)),
	      "reason %x rax %lx, want 12 / %lx", r, l2_out[0], HC_REP(3));
	r = l2_hv(HC_SPACE | (1ul << 27), in);
	check("hv-l2-direct-reserved-bit", r == EXIT_HLT && l2_out[0] == ST_INVALID_INPUT, "reason %x rax %lx", r,
	      l2_out[0]);
	/* GPA 1 GiB + 4 KiB: EPT12 maps only the test page at 1 GiB (vmcs.c). */
	r = l2_hv(HC_SPACE, 0x40001000);
	check("hv-l2-direct-input-not-in-ept12", r == EXIT_HLT && l2_out[0] == ST_INVALID_INPUT,
	      "reason %x rax %lx, want 12 / 3", r, l2_out[0]);
	r = l2_hv(0x0008, in); /* HvNotifyLongSpinWait: not a flush, L1's */
	check("hv-l2-other-hypercall-reflected", r == EXIT_VMCALL, "reason %x, want 18", r);
	/* A set without the L2's VP id (5): success, nothing to flush. */
	AT(evmcs, EV_VP_ID, u32) = 5;
	hv_in[1] = 0;
	hv_in[2] = 1;
	r = l2_hv(HC_SPACE, in);
	check("hv-l2-direct-other-vp", r == EXIT_HLT && l2_out[0] == ST_SUCCESS, "reason %x rax %lx", r, l2_out[0]);
	AT(evmcs, EV_VP_ID, u32) = 0;
	hv_in[1] = FLUSH_ALL_PROCESSORS;
	/* tlb_lock_count set: the synthetic exit right after the VMCALL, then L2 goes on. */
	AT(pa_page, 0, u32) = 1;
	r = l2_hv(HC_SPACE, in);
	u64 rax = exit_rax;
	check("hv-l2-trap-after-flush",
	      r == EXIT_TRAP_AFTER_FLUSH && EV64(F_GUEST_RIP) == (u64)l2_hvcall_at + 3 && rax == ST_SUCCESS,
	      "reason %x rip %lx rax %lx, want 10000031 at %lx, rax 0", r, EV64(F_GUEST_RIP), rax,
	      (u64)l2_hvcall_at + 3);
	AT(pa_page, 0, u32) = 0;
	r = ev_run(0); /* L2 stores L1's RAX (GPRs are not switched): only the exit is checked */
	check("hv-l2-trap-after-flush-resumes", r == EXIT_HLT, "reason %x, want 12", r);
	AT(evmcs, EV_PA_PAGE, u64) = 1ul << 40;
	r = l2_hv(HC_SPACE, in);
	check("hv-l2-partition-assist-not-ram", r == EXIT_HLT && l2_out[0] == ST_INVALID_INPUT, "reason %x rax %lx",
	      r, l2_out[0]);
	flush_cost();
	/* Back to the plain VMCS for what follows. */
	AT(vp_assist, VPA_ENLIGHTEN_VMENTRY, u32) = 0;
	wrmsr_safe(HV_MSR_VP_ASSIST, 0);
	vmcs_setup(vmcs_a, FN(l2_hlt));
}

void t_hyperv(void)
{
	u32 a, b, c, d;
	cpuid(HV_CPUID_VENDOR, 0, &a, &b, &c, &d);
	if (a < HV_CPUID_NESTED || b != 0x7263694d || c != 0x666f736f || d != 0x76482074)
		return info("no Hyper-V interface (CPUID 0x40000000): Hyper-V hypercall checks skipped");
	cpuid(HV_CPUID_NESTED, 0, &a, &b, &c, &d);
	u32 nested = a;
	cpuid(HV_CPUID_RECOMMEND, 0, &a, &b, &c, &d);
	if ((nested & 0xff) != 1 || !(nested & HV_NESTED_DIRECT_FLUSH))
		return info("no eVMCS v1 with the direct flush (0x4000000A EAX %x): checks skipped", nested);
	check("hv-cpuid-flush-recommended", (a & (HV_REMOTE_TLB_FLUSH | HV_EX_PROCESSOR_MASKS)) ==
					       (HV_REMOTE_TLB_FLUSH | HV_EX_PROCESSOR_MASKS),
	      "0x40000004 EAX %x lacks bits 2/11", a);
	check("hv-cpuid-no-guest-mapping-flush", !(nested & HV_NESTED_GUEST_MAPPING_FLUSH), "0x4000000A EAX %x", nested);
	int r = wrmsr_safe(HV_MSR_HYPERCALL, PA(hcall_page) | 1);
	check("hv-hypercall-page-needs-guest-os-id", r == FAULT(GP), "WRMSR gave %s, want #GP", outcome_name(r));
	wrmsr_safe(HV_MSR_GUEST_OS_ID, HV_GUEST_OS_ID);
	r = wrmsr_safe(HV_MSR_HYPERCALL, PA(hcall_page) | 1);
	u32 code = *(u32 *)hcall_page;
	check("hv-hypercall-page", r == 0 && code == 0xc3c1010f, "WRMSR %s, page starts %x, want VMCALL; RET",
	      outcome_name(r), code);
	t_l1_hypercalls();
	t_l2_flush();
	/* A zero guest OS ID ends the Hyper-V ABI: VMCALL is the VMX instruction again. */
	wrmsr_safe(HV_MSR_GUEST_OS_ID, 0);
}
