/*
 * The enlightened-VMCS part of the vmx back end's `vmx-evmcs` build (vmx_variant.h), after KVM
 * running on Hyper-V (arch/x86/kvm/vmx/vmx_onhyperv.h, hyperv_evmcs.c, vmx.c's evmcs paths; own
 * code) and the Hyper-V TLFS v6.0b ("Enlightened VMCS", "Virtual Processor Assist Page",
 * "Nested Virtualization"):
 *
 * - after VMXON, the Hyper-V CPUID leaves are checked ("Microsoft Hv", interface "Hv#1", the VP
 *   assist page privilege, EnlightenedVmcsRecommended, eVMCS version 1 in 0x4000000A); without
 *   them the back end stays plain VMX;
 * - with them: the guest OS ID and the VP assist page MSRs are set; the VMCS page becomes an
 *   eVMCS (revision = eVMCS version), VMCLEARed but never VMPTRLDed: the VP assist page's
 *   current_nested_vmcs names it and enlighten_vmentry is set (KVM's evmcs_load);
 * - vmcs_read/vmcs_write become loads and stores at the eVMCS offsets, and every store clears its
 *   field's clean-field group in hv_clean_fields (KVM's evmcs_write*); L0 sets them again after
 *   each entry. The enlightened MSR bitmap is turned on when L0 offers it;
 * - eVMCS v1 has no VMX-preemption timer value, so L2's LAPIC timer runs on L1's own LAPIC
 *   (TSC-deadline mode) and arrives as an external-interrupt exit, as KVM on Hyper-V falls back
 *   to its host timer.
 */
#define VMX_EVMCS 1
#include "apic.h"
#include "evmcs.h"
#include "l1hv.h"
#include "layout.h"
#include "lib.h"
#include "mm.h"
#include "vmx.h"
#include "vmx_variant.h"
#include "x86.h"

_Static_assert(__builtin_offsetof(struct hv_enlightened_vmcs, host_rsp) == EVMCS_HOST_RSP, "vmx_run.S offset");
_Static_assert(__builtin_offsetof(struct hv_enlightened_vmcs, hv_clean_fields) == EVMCS_CLEAN_FIELDS, "vmx_run.S offset");
_Static_assert(EVMCS_CLEAN_HOST_POINTER == EV_CLEAN_HOST_POINTER, "vmx_run.S clean bit");
_Static_assert(__builtin_offsetof(struct hv_enlightened_vmcs, partition_assist_page) == 856, "TLFS layout");

#define EVMCS_VERSION 1
#define HV_GUEST_OS_ID_OPEN_SOURCE (1ul << 63)
#define HV_GUEST_OS_ID_LINUX_TYPE (0x100ul << 48)  /* OS type as Linux sends it (HV_LINUX_VENDOR_ID) */

int evmcs_active;
struct hv_enlightened_vmcs *evmcs_va;  /* also used by vmx_run.S (HOST_RSP) */
static struct hv_vp_assist_page *vp_assist;
static u32 nested_features;
static u64 timer_armed;                 /* TSC deadline programmed on L1's LAPIC, 0 none */

/* ---- the field table: encoding → offset and clean-field group (KVM's vmcs_field_to_evmcs_1) ---- */

