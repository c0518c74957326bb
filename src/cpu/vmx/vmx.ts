/**
 * VMX non-root operation: the hardware side of VM entry and VM exit (SDM vol. 3, chapters 25–27).
 *
 * The CPU's register file *is* the guest's while in non-root operation. VM entry loads the guest
 * state area of the current VMCS into the CPU and injects a pending event; a VM exit saves the
 * guest state back, fills the exit-information fields, and ends `Cpu.run` with STOP_VMEXIT so the
 * hypervisor (TypeScript, "host") handles it. General-purpose registers are not in the VMCS (as on
 * Intel hardware): they stay in the CPU, and a hypervisor that switches vCPUs saves them itself.
 *
 * Instruction handlers ask this unit whether an event exits (`c.nonRoot` guards every call, so
 * the cost outside VMX is one boolean test).
 */

import { CR0_TS } from "../../x86/control.js";
import { DF_, GP, PF_ } from "../../x86/exceptions.js";
import * as V from "../../x86/vmx.js";
import * as C from "../../x86/vmx-controls.js";
import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import { checkModelledGuest } from "./entry-checks.js";
import { injectOnEntry } from "./entry-inject.js";
import { loadGuestState } from "./entry-load.js";
import { commitExit } from "./exit-commit.js";
import { type ENTERED_AND_EXITED, VMEXIT } from "./exit-signal.js";
import { SoftwareVmx } from "./software.js";
import type { Vmcs } from "./vmcs.js";

export { ENTERED_AND_EXITED, VMEXIT } from "./exit-signal.js";

/** The VM-exit record a hypervisor reads after `run` returns STOP_VMEXIT (mirrors the VMCS exit fields). */
export interface ExitRecord {
  reason: number;
  qualLo: number;
  qualHi: number;
  instrLen: number;
  instrInfo: number;
  intrInfo: number;
  intrError: number;
  gpa: number;
  glaLo: number;
  glaHi: number;
}

export class VmxUnit {
  /** The current VMCS (VMPTRLD'd), or null. */
  vmcs: Vmcs | null = null;
  // Controls cached at VM entry (the hot checks read these, not the VMCS).
  pin = 0;
  proc = 0;
  proc2 = 0;
  exceptionBitmap = 0;
  pfecMask = 0;
  pfecMatch = 0;
  cr0Mask = 0;
  cr0Shadow = 0;
  cr4Mask = 0;
  cr4Shadow = 0;
  ioBitmapA = -1;
  ioBitmapB = -1;
  msrBitmap = -1;
  /** EPTP as a number (physical address of the EPT PML4 | flags), or -1 when EPT is off. */
  eptp = -1;
  vpid = 0;
  /** EPTP of the last VM entry with EPT (-1 none): the EPT paging-structure caches belong to it. */
  lastEptp = -1;
  /** Cycle count at which the VMX-preemption timer expires (Infinity when off). */
  preemptionDeadline = Number.POSITIVE_INFINITY;
  /** The exit being taken (filled by `exit`, committed by `completeExit`). */
  readonly exit: ExitRecord = {
    reason: 0,
    qualLo: 0,
    qualHi: 0,
    instrLen: 0,
    instrInfo: 0,
    intrInfo: 0,
    intrError: 0,
    gpa: 0,
    glaLo: 0,
    glaHi: 0,
  };
  /** IDT-vectoring information for the exit being taken (an event whose delivery was cut short). */
  vectoringInfo = 0;
  vectoringError = 0;
  /** Virtual-NMI blocking of the guest (with the "virtual NMIs" control; see nmi.ts). */
  virtualNmiBlocked = false;
  /**
   * The IRET executing ended (virtual-)NMI blocking: a fault or EPT violation that exits before
   * it completes reports "NMI unblocking due to IRET" (bit 12; nmi.ts). Cleared when the IRET
   * completes, when an event is delivered, and by every exit.
   */
  iretUnblockedNmi = false;
  /** Exits taken, by basic reason (index = reason). */
  readonly exitCounts = new Float64Array(80);
  entries = 0;
  /** VMX operation entered by guest software (VMXON), and the VMCSs its processor caches. */
  readonly software = new SoftwareVmx();

