/**
 * What an L1 hypervisor written in TypeScript can do as a guest of L0: execute VMCALL and CPUID
 * (each an L1→L0 exit through L0's handler table, with its costs), read and write its own
 * guest-physical memory, and charge its own work at level 1. Nothing else: L1 never reaches into
 * L0's structures. `l0Platform` binds it to a real L0; unit tests use a fake.
 */
import type { PrimitiveName } from "../../cost/primitives.js";
import type { L0Hypervisor, Vcpu } from "../l0/l0.js";

/** L1's own guest-physical memory (L1 GPAs), as L1's kernel reaches it through its direct map. */
export interface L1Memory {
  isRam(gpa: number, len: number): boolean;
  read32(gpa: number): number;
  read64(gpa: number): number;
  write32(gpa: number, v: number): void;
  write64(gpa: number, v: number): void;
  readBytes(gpa: number, len: number): Uint8Array;
  writeBytes(gpa: number, bytes: Uint8Array): void;
}

export interface HypercallResult {
  /** RAX after the call (0 or a negative NPV_E_* status). */
  status: number;
  /** RBX after the call (a handle, a count of entries done). */
  rbx: number;
}

export interface L1Platform {
  /** VMCALL from L1's CPL 0: RAX = nr, RBX, RCX, RDX, RSI = a1..a4. */
  hypercall(nr: number, a1?: number, a2?: number, a3?: number, a4?: number): HypercallResult;
  /** CPUID executed by L1 (an exit to L0, answered from L1's VM's CPUID). */
  cpuid(leaf: number, subleaf?: number): [number, number, number, number];
  /** Charge L1's own work (`times` units of a primitive) at L1's level. */
  charge(name: PrimitiveName, reason: string, times?: number): void;
  readonly mem: L1Memory;
}

/** The platform of an L1 running on vCPU `vcpu` of L0 `l0`. */
export function l0Platform(l0: L0Hypervisor, vcpu: Vcpu): L1Platform {
  return {
    hypercall: (nr, a1 = 0, a2 = 0, a3 = 0, a4 = 0) => {
      const r = l0.guestHypercall(vcpu, nr, a1, a2, a3, a4);
      return { status: r.status | 0, rbx: r.rbx };
    },
    cpuid: (leaf, subleaf = 0) => l0.guestCpuid(vcpu, leaf, subleaf),
    charge: (name, reason, times = 1) => l0.chargeGuestWork(vcpu, name, reason, times),
    mem: vcpu.vm.memory,
  };
}