/* A dense index for the encodings l1hv uses: width, type and index (bits 14:13, 11:10, 5:1). */
#define EV_KEY(f) (((((f) >> 13) & 3u) << 7) | ((((f) >> 10) & 3u) << 5) | (((f) >> 1) & 31u))
struct ev_field {
	u16 offset;  /* 0: not in the eVMCS (offset 0 is revision_id, never a VMCS field) */
	u16 clean;
};
#define EVF(f, member, group) [EV_KEY(f)] = { __builtin_offsetof(struct hv_enlightened_vmcs, member), group }
static const struct ev_field ev_fields[512] = {
	EVF(VPID, virtual_processor_id, EV_CLEAN_CONTROL_XLAT),
	EVF(GUEST_ES_SELECTOR, guest_es_selector, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_CS_SELECTOR, guest_cs_selector, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_SS_SELECTOR, guest_ss_selector, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_DS_SELECTOR, guest_ds_selector, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_FS_SELECTOR, guest_fs_selector, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_GS_SELECTOR, guest_gs_selector, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_LDTR_SELECTOR, guest_ldtr_selector, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_TR_SELECTOR, guest_tr_selector, EV_CLEAN_GUEST_GRP2),
	EVF(HOST_ES_SELECTOR, host_es_selector, EV_CLEAN_HOST_GRP1),
	EVF(HOST_CS_SELECTOR, host_cs_selector, EV_CLEAN_HOST_GRP1),
	EVF(HOST_SS_SELECTOR, host_ss_selector, EV_CLEAN_HOST_GRP1),
	EVF(HOST_DS_SELECTOR, host_ds_selector, EV_CLEAN_HOST_GRP1),
	EVF(HOST_FS_SELECTOR, host_fs_selector, EV_CLEAN_HOST_GRP1),
	EVF(HOST_GS_SELECTOR, host_gs_selector, EV_CLEAN_HOST_GRP1),
	EVF(HOST_TR_SELECTOR, host_tr_selector, EV_CLEAN_HOST_GRP1),
	EVF(IO_BITMAP_A, io_bitmap_a, EV_CLEAN_IO_BITMAP),
	EVF(IO_BITMAP_B, io_bitmap_b, EV_CLEAN_IO_BITMAP),
	EVF(MSR_BITMAP, msr_bitmap, EV_CLEAN_MSR_BITMAP),
	EVF(TSC_OFFSET, tsc_offset, EV_CLEAN_CONTROL_GRP2),
	EVF(EPT_POINTER, ept_pointer, EV_CLEAN_CONTROL_XLAT),
	EVF(GUEST_PHYSICAL_ADDRESS, guest_physical_address, EV_CLEAN_NONE),
	EVF(VMCS_LINK_POINTER, vmcs_link_pointer, EV_CLEAN_GUEST_GRP1),
	EVF(GUEST_IA32_PAT, guest_ia32_pat, EV_CLEAN_GUEST_GRP1),
	EVF(GUEST_IA32_EFER, guest_ia32_efer, EV_CLEAN_GUEST_GRP1),
	EVF(HOST_IA32_PAT, host_ia32_pat, EV_CLEAN_HOST_GRP1),
	EVF(HOST_IA32_EFER, host_ia32_efer, EV_CLEAN_HOST_GRP1),
	EVF(PIN_BASED_VM_EXEC_CONTROL, pin_based_vm_exec_control, EV_CLEAN_CONTROL_GRP1),
	EVF(CPU_BASED_VM_EXEC_CONTROL, cpu_based_vm_exec_control, EV_CLEAN_CONTROL_PROC),
	EVF(EXCEPTION_BITMAP, exception_bitmap, EV_CLEAN_CONTROL_EXCPN),
	EVF(PAGE_FAULT_ERROR_CODE_MASK, page_fault_error_code_mask, EV_CLEAN_ALL),
	EVF(PAGE_FAULT_ERROR_CODE_MATCH, page_fault_error_code_match, EV_CLEAN_ALL),
	EVF(CR3_TARGET_COUNT, cr3_target_count, EV_CLEAN_ALL),
	EVF(VM_EXIT_CONTROLS, vm_exit_controls, EV_CLEAN_CONTROL_GRP1),
	EVF(VM_EXIT_MSR_STORE_COUNT, vm_exit_msr_store_count, EV_CLEAN_ALL),
	EVF(VM_EXIT_MSR_LOAD_COUNT, vm_exit_msr_load_count, EV_CLEAN_ALL),
	EVF(VM_ENTRY_CONTROLS, vm_entry_controls, EV_CLEAN_CONTROL_ENTRY),
	EVF(VM_ENTRY_MSR_LOAD_COUNT, vm_entry_msr_load_count, EV_CLEAN_ALL),
	EVF(VM_ENTRY_INTR_INFO_FIELD, vm_entry_intr_info_field, EV_CLEAN_CONTROL_EVENT),
	EVF(VM_ENTRY_EXCEPTION_ERROR_CODE, vm_entry_exception_error_code, EV_CLEAN_CONTROL_EVENT),
	EVF(VM_ENTRY_INSTRUCTION_LEN, vm_entry_instruction_len, EV_CLEAN_CONTROL_EVENT),
	EVF(SECONDARY_VM_EXEC_CONTROL, secondary_vm_exec_control, EV_CLEAN_CONTROL_GRP1),
	EVF(VM_INSTRUCTION_ERROR, vm_instruction_error, EV_CLEAN_NONE),
	EVF(VM_EXIT_REASON, vm_exit_reason, EV_CLEAN_NONE),
	EVF(VM_EXIT_INTR_INFO, vm_exit_intr_info, EV_CLEAN_NONE),
	EVF(VM_EXIT_INTR_ERROR_CODE, vm_exit_intr_error_code, EV_CLEAN_NONE),
	EVF(IDT_VECTORING_INFO_FIELD, idt_vectoring_info_field, EV_CLEAN_NONE),
	EVF(IDT_VECTORING_ERROR_CODE, idt_vectoring_error_code, EV_CLEAN_NONE),
	EVF(VM_EXIT_INSTRUCTION_LEN, vm_exit_instruction_len, EV_CLEAN_NONE),
	EVF(VMX_INSTRUCTION_INFO, vmx_instruction_info, EV_CLEAN_NONE),
	EVF(GUEST_ES_LIMIT, guest_es_limit, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_CS_LIMIT, guest_cs_limit, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_SS_LIMIT, guest_ss_limit, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_DS_LIMIT, guest_ds_limit, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_FS_LIMIT, guest_fs_limit, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_GS_LIMIT, guest_gs_limit, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_LDTR_LIMIT, guest_ldtr_limit, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_TR_LIMIT, guest_tr_limit, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_GDTR_LIMIT, guest_gdtr_limit, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_IDTR_LIMIT, guest_idtr_limit, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_ES_AR_BYTES, guest_es_ar_bytes, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_CS_AR_BYTES, guest_cs_ar_bytes, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_SS_AR_BYTES, guest_ss_ar_bytes, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_DS_AR_BYTES, guest_ds_ar_bytes, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_FS_AR_BYTES, guest_fs_ar_bytes, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_GS_AR_BYTES, guest_gs_ar_bytes, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_LDTR_AR_BYTES, guest_ldtr_ar_bytes, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_TR_AR_BYTES, guest_tr_ar_bytes, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_INTERRUPTIBILITY_INFO, guest_interruptibility_info, EV_CLEAN_GUEST_BASIC),
	EVF(GUEST_ACTIVITY_STATE, guest_activity_state, EV_CLEAN_GUEST_GRP1),
	EVF(CR0_GUEST_HOST_MASK, cr0_guest_host_mask, EV_CLEAN_CRDR),
	EVF(CR4_GUEST_HOST_MASK, cr4_guest_host_mask, EV_CLEAN_CRDR),
	EVF(CR0_READ_SHADOW, cr0_read_shadow, EV_CLEAN_CRDR),
	EVF(CR4_READ_SHADOW, cr4_read_shadow, EV_CLEAN_CRDR),
	EVF(EXIT_QUALIFICATION, exit_qualification, EV_CLEAN_NONE),
	EVF(GUEST_LINEAR_ADDRESS, guest_linear_address, EV_CLEAN_NONE),
	EVF(GUEST_CR0, guest_cr0, EV_CLEAN_CRDR),
	EVF(GUEST_CR3, guest_cr3, EV_CLEAN_CRDR),
	EVF(GUEST_CR4, guest_cr4, EV_CLEAN_CRDR),
	EVF(GUEST_ES_BASE, guest_es_base, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_CS_BASE, guest_cs_base, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_SS_BASE, guest_ss_base, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_DS_BASE, guest_ds_base, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_FS_BASE, guest_fs_base, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_GS_BASE, guest_gs_base, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_LDTR_BASE, guest_ldtr_base, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_TR_BASE, guest_tr_base, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_GDTR_BASE, guest_gdtr_base, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_IDTR_BASE, guest_idtr_base, EV_CLEAN_GUEST_GRP2),
	EVF(GUEST_DR7, guest_dr7, EV_CLEAN_CRDR),
	EVF(GUEST_RSP, guest_rsp, EV_CLEAN_GUEST_BASIC),
	EVF(GUEST_RIP, guest_rip, EV_CLEAN_NONE),
	EVF(GUEST_RFLAGS, guest_rflags, EV_CLEAN_GUEST_BASIC),
	EVF(HOST_CR0, host_cr0, EV_CLEAN_HOST_GRP1),
	EVF(HOST_CR3, host_cr3, EV_CLEAN_HOST_GRP1),
	EVF(HOST_CR4, host_cr4, EV_CLEAN_HOST_GRP1),
	EVF(HOST_FS_BASE, host_fs_base, EV_CLEAN_HOST_POINTER),
	EVF(HOST_GS_BASE, host_gs_base, EV_CLEAN_HOST_POINTER),
	EVF(HOST_TR_BASE, host_tr_base, EV_CLEAN_HOST_POINTER),
	EVF(HOST_GDTR_BASE, host_gdtr_base, EV_CLEAN_HOST_POINTER),
	EVF(HOST_IDTR_BASE, host_idtr_base, EV_CLEAN_HOST_POINTER),
	EVF(HOST_RSP, host_rsp, EV_CLEAN_HOST_POINTER),
	EVF(HOST_RIP, host_rip, EV_CLEAN_HOST_GRP1),
};

