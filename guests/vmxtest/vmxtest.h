/*
 * vmxtest: a VMX conformance guest. Shared declarations: output and checks (main.c), the VMX
 * instruction wrappers (each returns a VMX_* outcome, or FAULT(vector) when the instruction
 * raised an exception: see recover_rip in main.c), VMCS field encodings (SDM vol. 3C appendix B),
 * exit reasons (appendix C) and VM-instruction error numbers (vol. 3C 31.4, table 31-1).
 */
#ifndef VMXTEST_H
#define VMXTEST_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;
typedef long i64;

/* ---- output and checks (main.c) ---- */
void puts_(const char *s);
void printf_(const char *fmt, ...);
/* One check: PASS name, or FAIL name: detail (printf-style). Returns ok. */
int check(const char *name, int ok, const char *fmt, ...);
void info(const char *fmt, ...);
extern int n_pass, n_fail;

/* ---- outcomes ---- */
#define VMX_OK 0
#define VMX_FAIL_INVALID 1
#define VMX_FAIL_VALID 2
#define FAULT(v) (0x100 | (v))
#define UD 6
#define GP 13
const char *outcome_name(int r);

/* Exception recovery for CPL-0 checks (main.c): an instruction bracketed by GUARD_PRE/POST
 * that faults resumes after the bracket with fault_vector set. */
extern volatile u64 recover_rip;
extern volatile int fault_vector;
extern volatile u64 fault_error;
#define GUARD_PRE "movl $-1, fault_vector(%%rip)\n\tleaq 1f(%%rip), %%r11\n\tmovq %%r11, recover_rip(%%rip)\n\t"
#define GUARD_POST "\n1:\tpushfq\n\tpopq %[fl]\n\tmovq $0, recover_rip(%%rip)"

static inline int outcome(u64 fl)
{
	if (fault_vector >= 0)
		return FAULT(fault_vector);
	if (fl & 1)
		return VMX_FAIL_INVALID;
	if (fl & 0x40)
		return VMX_FAIL_VALID;
	return VMX_OK;
}

/* ---- port I/O, MSRs, CPUID ---- */
static inline void outb(u16 p, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(p)); }
static inline void outl(u16 p, u32 v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(p)); }
static inline u8 inb(u16 p) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline u64 rdmsr(u32 i)
{
	u32 lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(i));
	return ((u64)hi << 32) | lo;
}
/* WRMSR that may fault: returns 0 or FAULT(v). */
int wrmsr_safe(u32 i, u64 v);
static inline void cpuid(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *c, u32 *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}
#define READ_CR(n) ({ u64 v_; __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v_)); v_; })
#define WRITE_CR(n, v) __asm__ volatile("mov %0, %%cr" #n ::"r"((u64)(v)) : "memory")