  constructor(private readonly c: Cpu) {}

  /**
   * INVVPID (single context): drop every TLB and paging-structure-cache entry tagged with
   * `vpid`, the EPT paging-structure caches, and the CPU's software TLB.
   */
  invalidateVpid(vpid: number): void {
    const mmu = this.c.mmu;
    const ctx = (vpid & 0xffff) << 16;
    const mask = 0xffff << 16;
    mmu.itlb.invalidateMatching(ctx, mask, true);
    mmu.dtlb.invalidateMatching(ctx, mask, true);
    mmu.stlb.invalidateMatching(ctx, mask, true);
    mmu.psc.invalidateCtx(ctx, mask);
    mmu.eptPsc.invalidateAll();
    this.c.flushTlb();
  }

  /** INVVPID (all contexts). */
  invalidateAllVpids(): void {
    this.c.mmu.flushAll("other");
    this.c.flushTlb();
  }

  /** INVEPT: the guest-physical and combined mappings (nestlab drops every cached mapping). */
  invalidateEpt(): void {
    this.c.mmu.flushAll("other");
    this.c.flushTlb();
  }

  // =====================================================================================
  // VM entry
  // =====================================================================================

  /**
   * VM entry (VMLAUNCH/VMRESUME semantics, 26.3–26.6), one implementation for VmxHost and for
   * guest software: check what the model cannot run (entry-checks.ts), load the guest state
   * (entry-load.ts), then inject the pending event (entry-inject.ts). Returns an error string
   * when the guest state is invalid (a VM-entry failure, reported in the exit reason with bit 31
   * set), ENTERED_AND_EXITED when the injection exited at once, else null. Guest software's
   * VMLAUNCH/VMRESUME runs the SDM's checks (`checkEntry`) first.
   */
  enter(): string | null | typeof ENTERED_AND_EXITED {
    const v = this.vmcs;
    if (v === null) return "no current VMCS";
    const err = checkModelledGuest(v);
    if (err !== null) return err;
    loadGuestState(this, this.c, v);
    return injectOnEntry(this, this.c, v);
  }

  // =====================================================================================
  // VM exit
  // =====================================================================================

  /** Begin a VM exit: record the reason and qualification, abandon the instruction. */
  exitNow(reason: number, qualLo = 0, qualHi = 0, instrLen = 0, instrInfo = 0, glaLo = 0, glaHi = 0): never {
    const e = this.exit;
    e.reason = reason;
    e.qualLo = qualLo;
    e.qualHi = qualHi;
    e.instrLen = instrLen;
    e.instrInfo = instrInfo;
    e.intrInfo = 0;
    e.intrError = 0;
    e.gpa = 0;
    e.glaLo = glaLo;
    e.glaHi = glaHi;
    throw VMEXIT;
  }

  /**
   * An exit at an instruction boundary, outside any instruction (VMX-preemption timer, or the
   * end of an emulation step when `uncounted`). Commits immediately.
   */
  exitBetweenInstructions(reason: number, uncounted = false): void {
    const e = this.exit;
    e.reason = reason;
    e.qualLo = 0;
    e.qualHi = 0;
    e.instrLen = 0;
    e.instrInfo = 0;
    e.intrInfo = 0;
    e.intrError = 0;
    e.gpa = 0;
    e.glaLo = 0;
    e.glaHi = 0;
    this.completeExit();
    if (uncounted) this.exitCounts[reason]--;
  }

  /** An instruction-caused exit (CPUID, HLT, RDMSR…): RIP stays at the instruction. */
  instructionExit(reason: number, i: Insn, qualLo = 0, instrInfo = 0): never {
    return this.exitNow(reason, qualLo, 0, i.len, instrInfo);
  }

  /**
   * Commit the exit (27.2–27.3): save guest state to the VMCS and write the exit-information
   * fields (exit-commit.ts). Called by the run loop after it has restored RIP to the instruction
   * boundary.
   */
  completeExit(): void {
    commitExit(this, this.c, this.vmcs as Vmcs);
  }