/* The field's slot; a field the eVMCS lacks (or l1hv's key cannot name) is a bug in L1. */
static const struct ev_field *ev_field(u32 field)
{
	const struct ev_field *f = (field & 0x9001u) || ((field >> 1) & 0x1e0u) ? NULL : &ev_fields[EV_KEY(field)];
	if (f == NULL || f->offset == 0)
		panic("l1hv: vmx: VMCS field 0x%x has no enlightened-VMCS slot", field);
	return f;
}

/* Field width (bits 14:13): 16-bit, 64-bit, 32-bit, natural width (8 bytes in 64-bit mode). */
static u32 ev_size(u32 field)
{
	static const u8 size[4] = { 2, 8, 4, 8 };
	return size[(field >> 13) & 3];
}

static u64 evmcs_read(u32 field)
{
	const u8 *p = (const u8 *)evmcs_va + ev_field(field)->offset;
	switch (ev_size(field)) {
	case 2: return *(const u16 *)p;
	case 4: return *(const u32 *)p;
	default: return *(const u64 *)p;
	}
}

/* A store, and the field's group is dirty for L0 (KVM's evmcs_write64/32/16). */
static void evmcs_write(u32 field, u64 value)
{
	const struct ev_field *f = ev_field(field);
	u8 *p = (u8 *)evmcs_va + f->offset;
	switch (ev_size(field)) {
	case 2: *(u16 *)p = (u16)value; break;
	case 4: *(u32 *)p = (u32)value; break;
	default: *(u64 *)p = value;
	}
	evmcs_va->hv_clean_fields &= ~(u32)f->clean;
}