/* ---- VMX instructions (vol. 2, "VMX instruction reference"; vol. 3C 31.3) ---- */
static inline int vmxon(u64 pa)
{
	u64 fl;
	__asm__ volatile(GUARD_PRE "vmxon %[p]" GUARD_POST : [fl] "=r"(fl) : [p] "m"(pa) : "r11", "cc", "memory");
	return outcome(fl);
}
static inline int vmxoff(void)
{
	u64 fl;
	__asm__ volatile(GUARD_PRE "vmxoff" GUARD_POST : [fl] "=r"(fl) : : "r11", "cc", "memory");
	return outcome(fl);
}
static inline int vmclear(u64 pa)
{
	u64 fl;
	__asm__ volatile(GUARD_PRE "vmclear %[p]" GUARD_POST : [fl] "=r"(fl) : [p] "m"(pa) : "r11", "cc", "memory");
	return outcome(fl);
}
static inline int vmptrld(u64 pa)
{
	u64 fl;
	__asm__ volatile(GUARD_PRE "vmptrld %[p]" GUARD_POST : [fl] "=r"(fl) : [p] "m"(pa) : "r11", "cc", "memory");
	return outcome(fl);
}
static inline int vmptrst(u64 *out)
{
	u64 fl;
	__asm__ volatile(GUARD_PRE "vmptrst %[p]" GUARD_POST : [fl] "=r"(fl), [p] "=m"(*out) : : "r11", "cc", "memory");
	return outcome(fl);
}
/* VMREAD, register destination. */
static inline int vmread_r(u64 enc, u64 *val)
{
	u64 fl, v = 0xdeadbeefdeadbeef;
	__asm__ volatile(GUARD_PRE "vmread %[e], %[v]" GUARD_POST
			 : [fl] "=r"(fl), [v] "+r"(v) : [e] "r"(enc) : "r11", "cc", "memory");
	*val = v;
	return outcome(fl);
}
/* VMREAD, memory destination. */
static inline int vmread_m(u64 enc, u64 *mem)
{
	u64 fl;
	__asm__ volatile(GUARD_PRE "vmread %[e], %[m]" GUARD_POST
			 : [fl] "=r"(fl), [m] "+m"(*mem) : [e] "r"(enc) : "r11", "cc", "memory");
	return outcome(fl);
}
/* VMWRITE, register source. */
static inline int vmwrite_r(u64 enc, u64 val)
{
	u64 fl;
	__asm__ volatile(GUARD_PRE "vmwrite %[v], %[e]" GUARD_POST
			 : [fl] "=r"(fl) : [e] "r"(enc), [v] "r"(val) : "r11", "cc", "memory");
	return outcome(fl);
}
/* VMWRITE, memory source. */
static inline int vmwrite_m(u64 enc, const u64 *mem)
{
	u64 fl;
	__asm__ volatile(GUARD_PRE "vmwrite %[m], %[e]" GUARD_POST
			 : [fl] "=r"(fl) : [e] "r"(enc), [m] "m"(*mem) : "r11", "cc", "memory");
	return outcome(fl);
}
static inline int vmcall_(void)
{
	u64 fl;
	__asm__ volatile(GUARD_PRE "vmcall" GUARD_POST : [fl] "=r"(fl) : : "r11", "cc", "memory");
	return outcome(fl);
}
static inline int invept(u64 type, const u64 *desc)
{
	u64 fl;
	__asm__ volatile(GUARD_PRE "invept %[d], %[t]" GUARD_POST
			 : [fl] "=r"(fl) : [t] "r"(type), [d] "m"(*(const u64(*)[2])desc) : "r11", "cc", "memory");
	return outcome(fl);
}
static inline int invvpid(u64 type, const u64 *desc)
{
	u64 fl;
	__asm__ volatile(GUARD_PRE "invvpid %[d], %[t]" GUARD_POST
			 : [fl] "=r"(fl) : [t] "r"(type), [d] "m"(*(const u64(*)[2])desc) : "r11", "cc", "memory");
	return outcome(fl);
}
/* VMLAUNCH (resume 0) / VMRESUME (1): 0 after a VM exit or VM-entry failure, else VMX_FAIL_*. */
int vm_run(int resume);
/* Run fn at CPL 0 (mode 0), CPL 3 (1), compatibility mode (2); the first exception's vector or -1. */
long call_guarded(void (*fn)(void), int mode);
extern volatile u64 guard_rip;
extern volatile u64 guard_error;

/* VMREAD that must succeed (a failure is reported and counted once, then 0 is returned). */
u64 vmr(u64 enc);
/* VMWRITE that must succeed. */
void vmw(u64 enc, u64 val);
/* The VM-instruction error field. */
static inline u64 vmerr(void) { return vmr(0x4400); }
/* Check that r is VMfailValid with error n (name, expected from table 31-1). */
int check_fail_valid(const char *name, int r, u64 n);
int check_outcome(const char *name, int r, int want);

