/**
 * Every cost primitive nestlab charges, declared in one list. A profile must give each one a
 * cycle count and a source; code charges them by index (`P.*`), never by literal cycles.
 */
export const PRIMITIVES = [
  // ---- Guest execution on the bare CPU ----
  ["insn.base", "one retired instruction (IPC 1 baseline)"],
  ["insn.cpuid", "extra cycles of a CPUID executed natively"],
  ["insn.msr", "extra cycles of a RDMSR/WRMSR executed natively"],
  ["insn.io", "extra cycles of an IN/OUT executed natively (ISA bus access)"],
  ["insn.syscall", "extra cycles of SYSCALL or SYSRET"],
  ["insn.cr_write", "extra cycles of a MOV to CR0/CR3/CR4"],
  ["insn.invlpg", "extra cycles of INVLPG/INVPCID"],
  [
    "insn.rep_startup",
    "start-up of a REP string instruction (MOVS/STOS/LODS/CMPS/SCAS) that runs at least one iteration",
  ],
  ["insn.rep_fast_line", "one 64-byte line of a fast-string REP MOVS/STOS (DF = 0)"],
  ["insn.rep_iteration", "one iteration of a REP string instruction without fast strings (LODS/CMPS/SCAS, or DF = 1)"],
  ["event.delivery", "delivering an exception or interrupt through the IDT"],
  ["event.iret", "extra cycles of IRET"],
  ["mmu.stlb_hit", "an L1 TLB miss that hits the second-level TLB"],
  ["mmu.stlb_miss", "an L1 TLB miss that misses the second-level TLB too: the STLB lookup before the page walk"],
  [
    "mmu.pmh_walk",
    "the page-miss handler's own latency for one page walk (start, paging-structure-cache lookup, TLB fill), beyond the walk's memory references",
  ],
  [
    "mmu.pmh_nested_step",
    "the page-miss handler's own latency for one EPT translation inside a 2-D walk (a guest table or the final address), beyond its memory references",
  ],
  [
    "mmu.walk_ref",
    "one page-walk reference (the CPU's or a hypervisor's software walk) when no cache model prices it (`--cache-model off`; with it on, references cost mmu.walk_l1d..dram)",
  ],
  ["mmu.walk_l1d", "a page-walk reference (guest or EPT) whose entry is found in the L1 data cache"],
  ["mmu.walk_l2", "a page-walk reference found in the L2 cache"],
  ["mmu.walk_llc", "a page-walk reference found in the last-level cache"],
  ["mmu.walk_dram", "a page-walk reference that misses every cache level (memory)"],
  // ---- VMX transitions (charged to the level that owns the VMCS) ----
  ["vmx.exit", "hardware VM exit (guest state save, host state load)"],
  ["vmx.entry", "hardware VM entry (checks, guest state load)"],
  ["vmx.inject", "extra cycles of a VM entry that injects an event"],
  ["vmx.mitigation", "per-exit mitigation overhead knob (IBRS, RSB fill, MSR switching); 0 by default"],
  // ---- L0 (KVM-like) handler work, by exit reason ----
  ["l0.cpuid", "L0 handler: emulate CPUID from the VM's policy"],
  ["l0.msr", "L0 handler: emulate an intercepted RDMSR/WRMSR"],
  ["l0.exception", "L0 handler: an intercepted exception (decode, reinject)"],
  ["l0.io_kernel", "L0 handler: port I/O or MMIO handled in the kernel (ioeventfd-like)"],
  ["l0.userspace_hop", "L0: the round trip to the userspace device model and back"],
  ["l0.hypercall", "L0 handler: a VMCALL hypercall"],
  ["l0.ept_violation", "L0 handler: EPT violation on first touch (map one leaf; the backing page is charged apart)"],
  ["l0.hlt", "L0 handler: HLT (block the vCPU until an event)"],
  ["l0.ext_interrupt", "L0 handler: an external-interrupt exit"],
  ["l0.apic_timer", "L0 handler: emulated LAPIC timer programming (TSC deadline / initial count write)"],
  ["l0.apic_eoi", "L0 handler: an EOI or other APIC register write that exits"],
  ["l0.cr_access", "L0 handler: an intercepted control-register access"],
  // ---- L0's host memory (charged per page, wherever L0 or a nested engine takes one) ----
  ["host.page_alloc", "L0: take one 4 KiB page from the host allocator (guest backing, EPT table, engine structure)"],
  ["host.page_zero", "L0: zero one 4 KiB host page before a guest or the hardware sees it"],
  // ---- L0's nested-PV engine (npv) ----
  ["npv.map_page", "L0: record one 4 KiB page of an L2 map (MAP/UNMAP/PROTECT, per page)"],
  ["npv.batch_entry", "L0: read and validate one MAP_BATCH entry from L1 memory"],
  ["npv.table_entry", "L0: read and validate one CPUID/MSR policy entry"],
  ["npv.ept02_compose", "L0: compose one EPT02 leaf from the L2 map and L1's memslots (on a miss, or eagerly)"],
  ["npv.invalidate", "L0: invalidate EPT02 and the L2's TLB entries after unmap/protect"],
  ["npv.world_switch", "L0: switch the CPU between an L1 vCPU and an L2 vCPU (VMCS and context)"],
  ["npv.forward", "L0: fill the run page to forward an L2 event to L1"],
  ["npv.blk_request", "L0: one mediated virtio-blk request (chain walk through the L2 map, data copy, used ring)"],
  [
    "nvmx.vmx_insn",
    "L0 handler: emulate one VMX instruction an L1 executed (decode the operand, VMCS12 access, VMfail)",
  ],
  [
    "nvmx.vmcs12_copy",
    "L0: copy a VMCS12 between L1 memory and L0's cache (VMPTRLD of a new VMCS12, VMCLEAR or VMXOFF of the current one)",
  ],
  ["nvmx.entry_checks", "L0: consistency checks of a VMCS12's controls and host state at L1's VMLAUNCH/VMRESUME"],
  [
    "nvmx.prepare_vmcs02",
    "L0: prepare VMCS02 from VMCS12 merged with L0's controls (guest state, exception bitmap, MSR bitmap merge, EPT02, VPID)",
  ],
  [
    "nvmx.sync_vmcs12",
    "L0: on a reflected exit, copy L2's state and the exit information from VMCS02 into VMCS12 and load L1's host state",
  ],
  ["nvmx.world_switch", "L0: switch the CPU between an L1's VMCS01 and its L2's VMCS02"],
  ["nvmx.ept02_fault", "L0: one shadow-EPT fault: walk EPT12 in L1 memory and build the EPT02 leaf"],
  ["nvmx.ept02_zap", "L0: drop EPT02 and L2's TLB entries (L1's INVEPT, a new EPTP12)"],
  [
    "nvmx.shadow_sync",
    "L0: make an L1's shadow VMCS current and back, to copy fields between it and VMCS12 (per sync)",
  ],
  ["nvmx.shadow_field", "L0: copy one field between a shadow VMCS and VMCS12 (a VMREAD or VMWRITE by L0, per field)"],
  ["nvmx.evmcs_map", "L0: map an L1's enlightened VMCS page (a new current_nested_vmcs in the VP assist page)"],
  [
    "nvmx.hv_tlb_flush",
    "L0: drop one vCPU's TLB context (INVVPID single-context) for a Hyper-V flush hypercall of an L1 or its L2",
  ],
  [
    "nvmx.evmcs_sync_field",
    "L0: copy one field between an enlightened VMCS in L1 memory and VMCS12 (a plain load and store, per field)",
  ],
] as const;

export type PrimitiveName = (typeof PRIMITIVES)[number][0];

/** Index of each primitive, for fast charging: P["vmx.exit"] → number. */
export const P: Readonly<Record<PrimitiveName, number>> = Object.fromEntries(
  PRIMITIVES.map(([n], i) => [n, i]),
) as Record<PrimitiveName, number>;
