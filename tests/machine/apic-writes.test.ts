/**
 * The local APIC as the CPU sees it on the machine: a register write through MMIO or an MSR
 * (TPR, EOI, ICR, SELF_IPI) that makes an interrupt deliverable has it taken before the next
 * instruction (SDM vol. 3, 11.6.1, 11.8.3.1), not at the next scheduling slice; CPUID.1:EDX.APIC
 * is 0 while IA32_APIC_BASE.EN is 0 (SDM vol. 3, 11.4.3).
 */
import { describe, expect, it } from "vitest";
import { STOP_HALT } from "../../src/cpu/cpu.js";
import { enterLongMode } from "../../src/machine/longmode.js";
import { Machine } from "../../src/machine/machine.js";
import { asm, HAVE_AS } from "../helpers/asm.js";
import { reg } from "../helpers/machine.js";
import { CODE_BASE, frame, STACK_TOP, setupSys } from "../helpers/sys.js";

const APIC = 0xfee00000;
/** RSI holds the APIC page (a 32-bit displacement would sign-extend). */
const SVR_ON = "mov dword ptr [rsi + 0xf0], 0x1ff";
const SELF_IPI_40 = "mov dword ptr [rsi + 0x300], 0x40040"; // fixed, vector 0x40, shorthand self

function machine(source: string, setup?: (m: Machine) => void): Machine {
  const m = new Machine({ memory: 16 * 1024 * 1024 });
  enterLongMode(m.cpu);
  m.cpu.lo[4] = STACK_TOP;
  setupSys(m.cpu);
  m.cpu.mem.writeBytes(CODE_BASE, asm(`mov esi, ${APIC}\n${source}\nhlt\n`, 64));
  m.cpu.ripLo = CODE_BASE;
  setup?.(m);
  expect(m.cpu.run(10_000)).toBe(STOP_HALT);
  return m;
}

/** The interrupt 0x40 was taken with the saved RIP at the `mov eax, 1` marker (not after it). */
function takenBeforeMarker(m: Machine, rax = 0n): void {
  const f = frame(m.cpu);
  expect(f.vector).toBe(0x40);
  expect(m.cpu.mem.read(f.rip, 1)).toBe(0xb8); // mov eax, imm32: the marker had not run
  expect(reg(m.cpu, 0)).toBe(rax);
}

describe.skipIf(!HAVE_AS)("local APIC writes take effect before the next instruction", () => {
  it("a self-IPI through the xAPIC ICR", () => {
    takenBeforeMarker(machine(`sti\n${SVR_ON}\n${SELF_IPI_40}\nmov eax, 1\nnop`));
  });

  it("lowering the TPR through MMIO unmasks a pending interrupt", () => {
    const m = machine(
      `sti\n${SVR_ON}\nmov dword ptr [rsi + 0x80], 0xf0\n${SELF_IPI_40}\nmov ebx, 1\nmov dword ptr [rsi + 0x80], 0\nmov eax, 1\nnop`,
    );
    takenBeforeMarker(m);
    expect(reg(m.cpu, 3)).toBe(1n); // masked by the TPR until then
  });

  it("an EOI that lowers the processor priority", () => {
    const m = machine(`sti\n${SELF_IPI_40}\nmov ebx, 1\nmov dword ptr [rsi + 0xb0], 0\nmov eax, 1\nnop`, (x) => {
      x.lapic.writeMsr(0x1b, APIC | 0x900, 0); // (already enabled) and software-enable:
      x.lapic.mmioWrite(0xf0, 4, 0x1ff, 0);
      x.lapic.acceptExternal(0x50);
      expect(x.lapic.acknowledge()).toBe(0x50); // 0x50 in service blocks class 4
    });
    takenBeforeMarker(m);
    expect(reg(m.cpu, 3)).toBe(1n);
  });

  it("an x2APIC SELF_IPI MSR write", () => {
    const m = machine(
      `mov ecx, 0x1b\nmov eax, ${APIC | 0xd00}\nxor edx, edx\nwrmsr
       mov ecx, 0x80f\nmov eax, 0x1ff\nwrmsr
       sti
       mov ecx, 0x83f\nmov eax, 0x40\nwrmsr
       mov eax, 1\nnop`,
    );
    takenBeforeMarker(m, 0x40n);
  });
});

describe.skipIf(!HAVE_AS)("CPUID.1:EDX.APIC follows IA32_APIC_BASE.EN", () => {
  it("is 1 with the APIC enabled and 0 once software clears EN", () => {
    const m = machine(
      `mov eax, 1\ncpuid\nmov r8, rdx
       mov ecx, 0x1b\nmov eax, ${APIC | 0x100}\nxor edx, edx\nwrmsr
       mov eax, 1\ncpuid\nmov r9, rdx`,
    );
    expect(Number(reg(m.cpu, 8)) & (1 << 9)).toBe(1 << 9);
    expect(Number(reg(m.cpu, 9)) & (1 << 9)).toBe(0);
  });
});
