/**
 * NMIs through the local APIC's ICR (SDM vol. 3, 11.6.1: delivery mode 100b) and their delivery
 * (SDM vol. 3, 6.7.1): vector 2 regardless of RFLAGS.IF, and blocking of further NMIs until the
 * handler's IRET.
 */
import { describe, expect, it } from "vitest";
import { STOP_HALT } from "../../src/cpu/cpu.js";
import { enterLongMode } from "../../src/machine/longmode.js";
import { Machine } from "../../src/machine/machine.js";
import { NMI } from "../../src/x86/exceptions.js";
import { asm, HAVE_AS } from "../helpers/asm.js";
import { reg } from "../helpers/machine.js";
import { CODE_BASE, frame, STACK_TOP, setGate, setupSys } from "../helpers/sys.js";

const APIC = 0xfee00000;
const HANDLER = CODE_BASE + 0x800;
/** ICR low: delivery mode NMI (4 << 8), edge, assert; the vector field is ignored. */
const NMI_SELF = 0x40400 | 0x4000 | 0x99; // self shorthand
const NMI_PHYS_0 = 0x400 | 0x4000; // no shorthand, physical destination in ICR high (APIC ID 0)

function machine(source: string, handler?: string): Machine {
  const m = new Machine({ memory: 16 * 1024 * 1024 });
  enterLongMode(m.cpu);
  m.cpu.lo[4] = STACK_TOP;
  setupSys(m.cpu);
  m.cpu.mem.writeBytes(CODE_BASE, asm(`mov esi, ${APIC}\n${source}\nhlt\n`, 64));
  if (handler !== undefined) {
    m.cpu.mem.writeBytes(HANDLER, asm(handler, 64));
    setGate(m.cpu, NMI, HANDLER);
  }
  m.cpu.ripLo = CODE_BASE;
  expect(m.cpu.run(10_000)).toBe(STOP_HALT);
  return m;
}

describe.skipIf(!HAVE_AS)("NMIs through the local APIC", () => {
  it("a self-NMI through the ICR is taken through vector 2 before the next instruction, with IF = 0", () => {
    const m = machine(`cli\nmov dword ptr [rsi + 0x300], ${NMI_SELF}\nmov eax, 1\nnop`);
    const f = frame(m.cpu);
    expect(f.vector).toBe(NMI);
    expect(m.cpu.mem.read(f.rip, 1)).toBe(0xb8); // at the `mov eax, 1`
    expect(reg(m.cpu, 0)).toBe(0n);
    expect(m.lapic.nmiPending).toBe(false);
  });

  it("an NMI IPI with a physical destination naming this APIC is an NMI", () => {
    const m = machine(`mov dword ptr [rsi + 0x310], 0\nmov dword ptr [rsi + 0x300], ${NMI_PHYS_0}\nmov eax, 1\nnop`);
    expect(frame(m.cpu).vector).toBe(NMI);
    expect(reg(m.cpu, 0)).toBe(0n);
    // ...and one naming another APIC is not delivered here.
    const other = machine(
      `mov dword ptr [rsi + 0x310], 0x05000000\nmov dword ptr [rsi + 0x300], ${NMI_PHYS_0}\nmov eax, 1`,
    );
    expect(frame(other.cpu).vector).toBe(-1);
    expect(reg(other.cpu, 0)).toBe(1n);
  });

  it("a second NMI waits for the handler's IRET, then is taken", () => {
    // The handler counts NMIs in r8; the first one sends another NMI and records r8 after it.
    const handler = `
      inc r8
      cmp r8, 1
      jne 1f
      mov dword ptr [rsi + 0x300], ${NMI_SELF}
      nop
      mov r9, r8
    1:
      iretq`;
    const m = machine(`mov dword ptr [rsi + 0x300], ${NMI_SELF}\nmov eax, 1`, handler);
    expect(frame(m.cpu).vector).toBe(-1); // ended at the final HLT
    expect(reg(m.cpu, 8)).toBe(2n); // both NMIs were taken
    expect(reg(m.cpu, 9)).toBe(1n); // the second was held while the first handler ran
    expect(reg(m.cpu, 0)).toBe(1n);
    expect(m.cpu.nmiBlocked).toBe(false);
  });
});
