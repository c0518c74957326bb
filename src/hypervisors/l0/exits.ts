/**
 * L0's exit handlers, in one table keyed by basic exit reason (as KVM's kvm_vmx_exit_handlers),
 * for every vCPU the core runs: an L1 vCPU of L0's own VM, or an L2 vCPU after its nested
 * engine's reflect step left the exit to L0. Each handler emulates what the guest asked for
 * through the VmxHost interface, charges its work from the cost profile, and returns HANDLED or
 * the code that ends the run. Handlers that need L0's device models or memslots (I/O, EPT,
 * hypercalls) only ever see vCPUs with an L0 VM: an engine reflects those exits of its guests.
 */

import {
  VIRTIO_MMIO_INTERRUPT_ACK,
  VIRTIO_MMIO_INTERRUPT_STATUS,
  VIRTIO_MMIO_QUEUE_NOTIFY,
} from "../../devices/virtio-mmio.js";
import { exitReasonName } from "../../stats/exit-reasons.js";
import { CR4_VMXE } from "../../x86/control.js";
import { GP, UD } from "../../x86/exceptions.js";
import { IF } from "../../x86/flags.js";
import { MSR_IA32_TSC_DEADLINE } from "../../x86/msr.js";
import { RAX, RBX, RCX, RDX, RSP } from "../../x86/registers.js";
import * as V from "../../x86/vmx.js";
import * as C from "../../x86/vmx-controls.js";
import { levelSize } from "../mmu/page-table.js";
import type { L0Hypervisor } from "./l0.js";
import { type GuestVcpu, HANDLED } from "./vcpu.js";
import type { Vm } from "./vm.js";

export type ExitHandler = (l0: L0Hypervisor, v: GuestVcpu, depth: number) => number;

// Lower-case names of basic exit reasons ("cpuid", "ept_violation", …) are the stats registry's.
export { exitReasonName };

const cpuidOut = new Int32Array(4);

function cpuid(l0: L0Hypervisor, v: GuestVcpu): number {
  const h = l0.host;
  const out = cpuidOut;
  v.cpuid.query(h.gprLo[RAX], h.gprLo[RCX], out);
  h.gprLo[RAX] = out[0];
  h.gprLo[RBX] = out[1];
  h.gprLo[RCX] = out[2];
  h.gprLo[RDX] = out[3];
  h.gprHi[RAX] = 0;
  h.gprHi[RBX] = 0;
  h.gprHi[RCX] = 0;
  h.gprHi[RDX] = 0;
  l0.skipInstruction();
  l0.chargeFor(v, "l0.cpuid", "cpuid");
  return HANDLED;
}

function hlt(l0: L0Hypervisor, v: GuestVcpu): number {
  const h = l0.host;
  l0.skipInstruction();
  l0.chargeFor(v, "l0.hlt", "hlt");
  v.lapic.advance(h.cycles());
  if (v.hasPendingInterrupt()) return HANDLED;
  const next = v.nextEventCycle();
  const ifSet = (h.vmread(V.VMCS_GUEST_RFLAGS) & IF) !== 0;
  if (next === Number.POSITIVE_INFINITY || !ifSet) return v.haltedForever(ifSet, h.vmreadNumber(V.VMCS_GUEST_RIP));
  // Block the vCPU until its timer fires: the skipped time is idle.
  if (next > h.cycles()) l0.chargeIdle(v, next - h.cycles());
  v.lapic.advance(h.cycles());
  return HANDLED;
}

/** The L0 VM of a vCPU whose exit needs L0's device models or memslots. */
function vmOf(v: GuestVcpu, reason: number): Vm | null {
  const vm = v.l0vm;
  if (vm === null) v.fail("error", reason, `exit ${exitReasonName(reason)} of a nested guest reached L0's table`);
  return vm;
}

