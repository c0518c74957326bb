/**
 * The enlightened VMCS layout, field by field: where each VMCS12 field lives in Hyper-V's
 * HV_VMX_ENLIGHTENED_VMCS (TLFS v6.0b; constants in x86/hyperv.ts).
 */
import * as H from "../../../x86/hyperv.js";
import * as V from "../../../x86/vmx.js";

const {
  CLEAN_ALL,
  CLEAN_CONTROL_ENTRY,
  CLEAN_CONTROL_EVENT,
  CLEAN_CONTROL_EXCPN,
  CLEAN_CONTROL_GRP1,
  CLEAN_CONTROL_GRP2,
  CLEAN_CONTROL_PROC,
  CLEAN_CONTROL_XLAT,
  CLEAN_CRDR,
  CLEAN_GUEST_BASIC,
  CLEAN_GUEST_GRP1,
  CLEAN_GUEST_GRP2,
  CLEAN_HOST_GRP1,
  CLEAN_HOST_POINTER,
  CLEAN_IO_BITMAP,
  CLEAN_MSR_BITMAP,
  CLEAN_NONE,
} = H;

/**
 * [VMCS field encoding, byte offset, size, clean-field group] of every field nestlab's VMCS12
 * has that the enlightened VMCS v1 has too (offsets from the TLFS structure, packed; groups as
 * KVM's vmcs_field_to_evmcs_1 in arch/x86/kvm/vmx/hyperv_evmcs.c). The VMX-preemption timer
 * value has no eVMCS field (KVM lists it among what eVMCS v1 does not support).
 */
