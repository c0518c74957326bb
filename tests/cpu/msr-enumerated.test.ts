/**
 * MSRs whose existence CPUID enumerates (SDM vol. 4, table 2-2): IA32_SPEC_CTRL (0x48) and
 * IA32_PRED_CMD (0x49) exist only with CPUID.7.0:EDX[26]/[27]/[31]; PRED_CMD is write-only.
 * IA32_TSC_ADJUST (0x3b) exists with CPUID.7.0:EBX[1] and moves with the TSC (SDM vol. 3, 17.17.3).
 */
import { describe, expect, it } from "vitest";
import type { Cpu } from "../../src/cpu/cpu.js";
import { F7B_TSC_ADJUST, F7D_IBRS_IBPB, F7D_SSBD, F7D_STIBP } from "../../src/x86/cpuid.js";
import { GP } from "../../src/x86/exceptions.js";
import { HAVE_AS } from "../helpers/asm.js";
import { reg } from "../helpers/machine.js";
import { expectHalt, fault, frame, runSys, sysCpu } from "../helpers/sys.js";

/** Give the CPU model leaf 7.0 EBX/EDX bits. */
function leaf7(c: Cpu, ebxSet: number, ebxClear: number, edx: number): void {
  const q = new Int32Array(4);
  c.model.query(7, 0, q);
  c.model.set(7, 0, [q[0], (q[1] | ebxSet) & ~ebxClear, q[2], edx]);
}

function finish(source: string, setup?: (c: Cpu) => void): Cpu {
  const c = sysCpu(source, setup);
  expectHalt(c, runSys(c));
  const f = frame(c);
  if (f.vector >= 0) throw new Error(`unexpected vector ${f.vector} at ${f.rip.toString(16)}`);
  return c;
}

describe.skipIf(!HAVE_AS)("CPUID-enumerated MSRs", () => {
  it("IA32_SPEC_CTRL and IA32_PRED_CMD are #GP(0) when CPUID.7.0:EDX does not enumerate them", () => {
    const rd = "mov ecx, 0x48\nrdmsr";
    const wr = (n: number) => `mov ecx, ${n}\nxor eax, eax\nxor edx, edx\nwrmsr`;
    expect(fault(rd).f).toMatchObject({ vector: GP, errorCode: 0 });
    expect(fault(wr(0x48)).f).toMatchObject({ vector: GP, errorCode: 0 });
    expect(fault(wr(0x49)).f).toMatchObject({ vector: GP, errorCode: 0 });
  });

  it("IA32_SPEC_CTRL keeps only the bits CPUID enumerates; reserved bits are #GP(0)", () => {
    const ibrsOnly = (c: Cpu) => leaf7(c, 0, 0, F7D_IBRS_IBPB);
    const c = finish("mov ecx, 0x48\nmov eax, 1\nxor edx, edx\nwrmsr\nxor eax, eax\nrdmsr", ibrsOnly);
    expect(reg(c, 0)).toBe(1n);
    // STIBP (bit 1) is reserved without EDX[27].
    expect(fault("mov ecx, 0x48\nmov eax, 2\nxor edx, edx\nwrmsr", ibrsOnly).f.vector).toBe(GP);
    // SSBD alone makes the MSR exist with only bit 2 writable.
    const ssbd = (x: Cpu) => leaf7(x, 0, 0, F7D_SSBD);
    const c2 = finish("mov ecx, 0x48\nmov eax, 4\nxor edx, edx\nwrmsr\nxor eax, eax\nrdmsr", ssbd);
    expect(reg(c2, 0)).toBe(4n);
    expect(fault("mov ecx, 0x48\nmov eax, 1\nxor edx, edx\nwrmsr", ssbd).f.vector).toBe(GP);
    const all = (x: Cpu) => leaf7(x, 0, 0, F7D_IBRS_IBPB | F7D_STIBP | F7D_SSBD);
    expect(fault("mov ecx, 0x48\nmov eax, 8\nxor edx, edx\nwrmsr", all).f.vector).toBe(GP);
  });

  it("IA32_PRED_CMD is write-only: IBPB writes succeed, reads and reserved bits are #GP(0)", () => {
    const ibpb = (c: Cpu) => leaf7(c, 0, 0, F7D_IBRS_IBPB);
    finish("mov ecx, 0x49\nmov eax, 1\nxor edx, edx\nwrmsr", ibpb);
    expect(fault("mov ecx, 0x49\nrdmsr", ibpb).f).toMatchObject({ vector: GP, errorCode: 0 });
    expect(fault("mov ecx, 0x49\nmov eax, 2\nxor edx, edx\nwrmsr", ibpb).f.vector).toBe(GP);
  });

  it("IA32_TSC_ADJUST is advertised by default and is #GP(0) when CPUID.7.0:EBX[1] is clear", () => {
    const c = sysCpu("nop");
    const q = new Int32Array(4);
    c.model.query(7, 0, q);
    expect(q[1] & F7B_TSC_ADJUST).toBe(F7B_TSC_ADJUST);
    const none = (x: Cpu) => leaf7(x, 0, F7B_TSC_ADJUST, 0);
    expect(fault("mov ecx, 0x3b\nrdmsr", none).f).toMatchObject({ vector: GP, errorCode: 0 });
    expect(fault("mov ecx, 0x3b\nxor eax, eax\nxor edx, edx\nwrmsr", none).f.vector).toBe(GP);
  });

  it("a WRMSR to the TSC adds the change to IA32_TSC_ADJUST (SDM vol. 3, 17.17.3)", () => {
    // One cycle per instruction: WRMSR runs when 3 instructions have retired (the TSC read 3).
    const c = finish("mov ecx, 0x10\nmov eax, 1000\nxor edx, edx\nwrmsr\nmov ecx, 0x3b\nrdmsr", (x) => {
      x.cyclesPerInsn = 1;
    });
    expect(reg(c, 0)).toBe(997n);
    expect(reg(c, 2)).toBe(0n);
  });

  it("a WRMSR to IA32_TSC_ADJUST moves the TSC by the same delta (negative values too)", () => {
    const c = finish(
      `mov ecx, 0x3b
      mov eax, 5000
      xor edx, edx
      wrmsr
      rdtsc
      mov r8, rax
      mov ecx, 0x3b
      mov eax, -1000
      mov edx, -1
      wrmsr
      rdtsc
      shl rdx, 32
      or rax, rdx
      mov r9, rax
      rdmsr`,
      (x) => {
        x.cyclesPerInsn = 1;
      },
    );
    // The first RDTSC runs after 4 retired instructions (4 + 5000), the second after 10 (10 - 1000).
    expect(reg(c, 8)).toBe(5004n);
    expect(reg(c, 9)).toBe(2n ** 64n - 990n);
    expect(reg(c, 0)).toBe(BigInt.asUintN(32, -1000n));
    expect(reg(c, 2)).toBe(0xffffffffn);
  });
});
