/**
 * L0's exit handlers, in a table keyed by basic exit reason (as KVM's kvm_vmx_exit_handlers).
 * Each handler emulates what the guest asked for through the VmxHost interface and charges its
 * work from the cost profile.
 */

import { VIRTIO_MMIO_QUEUE_NOTIFY } from "../../devices/virtio-mmio.js";
import { MSR_IA32_TSC_DEADLINE } from "../../x86/msr.js";
import * as V from "../../x86/vmx.js";
import * as C from "../../x86/vmx-controls.js";
import type { L0Hypervisor, Vcpu } from "./l0.js";

export type ExitHandler = (l0: L0Hypervisor, vcpu: Vcpu) => void;

const NAMES: Record<number, string> = {};
for (const [k, v] of Object.entries(V)) {
  if (k.startsWith("EXIT_") && typeof v === "number" && k !== "EXIT_REASON_ENTRY_FAILURE")
    NAMES[v] = k.slice(5).toLowerCase();
}

/** Lower-case name of a basic exit reason ("cpuid", "ept_violation", …). */
export function exitReasonName(reason: number): string {
  return NAMES[reason] ?? `reason_${reason}`;
}

const RAX = 0;
const RCX = 1;
const RDX = 2;
const RBX = 3;

const cpuidOut = new Int32Array(4);

function cpuid(l0: L0Hypervisor, vcpu: Vcpu): void {
  const h = l0.host;
  const out = cpuidOut;
  vcpu.vm.cpuid.query(h.gprLo[RAX], h.gprLo[RCX], out);
  h.gprLo[RAX] = out[0];
  h.gprLo[RBX] = out[1];
  h.gprLo[RCX] = out[2];
  h.gprLo[RDX] = out[3];
  h.gprHi[RAX] = 0;
  h.gprHi[RBX] = 0;
  h.gprHi[RCX] = 0;
  h.gprHi[RDX] = 0;
  l0.skipInstruction();
  l0.chargeHandler("l0.cpuid", "cpuid");
}

function hlt(l0: L0Hypervisor, vcpu: Vcpu): void {
  const h = l0.host;
  const vm = vcpu.vm;
  l0.skipInstruction();
  l0.chargeHandler("l0.hlt", "hlt");
  vm.lapic.advance(h.cycles());
  if (vm.router.hasPendingInterrupt()) return;
  const next = vm.lapic.nextEventCycle();
  const ifSet = (h.vmread(V.VMCS_GUEST_RFLAGS) & 0x200) !== 0;
  if (next === Number.POSITIVE_INFINITY || !ifSet) {
    vcpu.stop = {
      kind: "halted",
      message: `guest halted at RIP 0x${h.vmreadNumber(V.VMCS_GUEST_RIP).toString(16)} with ${ifSet ? "no timer armed" : "interrupts disabled"}: nothing can wake it`,
    };
    return;
  }
  // Block the vCPU until the timer fires: the skipped time is idle.
  if (next > h.cycles()) l0.chargeIdle(next - h.cycles());
  vm.lapic.advance(h.cycles());
}

function io(l0: L0Hypervisor, vcpu: Vcpu): void {
  const h = l0.host;
  const q = h.vmread(V.VMCS_EXIT_QUALIFICATION);
  const size = ((q & 7) + 1) as 1 | 2 | 4;
  const isIn = (q & C.IO_QUAL_IN) !== 0;
  const port = (q >>> 16) & 0xffff;
  const vm = vcpu.vm;
  if ((q & C.IO_QUAL_STRING) !== 0) {
    vcpu.stop = {
      kind: "error",
      message: `string port I/O (port 0x${port.toString(16)}) from the guest is not emulated by L0`,
    };
    return;
  }
  if (isIn) {
    const v = vm.io.portIn(port, size);
    if (size === 4) {
      h.gprLo[RAX] = v | 0;
      h.gprHi[RAX] = 0;
    } else if (size === 2) h.gprLo[RAX] = (h.gprLo[RAX] & ~0xffff) | (v & 0xffff);
    else h.gprLo[RAX] = (h.gprLo[RAX] & ~0xff) | (v & 0xff);
  } else {
    const mask = size === 4 ? -1 : size === 2 ? 0xffff : 0xff;
    vm.io.portOut(port, size, h.gprLo[RAX] & mask);
  }
  l0.skipInstruction();
  l0.chargeHandler("l0.io_kernel", "io");
  if (!vm.portInKernel(port)) l0.chargeHandler("l0.userspace_hop", "io");
}

