/**
 * L0 interns each ledger attribution once: a charge looks its line up by the strings the caller
 * passes (literals, or tables made at load such as npv's forward reasons) and builds none, so
 * the ledger's `id` (which builds its key string) runs once per line, not once per charge.
 */
import { describe, expect, it, vi } from "vitest";
import { loadProfile } from "../../src/cost/profile.js";
import { Cpu } from "../../src/cpu/cpu.js";
import { VmxHost } from "../../src/cpu/vmx/host.js";
import { L0Hypervisor } from "../../src/hypervisors/l0/l0.js";
import { npvForwardReason } from "../../src/hypervisors/l0/npv/stats.js";
import type { GuestVcpu } from "../../src/hypervisors/l0/vcpu.js";
import { NPV_EXIT_NAMES } from "../../src/hypervisors/npv-abi.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";

const N = 5;

describe("L0 ledger attributions are interned once", () => {
  it("chargeHandler, chargeFor (tagged and not), chargeHandlerN and chargeIdle: one ledger.id per line", () => {
    const profile = loadProfile();
    const cpu = new Cpu(new PhysicalMemory(4 * 1024 * 1024));
    const l0 = new L0Hypervisor(new VmxHost(cpu), profile);
    // Only what the charge paths read of a vCPU: its ledger tag and its VMCS's level.
    const l1 = { chargeTag: "", vmcs: { level: 1 } } as unknown as GuestVcpu;
    const l2 = { chargeTag: "npv_", vmcs: { level: 2 } } as unknown as GuestVcpu;
    const id = vi.spyOn(l0.ledger, "id");
    for (let k = 0; k < N; k++) {
      l0.chargeHandler("npv.forward", npvForwardReason(1));
      l0.chargeFor(l1, "l0.cpuid", "cpuid");
      l0.chargeFor(l2, "l0.cpuid", "cpuid");
      l0.chargeHandlerN("host.page_zero", "host_page_zero", 2);
      l0.chargeIdle(l2, 1000);
    }
    expect(id).toHaveBeenCalledTimes(5);
    const line = (level: number, reason: string) =>
      l0.ledger.lines().find((l) => l.level === level && l.reason === reason);
    expect(line(0, "npv_forward_io")).toMatchObject({ count: N, cycles: N * profile.cost("npv.forward") });
    expect(line(0, "cpuid")).toMatchObject({ count: N, cycles: N * profile.cost("l0.cpuid") });
    expect(line(0, "npv_cpuid")).toMatchObject({ count: N, cycles: N * profile.cost("l0.cpuid") });
    expect(line(0, "host_page_zero")).toMatchObject({ count: 2 * N, cycles: 2 * N * profile.cost("host.page_zero") });
    expect(line(2, "hlt")).toMatchObject({ category: "idle", count: N, cycles: N * 1000 });
  });

  it("npv's forward reasons name every exit code as npv_forward_<name>, and an unknown code by number", () => {
    for (const [code, name] of Object.entries(NPV_EXIT_NAMES)) {
      expect(npvForwardReason(Number(code))).toBe(`npv_forward_${name}`);
    }
    expect(npvForwardReason(11)).toBe("npv_forward_11");
    expect(npvForwardReason(99)).toBe("npv_forward_99");
  });
});
