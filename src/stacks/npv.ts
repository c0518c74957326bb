/**
 * The `npv` stack: nested virtualization through the nested paravirtual L0↔L1 ABI
 * (docs/npv-abi.md, docs/stacks/npv.md). L0 boots the L1 hypervisor (guests/images/l1hv.elf,
 * docs/l1hv.md) in the L1 VM through the direct 64-bit entry, with `backend=npv`; L1 — executed
 * x86 code — runs the guest kernel as its L2 through the ABI: its hypercalls are VMCALLs L0's
 * NpvEngine handles from L0's exit table, and RUN runs L2 on L0's core and returns to L1's code
 * with the exit in L1's run page. Exits are reported by the level of the code that took them:
 * L1's own (VMCALLs, I/O, first touches of its RAM) at level 1, L2's at level 2; the ledger
 * attributes L1's executed instructions to level 1. The outcome and exit status are L2's (L1
 * writes L2's status to its own debug-exit port).
 */
import { loadProfile } from "../cost/profile.js";
import { Cpu } from "../cpu/cpu.js";
import { jitOptions } from "../cpu/jit/options.js";
import { VmxHost } from "../cpu/vmx/host.js";
import { MemoryBlockBackend } from "../devices/block-backend.js";
import { L0Hypervisor } from "../hypervisors/l0/l0.js";
import { NpvEngine } from "../hypervisors/l0/npv/engine.js";
import { defaultProtocol, RAM_HOLE_START } from "../machine/boot.js";
import { ImageError } from "../machine/elf.js";
import { eptLeafBytes, l0Policy, tunables } from "../machine/tunables.js";
import { PhysicalMemory } from "../mmu/phys.js";
import { exitsFrom, sortExits } from "../stats/run-stats.js";
import { L2_IMAGE_ADDR, l1Cmdline } from "./bare-l1.js";
import { guestImage } from "./guest-images.js";
import { bindTrace, cpuCounters, ept01Events, hypervisorRunResult } from "./results.js";
import { type Stack, StackOptionError, type StackRunOptions, type StackRunResult } from "./stack.js";
import { loadGuest } from "./vm.js";
import { watchRun } from "./watchdog.js";

/** L2's disk (as the vm stack gives its guest). */
const DISK_BYTES = 8 * 1024 * 1024;
/** L1's RAM beyond L2's: its image, the L2 image, its tables and run pages, its allocator. */
const L1_OWN_MEMORY = 48 * 1024 * 1024;

export const npvStack: Stack = {
  name: "npv",
  description:
    "the guest kernel as L2 of the executed L1 hypervisor (guests/l1hv, npv back end) under L0's nested paravirtual ABI (L0 builds EPT02 from L1's map)",
  run(opts: StackRunOptions): StackRunResult {
    if ((opts.protocol ?? defaultProtocol(opts.image)) !== "direct64")
      throw new ImageError("an npv L2 must boot through the direct 64-bit entry (an ELF64 image)");
    const l2MiB = Math.ceil(opts.memory / (1024 * 1024));
    const l1Memory = l2MiB * 1024 * 1024 + L1_OWN_MEMORY;
    if (l1Memory > RAM_HOLE_START)
      throw new StackOptionError(
        `the npv stack runs an L2 of at most ${(RAM_HOLE_START - L1_OWN_MEMORY) / 1048576} MiB (L1's RAM must fit below its MMIO hole)`,
      );
    const profile = loadProfile(opts.profile);
    const t = tunables(opts.tunables);
    const policy = l0Policy(opts.l0);
    const hostMem = new PhysicalMemory(t.l0Reserved + eptLeafBytes(policy) + l1Memory);
    const cpu = new Cpu(hostMem);
    if (opts.jit !== undefined) cpu.setJit(jitOptions(opts.jit));
    const l0 = new L0Hypervisor(new VmxHost(cpu), profile, t, policy);
    cpu.setCostModel(profile.cycles, l0.ledger, 0);
    cpu.useDataCache(opts.cacheModel === false ? null : profile.caches);
    if (opts.trace) bindTrace(opts.trace, cpu, l0.ledger, l0);
    const engine = new NpvEngine(l0);
    let serial = "";
    const decoder = new TextDecoder();
    // One disk: L1's own virtio-blk device (its control path reads the capacity from it) and the
    // backend L0 serves L2's mediated queue from.
    const disk = new MemoryBlockBackend(DISK_BYTES);
    const l1vm = l0.createVm({
      memory: l1Memory,
      disk,
      serialInput: opts.serialInput,
      onSerial: (b) => {
        const s = decoder.decode(new Uint8Array([b]), { stream: true });
        serial += s;
        opts.onSerial?.(s);
      },
    });
    engine.attach(l1vm);
    engine.assignBackend(l1vm, disk);
    const l1vcpu = l0.createVcpu(l1vm);
    const l1image = opts.l1Image ?? guestImage("l1hv", "npv");
    const map = opts.npvMap ?? "demand";
    loadGuest(l0, l1vcpu, {
      ...opts,
      image: l1image,
      protocol: "direct64",
      memory: l1Memory,
      cmdline: l1Cmdline("npv", opts.image.length, l2MiB, map, opts.cmdline, opts.l1Tick),
    });
    l1vm.memory.writeBytes(L2_IMAGE_ADDR, opts.image);
    const t0 = performance.now();
    const stop = watchRun(cpu, opts.maxCycles, () => l0.runVcpu(l1vcpu, opts.maxInstructions));
    const wallSeconds = (performance.now() - t0) / 1000;
    opts.trace?.finish();
    // `exits` by the level that handled them, as every stack reports them: handledBy 0 = every exit
    // L0 took (L1's own, taken at level 1, and L2's, at level 2), handledBy 1 = the L2 exits L0
    // returned to L1 from RUN (npv exit codes).
    const exits = sortExits([...exitsFrom(l0.exits, 0), ...exitsFrom(engine.counts.forwarded, 1)], () => "name");
    const events = [...engine.events(), ...ept01Events(l1vm)];
    return hypervisorRunResult(
      "npv",
      "direct64",
      cpu,
      l0,
      stop,
      serial,
      cpuCounters(cpu),
      { exits, events },
      wallSeconds,
    );
  },
};
