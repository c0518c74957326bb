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
import { L1_OWN_MEMORY, L2_IMAGE_ADDR, l1Cmdline } from "./bare-l1.js";
import { guestImage } from "./guest-images.js";
import { l0Machine } from "./l0-machine.js";
import { cpuCounters, hypervisorRunResult, levelCounters } from "./results.js";
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

/** The per-level exits and world switches of a nested-VMX run, as counters. */
function nestedCounters(engine: NestedVmxEngine, totalExits: number): Record<string, number> {
  const s = engine.totals();
  const out: Record<string, number> = {};
  // Every exit L0 takes is one hardware world switch out of a guest and one back: an L2 exit
  // (VMCS02) is an L2↔L0 switch, an L1 exit (VMCS01) an L1↔L0 switch. Reflecting an exit to L1
  // and entering L2 again are L0 moving between VMCS02 and VMCS01 (nvmx.vmcs_switches).
  out["nvmx.exits.l2_to_l0"] = s.l2Exits;
  out["nvmx.exits.l1_to_l0"] = totalExits - s.l2Exits;
  out["nvmx.exits.reflected_to_l1"] = s.reflected;
  out["world_switches.L2-L0"] = s.l2Exits;
  out["world_switches.L1-L0"] = totalExits - s.l2Exits;
  out["nvmx.vmcs_switches"] = s.entries + s.reflected;
  out["nvmx.nested_entries"] = s.entries;
  for (const [k, v] of Object.entries(s.emulated)) out[`nvmx.emulated.${k}`] = v;
  for (const [k, v] of Object.entries(s.fieldAccesses)) out[`nvmx.trapped.${k}`] = v;
  out["nvmx.ept02.built"] = s.ept02Built;
  out["nvmx.ept02.leaves_dropped"] = s.ept02LeavesDropped;
  out["nvmx.ept12.tracked_writes"] = s.ept12TrackedWrites;
  out["nvmx.shadow.syncs"] = s.shadowSyncs;
  if (engine.options.evmcs === true) {
    out["nvmx.evmcs.maps"] = s.evmcs.maps;
    out["nvmx.evmcs.fields_copied_in"] = s.evmcs.fieldsIn;
    out["nvmx.evmcs.fields_skipped_clean"] = s.evmcs.fieldsSkipped;
    out["nvmx.evmcs.fields_copied_out"] = s.evmcs.fieldsOut;
    out["nvmx.evmcs.msr_bitmap_merges_skipped"] = s.evmcs.msrMergesSkipped;
  }
  return out;
}

function makeStack(variant: Variant): Stack {
  return {
    name: variant.name,
    description: variant.description,
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
        opts.l1Cmdline ?? l1Cmdline(variant.backend, opts.image.length, l2MiB, opts.npvMap ?? "demand", opts.cmdline);
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
      const counters = cpuCounters(cpu);
      const l0Exits = Object.entries(l0.exitCounts()).map(([reason, count]) => ({ level: 0, reason, count }));
      const reflected = engine.reflectedByReason().map(([reason, count]) => ({ level: 1, reason, count }));
      const exits = [...l0Exits, ...reflected];
      for (const e of exits) counters[`exits.L${e.level}.${e.reason}`] = e.count;
      const total = l0Exits.reduce((a, e) => a + e.count, 0);
      Object.assign(counters, nestedCounters(engine, total));
      // Cycles and instructions per level: 0 L0, 1 L1 (VMCS01), 2 L2 (VMCS02).
      levelCounters(l0.ledger.lines(), counters);
      counters["l0.ept01.leaves"] = vm.ept01.leaves;
      counters["l0.ept01.tables"] = vm.ept01.tables;
      return hypervisorRunResult(variant.name, "direct64", cpu, l0, outcome, serial, counters, exits, wallSeconds);
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