/* ---- VMCS field encodings (appendix B) ---- */
#define F_VPID 0x0000
#define F_GUEST_ES_SEL 0x0800
#define F_GUEST_CS_SEL 0x0802
#define F_GUEST_SS_SEL 0x0804
#define F_GUEST_DS_SEL 0x0806
#define F_GUEST_FS_SEL 0x0808
#define F_GUEST_GS_SEL 0x080a
#define F_GUEST_LDTR_SEL 0x080c
#define F_GUEST_TR_SEL 0x080e
#define F_HOST_ES_SEL 0x0c00
#define F_HOST_CS_SEL 0x0c02
#define F_HOST_SS_SEL 0x0c04
#define F_HOST_DS_SEL 0x0c06
#define F_HOST_FS_SEL 0x0c08
#define F_HOST_GS_SEL 0x0c0a
#define F_HOST_TR_SEL 0x0c0c
#define F_IO_BITMAP_A 0x2000
#define F_IO_BITMAP_B 0x2002
#define F_MSR_BITMAP 0x2004
#define F_TSC_OFFSET 0x2010
#define F_EPTP 0x201a
#define F_VMREAD_BITMAP 0x2026
#define F_VMWRITE_BITMAP 0x2028
#define F_GUEST_PHYS_ADDR 0x2400
#define F_LINK_PTR 0x2800
#define F_GUEST_EFER 0x2806
#define F_HOST_EFER 0x2c02
#define F_PIN 0x4000
#define F_PROC 0x4002
#define F_EXC_BITMAP 0x4004
#define F_PFEC_MASK 0x4006
#define F_PFEC_MATCH 0x4008
#define F_CR3_TARGET_COUNT 0x400a
#define F_EXIT_CTLS 0x400c
#define F_EXIT_MSR_STORE_COUNT 0x400e
#define F_ENTRY_CTLS 0x4012
#define F_ENTRY_INTR_INFO 0x4016
#define F_ENTRY_EXC_ERROR 0x4018
#define F_ENTRY_INSN_LEN 0x401a
#define F_PROC2 0x401e
#define F_VM_INSN_ERROR 0x4400
#define F_EXIT_REASON 0x4402
#define F_EXIT_INTR_INFO 0x4404
#define F_EXIT_INTR_ERROR 0x4406
#define F_IDT_VECTORING_INFO 0x4408
#define F_EXIT_INSN_LEN 0x440c
#define F_EXIT_INSN_INFO 0x440e
#define F_GUEST_ES_LIMIT 0x4800
#define F_GUEST_CS_LIMIT 0x4802
#define F_GUEST_SS_LIMIT 0x4804
#define F_GUEST_DS_LIMIT 0x4806
#define F_GUEST_FS_LIMIT 0x4808
#define F_GUEST_GS_LIMIT 0x480a
#define F_GUEST_LDTR_LIMIT 0x480c
#define F_GUEST_TR_LIMIT 0x480e
#define F_GUEST_GDTR_LIMIT 0x4810
#define F_GUEST_IDTR_LIMIT 0x4812
#define F_GUEST_ES_AR 0x4814
#define F_GUEST_CS_AR 0x4816
#define F_GUEST_SS_AR 0x4818
#define F_GUEST_DS_AR 0x481a
#define F_GUEST_FS_AR 0x481c
#define F_GUEST_GS_AR 0x481e
#define F_GUEST_LDTR_AR 0x4820
#define F_GUEST_TR_AR 0x4822
#define F_GUEST_INTERRUPTIBILITY 0x4824
#define F_GUEST_ACTIVITY 0x4826
#define F_PREEMPT_TIMER 0x482e
#define F_CR0_MASK 0x6000
#define F_CR4_MASK 0x6002
#define F_CR0_SHADOW 0x6004
#define F_CR4_SHADOW 0x6006
#define F_EXIT_QUAL 0x6400
#define F_GUEST_LINEAR_ADDR 0x640a
#define F_GUEST_CR0 0x6800
#define F_GUEST_CR3 0x6802
#define F_GUEST_CR4 0x6804
#define F_GUEST_ES_BASE 0x6806
#define F_GUEST_CS_BASE 0x6808
#define F_GUEST_SS_BASE 0x680a
#define F_GUEST_DS_BASE 0x680c
#define F_GUEST_FS_BASE 0x680e
#define F_GUEST_GS_BASE 0x6810
#define F_GUEST_LDTR_BASE 0x6812
#define F_GUEST_TR_BASE 0x6814
#define F_GUEST_GDTR_BASE 0x6816
#define F_GUEST_IDTR_BASE 0x6818
#define F_GUEST_DR7 0x681a
#define F_GUEST_RSP 0x681c
#define F_GUEST_RIP 0x681e
#define F_GUEST_RFLAGS 0x6820
#define F_HOST_CR0 0x6c00
#define F_HOST_CR3 0x6c02
#define F_HOST_CR4 0x6c04
#define F_HOST_FS_BASE 0x6c06
#define F_HOST_GS_BASE 0x6c08
#define F_HOST_TR_BASE 0x6c0a
#define F_HOST_GDTR_BASE 0x6c0c
#define F_HOST_IDTR_BASE 0x6c0e
#define F_HOST_RSP 0x6c14
#define F_HOST_RIP 0x6c16

/* ---- exit reasons (appendix C) ---- */
#define EXIT_EXCEPTION 0
#define EXIT_TRIPLE_FAULT 2
#define EXIT_INTR_WINDOW 7
#define EXIT_NMI_WINDOW 8
#define EXIT_CPUID 10
#define EXIT_HLT 12
#define EXIT_INVLPG 14
#define EXIT_RDTSC 16
#define EXIT_VMCALL 18
#define EXIT_VMPTRLD 21
#define EXIT_VMREAD 23
#define EXIT_VMWRITE 25
#define EXIT_CR 28
#define EXIT_IO 30
#define EXIT_RDMSR 31
#define EXIT_WRMSR 32
#define EXIT_INVALID_GUEST 33
#define EXIT_EPT_VIOLATION 48
#define EXIT_PREEMPT_TIMER 52
#define EXIT_WBINVD 54
#define ENTRY_FAILURE (1u << 31)