function io(l0: L0Hypervisor, v: GuestVcpu): number {
  // An L2's I/O its L1 lets through reaches the L1 VM's devices (KVM: L0 emulates it as L1's).
  const vm = v.portIoVm ?? vmOf(v, V.EXIT_IO_INSTRUCTION);
  if (vm === null) return v.stopCode();
  const h = l0.host;
  const q = h.vmread(V.VMCS_EXIT_QUALIFICATION);
  const size = ((q & 7) + 1) as 1 | 2 | 4;
  const isIn = (q & C.IO_QUAL_IN) !== 0;
  const port = (q >>> 16) & 0xffff;
  if ((q & C.IO_QUAL_STRING) !== 0) {
    return v.fail(
      "error",
      V.EXIT_IO_INSTRUCTION,
      `string port I/O (port 0x${port.toString(16)}) from the guest is not emulated by L0`,
    );
  }
  if (isIn) {
    const x = vm.io.portIn(port, size);
    if (size === 4) {
      h.gprLo[RAX] = x | 0;
      h.gprHi[RAX] = 0;
    } else if (size === 2) h.gprLo[RAX] = (h.gprLo[RAX] & ~0xffff) | (x & 0xffff);
    else h.gprLo[RAX] = (h.gprLo[RAX] & ~0xff) | (x & 0xff);
  } else {
    const mask = size === 4 ? -1 : size === 2 ? 0xffff : 0xff;
    vm.io.portOut(port, size, h.gprLo[RAX] & mask);
  }
  l0.skipInstruction();
  l0.chargeHandler("l0.io_kernel", "io");
  if (!vm.portInKernel(port)) l0.chargeHandler("l0.userspace_hop", "io");
  return HANDLED;
}

/** Charge an MSR exit (a TSC-deadline write is the LAPIC timer's path). */
export function chargeMsr(l0: L0Hypervisor, v: GuestVcpu, index: number, write: boolean): void {
  if (write) l0.chargeFor(v, index === MSR_IA32_TSC_DEADLINE ? "l0.apic_timer" : "l0.msr", "wrmsr");
  else l0.chargeFor(v, "l0.msr", "rdmsr");
}

/** Make the next entry deliver #GP(0) (the instruction does not retire). */
function injectGp(v: GuestVcpu): number {
  v.pendingException = GP;
  v.pendingExceptionError = 0;
  return HANDLED;
}

/**
 * RDMSR of an MSR the bitmap intercepts: the LAPIC's MSRs; IA32_FEATURE_CONTROL and the VMX
 * capability MSRs from the engine offering VMX to the vCPU; anything else #GP.
 */
function rdmsr(l0: L0Hypervisor, v: GuestVcpu): number {
  const h = l0.host;
  const index = h.gprLo[RCX] >>> 0;
  const lapic = v.lapic;
  const x = lapic.handlesMsr(index)
    ? lapic.readMsr(index)
    : (l0.engines.forVmxInstructions(v)?.readMsr?.(l0, v, index) ?? null);
  chargeMsr(l0, v, index, false);
  if (x === null) return injectGp(v);
  h.gprLo[RAX] = x[0] | 0;
  h.gprHi[RAX] = 0;
  h.gprLo[RDX] = x[1] | 0;
  h.gprHi[RDX] = 0;
  l0.skipInstruction();
  return HANDLED;
}

function wrmsr(l0: L0Hypervisor, v: GuestVcpu): number {
  const h = l0.host;
  const index = h.gprLo[RCX] >>> 0;
  const lapic = v.lapic;
  const ok = lapic.handlesMsr(index)
    ? lapic.writeMsr(index, h.gprLo[RAX] >>> 0, h.gprLo[RDX] >>> 0)
    : (l0.engines.forVmxInstructions(v)?.writeMsr?.(l0, v, index, h.gprLo[RAX], h.gprLo[RDX]) ?? false);
  chargeMsr(l0, v, index, true);
  if (!ok) return injectGp(v);
  l0.skipInstruction();
  return HANDLED;
}

/** The ledger reason of an intercepted exception by vector (`exception_<n>`), made once. */
const EXCEPTION_REASONS: readonly string[] = Array.from({ length: 32 }, (_, vector) => `exception_${vector}`);

/** An intercepted exception: KVM tries to emulate #UD (VMCALL/VMMCALL fix-ups); UD2 is reflected. */
function exception(l0: L0Hypervisor, v: GuestVcpu): number {
  const h = l0.host;
  const info = h.vmread(V.VMCS_EXIT_INTR_INFO);
  const vector = info & 0xff;
  l0.chargeFor(v, "l0.exception", EXCEPTION_REASONS[vector] ?? `exception_${vector}`);
  v.pendingException = vector;
  v.pendingExceptionError = (info & C.INTR_INFO_DELIVER_CODE) !== 0 ? h.vmread(V.VMCS_EXIT_INTR_ERROR_CODE) : -1;
  return HANDLED;
}

