/**
 * The nested-VMX stacks (docs/stacks/nvmx.md): the host machine is a CPU with VMX and RAM; L0
 * runs one L1 VM its nested-VMX engine offers VMX to (src/hypervisors/l0/nested-vmx/), and the
 * L1 is an executed hypervisor image that runs the guest kernel as its L2 with VMX instructions
 * L0 emulates. One module, one variant per way L0 serves L1's VMCS accesses:
 *
 * - `nvmx`: every VMREAD/VMWRITE of L1 exits to L0;
 * - `nvmx-shadow`: L0 gives L1 a shadow VMCS (VMCS shadowing), so the shadowed fields' accesses
 *   run without an exit (nested-vmx/shadow.ts);
 * - `nvmx-evmcs`: L0 advertises Hyper-V's enlightened VMCS; L1 keeps its VMCS in plain memory
 *   (loads and stores, no VMREAD/VMWRITE/VMPTRLD exits) and L0 copies only the groups L1 marked
 *   dirty (nested-vmx/evmcs.ts, hyperv.ts).
 *
 * The L1 image is an option (`l1Image`, `--l1-image`): the default is the executed L1 hypervisor
 * `guests/images/l1hv.elf` (docs/l1hv.md) with its vmx back end; tests run assembly L1s and the
 * VMX test guest. As on `bare-l1`, L1 boots through the direct 64-bit entry with l1hv's command
 * line (back end, where the L2 image is, L2's RAM, then L2's command line) and the L2 image is a
 * blob in L1's RAM at `L2_IMAGE_ADDR`; `l1Cmdline` replaces that command line (a VMX test
 * guest's own). The outcome and exit status are the L1 VM's debug-exit port's (an L1 hypervisor
 * passes L2's status on).
 */
import { loadBootState } from "../hypervisors/l0/guest-boot.js";
import { NestedVmxEngine, type NestedVmxOptions } from "../hypervisors/l0/nested-vmx/index.js";
import { loadImage, RAM_HOLE_START } from "../machine/boot.js";
import { exitsFrom, exitTotal, sortExits } from "../stats/run-stats.js";
import { L1_OWN_MEMORY, L2_IMAGE_ADDR, l1Cmdline } from "./bare-l1.js";
import { guestImage } from "./guest-images.js";
import { l0Machine } from "./l0-machine.js";
import { cpuCounters, ept01Events, hypervisorRunResult, levelCounters } from "./results.js";
import { type Stack, StackOptionError, type StackRunOptions, type StackRunResult } from "./stack.js";
import { watchRun } from "./watchdog.js";

/** The registered l1hv image (guest-images.ts); a clear error when the host supplied none. */
function defaultL1Image(stack: string): Uint8Array {
  return guestImage("l1hv", stack);
}

interface Variant {
  name: string;
  description: string;
  engine: NestedVmxOptions;
  /** l1hv's back end: `vmx-evmcs` is the vmx back end's build that uses the eVMCS when offered. */
  backend: "vmx" | "vmx-evmcs";
}

function makeStack(variant: Variant): Stack {
  return {
    name: variant.name,
    description: variant.description,
    l1EptPages: true,
    preflight(opts) {
      if (opts.l1Image === undefined) defaultL1Image(variant.name);
    },
    run(opts: StackRunOptions): StackRunResult {
      const l1Image = opts.l1Image ?? defaultL1Image(variant.name);
      const l2MiB = Math.ceil(opts.memory / (1024 * 1024));
      const l1Memory = l2MiB * 1024 * 1024 + L1_OWN_MEMORY;
      if (l1Memory > RAM_HOLE_START) {
        throw new StackOptionError(
          `the ${variant.name} stack runs an L2 of at most ${(RAM_HOLE_START - L1_OWN_MEMORY) / 1048576} MiB (L1's RAM must fit below its MMIO hole)`,
        );
      }
      // VMCS01 says level 1 (L1), VMCS02 level 2 (L2).
      const { cpu, l0 } = l0Machine(opts, l1Memory);
      const engine = new NestedVmxEngine(l0, variant.engine);
      let serial = "";
      const decoder = new TextDecoder();
      const vm = l0.createVm({
        memory: l1Memory,
        serialInput: opts.serialInput,
        onSerial: (b) => {
          const s = decoder.decode(new Uint8Array([b]), { stream: true });
          serial += s;
          opts.onSerial?.(s);
        },
      });
      engine.enable(vm);
      const vcpu = l0.createVcpu(vm);
      const cmdline =
        opts.l1Cmdline ??
        l1Cmdline(
          variant.backend,
          opts.image.length,
          l2MiB,
          opts.npvMap ?? "demand",
          opts.cmdline,
          opts.l1Tick,
          opts.l1EptPages,
        );
      loadBootState(l0, vcpu, loadImage("direct64", l1Image, cmdline, l1Memory).state);
      vm.memory.writeBytes(L2_IMAGE_ADDR, opts.image);
      const t0 = performance.now();
      const stop = watchRun(cpu, opts.maxCycles, () => l0.runVcpu(vcpu, opts.maxInstructions));
      const wallSeconds = (performance.now() - t0) / 1000;
      opts.trace?.finish();
      const outcome =
        stop.kind === "debug-exit"
          ? stop
          : { ...stop, message: `L1 hypervisor under ${variant.name}: ${stop.message}` };
      // handledBy 0: every exit L0 took (L1's from VMCS01 at level 1, L2's from VMCS02 at level 2);
      // handledBy 1: the L2 exits L0 reflected to L1.
      const l0Exits = exitsFrom(l0.exits, 0);
      const exits = sortExits([...l0Exits, ...exitsFrom(engine.reflectedExits(), 1)], (level) =>
        level === 0 ? "first-seen" : "name",
      );
      const events = [...engine.events(exitTotal(l0Exits, () => true)), ...ept01Events(vm)];
      // Cycles and instructions per level: 0 L0, 1 L1 (VMCS01), 2 L2 (VMCS02).
      const base = cpuCounters(cpu);
      levelCounters(l0.ledger.lines(), base);
      return hypervisorRunResult(
        variant.name,
        "direct64",
        cpu,
        l0,
        outcome,
        serial,
        base,
        { exits, events },
        wallSeconds,
      );
    },
  };
}

export const nvmxStack = makeStack({
  name: "nvmx",
  description:
    "the guest kernel as an L2 run by an executed L1 hypervisor on L0's nested VMX (every VMREAD/VMWRITE exits)",
  engine: { shadowVmcs: false },
  backend: "vmx",
});

export const nvmxShadowStack = makeStack({
  name: "nvmx-shadow",
  description: "as nvmx, with a shadow VMCS for L1 (VMCS shadowing: KVM's shadowed fields' VMREAD/VMWRITE do not exit)",
  engine: { shadowVmcs: true },
  backend: "vmx",
});

export const nvmxEvmcsStack = makeStack({
  name: "nvmx-evmcs",
  description:
    "as nvmx, with Hyper-V's enlightened VMCS for L1 (a VMCS in plain memory with clean-field bits: no VMREAD/VMWRITE/VMPTRLD exits)",
  engine: { shadowVmcs: false, evmcs: true },
  backend: "vmx-evmcs",
});