/* ---- capability MSRs (appendix A) ---- */
#define MSR_FEATURE_CONTROL 0x3a
#define MSR_VMX_BASIC 0x480
#define MSR_VMX_MISC 0x485
#define MSR_VMX_CR0_FIXED0 0x486
#define MSR_VMX_CR0_FIXED1 0x487
#define MSR_VMX_CR4_FIXED0 0x488
#define MSR_VMX_CR4_FIXED1 0x489
#define MSR_VMX_VMCS_ENUM 0x48a
#define MSR_VMX_PROCBASED_CTLS2 0x48b
#define MSR_VMX_EPT_VPID_CAP 0x48c
#define MSR_VMX_TRUE_PIN 0x48d
#define MSR_VMX_TRUE_PROC 0x48e
#define MSR_VMX_TRUE_EXIT 0x48f
#define MSR_VMX_TRUE_ENTRY 0x490

/* The capabilities as read at start (main.c). */
struct caps {
	u64 basic, misc, cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1, vmcs_enum, ept_vpid;
	u64 pin, proc, proc2, exit, entry; /* TRUE_ MSRs when BASIC[55], else the plain ones */
	u32 revision;
	int maxphyaddr;
};
extern struct caps caps;
/* Whether a control may be 1 (allowed-1, bits 63:32 of its capability MSR). */
static inline int may1(u64 capmsr, u32 bit) { return ((capmsr >> 32) & bit) == bit; }
/* must-be-1 bits (allowed-0 settings, bits 31:0). */
static inline u32 must1(u64 capmsr) { return (u32)capmsr; }

/* Control bits used (vol. 3C 24.6, 24.7, 24.8). */
#define PIN_NMI_EXITING (1u << 3)
#define PIN_VIRTUAL_NMIS (1u << 5)
#define PIN_PREEMPT_TIMER (1u << 6)
#define PROC_INTR_WINDOW (1u << 2)
#define PROC_HLT (1u << 7)
#define PROC_INVLPG (1u << 9)
#define PROC_RDTSC (1u << 12)
#define PROC_CR3_LOAD (1u << 15)
#define PROC_CR3_STORE (1u << 16)
#define PROC_CR8_LOAD (1u << 19)
#define PROC_CR8_STORE (1u << 20)
#define PROC_NMI_WINDOW (1u << 22)
#define PROC_UNCOND_IO (1u << 24)
#define PROC_IO_BITMAPS (1u << 25)
#define PROC_MSR_BITMAPS (1u << 28)
#define PROC_SECONDARY (1u << 31)
#define PROC2_EPT (1u << 1)
#define PROC2_VPID (1u << 5)
#define PROC2_WBINVD (1u << 6)
#define PROC2_SHADOW_VMCS (1u << 14)
#define EXIT_HOST_64 (1u << 9)
#define ENTRY_IA32E (1u << 9)

/* ---- the test machine's memory (main.c, vmcs.c) ---- */
#define PAGE __attribute__((aligned(4096)))
extern u8 vmxon_region[4096], vmcs_a[4096], vmcs_b[4096], vmcs_shadow[4096];
extern volatile u64 vmxon_ptr, vmcs_ptr;
extern volatile u64 l2_out[8], l2_arg[2];
extern u8 tss[104];
extern u64 gdt[];
extern u8 user_stack_top[], l2_stack_top[];
extern u64 pml4[];
#define PA(x) ((u64)(x)) /* identity-mapped */

/* ---- guest set-up and running (vmcs.c) ---- */
/* A VMCS for a 64-bit L2 at rip, EPT (identity, plus the test page) and VPID when offered. */
void vmcs_setup(u8 *region, void (*rip)(void));
/* Enter at rip (VMLAUNCH the first time after vmcs_setup, VMRESUME after): the exit reason, or
 * 0xffff0000 | VMX_FAIL_* when the instruction failed. */
