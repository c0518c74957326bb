/**
 * The VMX conformance guest (guests/vmxtest) as the L1 of the nested-VMX stacks, against its
 * output on the bare machine with a VMX CPU (`native --cpu-vmx`). Issue 10 wants the two
 * identical. This test runs every group (capability MSRs to VMXOFF) and pins where they stand:
 * every check line matches native but for the listed deviations, each with its reason, and the
 * guest ends through the debug-exit port with exactly the listed failures. A fix that removes a
 * deviation must remove it here too (the test then fails until it does).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";
import { nativeStack } from "../../src/stacks/native.js";
import { nvmxEvmcsStack, nvmxShadowStack, nvmxStack } from "../../src/stacks/nvmx.js";
import type { Stack, StackRunResult } from "../../src/stacks/stack.js";

const image = new Uint8Array(readFileSync(join(packageRoot(), "guests/images/vmxtest.elf")));
const MIB = 1024 * 1024;

const checks = (serial: string) => serial.split("\n").filter((l) => /^(PASS|FAIL) /.test(l));

/**
 * Where nested VMX differs from the bare VMX CPU, and why (null: the check does not run nested;
 * "PASS"/"FAIL": it runs nested only, or with that outcome):
 * None remain: L0 keeps IA32_FEATURE_CONTROL per vCPU at 0 from reset (as KVM), offers
 * NMI-window exiting and VMCS shadowing, so every group runs nested as on the bare machine.
 * Every check that runs on both passes on both: the guest ends with 0 failures.
 */
const COMMON_DEVIATIONS: Record<string, string | null> = {};

const name = (l: string) => l.replace(/^(PASS|FAIL) /, "").replace(/:.*$/, "");
const native = nativeStack.run({ image, cmdline: "", memory: 64 * MIB, maxInstructions: 5_000_000, cpuVmx: true });

/**
 * nvmx-evmcs offers the same VMX but filters the capability MSRs as an eVMCS v1 L1 sees them (no
 * VMX-preemption timer: the eVMCS has no field for its value), so the timer's exit check does not
 * run there. vmxtest itself does not enable the eVMCS, and the filter stays: KVM filters for the
 * vCPU, not for its use of the eVMCS — vmx_get_msr applies nested_evmcs_filter_control_msr to
 * every guest read when guest_cpu_cap_has_evmcs(vcpu) (Hyper-V CPUID + the VMM's
 * KVM_CAP_HYPERV_ENLIGHTENED_VMCS), and nested_vmx_check_controls applies
 * nested_evmcs_check_controls under the same condition (arch/x86/kvm/vmx/vmx.c, nested.c).
 * Nor VMCS shadowing (KVM leaves it out of EVMCS1_SUPPORTED_2NDEXEC): a shadow-VMCS region is
 * refused at VMPTRLD (VMfail 11, the check for that case) and the shadow-vmcs group is skipped.
 */
const NO_SHADOWING: Record<string, string | null> = {
  "vmptrld-shadow-vmcs": null,
  "vmlaunch-shadow-vmcs-failinvalid": null,
  "vmptrld-shadow-vmcs-11": "PASS",
  "shadow-vmread-no-exit": null,
  "shadow-vmread-mem-no-exit": null,
  "shadow-vmread-bitmap-set-exits": null,
  "shadow-vmread-encoding-bit15-exits": null,
  "shadow-vmwrite-no-exit": null,
  "shadow-vmwrite-bitmap-set-exits": null,
  "shadow-vmread-unsupported-failvalid": null,
  "shadow-vmwrite-readonly-failvalid": null,
  "shadow-vmwrite-reached-shadow": null,
  "shadow-vmread-no-link-failinvalid": null,
  "vmread-without-shadowing-exits": null,
};

/**
 * The hyperv-flush group (t_hyperv.c) runs only where L0 offers Hyper-V's interface with the
 * eVMCS and the direct flush: on nvmx-evmcs, where each of its checks passes (the bare machine and
 * the other variants skip it: no CPUID 0x40000000 leaves).
 */
const HYPERV_CHECKS = [
  "hv-cpuid-flush-recommended",
  "hv-cpuid-no-guest-mapping-flush",
  "hv-hypercall-page-needs-guest-os-id",
  "hv-hypercall-page",
  "hv-l1-flush-space",
  "hv-l1-flush-list-reps",
  "hv-l1-flush-space-vp0",
  "hv-l1-flush-space-ex-all",
  "hv-l1-flush-space-ex-sparse",
  "hv-l1-flush-ex-bank-count-mismatch",
  "hv-l1-flush-list-ex-reps",
  "hv-l1-flush-space-with-reps",
  "hv-l1-flush-list-no-reps",
  "hv-l1-flush-list-rep-start",
  "hv-l1-flush-space-varhead",
  "hv-l1-reserved-bit-27",
  "hv-l1-reserved-bit-63",
  "hv-l1-input-not-ram",
  "hv-l1-unknown-code",
  "hv-l1-guest-mapping-flush-not-served",
  "hv-l1-guest-mapping-flush-list-not-served",
  "hv-l1-fast-flush-ud",
  "hv-l1-cpl3-ud",
  "hv-l2-flush-reflected-without-enlightenment",
  "hv-l2-flush-reflected-without-directhypercall",
  "hv-l2-direct-flush-space",
  "hv-l2-direct-flush-list",
  "hv-l2-direct-reserved-bit",
  "hv-l2-direct-input-not-in-ept12",
  "hv-l2-other-hypercall-reflected",
  "hv-l2-direct-other-vp",
  "hv-l2-trap-after-flush",
  "hv-l2-trap-after-flush-resumes",
  "hv-l2-partition-assist-not-ram",
  "hv-l2-flush-loop-direct",
  "hv-l2-flush-loop-reflected",
];