  // =====================================================================================
  // Exit conditions (called only in non-root operation)
  // =====================================================================================

  /**
   * I/O instruction (25.1.3): unconditional I/O exiting or the I/O bitmaps. INS/OUTS pass the
   * linear address of their memory operand, which the exit reports (27.2.1).
   */
  checkIo(i: Insn, port: number, size: number, isIn: boolean, isString: boolean, glaLo = 0, glaHi = 0): void {
    let exits = false;
    if (this.ioBitmapA >= 0) {
      for (let p = port; p < port + size; p++) {
        const q = p & 0xffff;
        const base = q < 0x8000 ? this.ioBitmapA : this.ioBitmapB;
        const byte = this.c.mem.read(base + ((q & 0x7fff) >> 3), 1);
        if ((byte & (1 << (q & 7))) !== 0 || p > 0xffff) exits = true;
      }
    } else exits = (this.proc & C.CPU_UNCOND_IO_EXITING) !== 0;
    if (!exits) return;
    let q = (size - 1) | (port << 16);
    if (isIn) q |= C.IO_QUAL_IN;
    if (isString) q |= C.IO_QUAL_STRING;
    if (i.rep !== 0 && isString) q |= C.IO_QUAL_REP;
    if ((i.opcode & 0xff) >= 0xe4 && (i.opcode & 0xff) <= 0xe7) q |= C.IO_QUAL_IMM;
    this.exitNow(V.EXIT_IO_INSTRUCTION, q, 0, i.len, 0, glaLo, glaHi);
  }

  /** RDMSR/WRMSR (25.1.3): exit unless the MSR bitmap clears the bit for this MSR. */
  checkMsr(i: Insn, index: number, write: boolean): void {
    let exits = true;
    if (this.msrBitmap >= 0) {
      const idx = index >>> 0;
      let off = -1;
      if (idx <= 0x1fff) off = 0;
      else if (idx >= 0xc0000000 && idx <= 0xc0001fff) off = 1024;
      if (off >= 0) {
        const bit = idx & 0x1fff;
        const byte = this.c.mem.read(this.msrBitmap + (write ? 2048 : 0) + off + (bit >> 3), 1);
        exits = (byte & (1 << (bit & 7))) !== 0;
      }
    }
    if (exits) this.instructionExit(write ? V.EXIT_WRMSR : V.EXIT_RDMSR, i);
  }

  /** MOV to CR0/CR4 (25.1.3): exit when a host-owned bit would differ from the read shadow. */
  checkCrWrite(i: Insn, cr: number, valueLo: number, gpr: number): void {
    let exits = false;
    if (cr === 0) exits = ((valueLo ^ this.cr0Shadow) & this.cr0Mask) !== 0;
    else if (cr === 4) exits = ((valueLo ^ this.cr4Shadow) & this.cr4Mask) !== 0;
    else if (cr === 3)
      exits = (this.proc & C.CPU_CR3_LOAD_EXITING) !== 0 && (this.vmcs as Vmcs).read(V.VMCS_CR3_TARGET_COUNT) === 0;
    else if (cr === 8) exits = (this.proc & C.CPU_CR8_LOAD_EXITING) !== 0;
    if (exits) this.instructionExit(V.EXIT_CR_ACCESS, i, cr | (C.CR_ACCESS_TYPE_MOV_TO_CR << 4) | (gpr << 8));
  }

  /** CLTS (25.1.3): exits when CR0.TS is host-owned and set in the read shadow. */
  checkClts(i: Insn): void {
    if ((this.cr0Mask & this.cr0Shadow & CR0_TS) !== 0)
      this.instructionExit(V.EXIT_CR_ACCESS, i, C.CR_ACCESS_TYPE_CLTS << 4);
  }

