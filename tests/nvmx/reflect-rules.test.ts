/**
 * The reflection rules for the controls an executed L1 sets (issue 10 step 2), one test each,
 * with the assembly L1 of tests/helpers/nvmx-l1.ts: interrupt-window exiting, the VMX-preemption
 * timer L1 sets for L2, external-interrupt exiting with acknowledge-on-exit, and L2's HLT and I/O
 * that L1 does not intercept (L0 handles them for L1: HLT blocks until L1's timer, the I/O reaches
 * the L1 VM's devices). The log of exit reasons L1 saw and its reads are asserted exactly.
 */
import { describe, expect, it } from "vitest";
import * as V from "../../src/x86/vmx.js";
import * as C from "../../src/x86/vmx-controls.js";
import { HAVE_AS } from "../helpers/asm.js";
import { nvmxBed, RESULTS } from "../helpers/nvmx.js";
import { COUNT, LOG, l1Source, placeL2 } from "../helpers/nvmx-l1.js";

const PROC12 = 0x850061f2; // the helper's: HLT, unconditional I/O, secondary controls
const PIN12 = 0x17; // default1 + external-interrupt exiting
const R = RESULTS + 0x200;

const vmwrite = (field: number, value: number) => `
  mov edx, ${field}
  mov eax, ${value}
  vmwrite rdx, rax
`;

/** On exit `reason`, run `body` (eax holds the reason; `done` ends with status 0, `resume` re-enters L2). */
const on = (reason: number, body: string) => `
  cmp eax, ${reason}
  jne 8f
  ${body}
8:
`;

/** L1's handler for its timer's exit: VMREAD the timer value into [R], stop the timer, resume L2. */
const timerExitReadsValue = on(
  V.EXIT_PREEMPTION_TIMER,
  `mov edx, ${V.VMCS_PREEMPTION_TIMER_VALUE}
   vmread qword ptr [${R}], rdx
   ${vmwrite(V.VMCS_PIN_BASED_CONTROLS, PIN12)}
   jmp resume`,
);

/** L1 physical address of L2's guest-physical 0 (the helper's one EPT12 leaf). */
const L2_BASE = 0x400000;

type L1Memory = ReturnType<typeof nvmxBed>["vm"]["memory"];

/** A quadword at L2 guest-physical `gpa` (in L1 memory, behind EPT12's first leaf). */
function l2Quad(m: L1Memory, gpa: number, v: bigint): void {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, v, true);
  m.writeBytes(L2_BASE + gpa, bytes);
}

/**
 * L2's GDT at L2 0 (64-bit code 0x08, data 0x10: IRETQ reloads CS and SS) and its IDT at L2
 * 0x5000 with an interrupt gate for the NMI (vector 2) to L2 0x10100.
 */
function l2NmiTables(m: L1Memory): void {
  l2Quad(m, 0x08, 0x00af9b000000ffffn);
  l2Quad(m, 0x10, 0x00cf93000000ffffn);
  // Interrupt gate, vector 2: handler 0x10100, selector 0x08, present, DPL 0, type 0xE.
  l2Quad(m, 0x5000 + 2 * 16, 0x00008e0000080100n | (0x0001n << 48n));
  l2Quad(m, 0x5000 + 2 * 16 + 8, 0n);
}

/** L1 injects an NMI into L2 at launch, with virtual NMIs and NMI-window exiting. */
const INJECT_NMI =
  vmwrite(V.VMCS_PIN_BASED_CONTROLS, PIN12 | C.PIN_NMI_EXITING | C.PIN_VIRTUAL_NMIS) +
  vmwrite(V.VMCS_PROC_BASED_CONTROLS, PROC12 | C.CPU_NMI_WINDOW_EXITING) +
  vmwrite(V.VMCS_GUEST_IDTR_BASE, 0x5000) +
  vmwrite(V.VMCS_ENTRY_INTR_INFO, (C.INTR_INFO_VALID | C.INTR_TYPE_NMI | 2) >>> 0);

function run(l2: string, prelaunch: string, onExit: string, setup?: (m: L1Memory) => void) {
  const b = nvmxBed(l1Source(prelaunch, onExit));
  placeL2(b, l2);
  setup?.(b.vm.memory);
  const stop = b.run(400_000);
  const log = Array.from({ length: b.r32(COUNT) }, (_, i) => b.r32(LOG + i * 8));
  return { b, stop, log };
}

