/*
 * The nested paravirtual L0<->L1 ABI, version 1, as L1 sees it (docs/npv-abi.md; the same
 * numbers as src/hypervisors/npv-abi.ts): discovery leaves, hypercall numbers, status codes, the
 * layouts of the state page, the run page and the argument tables, and the exit reasons.
 */
#ifndef L1HV_NPV_H
#define L1HV_NPV_H
#include "types.h"

/* ---- discovery (ABI section 2) ---- */
#define NPV_CPUID_SIGNATURE 0x40000100u
#define NPV_CPUID_FEATURES  0x40000101u
#define NPV_ABI_VERSION     1u
#define NPV_FEAT_BATCH_MAP      (1u << 0)
#define NPV_FEAT_CPUID_POLICY   (1u << 1)
#define NPV_FEAT_MSR_POLICY     (1u << 2)
#define NPV_FEAT_LAPIC_OFFLOAD  (1u << 3)
#define NPV_FEAT_MEDIATED_BLK   (1u << 4)
#define NPV_FEAT_EAGER_MAP      (1u << 5)

/* BLK_SETUP descriptor, irq_type (0x2C): how L0 delivers the completion vector to L2 */
#define NPV_BLK_IRQ_FIXED       0   /* through L2's LAPIC (L2 EOIs it there) */
#define NPV_BLK_IRQ_EXTINT      1   /* as an 8259's interrupt: injected directly, L2 EOIs its PIC */

/* ---- hypercalls (section 4): VMCALL, number in RAX, arguments in RBX, RCX, RDX, RSI ---- */
#define NPV_HC_VM_CREATE    0x100
#define NPV_HC_VCPU_CREATE  0x102
#define NPV_HC_MAP          0x103
#define NPV_HC_MAP_BATCH    0x106
#define NPV_HC_SET_CPUID    0x107
#define NPV_HC_SET_MSRS     0x108
#define NPV_HC_RUN          0x109
#define NPV_HC_INJECT       0x10a
#define NPV_HC_BLK_SETUP    0x10b
#define NPV_HC_BLK_TEARDOWN 0x10c
#define NPV_HC_MMIO_REGION  0x10d

#define NPV_OK 0
#define NPV_PERM_RWX 7u
#define NPV_VM_EAGER 1u            /* VM_CREATE flag: EPT02 composed at MAP */

/* MAP_BATCH list entry (24 bytes); at most 170 in one page. */
struct npv_batch_entry {
	u64 l2_gpa;
	u64 l1_gpa;
	u32 npages;
	u32 op_perms;              /* op (0 = map) | perms << 8 */
};
#define NPV_MAX_BATCH 170

/* SET_CPUID entry (32 bytes), at most 127. */
struct npv_cpuid_entry {
	u32 leaf, subleaf, flags, reserved;
	u32 eax, ebx, ecx, edx;
};
#define NPV_MAX_CPUID 127

/* SET_MSRS entry (16 bytes), at most 255. */
struct npv_msr_entry {
	u32 index, mode;
	u64 value;
};
#define NPV_MSR_VALUE       0
#define NPV_MSR_PASSTHROUGH 1

/* VCPU_CREATE initial-state page (0xD0 bytes used). */
struct npv_state {
	u64 rip, rsp, rflags, cr0, cr3, cr4, efer, gdtr_base;
	u16 gdtr_limit, pad0[3];
	u64 gprs[16];              /* ModRM order: rax rcx rdx rbx rsp rbp rsi rdi r8..r15 */
	u16 cs, ss, ds;
};

/* The run page. */
struct npv_run {
	u32 reason;
	u32 flags;                 /* bit 0: L1 changed GPRs/RIP */
	u64 rip, rflags;
	u64 gprs[16];
	u64 cr0, cr3, cr4, efer;
	u32 insn_len, pad0;
	union {
		u8 raw[64];
		struct { u16 port; u8 size; u8 in; u32 value; } io;
		struct { u64 gpa; u8 size; u8 write; u8 pad[6]; u64 value; } mmio;
		struct { u64 gpa; u32 access; } fault;
		struct { u64 window; } blk;
	} data;
};
#define NPV_RUN_REGS_DIRTY 1u

#define NPV_EXIT_IO           1
#define NPV_EXIT_MMIO         2
#define NPV_EXIT_MEMORY_FAULT 3
#define NPV_EXIT_MSR          4
#define NPV_EXIT_HYPERCALL    5
#define NPV_EXIT_HALT         6
#define NPV_EXIT_SHUTDOWN     7
#define NPV_EXIT_MODE         8
#define NPV_EXIT_BLK_ERROR    9
#define NPV_EXIT_TIMESLICE    10
#define NPV_EXIT_REASONS      11

/* BLK_SETUP descriptor (56 bytes). */
struct npv_blk_desc {
	u64 window;                /* L2 GPA of the virtio-mmio window */
	u32 queue_size;
	u32 backend;
	u64 desc, avail, used;     /* L2 GPAs of the split virtqueue's areas */
	u32 vector, irq_type;       /* completion vector (0 none) and its delivery (NPV_BLK_IRQ_*) */
	u64 features;
};

/* What the npv back end counts (the stack reads the totals from L0's side). */
extern u64 npv_exits_by_reason[NPV_EXIT_REASONS];
extern u64 npv_pages_mapped;
#endif