  /**
   * LMSW (25.1.3): exits when a host-owned bit among 3:1 would differ from the read shadow, or
   * when it would set a host-owned PE whose shadow is 0 (LMSW never clears PE). Qualification:
   * type 3, bit 6 memory operand, bits 31:16 the source (table 27-3); a memory operand's linear
   * address goes in the guest-linear address field (27.2.1).
   */
  checkLmsw(i: Insn, src: number, glaLo: number, glaHi: number): void {
    const m = this.cr0Mask;
    const exits = ((src ^ this.cr0Shadow) & m & 0xe) !== 0 || (m & src & ~this.cr0Shadow & 1) !== 0;
    if (!exits) return;
    const q = (C.CR_ACCESS_TYPE_LMSW << 4) | (i.isMem ? 1 << 6 : 0) | ((src & 0xffff) << 16);
    this.exitNow(V.EXIT_CR_ACCESS, q, 0, i.len, 0, i.isMem ? glaLo : 0, i.isMem ? glaHi : 0);
  }

  /** MOV from CR3/CR8: exit per the store-exiting controls. */
  checkCrRead(i: Insn, cr: number, gpr: number): void {
    const exits =
      (cr === 3 && (this.proc & C.CPU_CR3_STORE_EXITING) !== 0) ||
      (cr === 8 && (this.proc & C.CPU_CR8_STORE_EXITING) !== 0);
    if (exits) this.instructionExit(V.EXIT_CR_ACCESS, i, cr | (C.CR_ACCESS_TYPE_MOV_FROM_CR << 4) | (gpr << 8));
  }

  /** Guest-visible CR0/CR4: host-owned bits read from the shadow (24.6.6). */
  shadowCr0(actual: number): number {
    return (actual & ~this.cr0Mask) | (this.cr0Shadow & this.cr0Mask);
  }

  shadowCr4(actual: number): number {
    return (actual & ~this.cr4Mask) | (this.cr4Shadow & this.cr4Mask);
  }

  /**
   * An exception about to be delivered in non-root operation: exit when the exception bitmap
   * says so (for #PF, with the error-code mask/match rule of 25.2). Returns normally otherwise.
   */
  checkException(vector: number, errorCode: number, instrLen: number): void {
    if (vector === PF_) {
      // Bit 14 set: exit iff PFEC & mask == match; bit 14 clear: exit iff they differ.
      const match = (errorCode & this.pfecMask) === this.pfecMatch;
      const bit = (this.exceptionBitmap & (1 << PF_)) !== 0;
      if (bit !== match) return;
    } else if (vector >= 32 || (this.exceptionBitmap & (1 << vector)) === 0) return;
    const e = this.exit;
    const hasErr = errorCode >= 0;
    const type = vector === 3 || vector === 4 ? C.INTR_TYPE_SW_EXCEPTION : C.INTR_TYPE_HW_EXCEPTION;
    const qual = vector === PF_ ? this.c.faultCr2Lo : 0;
    const qualHi = vector === PF_ ? this.c.faultCr2Hi : 0;
    // Bit 12 for a fault of an IRET that unblocked NMIs (27.2.2; undefined for #DF, left 0).
    const unblocked = this.iretUnblockedNmi && vector !== DF_ ? C.INTR_INFO_NMI_UNBLOCKED_BY_IRET : 0;
    e.reason = V.EXIT_EXCEPTION_NMI;
    e.qualLo = qual;
    e.qualHi = qualHi;
    e.instrLen = instrLen;
    e.instrInfo = 0;
    e.intrInfo = C.INTR_INFO_VALID | type | vector | (hasErr ? C.INTR_INFO_DELIVER_CODE : 0) | unblocked;
    e.intrError = hasErr ? errorCode : 0;
    e.gpa = 0;
    e.glaLo = 0;
    e.glaHi = 0;
    throw VMEXIT;
  }

  /**
   * EPT violation (28.3.3.2): `qual` per table 27-7, with bit 12 when an IRET that unblocked NMIs
   * made the access; GPA and, when valid, the linear address.
   */
  eptViolation(gpa: number, qual: number, glaLo: number, glaHi: number, misconfig: boolean): never {
    const e = this.exit;
    e.reason = misconfig ? V.EXIT_EPT_MISCONFIG : V.EXIT_EPT_VIOLATION;
    e.qualLo = misconfig ? 0 : qual | (this.iretUnblockedNmi ? C.EPT_QUAL_NMI_UNBLOCKED_BY_IRET : 0);
    e.qualHi = 0;
    e.instrLen = 0;
    e.instrInfo = 0;
    e.intrInfo = 0;
    e.intrError = 0;
    e.gpa = gpa;
    e.glaLo = glaLo;
    e.glaHi = glaHi;
    throw VMEXIT;
  }

