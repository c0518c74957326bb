/*
 * Hyper-V's enlightened VMCS and VP assist page, as the TLFS (v6.0b, "Enlightened VMCS",
 * HV_VMX_ENLIGHTENED_VMCS; "Virtual Processor Assist Page") lays them out; field order and
 * padding follow the TLFS type definition (also Linux's struct hv_enlightened_vmcs in
 * arch/x86/include/asm/hyperv-tlfs.h). Own transcription. nestlab's L0 reads the same offsets
 * (src/hypervisors/l0/nested-vmx/evmcs-layout.ts, src/x86/hyperv.ts).
 */
#ifndef L1_EVMCS_H
#define L1_EVMCS_H
#include "types.h"

/* CPUID leaves and bits (TLFS "Feature and Interface Discovery") */
#define HV_CPUID_VENDOR        0x40000000
#define HV_CPUID_INTERFACE     0x40000001
#define HV_CPUID_FEATURES      0x40000003
#define HV_CPUID_RECOMMEND     0x40000004
#define HV_CPUID_NESTED        0x4000000a
#define HV_INTERFACE_HV1       0x31237648u     /* "Hv#1" */
#define HV_ACCESS_APIC_MSRS    (1u << 4)       /* 0x40000003 EAX: AccessIntrCtrlRegs, covers the VP assist page MSR */
#define HV_ACCESS_HYPERCALL_MSRS (1u << 5)     /* 0x40000003 EAX: AccessHypercallMsrs (guest OS ID, hypercall) */
#define HV_ENLIGHTENED_VMCS_RECOMMENDED (1u << 14)
#define HV_NESTED_MSR_BITMAP   (1u << 19)

/* MSRs */
#define HV_MSR_GUEST_OS_ID     0x40000000
#define HV_MSR_VP_ASSIST_PAGE  0x40000073
#define HV_VP_ASSIST_ENABLE    1ul

/* Clean-field groups (HV_VMX_ENLIGHTENED_CLEAN_FIELD_*) */
#define EV_CLEAN_NONE          0u
#define EV_CLEAN_IO_BITMAP     (1u << 0)
#define EV_CLEAN_MSR_BITMAP    (1u << 1)
#define EV_CLEAN_CONTROL_GRP2  (1u << 2)
#define EV_CLEAN_CONTROL_GRP1  (1u << 3)
#define EV_CLEAN_CONTROL_PROC  (1u << 4)
#define EV_CLEAN_CONTROL_EVENT (1u << 5)
#define EV_CLEAN_CONTROL_ENTRY (1u << 6)
#define EV_CLEAN_CONTROL_EXCPN (1u << 7)
#define EV_CLEAN_CRDR          (1u << 8)
#define EV_CLEAN_CONTROL_XLAT  (1u << 9)
#define EV_CLEAN_GUEST_BASIC   (1u << 10)
#define EV_CLEAN_GUEST_GRP1    (1u << 11)
#define EV_CLEAN_GUEST_GRP2    (1u << 12)
#define EV_CLEAN_HOST_POINTER  (1u << 13)
#define EV_CLEAN_HOST_GRP1     (1u << 14)
#define EV_CLEAN_ENLIGHTENMENTS (1u << 15)
#define EV_CLEAN_ALL           0xffffu

struct hv_vp_assist_page {
	u32 apic_assist;
	u32 reserved;
	u64 vtl_control[2];
	u64 nested_control[2];
	u32 enlighten_vmentry;
	u32 padding;
	u64 current_nested_vmcs;
} __attribute__((packed));

