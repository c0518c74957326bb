/**
 * A VM entry through VmxHost that the model refuses (an IA-32e guest with CR0.PG = 0 or a 16-bit
 * CS, VPID enabled with VPID 0) fails before it loads anything: the processor keeps its own
 * state (SDM vol. 3: the 26.3.1 guest-state checks come before the 26.3.2 loads), the run result
 * says why, and the exit reason is 33 with bit 31 set.
 */
import { describe, expect, it } from "vitest";
import type { Cpu } from "../../src/cpu/cpu.js";
import { RUN_ENTRY_FAILED } from "../../src/cpu/vmx/host.js";
import * as V from "../../src/x86/vmx.js";
import * as C from "../../src/x86/vmx-controls.js";
import { GUEST_CR0, VmxBed } from "../helpers/vmx.js";

/** The CPU state a guest-state load would overwrite first. */
function snapshot(c: Cpu): number[] {
  return [c.cr0, c.cr3Lo, c.cr4, c.efer, c.segSel[1], c.segAr[1], c.segSel[2], c.ripLo, c.lo[4], c.gdtrBaseLo];
}

function failedEntry(setup: (b: VmxBed) => void): { bed: VmxBed; before: number[] } {
  const bed = new VmxBed();
  setup(bed);
  const before = snapshot(bed.cpu);
  expect(bed.run()).toBe(RUN_ENTRY_FAILED);
  expect(bed.host.vmread(V.VMCS_EXIT_REASON) >>> 0).toBe(
    (V.EXIT_REASON_ENTRY_FAILURE | V.EXIT_INVALID_GUEST_STATE) >>> 0,
  );
  return { bed, before };
}

describe("VM entry failures through VmxHost load no guest state", () => {
  it("an IA-32e guest with a 16-bit CS (L = 0, D = 0)", () => {
    const { bed, before } = failedEntry((b) => b.host.vmwrite(V.VMCS_GUEST_CS_AR, 0x809b));
    expect(bed.host.entryError).toBe("IA-32e guest with a 16-bit CS");
    expect(snapshot(bed.cpu)).toEqual(before);
  });

  it("an IA-32e guest with CR0.PG = 0", () => {
    const { bed, before } = failedEntry((b) => b.host.vmwrite(V.VMCS_GUEST_CR0, GUEST_CR0 & ~0x80000000));
    expect(bed.host.entryError).toBe("IA-32e mode guest with CR0.PG = 0");
    expect(snapshot(bed.cpu)).toEqual(before);
  });

  it("VPID enabled with VPID 0", () => {
    const { bed, before } = failedEntry((b) => {
      b.setControls({ proc2: C.CPU2_ENABLE_VPID });
      b.host.vmwrite(V.VMCS_VPID, 0);
    });
    expect(bed.host.entryError).toBe("VPID enabled with VPID 0");
    expect(snapshot(bed.cpu)).toEqual(before);
  });
});