static const struct vmcs_ops evmcs_ops = { evmcs_read, evmcs_write };

static u32 sig(const char *s) { return (u32)s[0] | (u32)s[1] << 8 | (u32)s[2] << 16 | (u32)s[3] << 24; }

/* The Hyper-V leaves and what they must say for the eVMCS (KVM on Hyper-V: hv_init_evmcs). */
static int hyperv_offers_evmcs(void)
{
	u32 a, b, c, d;
	cpuid(1, 0, &a, &b, &c, &d);
	if (!(c & (1u << 31)) || !(c & (1u << 24)))  /* hypervisor present; TSC-deadline for the timer */
		return 0;
	cpuid(HV_CPUID_VENDOR, 0, &a, &b, &c, &d);
	if (a < HV_CPUID_NESTED || b != sig("Micr") || c != sig("osof") || d != sig("t Hv"))
		return 0;
	cpuid(HV_CPUID_INTERFACE, 0, &a, &b, &c, &d);
	if (a != HV_INTERFACE_HV1)
		return 0;
	cpuid(HV_CPUID_FEATURES, 0, &a, &b, &c, &d);
	if (!(a & HV_ACCESS_APIC_MSRS))
		return 0;
	u32 priv = a;
	cpuid(HV_CPUID_RECOMMEND, 0, &a, &b, &c, &d);
	if (!(a & HV_ENLIGHTENED_VMCS_RECOMMENDED))
		return 0;
	cpuid(HV_CPUID_NESTED, 0, &a, &b, &c, &d);
	u32 lo = a & 0xff, hi = (a >> 8) & 0xff;
	if (lo > EVMCS_VERSION || hi < EVMCS_VERSION)
		return 0;
	nested_features = a;
	return 1 + !!(priv & HV_ACCESS_HYPERCALL_MSRS);
}

