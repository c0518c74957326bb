/*
 * The back-end interface inside L1: how L1's VM core (loader, device models, run loop: core.c)
 * drives a virtualization back end. Two implementations:
 *   vmx.c  -- a minimal KVM on VMX (VMXON, VMCS, EPT12, VPID, exit handlers);
 *   npv.c  -- the npv hypercall ABI (docs/npv-abi.md); built when guests/l1hv/npv*.c exist.
 * The shape follows KVM's ioctl API: create VM, set a memory slot, create vCPU, set CPUID and
 * MSR policy, set registers, run until an exit userspace must handle, inject an interrupt.
 *
 * STABLE since the skeleton commit: the npv back end implements exactly these signatures.
 * Any change is announced in guests/l1hv/README.md and in the commit message.
 */
#ifndef L1_BACKEND_H
#define L1_BACKEND_H
#include "types.h"

/* ---- what the core hands a back end ---- */

/* One guest-physical range of L2 backed by L1-physical memory (KVM_SET_USER_MEMORY_REGION). */
struct l2_memslot {
	u64 gpa;          /* L2-physical base, 4 KiB aligned */
	u64 size;         /* bytes, 4 KiB multiple */
	u64 hpa;          /* L1-physical base of the (contiguous) backing */
};

/* A CPUID result L2 gets for (leaf, subleaf) (KVM_SET_CPUID2). Leaves not listed read as 0. */
struct l2_cpuid_entry {
	u32 leaf, subleaf;
	u32 eax, ebx, ecx, edx;
};

/* MSR policy: what an L2 RDMSR/WRMSR of `index` does. Unlisted MSRs: #GP into L2. */
#define L2_MSR_PASS   0   /* L2 accesses the hardware MSR directly (not intercepted) */
#define L2_MSR_VALUE  1   /* reads return `value`; writes of the same value are ignored, others #GP */
struct l2_msr_policy {
	u32 index;
	u32 action;       /* L2_MSR_* */
	u64 value;
};

/* L2's registers (KVM_GET/SET_REGS). */
struct l2_regs {
	u64 rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	u64 r8, r9, r10, r11, r12, r13, r14, r15;
	u64 rip, rflags;
};

/* A segment as VMX describes it (selector, base, limit, access rights in VMCS AR format). */
struct l2_segment {
	u16 selector;
	u32 limit;
	u32 ar;           /* VMCS access-rights format: type, S, DPL, P, AVL, L, D/B, G; bit 16 unusable */
	u64 base;
};

/* L2's system state (KVM_GET/SET_SREGS), for the initial (long-mode) entry state. */
struct l2_sregs {
	struct l2_segment cs, ds, es, fs, gs, ss, tr, ldt;
	u64 gdt_base, idt_base;
	u16 gdt_limit, idt_limit;
	u64 cr0, cr3, cr4, efer;
};

/* ---- what a back end hands back: one exit L1's core must handle ---- */

enum l2_exit_kind {
	L2_EXIT_NONE = 0,
	L2_EXIT_PIO,      /* IN/OUT: core emulates; for IN it fills pio.value before the next run */
	L2_EXIT_MMIO,     /* a load/store to unbacked guest-physical memory, decoded */
	L2_EXIT_HLT,      /* L2 halted with interrupts enabled: core waits for an event */
	L2_EXIT_TIMER,    /* the deadline the core set (vcpu->deadline) passed */
	L2_EXIT_SHUTDOWN, /* triple fault (or a state the back end cannot continue from) */
	L2_EXIT_FAIL,     /* back-end error: `fail.reason`, `fail.code` say what */
};

struct l2_exit {
	u32 kind;                     /* enum l2_exit_kind */
	u32 hw_reason;                /* the back end's own reason (VMX basic exit reason, npv code) */
	union {
		struct {
			u16 port;
			u8 size;              /* 1, 2, 4 */
			u8 in;                /* 1: IN (core writes `value`), 0: OUT */
			u32 value;
		} pio;
		struct {
			u64 gpa;
			u8 size;              /* 1, 2, 4, 8 */
			u8 write;             /* 1: store of `value`; 0: load (core writes `value`) */
			u64 value;
		} mmio;
		struct {
			const char *reason;
			u64 code;
		} fail;
	};
};

/* ---- the objects ---- */

#define L2_MAX_SLOTS 4

struct l2_vm {
	const struct l1_backend *be;
	struct l2_memslot slots[L2_MAX_SLOTS];
	u32 nslots;
	int eager;                    /* map all memory at slot creation instead of on first touch */
	void *priv;                   /* back-end state */
};

struct l2_vcpu {
	struct l2_vm *vm;
	u64 deadline;                 /* TSC value at which run() returns L2_EXIT_TIMER; 0 = none */
	u32 pending_irq;              /* vector + 0x100 when the core asked for an interrupt; 0 none */
	u64 exits;                    /* exits taken (all reasons, including ones the back end handled) */
	void *priv;                   /* back-end state */
};

/* ---- the interface ---- */

struct l1_backend {
	const char *name;
	/* Once, before anything else: enable the hardware/ABI (VMXON, npv handshake). 0 = ok. */
	int (*init)(void);
	int (*vm_create)(struct l2_vm *vm);
	/* Add a memory slot; with vm->eager the back end maps it all now. */
	int (*set_memslot)(struct l2_vm *vm, const struct l2_memslot *slot);
	int (*vcpu_create)(struct l2_vm *vm, struct l2_vcpu *vcpu);
	int (*set_cpuid)(struct l2_vcpu *vcpu, const struct l2_cpuid_entry *e, u32 n);
	int (*set_msrs)(struct l2_vcpu *vcpu, const struct l2_msr_policy *p, u32 n);
	int (*get_regs)(struct l2_vcpu *vcpu, struct l2_regs *r);
	int (*set_regs)(struct l2_vcpu *vcpu, const struct l2_regs *r);
	int (*set_sregs)(struct l2_vcpu *vcpu, const struct l2_sregs *s);
	/* Run L2 until an exit the core must handle. A PIO IN or MMIO load of the previous exit is
	 * completed (value into L2's register, RIP advanced) by the next call. */
	int (*run)(struct l2_vcpu *vcpu, struct l2_exit *exit);
	/* Queue external interrupt `vector` for L2: delivered when L2 can take it (interrupt window). */
	int (*inject_irq)(struct l2_vcpu *vcpu, u8 vector);
};

/* The back ends linked into this image (NULL when not built: see the Makefile). */
extern const struct l1_backend vmx_backend;
extern const struct l1_backend npv_backend __attribute__((weak));

#endif
