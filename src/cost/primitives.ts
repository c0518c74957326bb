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
  ["event.delivery", "delivering an exception or interrupt through the IDT"],
  ["event.iret", "extra cycles of IRET"],
  ["mmu.stlb_hit", "an L1 TLB miss that hits the second-level TLB"],
  ["mmu.walk_ref", "one paging-structure memory reference of a page walk (guest or EPT)"],
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
  ["l0.ept_violation", "L0 handler: EPT violation on first touch (allocate, map, no emulation)"],
  ["l0.hlt", "L0 handler: HLT (block the vCPU until an event)"],
  ["l0.ext_interrupt", "L0 handler: an external-interrupt exit"],
  ["l0.apic_timer", "L0 handler: emulated LAPIC timer programming (TSC deadline / initial count write)"],
  ["l0.apic_eoi", "L0 handler: an EOI or other APIC register write that exits"],
  ["l0.cr_access", "L0 handler: an intercepted control-register access"],
] as const;

export type PrimitiveName = (typeof PRIMITIVES)[number][0];

/** Index of each primitive, for fast charging: P["vmx.exit"] → number. */
export const P: Readonly<Record<PrimitiveName, number>> = Object.fromEntries(PRIMITIVES.map(([n], i) => [n, i])) as Record<
  PrimitiveName,
  number
>;