function rdmsr(l0: L0Hypervisor, vcpu: Vcpu): void {
  const h = l0.host;
  const index = h.gprLo[RCX] >>> 0;
  const lapic = vcpu.vm.lapic;
  const v = lapic.handlesMsr(index) ? lapic.readMsr(index) : null;
  l0.chargeHandler("l0.msr", "rdmsr");
  if (v === null) {
    vcpu.pendingException = 13;
    vcpu.pendingExceptionError = 0;
    return;
  }
  h.gprLo[RAX] = v[0] | 0;
  h.gprHi[RAX] = 0;
  h.gprLo[RDX] = v[1] | 0;
  h.gprHi[RDX] = 0;
  l0.skipInstruction();
}

function wrmsr(l0: L0Hypervisor, vcpu: Vcpu): void {
  const h = l0.host;
  const index = h.gprLo[RCX] >>> 0;
  const lapic = vcpu.vm.lapic;
  const ok = lapic.handlesMsr(index) && lapic.writeMsr(index, h.gprLo[RAX] >>> 0, h.gprLo[RDX] >>> 0);
  l0.chargeHandler(index === MSR_IA32_TSC_DEADLINE ? "l0.apic_timer" : "l0.msr", "wrmsr");
  if (!ok) {
    vcpu.pendingException = 13;
    vcpu.pendingExceptionError = 0;
    return;
  }
  l0.skipInstruction();
}

/** An intercepted exception: KVM tries to emulate #UD (VMCALL/VMMCALL fix-ups); UD2 is reflected. */
function exception(l0: L0Hypervisor, vcpu: Vcpu): void {
  const h = l0.host;
  const info = h.vmread(V.VMCS_EXIT_INTR_INFO);
  const vector = info & 0xff;
  l0.chargeHandler("l0.exception", `exception_${vector}`);
  vcpu.pendingException = vector;
  vcpu.pendingExceptionError = (info & C.INTR_INFO_DELIVER_CODE) !== 0 ? h.vmread(V.VMCS_EXIT_INTR_ERROR_CODE) : -1;
}

/**
 * EPT violation: RAM in a memslot is mapped on first touch (4 KiB, RWX); a device address is
 * turned into a misconfigured entry (KVM's MMIO SPTE) and the access emulated.
 */
function eptViolation(l0: L0Hypervisor, vcpu: Vcpu): void {
  const h = l0.host;
  const vm = vcpu.vm;
  const gpa = h.vmreadNumber(V.VMCS_GUEST_PHYSICAL_ADDRESS);
  const page = gpa - (gpa % 4096);
  const hpa = vm.memslots.translate(page);
  if (hpa >= 0) {
    if (l0.mmu.tracker.isTracked(hpa) && (h.vmread(V.VMCS_EXIT_QUALIFICATION) & C.EPT_QUAL_WRITE) !== 0) {
      trackedWrite(l0, vcpu, gpa, hpa);
      return;
    }
    vm.ept01.map(page, hpa, 7); // without W while the frame is write-tracked
    vm.eptFaults++;
    l0.chargeHandler("l0.ept_violation", "ept_violation");
    return;
  }
  const region = vm.findMmio(gpa);
  if (region === undefined) {
    vcpu.stop = {
      kind: "error",
      message: `guest accessed guest-physical 0x${gpa.toString(16)}, which is neither RAM nor a device`,
    };
    return;
  }
  vm.ept01.mapMmio(page);
  emulateMmio(l0, vcpu, gpa);
}

/**
 * A write to a write-tracked frame (KVM page_track): L0 emulates the instruction through the
 * hypervisor MMU, which writes memory and tells the trackers; the page stays read-only.
 */
