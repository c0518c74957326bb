/* The vmx back end's private state (vmx.c, vmx_exits.c, ept.c). */
#ifndef L1_VMX_H
#define L1_VMX_H
#include "backend.h"
#include "vmcs.h"

/* EPT12 (ept.c): 4-level tables in L1 memory, 4 KiB leaves. */
#define EPT_R 1ul
#define EPT_W 2ul
#define EPT_X 4ul
#define EPT_MT_WB (6ul << 3)
#define EPT_ADDR 0x000FFFFFFFFFF000ul
u64 ept_new_root(void);
u64 *ept_entry(u64 root, u64 gpa, int create);     /* the 4 KiB leaf's slot, NULL if absent */

struct vmx_vm {
	u64 ept_root;                  /* physical address of the EPT PML4 */
	u64 eptp;
	u16 vpid;
	u64 ept_faults;                /* RAM pages mapped on EPT violations */
	u64 mmio_sptes;                /* MMIO pages turned into misconfigured entries */
};

#define VMX_MAX_CPUID 48
#define VMX_MAX_MSRS 16

struct vmx_vcpu {
	u64 gprs[16];                  /* guest GPRs by register number (slot 4, RSP, is in the VMCS) */
	u64 vmcs_pa;
	int launched;
	/* register cache in the manner of KVM's regs_avail/regs_dirty: RIP read once per exit */
	u64 rip;
	int rip_avail, rip_dirty;
	/* an exit the core is completing: IN / MMIO load into a register, then skip */
	int complete;                  /* 0 none, 1 PIO IN, 2 MMIO load, 3 INS element into memory */
	u8 complete_reg, complete_size, complete_zext;
	u8 complete_len;
	u8 complete_last;              /* INS: the last element (RIP advances) */
	u8 *complete_ptr;              /* INS: where the element goes (L1's view of L2 RAM) */
	u32 proc;                      /* CPU_BASED_VM_EXEC_CONTROL as last written */
	u32 pin;
	u64 msr_bitmap_pa;
	struct l2_cpuid_entry cpuid[VMX_MAX_CPUID];
	u32 ncpuid;
	struct l2_msr_policy msrs[VMX_MAX_MSRS];
	u32 nmsrs;
	u64 exits_by_reason[EXIT_REASONS];
};

/* An exit handler: 1 = handled (resume L2), 0 = `e` filled for the core. */
typedef int (*vmx_exit_handler)(struct l2_vcpu *v, struct l2_exit *e);
extern const vmx_exit_handler vmx_exit_handlers[EXIT_REASONS];

/* helpers shared by the handlers (vmx.c) */
u64 vmx_rip(struct vmx_vcpu *x);
void vmx_skip_instruction(struct vmx_vcpu *x);
void vmx_queue_exception(u8 vector, int has_error, u32 error);
int vmx_map_gpa(struct l2_vcpu *v, u64 gpa);       /* 0 mapped RAM; 1 not RAM */
/* What the EPT-violation handler maps RAM with: vmx_map_gpa (4 KiB leaves), or with ept=2m
 * ept_2m.c's 2 MiB one; an indirect call, so that the plain path runs the same instructions. */
extern int (*vmx_map_ram)(struct l2_vcpu *v, u64 gpa);
extern const struct l1_backend vmx_evmcs_backend;
/* ept_2m.c: `vmx,ept=2m` / `vmx-evmcs,ept=2m`, the vmx back ends with 2 MiB EPT12 leaves; any
 * other value stops L1 with `unknown` (a format taking the value) */
const struct l1_backend *vmx_ept2m_backend(const char *backend_value, const char *unknown);
extern u64 ept_large_leaves;
int vmx_emulate_mmio(struct l2_vcpu *v, u64 gpa, struct l2_exit *e);
/* vmx-evmcs (vmx_evmcs.c): an external-interrupt exit that is L1's timer for L2; 1 = L2's timer is due */
int vmx_l1_timer_interrupt(struct l2_vcpu *v, u32 intr_info);
#endif