int evmcs_setup(int rc)
{
	if (rc)
		return rc;
	int hv = hyperv_offers_evmcs();
	if (!hv)
		return 0;
	if (hv > 1)  /* identify as the TLFS asks before using the hypervisor's MSRs */
		wrmsr(HV_MSR_GUEST_OS_ID, HV_GUEST_OS_ID_OPEN_SOURCE | HV_GUEST_OS_ID_LINUX_TYPE | 1);
	u64 page = pmm_alloc();
	vp_assist = P2V(page);
	wrmsr(HV_MSR_VP_ASSIST_PAGE, page | HV_VP_ASSIST_ENABLE);
	evmcs_active = 1;
	kprintf("l1hv: vmx: Hyper-V enlightened VMCS v%u%s\n", EVMCS_VERSION,
		nested_features & HV_NESTED_MSR_BITMAP ? ", enlightened MSR bitmap" : "");
	return 0;
}

int evmcs_load(u64 pa)
{
	struct hv_enlightened_vmcs *ev = P2V(pa);
	ev->revision_id = EVMCS_VERSION;
	ev->hv_clean_fields = 0;
	if (nested_features & HV_NESTED_MSR_BITMAP)
		ev->hv_enlightenments_control |= EV_ENLIGHTEN_MSR_BITMAP;
	vp_assist->current_nested_vmcs = pa;
	vp_assist->enlighten_vmentry = 1;
	evmcs_va = ev;
	vmcs_ops = &evmcs_ops;
	return 0;
}

void evmcs_touch_msr_bitmap(void)
{
	if (evmcs_va)
		evmcs_va->hv_clean_fields &= ~EV_CLEAN_MSR_BITMAP;
}

int evmcs_arm_timer(struct l2_vcpu *v)
{
	if (v->deadline != timer_armed) {
		l1_timer_wake_at(v->deadline);  /* L1's own one-shot timer (l1timer.c); 0: its tick only */
		timer_armed = v->deadline;
	}
	return 1;
}

/* After an external-interrupt exit whose vector L1's handler took (vmx_exits.c): was it L1's timer
 * and is L2's deadline due? 1 = deliver L2's timer. */
int vmx_l1_timer_interrupt(struct l2_vcpu *v, u32 intr_info)
{
	if (!evmcs_active || (intr_info & 0xff) != VEC_TIMER)
		return 0;
	if (!v->deadline || rdtsc() < v->deadline)
		return 0;
	timer_armed = 0;  /* re-armed for L2's next deadline */
	return 1;
}