/**
 * EPT violation: a write to a page an engine tracks goes to that engine; RAM in a memslot is
 * mapped on first touch (4 KiB, RWX; read/execute only when tracked); a device address is turned
 * into a misconfigured entry (KVM's MMIO SPTE) and the access emulated.
 */
function eptViolation(l0: L0Hypervisor, v: GuestVcpu, depth: number): number {
  const vm = vmOf(v, V.EXIT_EPT_VIOLATION);
  if (vm === null) return v.stopCode();
  const h = l0.host;
  const gpa = h.vmreadNumber(V.VMCS_GUEST_PHYSICAL_ADDRESS);
  const page = gpa - (gpa % 4096);
  const tracker = l0.engines.trackerOf(vm, page);
  if (tracker !== null && (h.vmread(V.VMCS_EXIT_QUALIFICATION) & C.EPT_QUAL_WRITE) !== 0)
    return tracker.trackedWrite(l0, v, gpa);
  const hpa = vm.memslots.translate(page);
  if (hpa >= 0) {
    // A frame L0's hypervisor MMU write-tracks (page_track): emulate the write and notify.
    if (l0.mmu.tracker.isTracked(hpa) && (h.vmread(V.VMCS_EXIT_QUALIFICATION) & C.EPT_QUAL_WRITE) !== 0)
      return trackedWrite(l0, v, vm, gpa, hpa, depth);
    // An engine-tracked page maps read/execute only; the builder also drops W for MMU-tracked frames.
    mapGuestRam(l0, vm, page, hpa, tracker === null);
    vm.eptFaults++;
    l0.chargeHandler("l0.ept_violation", "ept_violation");
    return HANDLED;
  }
  // A device, or nothing at all (KVM: no memslot, so MMIO to userspace, whose unassigned-memory
  // handler reads all ones and drops writes): either way an MMIO marker, and the access emulated.
  vm.ept01.mapMmio(page);
  return emulateMmio(l0, v, vm, gpa, depth);
}

/**
 * A host-physical window with nothing behind it: no RAM, no device, so the host's bus reads all
 * ones and drops writes (PhysicalMemory), as the bare machine does for the same guest access.
 * 2^45: below any MAXPHYADDR the model uses (46), far above the memory a run can have.
 */
const OPEN_BUS_HOST = 2 ** 45;

/**
 * The largest EPT01 leaf level (1: 4 KiB, 2: 2 MiB, 3: 1 GiB) the policy allows for `page` whose
 * backing allows it, as THP does: one memslot covers the aligned range (so it is contiguous in
 * host memory), the host address is aligned as well, and nothing in it is write-tracked.
 */
function largestLeaf(l0: L0Hypervisor, vm: Vm, page: number): number {
  for (let level = 3; level >= 2; level--) {
    const size = levelSize(level);
    if (size > (vm.config.eptLeafBytes ?? 4096)) continue;
    const base = page - (page % size);
    if (!vm.memslots.contains(base, size)) continue;
    const hpa = vm.memslots.translate(base);
    if (hpa % size !== 0 || l0.engines.tracksAnyIn(vm, base, size) || l0.mmu.tracker.anyIn(hpa, size)) continue;
    return level;
  }
  return 1;
}

/**
 * Back and map guest RAM page `page` (host `hpa`) in EPT01: RWX in the largest leaf the policy
 * and the backing allow, or read/execute only in a 4 KiB leaf for a page an engine tracks.
 */
export function mapGuestRam(l0: L0Hypervisor, vm: Vm, page: number, hpa: number, writable: boolean): void {
  const level = writable ? largestLeaf(l0, vm, page) : 1;
  const size = levelSize(level);
  const base = page - (page % size);
  vm.back(base, size);
  // A larger leaf over the page, write-protected since a frame in it became tracked, no longer
  // fits: drop it and map at the smaller level (KVM's TDP MMU zaps a huge SPTE above the fault's
  // goal level, which write tracking lowered: kvm_tdp_mmu_map, disallow_lpage).
  const covering = vm.ept01.lookup(page);
  if (covering !== null && covering.level > level) {
    vm.ept01.unmap(page);
    l0.flushGuestTlb(vm);
  }
  vm.ept01.map(base, hpa - (page - base), writable ? 7 : 5, level);
}

