/**
 * NMIs in VMX non-root operation (SDM vol. 3C): delivery through the guest IDT without NMI
 * exiting; NMI exiting (pin-based bit 3, exit reason 0 with interruption type NMI); virtual NMIs
 * (pin-based bit 5) with NMI-window exiting (primary bit 22, exit reason 8) and the "blocking by
 * NMI" interruptibility bit (bit 3), set by an injected NMI and cleared by the guest's IRET.
 */
import { describe, expect, it } from "vitest";
import type { InterruptController } from "../../src/cpu/ports.js";
import { RUN_ENTRY_FAILED } from "../../src/cpu/vmx/host.js";
import * as V from "../../src/x86/vmx.js";
import * as C from "../../src/x86/vmx-controls.js";
import { HAVE_AS } from "../helpers/asm.js";
import { iretToNext } from "../helpers/sys.js";
import { CODE, DATA, STACK_TOP, stub, VmxBed } from "../helpers/vmx.js";

/** An interrupt controller that only has NMIs. */
class NmiSource implements InterruptController {
  pending = 0;
  hasPendingInterrupt(): boolean {
    return false;
  }
  acknowledgeInterrupt(): number {
    return 0xff;
  }
  hasPendingNmi(): boolean {
    return this.pending > 0;
  }
  acknowledgeNmi(): void {
    this.pending--;
  }
}

function bed(pin: number, proc = 0): { b: VmxBed; nmi: NmiSource } {
  const b = new VmxBed();
  const nmi = new NmiSource();
  b.cpu.intc = nmi;
  b.setControls({ pin, proc });
  return { b, nmi };
}