/**
 * nvmx-evmcs offers the same VMX but filters the capability MSRs as an eVMCS v1 L1 sees them (no
 * VMX-preemption timer: the eVMCS has no field for its value), so the timer's exit check does not
 * run there, nor VMCS shadowing (above); only the hyperv-flush group enables the eVMCS (and its
 * checks run there only).
 */
const EXTRA_DEVIATIONS: Record<string, Record<string, string | null>> = {
  "nvmx-evmcs": {
    "exit-preemption-timer-zero": null,
    ...NO_SHADOWING,
    ...Object.fromEntries(HYPERV_CHECKS.map((n) => [n, "PASS"])),
  },
};

/** vmxtest as L1 of `stack`, run once per stack (the hyperv-flush test below reads the nvmx-evmcs run). */
const runs = new Map<string, StackRunResult>();
function runAsL1(stack: Stack): StackRunResult {
  let r = runs.get(stack.name);
  if (r === undefined) {
    r = stack.run({
      image: new Uint8Array(0),
      cmdline: "",
      memory: 16 * MIB,
      maxInstructions: 20_000_000,
      maxCycles: 2_000_000_000,
      l1Image: image,
      l1Cmdline: "",
    });
    runs.set(stack.name, r);
  }
  return r;
}

describe("vmxtest as the L1 of the nested-VMX stacks", () => {
  for (const stack of [nvmxStack, nvmxShadowStack, nvmxEvmcsStack] as Stack[]) {
    it(`${stack.name}: every group matches native but for the listed deviations`, () => {
      const DEVIATIONS = { ...COMMON_DEVIATIONS, ...(EXTRA_DEVIATIONS[stack.name] ?? {}) };
      const r = runAsL1(stack);
      expect(r.outcome.kind, r.outcome.message).toBe("debug-exit");
      const failures = Object.values(DEVIATIONS).filter((v) => v === "FAIL").length;
      expect(r.exitStatus).toBe((failures << 1) | 1);
      const want = checks(native.serial).filter((l) => !(name(l) in DEVIATIONS));
      const got = checks(r.serial);
      expect(got.filter((l) => !(name(l) in DEVIATIONS))).toEqual(want);
      const deviating = Object.fromEntries(
        got.filter((l) => name(l) in DEVIATIONS).map((l) => [name(l), l.slice(0, 4)]),
      );
      const expected = Object.fromEntries(Object.entries(DEVIATIONS).filter(([, v]) => v !== null));
      expect(deviating).toEqual(expected);
      expect(r.serial).toContain(`SUMMARY passed=${got.length - failures} failed=${failures}`);
    });
  }
});

/**
 * Hyper-V's TLB-flush hypercalls and the direct (L2) TLB flush on nvmx-evmcs, driven by real
 * guest code: vmxtest's hyperv-flush group (guests/vmxtest/t_hyperv.c) makes L1's own flush
 * hypercalls through the hypercall page (good and malformed), then runs an L2 on an enlightened
 * VMCS whose flush hypercalls L0 answers once L1 enabled the direct flush. The counts are exact:
 * each is a call the group makes (listed beside it), so a change in how L0 takes them moves one.
 */
describe("nvmx-evmcs: Hyper-V flush hypercalls from L1 and the direct flush from L2", () => {
  it("every hyperv-flush check passes; L0's counts are the group's calls", () => {
    const r = runAsL1(nvmxEvmcsStack);
    expect(r.outcome.kind, r.outcome.message).toBe("debug-exit");
    const lines = r.serial.split("\n").filter((l) => / hv-/.test(l));
    expect(lines.filter((l) => !l.startsWith("PASS"))).toEqual([]);
    expect(lines.length).toBe(HYPERV_CHECKS.length);
    const ev = (name: string) => r.events.find((e) => e.family === "nvmx.hv" && e.name === name)?.count;
    // 17 calls through the hypercall page, the fast flush (#UD) and the CPL-3 call (#UD).
    expect(ev("hypercalls.l1")).toBe(19);
    // L2's flush calls L0 took without an exit to L1 (space, list, reserved bit, input outside
    // EPT12, a set without L2's VP, trap after flush, partition assist page outside RAM, and the
    // 16 of the direct loop): 23 L1 exits saved. Its other VMCALLs (before either enable bit, a
    // non-flush code, the 16 of the loop without directhypercall) went to L1.
    expect(ev("hypercalls.l2_direct")).toBe(23);
    // TLB contexts dropped: L1's 6 well-formed flushes naming VP 0; L2's space, list, trap-after-
    // flush, the one whose partition assist page read failed (KVM flushes before that read) and
    // the direct loop's 16.
    expect(ev("tlb_flushes")).toBe(26);
    // HV_STATUS errors: 11 of L1's (every malformed call but the two #UDs), 3 of L2's.
    expect(ev("failed")).toBe(14);
    expect(ev("trap_after_flush")).toBe(1);
    // Exits L0 reflected to L1: VMCALL 20 (the exits group's one, and the hyperv group's 3 + 16
    // L2 calls L0 did not take); the synthetic exit 0x10000031 once, under "other" — not as the
    // EPT misconfiguration (0x31) its low bits name, which stays the ept group's one.
    const toL1 = (code: number) => r.exits.find((e) => e.handledBy === 1 && e.code === code)?.count;
    expect(toL1(18)).toBe(20);
    expect(toL1(128)).toBe(1);
    expect(toL1(0x31)).toBe(1);
  });
});