/**
 * A write to a write-tracked frame (KVM page_track): L0 emulates the instruction through the
 * hypervisor MMU, which writes memory and tells the trackers; the page stays read-only.
 */
function trackedWrite(l0: L0Hypervisor, v: GuestVcpu, vm: Vm, gpa: number, hpa: number, depth: number): number {
  const page = gpa - (gpa % 4096);
  if (vm.ept01.lookup(page) === null) {
    vm.back(page);
    vm.ept01.map(page, hpa - (hpa % 4096), 7);
  }
  l0.chargeHandler("l0.io_kernel", "tracked_write");
  // The emulated instruction itself exited: handle that exit next.
  if (l0.mmu.emulateTrackedWrite(gpa, hpa)) return l0.dispatchNested(v, depth);
  return HANDLED;
}

function eptMisconfig(l0: L0Hypervisor, v: GuestVcpu, depth: number): number {
  const vm = vmOf(v, V.EXIT_EPT_MISCONFIG);
  if (vm === null) return v.stopCode();
  return emulateMmio(l0, v, vm, l0.host.vmreadNumber(V.VMCS_GUEST_PHYSICAL_ADDRESS), depth);
}

/** Emulate the guest's MMIO instruction against the device model (KVM's emulator + QEMU for userspace devices). */
function emulateMmio(l0: L0Hypervisor, v: GuestVcpu, vm: Vm, gpa: number, depth: number): number {
  const region = vm.findMmio(gpa);
  if (region === undefined) {
    // Neither RAM nor a device: counted, then emulated against the open bus.
    vm.unassignedAccesses++;
    l0.chargeHandler("l0.io_kernel", "mmio_unassigned");
    l0.chargeHandler("l0.userspace_hop", "mmio_unassigned");
    const r = l0.host.emulateMmioInstruction(gpa - (gpa % 4096), 4096, OPEN_BUS_HOST);
    return r.exited ? l0.dispatchNested(v, depth) : HANDLED;
  }
  const reason = `mmio_${region.name}`;
  if (region.name === "lapic") l0.chargeHandler("l0.apic_eoi", reason);
  else {
    l0.chargeHandler("l0.io_kernel", reason);
    if (!region.inKernel && !virtioRegInKernel(vm, gpa - region.gpa)) l0.chargeHandler("l0.userspace_hop", reason);
  }
  const r = l0.host.emulateMmioInstruction(
    region.gpa - (region.gpa % 4096),
    4096,
    region.hostWindow - (region.gpa % 4096),
  );
  // The emulated instruction itself exited (e.g. it faulted into an intercepted vector): handle it next.
  if (r.exited) return l0.dispatchNested(v, depth);
  return HANDLED;
}

/**
 * A virtio-mmio register L0 completes in the kernel: queue notifications always (ioeventfds);
 * InterruptStatus / InterruptACK when the VM's data path is in the kernel (irqfd); others go to QEMU.
 */
function virtioRegInKernel(vm: Vm, offset: number): boolean {
  if (offset >= VIRTIO_MMIO_QUEUE_NOTIFY && offset < VIRTIO_MMIO_QUEUE_NOTIFY + 4) return true;
  return (
    vm.config.virtioRegsInKernel === true &&
    offset >= VIRTIO_MMIO_INTERRUPT_STATUS &&
    offset < VIRTIO_MMIO_INTERRUPT_ACK + 4
  );
}

function interruptWindow(l0: L0Hypervisor, v: GuestVcpu): number {
  l0.chargeFor(v, "l0.ext_interrupt", "interrupt_window");
  return HANDLED;
}

function preemptionTimer(l0: L0Hypervisor, v: GuestVcpu): number {
  v.lapic.advance(l0.host.cycles());
  l0.chargeFor(v, "l0.ext_interrupt", "preemption_timer");
  return HANDLED;
}

function externalInterrupt(l0: L0Hypervisor, v: GuestVcpu): number {
  l0.chargeFor(v, "l0.ext_interrupt", "external_interrupt");
  return HANDLED;
}

