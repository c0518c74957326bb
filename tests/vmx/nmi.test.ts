/**
 * NMIs in VMX non-root operation (SDM vol. 3C): delivery through the guest IDT without NMI
 * exiting; NMI exiting (pin-based bit 3, exit reason 0 with interruption type NMI); virtual NMIs
 * (pin-based bit 5) with NMI-window exiting (primary bit 22, exit reason 8) and the "blocking by
 * NMI" interruptibility bit (bit 3), set by an injected NMI and cleared by the guest's IRET.
 */
import { describe, expect, it } from "vitest";
import type { InterruptController } from "../../src/cpu/ports.js";
import * as V from "../../src/x86/vmx.js";
import * as C from "../../src/x86/vmx-controls.js";
import { HAVE_AS } from "../helpers/asm.js";
import { iretToNext } from "../helpers/sys.js";
import { CODE, stub, VmxBed } from "../helpers/vmx.js";

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
});