struct hv_enlightened_vmcs {
	u32 revision_id;
	u32 abort;
	u16 host_es_selector, host_cs_selector, host_ss_selector, host_ds_selector;
	u16 host_fs_selector, host_gs_selector, host_tr_selector;
	u16 padding16_1;
	u64 host_ia32_pat, host_ia32_efer;
	u64 host_cr0, host_cr3, host_cr4;
	u64 host_ia32_sysenter_esp, host_ia32_sysenter_eip, host_rip;
	u32 host_ia32_sysenter_cs;
	u32 pin_based_vm_exec_control, vm_exit_controls, secondary_vm_exec_control;
	u64 io_bitmap_a, io_bitmap_b, msr_bitmap;
	u16 guest_es_selector, guest_cs_selector, guest_ss_selector, guest_ds_selector;
	u16 guest_fs_selector, guest_gs_selector, guest_ldtr_selector, guest_tr_selector;
	u32 guest_es_limit, guest_cs_limit, guest_ss_limit, guest_ds_limit;
	u32 guest_fs_limit, guest_gs_limit, guest_ldtr_limit, guest_tr_limit;
	u32 guest_gdtr_limit, guest_idtr_limit;
	u32 guest_es_ar_bytes, guest_cs_ar_bytes, guest_ss_ar_bytes, guest_ds_ar_bytes;
	u32 guest_fs_ar_bytes, guest_gs_ar_bytes, guest_ldtr_ar_bytes, guest_tr_ar_bytes;
	u64 guest_es_base, guest_cs_base, guest_ss_base, guest_ds_base;
	u64 guest_fs_base, guest_gs_base, guest_ldtr_base, guest_tr_base;
	u64 guest_gdtr_base, guest_idtr_base;
	u64 padding64_1[3];
	u64 vm_exit_msr_store_addr, vm_exit_msr_load_addr, vm_entry_msr_load_addr;
	u64 cr3_target_value[4];
	u32 page_fault_error_code_mask, page_fault_error_code_match;
	u32 cr3_target_count, vm_exit_msr_store_count, vm_exit_msr_load_count, vm_entry_msr_load_count;
	u64 tsc_offset, virtual_apic_page_addr, vmcs_link_pointer;
	u64 guest_ia32_debugctl, guest_ia32_pat, guest_ia32_efer;
	u64 guest_pdptr[4];
	u64 guest_pending_dbg_exceptions, guest_sysenter_esp, guest_sysenter_eip;
	u32 guest_activity_state, guest_sysenter_cs;
	u64 cr0_guest_host_mask, cr4_guest_host_mask, cr0_read_shadow, cr4_read_shadow;
	u64 guest_cr0, guest_cr3, guest_cr4, guest_dr7;
	u64 host_fs_base, host_gs_base, host_tr_base, host_gdtr_base, host_idtr_base, host_rsp;
	u64 ept_pointer;
	u16 virtual_processor_id;
	u16 padding16_2[3];
	u64 padding64_2[5];
	u64 guest_physical_address;
	u32 vm_instruction_error, vm_exit_reason, vm_exit_intr_info, vm_exit_intr_error_code;
	u32 idt_vectoring_info_field, idt_vectoring_error_code, vm_exit_instruction_len, vmx_instruction_info;
	u64 exit_qualification;
	u64 exit_io_instruction_ecx, exit_io_instruction_esi, exit_io_instruction_edi, exit_io_instruction_eip;
	u64 guest_linear_address, guest_rsp, guest_rflags;
	u32 guest_interruptibility_info, cpu_based_vm_exec_control, exception_bitmap, vm_entry_controls;
	u32 vm_entry_intr_info_field, vm_entry_exception_error_code, vm_entry_instruction_len, tpr_threshold;
	u64 guest_rip;
	u32 hv_clean_fields;
	u32 padding32_1;
	u32 hv_synthetic_controls;
	u32 hv_enlightenments_control;  /* bit 0 nested_flush_hypercall, bit 1 msr_bitmap */
	u32 hv_vp_id;
	u32 padding32_2;                /* the TLFS pads hv_vm_id to 8 bytes (+848) */
	u64 hv_vm_id;
	u64 partition_assist_page;
	u64 padding64_4[4];
	u64 guest_bndcfgs;
	u64 padding64_5[7];
	u64 xss_exit_bitmap;
	u64 padding64_6[7];
} __attribute__((packed));

#define EV_ENLIGHTEN_MSR_BITMAP (1u << 1)
#endif