u32 run_l2(void (*rip)(void));
/* RFLAGS for the next run_l2 only (then 2 again). */
extern u64 next_rflags;
/* RSP for the next run_l2 only (0: L2's own stack). */
extern u64 next_rsp;
void set_proc(u32 bits, int on);
void set_proc2(u32 bits, int on);
void set_pin(u32 bits, int on);
extern int have_ept, have_vpid;
extern u64 ept_pt[512];
extern u8 ept_target[4096];
void ept_set_test_page(u64 perms);
extern u64 l2_idt[64];

/* ---- the check groups ---- */
void t_caps(void);
void t_vmxon(void);
void t_fields(void);
void t_vmcs(void);
void t_entry(void);
void t_exits(void);
void t_ept(void);
void t_shadow(void);
void t_hyperv(void);
void t_after(void);

/* L2 and mode snippets (l2.S) */
#define SNIP(x) extern char x[]
SNIP(u_vmxon); SNIP(u_vmread); SNIP(u_vmread_at); SNIP(c_vmread); SNIP(c_vmxoff);
SNIP(l2_hlt); SNIP(l2_trap); SNIP(l2_cpuid); SNIP(l2_cpuid_at); SNIP(l2_out80); SNIP(l2_out80_at);
SNIP(l2_inw); SNIP(l2_inw_at); SNIP(l2_repouts); SNIP(l2_repouts_at); SNIP(l2_out81); SNIP(l2_out81_at);
SNIP(l2_outw7f); SNIP(l2_outw7f_at); SNIP(l2_rdmsr); SNIP(l2_rdmsr_at); SNIP(l2_wrmsr); SNIP(l2_wrmsr_at);
SNIP(l2_rdmsr_hi); SNIP(l2_rdmsr_hi_at); SNIP(l2_cr0_read); SNIP(l2_cr0_read_at); SNIP(l2_cr0_ts); SNIP(l2_cr0_ts_at);
SNIP(l2_cr4_rw); SNIP(l2_cr4_rw_at); SNIP(l2_cr4_set); SNIP(l2_cr4_set_at); SNIP(l2_cr3_store);
SNIP(l2_cr3_store_at); SNIP(l2_cr3_load); SNIP(l2_cr3_load_at); SNIP(l2_cr8_store); SNIP(l2_cr8_store_at);
SNIP(l2_cr8_load); SNIP(l2_cr8_load_at); SNIP(l2_clts); SNIP(l2_clts_at); SNIP(l2_lmsw); SNIP(l2_lmsw_at); SNIP(l2_smsw); SNIP(l2_smsw_at); SNIP(l2_invlpg); SNIP(l2_invlpg_at);
SNIP(l2_rdtsc); SNIP(l2_rdtsc_at); SNIP(l2_ud); SNIP(l2_ud_at); SNIP(l2_int3); SNIP(l2_int3_at);
SNIP(l2_gp); SNIP(l2_gp_at); SNIP(l2_pf_read); SNIP(l2_pf_read_at); SNIP(l2_pf_write); SNIP(l2_pf_write_at);
SNIP(l2_vmcall); SNIP(l2_vmcall_at); SNIP(l2_invd); SNIP(l2_invd_at); SNIP(l2_wbinvd); SNIP(l2_wbinvd_at); SNIP(l2_ept_read);
SNIP(l2_ept_read_at); SNIP(l2_ept_write); SNIP(l2_ept_write_at); SNIP(l2_ept_fetch); SNIP(l2_ept_fetch_at);
SNIP(l2_ept_walk); SNIP(l2_ept_walk_at); SNIP(l2_vmread); SNIP(l2_vmread_at); SNIP(l2_vmread_mem);
SNIP(l2_vmread_mem_at); SNIP(l2_vmwrite); SNIP(l2_vmwrite_at); SNIP(l2_vmptrld); SNIP(l2_vmptrld_at);
SNIP(l2_vmclear); SNIP(l2_vmclear_at); SNIP(l2_vmxon); SNIP(l2_vmxon_at); SNIP(l2_vmptrst); SNIP(l2_vmptrst_at);
SNIP(l2_invept); SNIP(l2_invept_at); SNIP(l2_invvpid); SNIP(l2_invvpid_at); SNIP(l2_vmlaunch); SNIP(l2_vmlaunch_at);
SNIP(l2_vmresume); SNIP(l2_vmresume_at); SNIP(l2_vmxoff); SNIP(l2_vmxoff_at);
SNIP(u_hvcall); SNIP(u_hvcall_at); SNIP(l2_hvcall); SNIP(l2_hvcall_at); SNIP(l2_hvloop);
/* The guest's RAX at its last VM exit (entry.S). */
extern volatile u64 exit_rax;
#define FN(x) ((void (*)(void))(x))

#endif