/**
 * VMCALL: Hyper-V's hypercalls for an L1 that enabled them (nvmx-evmcs); a hypercall number an
 * engine claims goes to that engine; KVM implements no other
 * hypercall for this guest and answers -KVM_ENOSYS (1000) as KVM does.
 */
function vmcall(l0: L0Hypervisor, v: GuestVcpu, depth: number): number {
  const h = l0.host;
  // A Hyper-V-enlightened L1 (nvmx-evmcs): KVM's kvm_emulate_hypercall tries Hyper-V's ABI first.
  const hv = l0.engines.forVmxInstructions(v)?.guestHypercall?.(l0, v) ?? -1;
  if (hv !== -1) return hv;
  const engine = h.gprHi[RAX] === 0 ? l0.engines.forHypercall(h.gprLo[RAX] >>> 0) : null;
  if (engine === null) {
    // An L1 in VMX root operation: no hypercall of L0's, so the VMX instruction the SDM defines.
    const vmx = l0.engines.forVmxInstructions(v);
    if (vmx?.inVmxOperation?.(v) === true) return vmx.vmxInstruction(l0, v, V.EXIT_VMCALL, depth);
  }
  l0.chargeHandler("l0.hypercall", "vmcall");
  if (engine !== null) {
    // Sets RAX (status) and RBX (result); false when it injected an exception instead (no retire).
    const tr = l0.trace;
    if (tr !== null) {
      const nr = h.gprLo[RAX] >>> 0;
      tr.begin("hypercall", `${engine.name} ${engine.hypercallName?.(nr) ?? `0x${nr.toString(16)}`}`);
    }
    const retired = engine.hypercall(l0, v) !== false;
    if (tr !== null) tr.end();
    if (retired) l0.skipInstruction();
    return HANDLED;
  }
  h.gprLo[RAX] = -1000;
  h.gprHi[RAX] = -1;
  l0.skipInstruction();
  return HANDLED;
}

/**
 * A control-register access L0 intercepts. L0 owns CR4.VMXE of its VMs' vCPUs (the CR4
 * guest/host mask, as KVM keeps VMXE out of cr4_guest_owned_bits): a MOV to CR4 changing it
 * exits here, is refused with #GP unless an engine offers VMX to the vCPU, and otherwise lands
 * in the read shadow only (L1 sees VMXE; the hardware CR4 does not need it).
 */
function crAccess(l0: L0Hypervisor, v: GuestVcpu): number {
  const h = l0.host;
  const q = h.vmread(V.VMCS_EXIT_QUALIFICATION);
  const cr = q & 15;
  const type = (q >>> 4) & 3;
  const gpr = (q >>> 8) & 15;
  // A MOV to CR0 exits only for the bits an engine owns while the vCPU is in VMX operation
  // (PE, NE, PG, all 1): clearing one is #GP(0) (SDM 23.8).
  if (cr === 0 && type === C.CR_ACCESS_TYPE_MOV_TO_CR && l0.engines.forVmxInstructions(v) !== null) {
    l0.chargeFor(v, "l0.cr_access", "cr_access");
    return injectGp(v);
  }
  if (cr === 8) return cr8Access(l0, v, type, gpr);
  if (cr !== 4 || type !== C.CR_ACCESS_TYPE_MOV_TO_CR)
    return v.fail(
      "error",
      V.EXIT_CR_ACCESS,
      `L0 does not emulate this control-register access (CR${cr}, type ${type})`,
    );
  l0.chargeFor(v, "l0.cr_access", "cr_access");
  const value = gpr === RSP ? h.vmread(V.VMCS_GUEST_RSP) : h.gprLo[gpr];
  const mask = h.vmread(V.VMCS_CR4_GUEST_HOST_MASK);
  const real = h.vmread(V.VMCS_GUEST_CR4);
  if (((value ^ real) & ~mask) !== 0)
    return v.fail(
      "error",
      V.EXIT_CR_ACCESS,
      "a MOV to CR4 changing CR4.VMXE and other bits at once is not emulated by L0",
    );
  const engine = l0.engines.forVmxInstructions(v);
  if ((value & CR4_VMXE) !== 0 && engine === null) return injectGp(v);
  if (engine !== null && engine.cr4Write?.(v, value) === false) return injectGp(v);
  const shadow = h.vmread(V.VMCS_CR4_READ_SHADOW);
  h.vmwrite(V.VMCS_CR4_READ_SHADOW, (shadow & ~mask) | (value & mask));
  l0.skipInstruction();
  return HANDLED;
}