  /** A triple fault in non-root operation is a VM exit, not a shutdown (25.2). */
  tripleFault(): never {
    return this.exitNow(V.EXIT_TRIPLE_FAULT);
  }

  /** VMX instructions executed by a guest always exit (25.1.2), as does VMCALL. */
  vmxInstructionExit(i: Insn, reason: number): never {
    return this.instructionExit(reason, i);
  }

  /**
   * An NMI arrived with NMI exiting (26.2): VM exit, basic reason 0, interruption information
   * "NMI, vector 2" (27.2.2). Hardware leaves NMIs blocked until the host's NMI handler IRETs
   * (KVM's vmx_do_nmi_irqoff); nestlab's hosts handle exits in TypeScript, without an NMI
   * handler to return from, so that IRET is taken as done.
   */
  nmiExit(): never {
    return this.eventExit(V.EXIT_EXCEPTION_NMI, C.INTR_INFO_VALID | C.INTR_TYPE_NMI | 2);
  }

  /** An exit for an event outside any instruction, with its interruption information. */
  private eventExit(reason: number, intrInfo: number): never {
    const e = this.exit;
    e.reason = reason;
    e.qualLo = 0;
    e.qualHi = 0;
    e.instrLen = 0;
    e.instrInfo = 0;
    e.intrInfo = intrInfo;
    e.intrError = 0;
    e.gpa = 0;
    e.glaLo = 0;
    e.glaHi = 0;
    throw VMEXIT;
  }

  /** Whether the VMX-preemption timer of the current guest is counting down. */
  preemptionTimerArmed(): boolean {
    return this.preemptionDeadline !== Number.POSITIVE_INFINITY;
  }

  /**
   * Instructions (at the base cost) the guest may still run before the VMX-preemption timer
   * expires (25.5.1); 0 or less when it has. One rule for `VmxHost.run` and for guests that guest
   * software launched (`Cpu.run`).
   */
  preemptionInsnsLeft(): number {
    return Math.ceil((this.preemptionDeadline - this.c.cycles()) / this.c.cyclesPerInsn);
  }

  /** External-interrupt exiting (pin-based control bit 0). */
  externalInterruptExiting(): boolean {
    return (this.pin & C.PIN_EXT_INTR_EXITING) !== 0;
  }

  /**
   * An external interrupt with external-interrupt exiting (25.2): a VM exit, basic reason 1. With
   * "acknowledge interrupt on exit" the processor acknowledges the controller and stores the vector
   * in the exit interruption information (27.2.2); without it the interrupt stays pending there.
   */
  externalInterruptExit(intc: { acknowledgeInterrupt(): number }): never {
    const ack = (this.vmcs as Vmcs).read(V.VMCS_EXIT_CONTROLS) & C.EXIT_ACK_INTR_ON_EXIT;
    this.c.halted = false;
    return this.eventExit(
      V.EXIT_EXTERNAL_INTERRUPT,
      ack !== 0 ? C.INTR_INFO_VALID | C.INTR_TYPE_EXT_INTR | (intc.acknowledgeInterrupt() & 0xff) : 0,
    );
  }

  /** Interrupt-window exiting (25.2): the guest can take an interrupt now. */
  interruptWindowOpen(): boolean {
    return (this.proc & C.CPU_INTR_WINDOW_EXITING) !== 0;
  }

  /** Software reads RIP past a VM exit: validate writes by hypervisors to VMCS fields. */
  checkVmwrite(field: number): boolean {
    return !V.vmcsFieldReadOnly(field);
  }

  /** #GP for VMX instructions at CPL > 0 (30.3). */
  requireCpl0(): void {
    if (this.c.cpl !== 0) this.c.raise(GP, 0);
  }
}