export const EVMCS_FIELDS: readonly (readonly [number, number, number, number])[] = [
  [V.VMCS_VPID, 632, 2, CLEAN_CONTROL_XLAT], // virtual_processor_id
  [V.VMCS_GUEST_ES_SELECTOR, 128, 2, CLEAN_GUEST_GRP2], // guest_es_selector
  [V.VMCS_GUEST_CS_SELECTOR, 130, 2, CLEAN_GUEST_GRP2], // guest_cs_selector
  [V.VMCS_GUEST_SS_SELECTOR, 132, 2, CLEAN_GUEST_GRP2], // guest_ss_selector
  [V.VMCS_GUEST_DS_SELECTOR, 134, 2, CLEAN_GUEST_GRP2], // guest_ds_selector
  [V.VMCS_GUEST_FS_SELECTOR, 136, 2, CLEAN_GUEST_GRP2], // guest_fs_selector
  [V.VMCS_GUEST_GS_SELECTOR, 138, 2, CLEAN_GUEST_GRP2], // guest_gs_selector
  [V.VMCS_GUEST_LDTR_SELECTOR, 140, 2, CLEAN_GUEST_GRP2], // guest_ldtr_selector
  [V.VMCS_GUEST_TR_SELECTOR, 142, 2, CLEAN_GUEST_GRP2], // guest_tr_selector
  [V.VMCS_HOST_ES_SELECTOR, 8, 2, CLEAN_HOST_GRP1], // host_es_selector
  [V.VMCS_HOST_CS_SELECTOR, 10, 2, CLEAN_HOST_GRP1], // host_cs_selector
  [V.VMCS_HOST_SS_SELECTOR, 12, 2, CLEAN_HOST_GRP1], // host_ss_selector
  [V.VMCS_HOST_DS_SELECTOR, 14, 2, CLEAN_HOST_GRP1], // host_ds_selector
  [V.VMCS_HOST_FS_SELECTOR, 16, 2, CLEAN_HOST_GRP1], // host_fs_selector
  [V.VMCS_HOST_GS_SELECTOR, 18, 2, CLEAN_HOST_GRP1], // host_gs_selector
  [V.VMCS_HOST_TR_SELECTOR, 20, 2, CLEAN_HOST_GRP1], // host_tr_selector
  [V.VMCS_IO_BITMAP_A, 104, 8, CLEAN_IO_BITMAP], // io_bitmap_a
  [V.VMCS_IO_BITMAP_B, 112, 8, CLEAN_IO_BITMAP], // io_bitmap_b
  [V.VMCS_MSR_BITMAP, 120, 8, CLEAN_MSR_BITMAP], // msr_bitmap
  [V.VMCS_TSC_OFFSET, 400, 8, CLEAN_CONTROL_GRP2], // tsc_offset
  [V.VMCS_EPT_POINTER, 624, 8, CLEAN_CONTROL_XLAT], // ept_pointer
  [V.VMCS_GUEST_PHYSICAL_ADDRESS, 680, 8, CLEAN_NONE], // guest_physical_address
  [V.VMCS_LINK_POINTER, 416, 8, CLEAN_GUEST_GRP1], // vmcs_link_pointer
  [V.VMCS_GUEST_IA32_PAT, 432, 8, CLEAN_GUEST_GRP1], // guest_ia32_pat
  [V.VMCS_GUEST_IA32_EFER, 440, 8, CLEAN_GUEST_GRP1], // guest_ia32_efer
  [V.VMCS_HOST_IA32_PAT, 24, 8, CLEAN_HOST_GRP1], // host_ia32_pat
  [V.VMCS_HOST_IA32_EFER, 32, 8, CLEAN_HOST_GRP1], // host_ia32_efer
  [V.VMCS_PIN_BASED_CONTROLS, 92, 4, CLEAN_CONTROL_GRP1], // pin_based_vm_exec_control
  [V.VMCS_PROC_BASED_CONTROLS, 788, 4, CLEAN_CONTROL_PROC], // cpu_based_vm_exec_control
  [V.VMCS_EXCEPTION_BITMAP, 792, 4, CLEAN_CONTROL_EXCPN], // exception_bitmap
  [V.VMCS_PF_ERROR_CODE_MASK, 376, 4, CLEAN_ALL], // page_fault_error_code_mask
  [V.VMCS_PF_ERROR_CODE_MATCH, 380, 4, CLEAN_ALL], // page_fault_error_code_match
  [V.VMCS_CR3_TARGET_COUNT, 384, 4, CLEAN_ALL], // cr3_target_count
  [V.VMCS_EXIT_CONTROLS, 96, 4, CLEAN_CONTROL_GRP1], // vm_exit_controls
  [V.VMCS_EXIT_MSR_STORE_COUNT, 388, 4, CLEAN_ALL], // vm_exit_msr_store_count
  [V.VMCS_EXIT_MSR_LOAD_COUNT, 392, 4, CLEAN_ALL], // vm_exit_msr_load_count
  [V.VMCS_ENTRY_CONTROLS, 796, 4, CLEAN_CONTROL_ENTRY], // vm_entry_controls
  [V.VMCS_ENTRY_MSR_LOAD_COUNT, 396, 4, CLEAN_ALL], // vm_entry_msr_load_count
  [V.VMCS_ENTRY_INTR_INFO, 800, 4, CLEAN_CONTROL_EVENT], // vm_entry_intr_info_field
  [V.VMCS_ENTRY_EXCEPTION_ERROR_CODE, 804, 4, CLEAN_CONTROL_EVENT], // vm_entry_exception_error_code
  [V.VMCS_ENTRY_INSTRUCTION_LENGTH, 808, 4, CLEAN_CONTROL_EVENT], // vm_entry_instruction_len
  [V.VMCS_TPR_THRESHOLD, 812, 4, CLEAN_NONE], // tpr_threshold
  [V.VMCS_PROC_BASED_CONTROLS2, 100, 4, CLEAN_CONTROL_GRP1], // secondary_vm_exec_control
  [V.VMCS_VM_INSTRUCTION_ERROR, 688, 4, CLEAN_NONE], // vm_instruction_error
  [V.VMCS_EXIT_REASON, 692, 4, CLEAN_NONE], // vm_exit_reason
  [V.VMCS_EXIT_INTR_INFO, 696, 4, CLEAN_NONE], // vm_exit_intr_info
  [V.VMCS_EXIT_INTR_ERROR_CODE, 700, 4, CLEAN_NONE], // vm_exit_intr_error_code
  [V.VMCS_IDT_VECTORING_INFO, 704, 4, CLEAN_NONE], // idt_vectoring_info_field
  [V.VMCS_IDT_VECTORING_ERROR_CODE, 708, 4, CLEAN_NONE], // idt_vectoring_error_code
  [V.VMCS_EXIT_INSTRUCTION_LENGTH, 712, 4, CLEAN_NONE], // vm_exit_instruction_len
  [V.VMCS_EXIT_INSTRUCTION_INFO, 716, 4, CLEAN_NONE], // vmx_instruction_info
  [V.VMCS_GUEST_ES_LIMIT, 144, 4, CLEAN_GUEST_GRP2], // guest_es_limit
  [V.VMCS_GUEST_CS_LIMIT, 148, 4, CLEAN_GUEST_GRP2], // guest_cs_limit
  [V.VMCS_GUEST_SS_LIMIT, 152, 4, CLEAN_GUEST_GRP2], // guest_ss_limit
  [V.VMCS_GUEST_DS_LIMIT, 156, 4, CLEAN_GUEST_GRP2], // guest_ds_limit
  [V.VMCS_GUEST_FS_LIMIT, 160, 4, CLEAN_GUEST_GRP2], // guest_fs_limit
  [V.VMCS_GUEST_GS_LIMIT, 164, 4, CLEAN_GUEST_GRP2], // guest_gs_limit
  [V.VMCS_GUEST_LDTR_LIMIT, 168, 4, CLEAN_GUEST_GRP2], // guest_ldtr_limit
  [V.VMCS_GUEST_TR_LIMIT, 172, 4, CLEAN_GUEST_GRP2], // guest_tr_limit
  [V.VMCS_GUEST_GDTR_LIMIT, 176, 4, CLEAN_GUEST_GRP2], // guest_gdtr_limit
  [V.VMCS_GUEST_IDTR_LIMIT, 180, 4, CLEAN_GUEST_GRP2], // guest_idtr_limit
  [V.VMCS_GUEST_ES_AR, 184, 4, CLEAN_GUEST_GRP2], // guest_es_ar_bytes
  [V.VMCS_GUEST_CS_AR, 188, 4, CLEAN_GUEST_GRP2], // guest_cs_ar_bytes
  [V.VMCS_GUEST_SS_AR, 192, 4, CLEAN_GUEST_GRP2], // guest_ss_ar_bytes
  [V.VMCS_GUEST_DS_AR, 196, 4, CLEAN_GUEST_GRP2], // guest_ds_ar_bytes
  [V.VMCS_GUEST_FS_AR, 200, 4, CLEAN_GUEST_GRP2], // guest_fs_ar_bytes
  [V.VMCS_GUEST_GS_AR, 204, 4, CLEAN_GUEST_GRP2], // guest_gs_ar_bytes
  [V.VMCS_GUEST_LDTR_AR, 208, 4, CLEAN_GUEST_GRP2], // guest_ldtr_ar_bytes
  [V.VMCS_GUEST_TR_AR, 212, 4, CLEAN_GUEST_GRP2], // guest_tr_ar_bytes
  [V.VMCS_GUEST_INTERRUPTIBILITY, 784, 4, CLEAN_GUEST_BASIC], // guest_interruptibility_info
  [V.VMCS_GUEST_ACTIVITY_STATE, 504, 4, CLEAN_GUEST_GRP1], // guest_activity_state
  [V.VMCS_GUEST_SYSENTER_CS, 508, 4, CLEAN_GUEST_GRP1], // guest_sysenter_cs
  [V.VMCS_HOST_SYSENTER_CS, 88, 4, CLEAN_HOST_GRP1], // host_ia32_sysenter_cs
  [V.VMCS_CR0_GUEST_HOST_MASK, 512, 8, CLEAN_CRDR], // cr0_guest_host_mask
  [V.VMCS_CR4_GUEST_HOST_MASK, 520, 8, CLEAN_CRDR], // cr4_guest_host_mask
  [V.VMCS_CR0_READ_SHADOW, 528, 8, CLEAN_CRDR], // cr0_read_shadow
  [V.VMCS_CR4_READ_SHADOW, 536, 8, CLEAN_CRDR], // cr4_read_shadow
  [V.VMCS_EXIT_QUALIFICATION, 720, 8, CLEAN_NONE], // exit_qualification
  [V.VMCS_GUEST_LINEAR_ADDRESS, 760, 8, CLEAN_NONE], // guest_linear_address
  [V.VMCS_GUEST_CR0, 544, 8, CLEAN_CRDR], // guest_cr0
  [V.VMCS_GUEST_CR3, 552, 8, CLEAN_CRDR], // guest_cr3
  [V.VMCS_GUEST_CR4, 560, 8, CLEAN_CRDR], // guest_cr4
  [V.VMCS_GUEST_ES_BASE, 216, 8, CLEAN_GUEST_GRP2], // guest_es_base
  [V.VMCS_GUEST_CS_BASE, 224, 8, CLEAN_GUEST_GRP2], // guest_cs_base
  [V.VMCS_GUEST_SS_BASE, 232, 8, CLEAN_GUEST_GRP2], // guest_ss_base
  [V.VMCS_GUEST_DS_BASE, 240, 8, CLEAN_GUEST_GRP2], // guest_ds_base
  [V.VMCS_GUEST_FS_BASE, 248, 8, CLEAN_GUEST_GRP2], // guest_fs_base
  [V.VMCS_GUEST_GS_BASE, 256, 8, CLEAN_GUEST_GRP2], // guest_gs_base
  [V.VMCS_GUEST_LDTR_BASE, 264, 8, CLEAN_GUEST_GRP2], // guest_ldtr_base
  [V.VMCS_GUEST_TR_BASE, 272, 8, CLEAN_GUEST_GRP2], // guest_tr_base
  [V.VMCS_GUEST_GDTR_BASE, 280, 8, CLEAN_GUEST_GRP2], // guest_gdtr_base
  [V.VMCS_GUEST_IDTR_BASE, 288, 8, CLEAN_GUEST_GRP2], // guest_idtr_base
  [V.VMCS_GUEST_DR7, 568, 8, CLEAN_CRDR], // guest_dr7
  [V.VMCS_GUEST_RSP, 768, 8, CLEAN_GUEST_BASIC], // guest_rsp
  [V.VMCS_GUEST_RIP, 816, 8, CLEAN_NONE], // guest_rip
  [V.VMCS_GUEST_RFLAGS, 776, 8, CLEAN_GUEST_BASIC], // guest_rflags
  [V.VMCS_GUEST_PENDING_DBG_EXCEPTIONS, 480, 8, CLEAN_GUEST_GRP1], // guest_pending_dbg_exceptions
  [V.VMCS_GUEST_SYSENTER_ESP, 488, 8, CLEAN_GUEST_GRP1], // guest_sysenter_esp
  [V.VMCS_GUEST_SYSENTER_EIP, 496, 8, CLEAN_GUEST_GRP1], // guest_sysenter_eip
  [V.VMCS_HOST_CR0, 40, 8, CLEAN_HOST_GRP1], // host_cr0
  [V.VMCS_HOST_CR3, 48, 8, CLEAN_HOST_GRP1], // host_cr3
  [V.VMCS_HOST_CR4, 56, 8, CLEAN_HOST_GRP1], // host_cr4
  [V.VMCS_HOST_FS_BASE, 576, 8, CLEAN_HOST_POINTER], // host_fs_base
  [V.VMCS_HOST_GS_BASE, 584, 8, CLEAN_HOST_POINTER], // host_gs_base
  [V.VMCS_HOST_TR_BASE, 592, 8, CLEAN_HOST_POINTER], // host_tr_base
  [V.VMCS_HOST_GDTR_BASE, 600, 8, CLEAN_HOST_POINTER], // host_gdtr_base
  [V.VMCS_HOST_IDTR_BASE, 608, 8, CLEAN_HOST_POINTER], // host_idtr_base
  [V.VMCS_HOST_SYSENTER_ESP, 64, 8, CLEAN_HOST_GRP1], // host_ia32_sysenter_esp
  [V.VMCS_HOST_SYSENTER_EIP, 72, 8, CLEAN_HOST_GRP1], // host_ia32_sysenter_eip
  [V.VMCS_HOST_RSP, 616, 8, CLEAN_HOST_POINTER], // host_rsp
  [V.VMCS_HOST_RIP, 80, 8, CLEAN_HOST_GRP1], // host_rip
];