/**
 * MOV to/from CR8 (an exit only happens in 64-bit mode): CR8 is TPR[7:4] of the vCPU's virtual
 * APIC (SDM vol. 3, 11.8.6). Bits 63:4 are reserved: the exit comes before that check, so L0
 * injects the #GP (as KVM's kvm_set_cr8). A lower TPR may unmask a pending interrupt: the next
 * entry's injection check sees it.
 */
function cr8Access(l0: L0Hypervisor, v: GuestVcpu, type: number, gpr: number): number {
  const h = l0.host;
  l0.chargeFor(v, "l0.apic_eoi", "cr8"); // an APIC register access that exits (TPR)
  if (type === C.CR_ACCESS_TYPE_MOV_TO_CR) {
    const lo = gpr === RSP ? h.vmread(V.VMCS_GUEST_RSP) : h.gprLo[gpr];
    const hi = gpr === RSP ? Math.floor(h.vmreadNumber(V.VMCS_GUEST_RSP) / 4294967296) : h.gprHi[gpr];
    if (hi !== 0 || (lo & ~0xf) !== 0) return injectGp(v);
    v.lapic.setCr8(lo);
  } else {
    const value = v.lapic.getCr8();
    if (gpr === RSP) h.vmwriteNumber(V.VMCS_GUEST_RSP, value);
    else {
      h.gprLo[gpr] = value;
      h.gprHi[gpr] = 0;
    }
  }
  l0.skipInstruction();
  return HANDLED;
}

function tripleFault(l0: L0Hypervisor, v: GuestVcpu): number {
  return v.fail(
    "triple-fault",
    V.EXIT_TRIPLE_FAULT,
    `the guest triple-faulted at RIP 0x${l0.host.vmreadNumber(V.VMCS_GUEST_RIP).toString(16)}`,
  );
}

/** VMX instructions: an engine offering nested VMX to the guest takes them; otherwise #UD. */
function vmxInstruction(l0: L0Hypervisor, v: GuestVcpu, depth: number): number {
  const reason = l0.host.exit.reason & 0xffff;
  const engine = l0.engines.forVmxInstructions(v);
  if (engine !== null) return engine.vmxInstruction(l0, v, reason, depth);
  v.pendingException = UD;
  v.pendingExceptionError = -1;
  return HANDLED;
}

export const EXIT_HANDLERS: Record<number, ExitHandler> = {
  [V.EXIT_EXCEPTION_NMI]: exception,
  [V.EXIT_EXTERNAL_INTERRUPT]: externalInterrupt,
  [V.EXIT_TRIPLE_FAULT]: tripleFault,
  [V.EXIT_INTERRUPT_WINDOW]: interruptWindow,
  [V.EXIT_CPUID]: cpuid,
  [V.EXIT_HLT]: hlt,
  [V.EXIT_VMCALL]: vmcall,
  [V.EXIT_IO_INSTRUCTION]: io,
  [V.EXIT_RDMSR]: rdmsr,
  [V.EXIT_WRMSR]: wrmsr,
  [V.EXIT_EPT_VIOLATION]: eptViolation,
  [V.EXIT_EPT_MISCONFIG]: eptMisconfig,
  [V.EXIT_PREEMPTION_TIMER]: preemptionTimer,
  [V.EXIT_CR_ACCESS]: crAccess,
  [V.EXIT_VMCLEAR]: vmxInstruction,
  [V.EXIT_VMLAUNCH]: vmxInstruction,
  [V.EXIT_VMPTRLD]: vmxInstruction,
  [V.EXIT_VMPTRST]: vmxInstruction,
  [V.EXIT_VMREAD]: vmxInstruction,
  [V.EXIT_VMRESUME]: vmxInstruction,
  [V.EXIT_VMWRITE]: vmxInstruction,
  [V.EXIT_VMXOFF]: vmxInstruction,
  [V.EXIT_VMXON]: vmxInstruction,
  [V.EXIT_INVEPT]: vmxInstruction,
  [V.EXIT_INVVPID]: vmxInstruction,
  [V.EXIT_VMFUNC]: vmxInstruction,
};
