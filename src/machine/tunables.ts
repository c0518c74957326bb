/**
 * Simulation tunables: how the simulator slices its work and lays out memory. Not architecture
 * (that is x86/) and not costs (cost/profiles): choosing other values changes where the loops
 * look around, never what one event costs. Stacks take overrides through their options.
 */
export interface Tunables {
  /** Instructions per slice of the bare machine's run loop between device and timer checks. */
  machineSlice: number;
  /** Instructions per hardware run of a guest between L0's checks (not an architectural exit). */
  runSlice: number;
  /** Instructions (and exits) an npv L2 may run in one RUN before L0 returns TIMESLICE to L1. */
  npvSlice: number;
  /** Host RAM L0 keeps for itself (EPT tables, bitmaps) in addition to guest RAM. */
  l0Reserved: number;
  /** Host-physical address where L0's page allocator starts. */
  l0HostBase: number;
}

export const DEFAULT_TUNABLES: Readonly<Tunables> = Object.freeze({
  machineSlice: 200_000,
  runSlice: 200_000,
  npvSlice: 2_000_000,
  l0Reserved: 64 * 1024 * 1024,
  l0HostBase: 0x100000,
});

/** The defaults with `over` applied (each value checked: a positive safe integer). */
export function tunables(over: Partial<Tunables> = {}): Tunables {
  const t: Tunables = { ...DEFAULT_TUNABLES, ...over };
  for (const [k, v] of Object.entries(t)) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`tunable ${k} must be a positive integer`);
  }
  return t;
}

/**
 * L0's policy: what it intercepts and where it handles device registers. The same defaults for
 * every stack's L0, so a difference `compare` shows comes from a stack's design, not from how its
 * L0 was configured; each difference a run wants is an option.
 */
export interface L0Policy {
  /**
   * Intercept #UD (exception bitmap bit 6) in every vCPU L0 runs. KVM does (vmx.c
   * update_exception_bitmap: its emulator fixes up VMCALL/VMMCALL and the force-emulation
   * prefix), for a VM's vCPU and, through vmcs02 = vmcs01 | vmcs12, for a nested guest's.
   */
  interceptUd: boolean;
  /**
   * `vm` stack: where the virtio-mmio InterruptStatus / InterruptACK registers are handled.
   * "user": in the userspace device model (KVM + QEMU's virtio-mmio); "kernel": in L0 with the
   * notification path (an in-kernel data path with irqfd, as npv's mediated device has).
   */
  vmVirtio: "kernel" | "user";
  /**
   * Largest EPT01 leaf L0 maps guest RAM with on first touch, where the backing allows it (the
   * memslot covers the whole aligned range, contiguous and aligned in host memory, as transparent
   * huge pages need): 4 KiB only ("4k", as before), or 2 MiB / 1 GiB leaves.
   */
  eptPages: "4k" | "2m" | "1g";
}

export const DEFAULT_L0_POLICY: Readonly<L0Policy> = Object.freeze({
  interceptUd: true,
  vmVirtio: "user",
  eptPages: "4k",
});

/** Bytes of the largest EPT01 leaf a policy allows. */
export function eptLeafBytes(p: L0Policy): number {
  return p.eptPages === "1g" ? 2 ** 30 : p.eptPages === "2m" ? 2 ** 21 : 4096;
}

/** The default policy with the values `over` gives applied (an undefined value keeps the default). */
export function l0Policy(over: Partial<L0Policy> = {}): L0Policy {
  const given = Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined));
  return { ...DEFAULT_L0_POLICY, ...given };
}
