/*
 * The two builds of the vmx back end (vmx.c, vmx_run.S). Plain: VMREAD/VMWRITE/VMPTRLD and the
 * VMX-preemption timer; every hook below expands to what the code did before, so the plain build
 * is the same machine code. With -DVMX_EVMCS (Makefile: the `vmx-evmcs` objects) the same source
 * becomes the back end `vmx-evmcs`, which uses Hyper-V's enlightened VMCS when L0 advertises it
 * (vmx_evmcs.c) and behaves as `vmx` otherwise.
 */
#ifndef L1_VMX_VARIANT_H
#define L1_VMX_VARIANT_H
#ifdef VMX_EVMCS
/* for vmx_run.S: where HOST_RSP and the clean fields are in the eVMCS (evmcs.h, checked in vmx_evmcs.c) */
#define EVMCS_HOST_RSP 616
#define EVMCS_CLEAN_FIELDS 824
#define EVMCS_CLEAN_HOST_POINTER (1 << 13)
#ifndef __ASSEMBLER__
#include "types.h"
struct l2_vcpu;
extern int evmcs_active;                 /* L0 advertised the eVMCS and L1 enabled it */
int evmcs_setup(int rc);                 /* after VMXON: detect Hyper-V's leaves, VP assist page */
int evmcs_load(u64 pa);                  /* KVM's evmcs_load: current_nested_vmcs, no VMPTRLD */
void evmcs_touch_msr_bitmap(void);       /* L1 changed its MSR bitmap: clear its clean bit */
int evmcs_arm_timer(struct l2_vcpu *v);  /* L2's deadline on L1's LAPIC timer; 1 = done */
#endif
#define vmx_backend vmx_evmcs_backend
#define vmx_enter vmx_evmcs_enter
#define vmx_exit_host vmx_evmcs_exit_host
#define VMX_BACKEND_NAME "vmx-evmcs"
#define VMX_AFTER_VMXON(rc) evmcs_setup(rc)
#define VMX_LOAD_VMCS(pa) (evmcs_active ? evmcs_load(pa) : vmptrld(pa))
#define VMX_PIN_TIMER (evmcs_active ? 0 : PIN_PREEMPTION_TIMER)  /* eVMCS v1 has no timer value */
#define VMX_MSR_BITMAP_CHANGED() evmcs_touch_msr_bitmap()
#define VMX_ARM_TIMER(v) (evmcs_active && evmcs_arm_timer(v))
#else
#define VMX_BACKEND_NAME "vmx"
#define VMX_AFTER_VMXON(rc) (rc)
#define VMX_LOAD_VMCS(pa) vmptrld(pa)
#define VMX_PIN_TIMER PIN_PREEMPTION_TIMER
#define VMX_MSR_BITMAP_CHANGED() do { } while (0)
#define VMX_ARM_TIMER(v) 0
#endif
#endif