function trackedWrite(l0: L0Hypervisor, vcpu: Vcpu, gpa: number, hpa: number): void {
  const page = gpa - (gpa % 4096);
  if (vcpu.vm.ept01.lookup(page) === null) vcpu.vm.ept01.map(page, hpa - (hpa % 4096), 7);
  l0.chargeHandler("l0.io_kernel", "tracked_write");
  if (l0.mmu.emulateTrackedWrite(gpa, hpa)) EXIT_HANDLERS[l0.host.exit.reason & 0xffff]?.(l0, vcpu);
}

function eptMisconfig(l0: L0Hypervisor, vcpu: Vcpu): void {
  emulateMmio(l0, vcpu, l0.host.vmreadNumber(V.VMCS_GUEST_PHYSICAL_ADDRESS));
}

/** Emulate the guest's MMIO instruction against the device model (KVM's emulator + QEMU for userspace devices). */
function emulateMmio(l0: L0Hypervisor, vcpu: Vcpu, gpa: number): void {
  const vm = vcpu.vm;
  const region = vm.findMmio(gpa);
  if (region === undefined) {
    vcpu.stop = { kind: "error", message: `MMIO exit for unassigned guest-physical 0x${gpa.toString(16)}` };
    return;
  }
  const reason = `mmio_${region.name}`;
  if (region.name === "lapic") l0.chargeHandler("l0.apic_eoi", reason);
  else {
    l0.chargeHandler("l0.io_kernel", reason);
    // Queue notifications are ioeventfds (completed in the kernel); other registers go to QEMU.
    const notify = gpa - region.gpa === VIRTIO_MMIO_QUEUE_NOTIFY;
    if (!region.inKernel && !notify) l0.chargeHandler("l0.userspace_hop", reason);
  }
  const r = l0.host.emulateMmioInstruction(
    region.gpa - (region.gpa % 4096),
    4096,
    region.hostWindow - (region.gpa % 4096),
  );
  if (r.exited) {
    // The emulated instruction itself exited (e.g. it faulted into an intercepted vector): handle it next.
    const next = EXIT_HANDLERS[l0.host.exit.reason & 0xffff];
    next?.(l0, vcpu);
  }
}

function interruptWindow(l0: L0Hypervisor, _vcpu: Vcpu): void {
  l0.chargeHandler("l0.ext_interrupt", "interrupt_window");
}

function preemptionTimer(l0: L0Hypervisor, vcpu: Vcpu): void {
  vcpu.vm.lapic.advance(l0.host.cycles());
  l0.chargeHandler("l0.ext_interrupt", "preemption_timer");
}

function externalInterrupt(l0: L0Hypervisor, _vcpu: Vcpu): void {
  l0.chargeHandler("l0.ext_interrupt", "external_interrupt");
}

/** KVM hypercalls: none is implemented for this guest; answer -KVM_ENOSYS (1000) as KVM does. */
function vmcall(l0: L0Hypervisor, vcpu: Vcpu): void {
  const h = l0.host;
  if (l0.npv !== null && h.gprHi[RAX] === 0 && l0.npv.owns(h.gprLo[RAX] >>> 0)) {
    l0.chargeHandler("l0.hypercall", "vmcall");
    // Sets RAX (status) and RBX (result); false when it injected an exception instead (no retire).
    if (l0.npv.handleHypercall(l0, vcpu) !== false) l0.skipInstruction();
    return;
  }
  h.gprLo[RAX] = -1000;
  h.gprHi[RAX] = -1;
  l0.skipInstruction();
  l0.chargeHandler("l0.hypercall", "vmcall");
}

function tripleFault(l0: L0Hypervisor, vcpu: Vcpu): void {
  vcpu.stop = {
    kind: "triple-fault",
    message: `the guest triple-faulted at RIP 0x${l0.host.vmreadNumber(V.VMCS_GUEST_RIP).toString(16)}`,
  };
}

/** VMX instructions in the guest: no nested VMX under this L0 configuration, so #UD. */
function vmxInstruction(_l0: L0Hypervisor, vcpu: Vcpu): void {
  vcpu.pendingException = 6;
  vcpu.pendingExceptionError = -1;
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
};
