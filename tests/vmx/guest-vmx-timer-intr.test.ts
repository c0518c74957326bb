/**
 * VMX for guest software: the VMX-preemption timer (SDM vol. 3, 25.5.1; exit reason 52) and
 * external-interrupt exiting with and without "acknowledge interrupt on exit" (25.2, 27.2.2;
 * exit reason 1), as a hypervisor in assembly uses them for its L2 (guests/l1hv does).
 */
import { describe, expect, it } from "vitest";
import { type Cpu, STOP_HALT } from "../../src/cpu/cpu.js";
import * as V from "../../src/x86/vmx.js";
import { HAVE_AS } from "../helpers/asm.js";
import { runVmx, vmxCpu } from "../helpers/guest-vmx.js";

const R13 = 13;
const R14 = 14;
const R15 = 15;

/** A hypervisor whose L2 spins with interrupts disabled; the first exit's reason goes to R13 and its
 * interruption information to R14. `pin` and `exit` are OR-ed into those controls. */
function program(pin: number, exit: number, timer: number): string {
  return `
  ENABLE_VMX
  LOAD_VMCS_A
  BUILD_EPT
  CONTROLS 0x80000000, 2
  HOST_STATE exit_handler
  GUEST_STATE l2
  VR rbx, 0x4000
  or ebx, ${pin}
  VW 0x4000, rbx
  VR rbx, 0x400c
  or ebx, ${exit}
  VW 0x400c, rbx
  VW 0x482e, ${timer}
  vmlaunch
  jmp fail
exit_handler:
  VR r13, 0x4402
  VR r14, 0x4404
  mov r15, 0x600d
  hlt
l2:
  cli
1:
  jmp 1b
`;
}

class OneInterrupt {
  pending = true;
  acks = 0;
  hasPendingInterrupt(): boolean {
    return this.pending;
  }
  acknowledgeInterrupt(): number {
    this.pending = false;
    this.acks++;
    return 0x31;
  }
}

function ran(c: Cpu, stop: number): boolean {
  return stop === STOP_HALT && c.lo[R15] === 0x600d;
}

describe.skipIf(!HAVE_AS)("VMX for guest software: preemption timer and external-interrupt exiting", () => {
  it("the VMX-preemption timer counts TSC/32 and exits with reason 52 after about value × 32 cycles", () => {
    const c = vmxCpu(program(0x40, 0, 100));
    const stop = runVmx(c);
    expect(ran(c, stop)).toBe(true);
    expect(c.lo[R13]).toBe(V.EXIT_PREEMPTION_TIMER);
    expect(c.vmxUnit.exitCounts[V.EXIT_PREEMPTION_TIMER]).toBe(1);
    let l2 = 0;
    for (const l of c.ledger.lines()) if (l.level === 1 && l.reason === "instructions") l2 += l.count;
    // 100 ticks of 32 TSC cycles at the base cost of one cycle per instruction (the default profile
    // has no cost model bound here: one cycle per instruction)
    expect(l2).toBeGreaterThanOrEqual(100 * 32 - 1);
    expect(l2).toBeLessThanOrEqual(100 * 32 + 1);
  });

  it("a timer value of 0 exits before the guest's first instruction", () => {
    const c = vmxCpu(program(0x40, 0, 0));
    expect(ran(c, runVmx(c))).toBe(true);
    expect(c.lo[R13]).toBe(V.EXIT_PREEMPTION_TIMER);
    let l2 = 0;
    for (const l of c.ledger.lines()) if (l.level === 1 && l.reason === "instructions") l2 += l.count;
    expect(l2).toBe(0);
  });

  it("external-interrupt exiting with acknowledge-on-exit: reason 1, the vector in the exit information, IF ignored", () => {
    const c = vmxCpu(program(0x1, 0x8000, 0));
    const intc = new OneInterrupt();
    c.intc = intc;
    expect(ran(c, runVmx(c))).toBe(true);
    expect(c.lo[R13]).toBe(V.EXIT_EXTERNAL_INTERRUPT);
    expect(c.lo[R14] >>> 0).toBe(0x80000031); // valid, type external interrupt (0), vector 0x31
    expect(intc.acks).toBe(1);
  });

  it("without acknowledge-on-exit the interrupt stays pending and the information is invalid", () => {
    const c = vmxCpu(program(0x1, 0, 0));
    const intc = new OneInterrupt();
    c.intc = intc;
    // The host runs with IF = 0 after the exit, so it does not take the interrupt either.
    expect(ran(c, runVmx(c))).toBe(true);
    expect(c.lo[R13]).toBe(V.EXIT_EXTERNAL_INTERRUPT);
    expect(c.lo[R14]).toBe(0);
    expect(intc.acks).toBe(0);
    expect(intc.pending).toBe(true);
  });
});
