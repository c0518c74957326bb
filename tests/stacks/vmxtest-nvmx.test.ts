/**
 * The VMX conformance guest (guests/vmxtest) as the L1 of the nested-VMX stacks, against its
 * output on the bare machine with a VMX CPU (`native --cpu-vmx`). Issue 10 wants the two
 * identical; they are not yet. This test pins where they stand: the first groups (VMXON,
 * VMREAD/VMWRITE, VMCS pointers and launch state) match native but for the listed deviations,
 * each with its reason, and the run's first stop is the one named below. A fix that removes a
 * deviation must remove it here too (the test then fails until it does).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";
import { nativeStack } from "../../src/stacks/native.js";
import { nvmxShadowStack, nvmxStack } from "../../src/stacks/nvmx.js";
import type { Stack } from "../../src/stacks/stack.js";

const image = new Uint8Array(readFileSync(join(packageRoot(), "guests/images/vmxtest.elf")));
const MIB = 1024 * 1024;

/** Check names (PASS/FAIL) up to the end of the VMCS-pointer group. */
function firstGroups(serial: string): string[] {
  const lines = serial.split("\n");
  const end = lines.findIndex((l) => l.startsWith("INFO group vmcs-pointers-launch-state"));
  return lines.slice(0, end).filter((l) => /^(PASS|FAIL) /.test(l));
}

/**
 * Where nested VMX differs from the bare VMX CPU in these groups, and why:
 * - L0 answers IA32_VMX_VMFUNC (0x491) with 0 (caps.ts) where the CPU has no such MSR (#GP);
 * - IA32_FEATURE_CONTROL is locked by L0 (as KVM reports it), so the unlocked-case checks do not run;
 * - L1's VMCALL in VMX root operation is a hypercall to L0 (as under KVM), not VMfail;
 * - a shadow-VMCS region (revision bit 31) is refused at VMPTRLD (VMfail 11): L0 offers no
 *   VMCS shadowing to L1, so its VMLAUNCH check does not run;
 * - INVEPT/INVVPID operand checks (EPTP validity, VPID 0, reserved descriptor bits, the
 *   individual-address type) are not emulated.
 * The entry-control group passes; the host-state group does not (its invalid host CR3 stops L1).
 */
const DEVIATIONS: Record<string, string | null> = {
  "caps-vmfunc-absent": "FAIL",
  "vmxon-feature-control-unlocked-gp": null,
  "feature-control-lock": null,
  "vmcall-root-no-vmcs-failinvalid": "FAIL",
  "vmcall-root-failvalid-1": "FAIL",
  "vmptrld-shadow-vmcs": null,
  "vmlaunch-shadow-vmcs-failinvalid": null,
  "vmptrld-shadow-vmcs-11": "PASS",
  "invept-single-invalid-eptp-28": "FAIL",
  "invvpid-single-vpid-0-28": "FAIL",
  "invvpid-reserved-bits-28": "FAIL",
  "invvpid-address-noncanonical-28": null,
};

const name = (l: string) => l.replace(/^(PASS|FAIL) /, "").replace(/:.*$/, "");
const native = nativeStack.run({ image, cmdline: "", memory: 64 * MIB, maxInstructions: 5_000_000, cpuVmx: true });

describe("vmxtest as the L1 of the nested-VMX stacks", () => {
  for (const stack of [nvmxStack, nvmxShadowStack] as Stack[]) {
    it(`${stack.name}: the VMXON, VMREAD/VMWRITE and VMCS-pointer groups match native but for the listed deviations`, () => {
      const r = stack.run({
        image: new Uint8Array(0),
        cmdline: "",
        memory: 16 * MIB,
        maxInstructions: 20_000_000,
        maxCycles: 2_000_000_000,
        l1Image: image,
        l1Cmdline: "",
      });
      const want = firstGroups(native.serial).filter((l) => !(name(l) in DEVIATIONS));
      const got = firstGroups(r.serial);
      expect(got.filter((l) => !(name(l) in DEVIATIONS))).toEqual(want);
      const deviating = Object.fromEntries(
        got.filter((l) => name(l) in DEVIATIONS).map((l) => [name(l), l.slice(0, 4)]),
      );
      const expected = Object.fromEntries(Object.entries(DEVIATIONS).filter(([, v]) => v !== null));
      expect(deviating).toEqual(expected);
      // Not yet: the host-state checks beyond CR0/CR4.VMXE/address-space size/EFER are not made,
      // so a VMCS12 with a bad host state is entered and L1 resumes on it; its page walks then read
      // all ones from addresses with no RAM (as on the bare machine) and it never gets back to
      // printing: the run ends at the cycle limit, 266,080 instructions in.
      expect(r.outcome.kind).toBe("cycle-limit");
      expect(r.outcome.message).toMatch(/^L1 hypervisor under nvmx/);
    });
  }
});