describe.skipIf(!HAVE_AS)("nested VMX reflection rules for L1's controls", () => {
  it("interrupt-window exiting L1 sets: L2 with IF=1 exits to L1 at once (reason 7)", () => {
    const { b, stop, log } = run(
      "cpuid\n hlt\n",
      vmwrite(V.VMCS_GUEST_RFLAGS, 0x202) + vmwrite(V.VMCS_PROC_BASED_CONTROLS, PROC12 | C.CPU_INTR_WINDOW_EXITING),
      on(V.EXIT_INTERRUPT_WINDOW, `${vmwrite(V.VMCS_PROC_BASED_CONTROLS, PROC12)} jmp resume`),
    );
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe(1);
    expect(log).toEqual([V.EXIT_INTERRUPT_WINDOW, V.EXIT_CPUID, V.EXIT_HLT]);
  });

  it("NMI-window exiting L1 sets with virtual NMIs: L2 exits to L1 at once (reason 8), not while VMCS12 blocks NMIs", () => {
    const nmiControls =
      vmwrite(V.VMCS_PIN_BASED_CONTROLS, PIN12 | C.PIN_NMI_EXITING | C.PIN_VIRTUAL_NMIS) +
      vmwrite(V.VMCS_PROC_BASED_CONTROLS, PROC12 | C.CPU_NMI_WINDOW_EXITING);
    const open = run(
      "cpuid\n hlt\n",
      nmiControls,
      on(V.EXIT_NMI_WINDOW, `${vmwrite(V.VMCS_PROC_BASED_CONTROLS, PROC12)} jmp resume`),
    );
    expect(open.stop.kind, open.stop.message).toBe("debug-exit");
    expect(open.b.vm.exitStatus).toBe(1);
    expect(open.log).toEqual([V.EXIT_NMI_WINDOW, V.EXIT_CPUID, V.EXIT_HLT]);
    // Blocking by NMI in VMCS12's interruptibility is virtual-NMI blocking: no window, L2 runs.
    const blocked = run("cpuid\n hlt\n", nmiControls + vmwrite(V.VMCS_GUEST_INTERRUPTIBILITY, 8), "");
    expect(blocked.stop.kind, blocked.stop.message).toBe("debug-exit");
    expect(blocked.log).toEqual([V.EXIT_CPUID, V.EXIT_HLT]);
    expect(blocked.b.engine.state(blocked.b.vcpu).current.get32(V.VMCS_GUEST_INTERRUPTIBILITY)).toBe(8);
  });

  it("an NMI L1 injects blocks L2's NMIs through VMCS12 until L2's IRET, which opens the NMI window (reason 8)", () => {
    // L2: CPUID then HLT at 0x10000; its NMI handler at 0x10100: HLT, IRETQ. IDT at L2 0x5000,
    // GDT at L2 0 (64-bit code 0x08, data 0x10: IRETQ reloads CS and SS).
    const l2 = "cpuid\n hlt\n .org 0x100\n hlt\n iretq\n";
    const { b, stop, log } = run(
      l2,
      INJECT_NMI,
      // First exit (the handler's HLT): L2's interruptibility into [R], past the HLT. The window:
      // interruptibility and RIP into [R+8], [R+16], window off.
      on(
        V.EXIT_HLT,
        `cmp qword ptr [${COUNT}], 1
         jne 7f
         mov edx, ${V.VMCS_GUEST_INTERRUPTIBILITY}
         vmread qword ptr [${R}], rdx
         jmp skip
      7:`,
      ) +
        on(
          V.EXIT_NMI_WINDOW,
          `mov edx, ${V.VMCS_GUEST_INTERRUPTIBILITY}
           vmread qword ptr [${R + 8}], rdx
           mov edx, ${V.VMCS_GUEST_RIP}
           vmread qword ptr [${R + 16}], rdx
           ${vmwrite(V.VMCS_PROC_BASED_CONTROLS, PROC12)}
           jmp resume`,
        ),
      l2NmiTables,
    );
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe(1);
    expect(log).toEqual([V.EXIT_HLT, V.EXIT_NMI_WINDOW, V.EXIT_CPUID, V.EXIT_HLT]);
    expect(b.r32(R)).toBe(C.INTERRUPTIBILITY_NMI); // the injected NMI blocks (virtual) NMIs
    expect([b.r32(R + 8), b.r32(R + 16)]).toEqual([0, 0x10000]); // IRETQ unblocked: window before CPUID
    expect(b.engine.state(b.vcpu).reflected.count(2, V.EXIT_NMI_WINDOW)).toBe(1);
  });

  it("L2's IRET from its NMI handler hits an EPT02 miss: L0 sets blocking by NMI again, so the NMI window opens only after the IRET", () => {
    // The handler IRETQs from a frame on L2 page 0x180000, which nothing touched (no EPT02 leaf):
    // the IRET ends virtual-NMI blocking, then its read exits (qualification bit 12, SDM vol. 3C
    // table 27-7). L0 fills EPT02 and must set bit 3 again before it resumes L2 at the IRET
    // (31.7.1.2); without that the window would open at the IRET itself (RIP 0x10107).
    const FRAME = 0x180000;
    const l2 = `cpuid\n hlt\n .org 0x100\n mov rsp, ${FRAME}\n iretq\n`;
    const { b, stop, log } = run(
      l2,
      INJECT_NMI,
      on(
        V.EXIT_NMI_WINDOW,
        `mov edx, ${V.VMCS_GUEST_INTERRUPTIBILITY}
         vmread qword ptr [${R}], rdx
         mov edx, ${V.VMCS_GUEST_RIP}
         vmread qword ptr [${R + 8}], rdx
         ${vmwrite(V.VMCS_PROC_BASED_CONTROLS, PROC12)}
         jmp resume`,
      ),
      (m) => {
        l2NmiTables(m);
        // IRETQ's frame: RIP 0x10000 (the CPUID), CS 0x08, RFLAGS 0x2, RSP 0x20000, SS 0x10.
        for (const [i, v] of [0x10000n, 0x08n, 0x2n, 0x20000n, 0x10n].entries()) l2Quad(m, FRAME + i * 8, v);
      },
    );
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe(1);
    expect(log).toEqual([V.EXIT_NMI_WINDOW, V.EXIT_CPUID, V.EXIT_HLT]);
    expect([b.r32(R), b.r32(R + 8)]).toEqual([0, 0x10000]); // the window after the IRET, not at it
    const s = b.engine.state(b.vcpu);
    expect(s.reflected.count(2, V.EXIT_NMI_WINDOW)).toBe(1);
    // L2's exits: 8 EPT02 misses L0 handles — L2's three page-table pages (0x1000-0x3000), the
    // IDT (0x5000, the NMI re-injected), the GDT (0), the stack (0x1f000), the handler's code
    // (0x10000) and the frame (0x180000) under the IRET — then the window, CPUID and HLT for L1.
    expect(s.l2Exits).toBe(8 + 3);
    expect(b.l0.exitCountsAt(2)).toEqual([
      { reason: "ept_violation", count: 8 },
      { reason: "cpuid", count: 1 },
      { reason: "hlt", count: 1 },
      { reason: "nmi_window", count: 1 },
    ]);
    expect((s.ept02 as NonNullable<typeof s.ept02>).built).toBe(8);
  });

  it("L1's preemption timer for L2 exits to L1 (reason 52); VMCS12's timer value is L1's, not L0's", () => {
    const ticks = 2000;
    const { b, stop, log } = run(
      "cpuid\n mov r8d, 100000\n 1: dec r8d\n jnz 1b\n hlt\n",
      vmwrite(V.VMCS_PIN_BASED_CONTROLS, PIN12 | C.PIN_PREEMPTION_TIMER) +
        vmwrite(V.VMCS_PREEMPTION_TIMER_VALUE, ticks),
      timerExitReadsValue,
    );
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe(1);
    expect(log).toEqual([V.EXIT_CPUID, V.EXIT_PREEMPTION_TIMER, V.EXIT_HLT]);
    expect(b.r32(R)).toBe(ticks); // no "save timer" exit control: the value L1 wrote
  });

  it('with "save VMX-preemption timer value", VMCS12 gets 0 at the timer\'s exit', () => {
    const { b, stop, log } = run(
      "mov r8d, 100000\n 1: dec r8d\n jnz 1b\n hlt\n",
      vmwrite(V.VMCS_PIN_BASED_CONTROLS, PIN12 | C.PIN_PREEMPTION_TIMER) +
        vmwrite(V.VMCS_PREEMPTION_TIMER_VALUE, 2000) +
        vmwrite(V.VMCS_EXIT_CONTROLS, 0x236fff | C.EXIT_SAVE_PREEMPTION_TIMER),
      // The timer off again, "save" off with it: without the timer it is VMfail(7) (SDM 26.2.1.2).
      on(
        V.EXIT_PREEMPTION_TIMER,
        `mov edx, ${V.VMCS_PREEMPTION_TIMER_VALUE}
         vmread qword ptr [${R}], rdx
         ${vmwrite(V.VMCS_PIN_BASED_CONTROLS, PIN12)}
         ${vmwrite(V.VMCS_EXIT_CONTROLS, 0x236fff)}
         jmp resume`,
      ),
    );
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(log).toEqual([V.EXIT_PREEMPTION_TIMER, V.EXIT_HLT]);
    expect(b.r32(R)).toBe(0);
  });

  it("HLT L1 does not intercept: L0 blocks L2 (idle) until L1's timer, which exits to L1", () => {
    const { b, stop, log } = run(
      "cpuid\n hlt\n out 0x80, al\n",
      vmwrite(V.VMCS_PROC_BASED_CONTROLS, PROC12 & ~C.CPU_HLT_EXITING) +
        vmwrite(V.VMCS_PIN_BASED_CONTROLS, PIN12 | C.PIN_PREEMPTION_TIMER) +
        vmwrite(V.VMCS_PREEMPTION_TIMER_VALUE, 100_000),
      on(V.EXIT_PREEMPTION_TIMER, `${vmwrite(V.VMCS_PIN_BASED_CONTROLS, PIN12)} jmp resume`) +
        on(V.EXIT_IO_INSTRUCTION, "jmp done"),
    );
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe(1);
    expect(log).toEqual([V.EXIT_CPUID, V.EXIT_PREEMPTION_TIMER, V.EXIT_IO_INSTRUCTION]);
    const idle = b.l0.ledger.lines().filter((l) => l.level === 2 && l.category === "idle");
    expect(idle.map((l) => [l.reason, l.count])).toEqual([["hlt", 1]]);
    expect(idle[0].cycles).toBeGreaterThan(0);
    expect(idle[0].cycles).toBeLessThanOrEqual(100_000 * b.l0.host.preemptionTimerCyclesPerTick);
  });

  it("HLT L1 does not intercept with nothing armed stops L1 with a message naming it", () => {
    const { stop } = run("hlt\n", vmwrite(V.VMCS_PROC_BASED_CONTROLS, PROC12 & ~C.CPU_HLT_EXITING), "");
    expect(stop.kind).toBe("error");
    expect(stop.message).toMatch(/L2 halted \(L1 does not intercept HLT\)/);
  });

  it("I/O L1 does not intercept reaches the L1 VM's devices (L2's OUT to the debug-exit port)", () => {
    const { b, stop, log } = run(
      "cpuid\n mov al, 5\n out 0xf4, al\n hlt\n",
      vmwrite(V.VMCS_PROC_BASED_CONTROLS, PROC12 & ~C.CPU_UNCOND_IO_EXITING),
      "",
    );
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe((5 << 1) | 1);
    expect(log).toEqual([V.EXIT_CPUID]);
    expect(
      b.engine
        .state(b.vcpu)
        .reflected.list()
        .filter((e) => e.code === V.EXIT_IO_INSTRUCTION),
    ).toEqual([]);
  });

  it("an interrupt for L1 while L2 runs exits to L1 (reason 1) with the vector acknowledged", () => {
    const x2apic = `
      mov ecx, 0x1b
      rdmsr
      or eax, 0xc00
      wrmsr
      mov ecx, 0x80f
      mov eax, 0x1ff
      xor edx, edx
      wrmsr
      mov ecx, 0x832
      mov eax, 0x40030
      wrmsr
      rdtsc
      add eax, 50000
      adc edx, 0
      mov ecx, 0x6e0
      wrmsr
    `;
    const { b, stop, log } = run(
      "cpuid\n 1: jmp 1b\n",
      x2apic + vmwrite(V.VMCS_EXIT_CONTROLS, 0x236fff | C.EXIT_ACK_INTR_ON_EXIT),
      on(
        V.EXIT_EXTERNAL_INTERRUPT,
        `mov edx, ${V.VMCS_EXIT_INTR_INFO}
         vmread qword ptr [${R}], rdx
         jmp done`,
      ),
    );
    expect(stop.kind, stop.message).toBe("debug-exit");
    expect(b.vm.exitStatus).toBe(1);
    expect(log).toEqual([V.EXIT_CPUID, V.EXIT_EXTERNAL_INTERRUPT]);
    expect(b.r32(R) >>> 0).toBe((C.INTR_INFO_VALID | C.INTR_TYPE_EXT_INTR | 0x30) >>> 0);
  });
});