describe.skipIf(!HAVE_AS)("VMX: NMIs", () => {
  it("without NMI exiting an NMI is delivered through the guest IDT and blocks NMIs", () => {
    const { b, nmi } = bed(0);
    nmi.pending = 1;
    b.load("nop\n");
    expect(b.runToExit().reason).toBe(V.EXIT_VMCALL);
    expect(b.rip()).toBe(stub(2));
    expect(b.read64(b.rsp())).toBe(CODE);
    expect(b.host.vmread(V.VMCS_GUEST_INTERRUPTIBILITY) & C.INTERRUPTIBILITY_NMI).toBe(C.INTERRUPTIBILITY_NMI);
  });

  it("NMI exiting: exit reason 0, interruption information NMI / vector 2; the NMI is consumed", () => {
    const { b, nmi } = bed(C.PIN_NMI_EXITING);
    b.load("nop\nnop\ncpuid\n");
    b.run(1); // one instruction in, then the NMI arrives
    nmi.pending = 1;
    b.cpu.notifyInterrupt();
    const e = b.runToExit();
    expect(e.reason).toBe(V.EXIT_EXCEPTION_NMI);
    expect(b.host.vmread(V.VMCS_EXIT_INTR_INFO) >>> 0).toBe((C.INTR_INFO_VALID | C.INTR_TYPE_NMI | 2) >>> 0);
    expect(b.rip()).toBe(CODE + 1);
    expect(nmi.pending).toBe(0);
    expect(b.runToExit().reason).toBe(V.EXIT_CPUID); // nothing left pending
  });

  it("NMI exiting without virtual NMIs: blocking by NMI in the guest state holds the NMI", () => {
    const { b, nmi } = bed(C.PIN_NMI_EXITING);
    b.host.vmwrite(V.VMCS_GUEST_INTERRUPTIBILITY, C.INTERRUPTIBILITY_NMI);
    nmi.pending = 1;
    b.load("nop\ncpuid\n");
    expect(b.runToExit().reason).toBe(V.EXIT_CPUID);
    expect(nmi.pending).toBe(1);
  });

  it("NMI-window exiting with virtual NMIs: exits at once without virtual-NMI blocking", () => {
    const { b } = bed(C.PIN_NMI_EXITING | C.PIN_VIRTUAL_NMIS, C.CPU_NMI_WINDOW_EXITING);
    b.load("nop\ncpuid\n");
    expect(b.runToExit().reason).toBe(V.EXIT_NMI_WINDOW);
    expect(b.rip()).toBe(CODE);
    expect(b.host.vmread(V.VMCS_EXIT_INSTRUCTION_LENGTH)).toBe(0);
  });

  it("virtual-NMI blocking from the guest state holds the NMI window until the guest's IRET", () => {
    const { b } = bed(C.PIN_NMI_EXITING | C.PIN_VIRTUAL_NMIS, C.CPU_NMI_WINDOW_EXITING);
    b.host.vmwrite(V.VMCS_GUEST_INTERRUPTIBILITY, C.INTERRUPTIBILITY_NMI);
    const code = b.load(`nop\n${iretToNext()}\nnop\ncpuid\n`);
    expect(b.runToExit().reason).toBe(V.EXIT_NMI_WINDOW);
    // The exit comes right after the IRET, at `next` (two bytes before the final NOP + CPUID).
    expect(b.rip()).toBe(CODE + code.length - 3);
    expect(b.host.vmread(V.VMCS_GUEST_INTERRUPTIBILITY) & C.INTERRUPTIBILITY_NMI).toBe(0);
  });

  it("an injected NMI goes through vector 2 and sets virtual-NMI blocking (the NMI window stays shut)", () => {
    const { b } = bed(C.PIN_NMI_EXITING | C.PIN_VIRTUAL_NMIS, C.CPU_NMI_WINDOW_EXITING);
    b.host.vmwrite(V.VMCS_ENTRY_INTR_INFO, C.INTR_INFO_VALID | C.INTR_TYPE_NMI | 2);
    b.load("nop\n");
    expect(b.runToExit().reason).toBe(V.EXIT_VMCALL);
    expect(b.rip()).toBe(stub(2));
    expect(b.read64(b.rsp())).toBe(CODE);
    expect(b.host.vmread(V.VMCS_GUEST_INTERRUPTIBILITY) & C.INTERRUPTIBILITY_NMI).toBe(C.INTERRUPTIBILITY_NMI);
  });

  /**
   * An NMI handler's IRETQ from a frame at DATA (RIP CODE + 9, CS `cs`, RFLAGS 0x2, RSP
   * STACK_TOP, SS 0x10), entered with virtual-NMI blocking and NMI-window exiting.
   */
  function iretFromHandler(cs: number, exceptionBitmap = 0): VmxBed {
    const { b } = bed(C.PIN_NMI_EXITING | C.PIN_VIRTUAL_NMIS, C.CPU_NMI_WINDOW_EXITING);
    b.host.vmwrite(V.VMCS_EXCEPTION_BITMAP, exceptionBitmap);
    b.host.vmwrite(V.VMCS_GUEST_INTERRUPTIBILITY, C.INTERRUPTIBILITY_NMI);
    b.load(`mov rsp, ${DATA}\niretq\nnop\ncpuid\n`); // IRETQ at CODE + 7, the NOP at CODE + 9
    for (const [i, v] of [CODE + 9, cs, 2, STACK_TOP, 0x10].entries()) b.write64(DATA + i * 8, v);
    return b;
  }

  it("an IRET that ended virtual-NMI blocking hits an EPT violation: qualification bit 12, bit 3 saved clear (27.2.1, 27.1)", () => {
    const b = iretFromHandler(0x08);
    b.ept.unmap(DATA);
    const e = b.runToExit();
    expect(e.reason).toBe(V.EXIT_EPT_VIOLATION);
    expect(b.rip()).toBe(CODE + 7);
    expect(b.host.vmread(V.VMCS_EXIT_QUALIFICATION) & C.EPT_QUAL_NMI_UNBLOCKED_BY_IRET).toBe(
      C.EPT_QUAL_NMI_UNBLOCKED_BY_IRET,
    );
    expect(b.host.vmread(V.VMCS_GUEST_INTERRUPTIBILITY) & C.INTERRUPTIBILITY_NMI).toBe(0);
    b.ept.map(DATA, b.hpa(DATA), 7);
    // The VMM sets blocking by NMI again before it resumes the guest at the IRET (31.7.1.2): the
    // window opens once the IRET completes, at its target.
    b.host.vmwrite(V.VMCS_GUEST_INTERRUPTIBILITY, C.INTERRUPTIBILITY_NMI);
    expect(b.runToExit().reason).toBe(V.EXIT_NMI_WINDOW);
    expect(b.rip()).toBe(CODE + 9);
  });

  it("a VMM that leaves bit 3 clear after that exit gets the NMI window at the IRET itself, before it completes", () => {
    const b = iretFromHandler(0x08);
    b.ept.unmap(DATA);
    expect(b.runToExit().reason).toBe(V.EXIT_EPT_VIOLATION);
    b.ept.map(DATA, b.hpa(DATA), 7);
    expect(b.runToExit().reason).toBe(V.EXIT_NMI_WINDOW);
    expect(b.rip()).toBe(CODE + 7);
  });

  it("an IRET without NMI blocking that hits an EPT violation: bit 12 clear", () => {
    const b = iretFromHandler(0x08);
    b.host.vmwrite(V.VMCS_PROC_BASED_CONTROLS, C.CPU_SECONDARY_CONTROLS); // no NMI window
    b.host.vmwrite(V.VMCS_GUEST_INTERRUPTIBILITY, 0);
    b.ept.unmap(DATA);
    expect(b.runToExit().reason).toBe(V.EXIT_EPT_VIOLATION);
    expect(b.host.vmread(V.VMCS_EXIT_QUALIFICATION) & C.EPT_QUAL_NMI_UNBLOCKED_BY_IRET).toBe(0);
  });

  it("an IRET fault that exits (#GP, exception bitmap) reports bit 12 in the exit interruption information (27.2.2)", () => {
    const b = iretFromHandler(0x18, 1 << 13); // selector 0x18 is past the GDT limit: #GP(0x18)
    const e = b.runToExit();
    expect(e.reason).toBe(V.EXIT_EXCEPTION_NMI);
    expect(b.host.vmread(V.VMCS_EXIT_INTR_INFO) >>> 0).toBe(
      (C.INTR_INFO_VALID |
        C.INTR_TYPE_HW_EXCEPTION |
        C.INTR_INFO_DELIVER_CODE |
        C.INTR_INFO_NMI_UNBLOCKED_BY_IRET |
        13) >>>
        0,
    );
    expect(b.host.vmread(V.VMCS_EXIT_INTR_ERROR_CODE)).toBe(0x18);
    expect(b.host.vmread(V.VMCS_GUEST_INTERRUPTIBILITY) & C.INTERRUPTIBILITY_NMI).toBe(0);
  });

  /**
   * IRET and NMI blocking by the pin-based controls (SDM vol. 3C 25.3, IRET): the guest enters
   * with "blocking by NMI" (bit 3) and one NMI pending, and runs an IRET then CPUID. Returns the
   * bed and the address right after the IRET.
   */
  function iretWithNmiPending(pin: number): { b: VmxBed; nmi: NmiSource; afterIret: number } {
    const { b, nmi } = bed(pin);
    b.host.vmwrite(V.VMCS_GUEST_INTERRUPTIBILITY, C.INTERRUPTIBILITY_NMI);
    nmi.pending = 1;
    const code = b.load(`${iretToNext()}\ncpuid\n`);
    return { b, nmi, afterIret: CODE + code.length - 2 };
  }

  it("IRET with NMI exiting 0 unblocks NMIs: the pending NMI goes through the guest IDT right after it", () => {
    const { b, nmi, afterIret } = iretWithNmiPending(0);
    expect(b.runToExit().reason).toBe(V.EXIT_VMCALL);
    expect(b.rip()).toBe(stub(2));
    expect(b.read64(b.rsp())).toBe(afterIret);
    expect(nmi.pending).toBe(0);
  });

  it("IRET with NMI exiting 1 and virtual NMIs 0 leaves blocking by NMI set: the NMI stays held", () => {
    const { b, nmi, afterIret } = iretWithNmiPending(C.PIN_NMI_EXITING);
    expect(b.runToExit().reason).toBe(V.EXIT_CPUID);
    expect(b.rip()).toBe(afterIret);
    expect(nmi.pending).toBe(1);
    expect(b.host.vmread(V.VMCS_GUEST_INTERRUPTIBILITY) & C.INTERRUPTIBILITY_NMI).toBe(C.INTERRUPTIBILITY_NMI);
  });

  it("IRET with NMI exiting and virtual NMIs ends virtual-NMI blocking only: physical blocking and the held NMI stay", () => {
    const { b, nmi, afterIret } = iretWithNmiPending(C.PIN_NMI_EXITING | C.PIN_VIRTUAL_NMIS);
    nmi.pending = 0; // with virtual NMIs a physical NMI exits whatever the blocking; see it unchanged instead
    b.cpu.nmiBlocked = true; // physical blocking, not part of the guest state under virtual NMIs
    expect(b.runToExit().reason).toBe(V.EXIT_CPUID);
    expect(b.rip()).toBe(afterIret);
    expect(b.host.vmread(V.VMCS_GUEST_INTERRUPTIBILITY) & C.INTERRUPTIBILITY_NMI).toBe(0);
    expect(b.cpu.nmiBlocked).toBe(true);
  });

  it("an IRET with NMI exiting 1 and virtual NMIs 0 hits an EPT violation: bit 12 clear (it unblocked nothing), bit 3 saved set", () => {
    const { b } = bed(C.PIN_NMI_EXITING);
    b.host.vmwrite(V.VMCS_GUEST_INTERRUPTIBILITY, C.INTERRUPTIBILITY_NMI);
    b.load(`mov rsp, ${DATA}\niretq\nnop\ncpuid\n`); // IRETQ at CODE + 7
    b.ept.unmap(DATA);
    expect(b.runToExit().reason).toBe(V.EXIT_EPT_VIOLATION);
    expect(b.rip()).toBe(CODE + 7);
    expect(b.host.vmread(V.VMCS_EXIT_QUALIFICATION) & C.EPT_QUAL_NMI_UNBLOCKED_BY_IRET).toBe(0);
    expect(b.host.vmread(V.VMCS_GUEST_INTERRUPTIBILITY) & C.INTERRUPTIBILITY_NMI).toBe(C.INTERRUPTIBILITY_NMI);
  });

  it("an injected NMI whose delivery exits leaves bit 3 set (27.1); re-injecting it needs the bit clear (26.3.1.5)", () => {
    const { b } = bed(C.PIN_NMI_EXITING | C.PIN_VIRTUAL_NMIS);
    const nmi = (C.INTR_INFO_VALID | C.INTR_TYPE_NMI | 2) >>> 0;
    b.host.vmwrite(V.VMCS_ENTRY_INTR_INFO, nmi);
    b.ept.unmap(STACK_TOP - 4096); // the frame's page
    b.load("nop\n");
    expect(b.runToExit().reason).toBe(V.EXIT_EPT_VIOLATION);
    expect(b.host.vmread(V.VMCS_IDT_VECTORING_INFO) >>> 0).toBe(nmi);
    expect(b.host.vmread(V.VMCS_GUEST_INTERRUPTIBILITY) & C.INTERRUPTIBILITY_NMI).toBe(C.INTERRUPTIBILITY_NMI);
    expect(b.rip()).toBe(CODE);
    b.ept.map(STACK_TOP - 4096, b.hpa(STACK_TOP - 4096), 7);
    b.host.vmwrite(V.VMCS_ENTRY_INTR_INFO, nmi);
    expect(b.run()).toBe(RUN_ENTRY_FAILED);
    expect(b.host.entryError).toMatch(/NMI injected with virtual NMIs while blocking by NMI is set/);
    b.host.vmwrite(V.VMCS_GUEST_INTERRUPTIBILITY, 0);
    expect(b.runToExit().reason).toBe(V.EXIT_VMCALL);
    expect(b.rip()).toBe(stub(2));
    expect(b.read64(b.rsp())).toBe(CODE);
    expect(b.host.vmread(V.VMCS_GUEST_INTERRUPTIBILITY) & C.INTERRUPTIBILITY_NMI).toBe(C.INTERRUPTIBILITY_NMI);
  });
});
