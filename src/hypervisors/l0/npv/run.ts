/**
 * RUN: switch the CPU from the L1 vCPU to an L2 vCPU, run L2 on the hardware, handle what L0
 * can, and come back to L1 with the first event that needs it (or TIMESLICE after the engine's
 * instruction budget), the exit described in L1's run page.
 *
 * The L2 runs on L0's one run/exit core (core.ts), with this engine's reflect step in front of
 * L0's handler table; its interrupts come from its own LAPIC and the INJECT queue.
 */
import type { VmxHost } from "../../../cpu/vmx/host.js";
import { IF } from "../../../x86/flags.js";
import * as V from "../../../x86/vmx.js";
import {
  NPV_E_BUSY,
  NPV_E_FAULT,
  NPV_E_INVAL,
  NPV_EXIT_HALT,
  NPV_EXIT_HYPERCALL,
  NPV_EXIT_IO,
  NPV_EXIT_MSR,
  NPV_EXIT_SHUTDOWN,
  NPV_OK,
  NPV_RUN_CR0,
  NPV_RUN_CR3,
  NPV_RUN_CR4,
  NPV_RUN_DATA,
  NPV_RUN_EFER,
  NPV_RUN_EXIT_REASON,
  NPV_RUN_F_REGS_DIRTY,
  NPV_RUN_FLAGS,
  NPV_RUN_GPRS,
  NPV_RUN_INSN_LEN,
  NPV_RUN_RFLAGS,
  NPV_RUN_RIP,
} from "../../npv-abi.js";
import { runGuest } from "../core.js";
import type { GuestVcpu } from "../vcpu.js";
import type { NpvEngine } from "./engine.js";
import { isL1Ram, readL1Into, writeL1 } from "./l1-memory.js";
import { completeMmioRead, stopVcpu } from "./l2-exits.js";
import type { Arg } from "./memory-ops.js";
import type { L2Vcpu } from "./state.js";
import { NE, npvForwardReason } from "./stats.js";
import { canonical } from "./vcpu.js";

/** Bytes of the run page L0 reads and writes. */
export const RUN_PAGE_USED = 0x100;

/**
 * The run page as L1 left it, copied in at the start of every RUN (one buffer: it is read only
 * before L2 runs, and RUN is not re-entered then), and the MMIO read value within it.
 */
const runPageIn = new Uint8Array(RUN_PAGE_USED);
const runPageInView = new DataView(runPageIn.buffer);
const mmioReadValue = runPageIn.subarray(NPV_RUN_DATA + 0x10, NPV_RUN_DATA + 0x18);

export function runL2(e: NpvEngine, l1vcpu: GuestVcpu, v: L2Vcpu, page: Arg): number {
  const l0 = e.l0;
  const host = l0.host;
  const l1vm = v.vm.owner.vm;
  const pageGpa = page.n;
  if (!isL1Ram(l1vm, pageGpa, RUN_PAGE_USED)) return NPV_E_FAULT;
  if (v.running) return NPV_E_BUSY;
  readL1Into(l1vm, pageGpa, runPageIn);
  const pv = runPageInView;
  if (v.stopped !== 0) {
    v.exitData.fill(0);
    v.exitView.setUint32(0, v.stopDetail >>> 0, true);
    // A stopped vCPU (rare): its VMCS made current just to read its state.
    host.withVmcs(v.vmcs, () => fillRunPage(e, v, pageGpa, v.stopped));
    return NPV_OK;
  }
  const reload = v.forwarded && (pv.getUint32(NPV_RUN_FLAGS, true) & NPV_RUN_F_REGS_DIRTY) !== 0;
  if (reload && !canonical(pv.getInt32(NPV_RUN_RIP, true), pv.getInt32(NPV_RUN_RIP + 4, true))) return NPV_E_INVAL;
  if (reload && !canonical(pv.getInt32(NPV_RUN_GPRS + 32, true), pv.getInt32(NPV_RUN_GPRS + 36, true)))
    return NPV_E_INVAL;

  // L1's timer may end the RUN only if L1 can take its interrupt when it gets the CPU back.
  const l1Interruptible = (host.vmread(V.VMCS_GUEST_RFLAGS) & IF) !== 0;
  // World switch L1 → L2.
  const tr = l0.trace;
  if (tr !== null) tr.begin("world-switch", "world switch L1 → L2");
  host.saveContext(l1vcpu.ctx);
  l0.chargeHandler("npv.world_switch", "npv_run");
  if (tr !== null) tr.end();
  if (reload) {
    for (let r = 0; r < 16; r++) {
      v.ctx.lo[r] = pv.getInt32(NPV_RUN_GPRS + 8 * r, true);
      v.ctx.hi[r] = pv.getInt32(NPV_RUN_GPRS + 8 * r + 4, true);
    }
  }
  host.load(v.vmcs);
  host.restoreContext(v.ctx);
  v.running = true;
  v.l1 = l1Interruptible ? l1vcpu : null;
  let reason = NPV_EXIT_SHUTDOWN;
  try {
    if (reload) {
      host.vmwrite(V.VMCS_GUEST_RIP, pv.getInt32(NPV_RUN_RIP, true), pv.getInt32(NPV_RUN_RIP + 4, true));
      host.vmwrite(V.VMCS_GUEST_RSP, v.ctx.lo[4], v.ctx.hi[4]);
    }
    v.exitData.fill(0);
    reason = 0;
    if (v.pendingMmioRead !== null) {
      reason = completeMmioRead(e, v, mmioReadValue);
    }
    if (reason === 0) reason = runGuest(l0, v, e.sliceInstructions);
  } catch (x) {
    // An L0 bug must not leave the CPU in L2's context: stop this vCPU and report it.
    stopVcpu(v, NPV_EXIT_SHUTDOWN, 0xdead);
    throw x;
  } finally {
    host.leaveGuest();
    host.saveContext(v.ctx);
    v.running = false;
    v.l1 = null;
    if (reason !== 0) {
      // Fill the run page from L2's saved state, then switch back to L1.
      fillRunPage(e, v, pageGpa, reason);
      v.forwarded = true;
    }
    host.load(l1vcpu.vmcs);
    host.restoreContext(l1vcpu.ctx);
  }
  if (tr !== null) tr.begin("world-switch", "world switch L2 → L1");
  l0.chargeHandler("npv.forward", npvForwardReason(reason));
  l0.chargeHandler("npv.world_switch", "npv_run");
  if (tr !== null) tr.end();
  e.counts.forwarded.bump(v.vmcs.level, reason);
  return NPV_OK;
}

/**
 * The run page is built here, then copied to L1's memory: one buffer for every forwarded exit
 * (cleared each time; fillRunPage is not re-entered while it fills it).
 */
const runPage = new Uint8Array(0x100);
const runPageView = new DataView(runPage.buffer);

/**
 * Write the run page (0x100 bytes) from the L2 vCPU's saved state and exit data; L2's VMCS is the
 * current one. Nothing is allocated per forwarded exit.
 */
function fillRunPage(e: NpvEngine, v: L2Vcpu, gpa: number, reason: number): void {
  const buf = runPage;
  buf.fill(0);
  fillFromVmcs(e, v, runPageView, reason);
  buf.set(v.exitData, NPV_RUN_DATA);
  writeL1(v.vm.owner.vm, gpa, buf);
  if (reason === NPV_EXIT_HALT) e.counts.events.bump(NE.l2_halts_forwarded);
}

/** A 64-bit VMCS field of the current VMCS into the run page at `off`. */
function field64(h: VmxHost, d: DataView, off: number, enc: number): void {
  d.setInt32(off, h.vmread(enc), true);
  d.setInt32(off + 4, h.vmreadHigh(enc), true);
}

/** The run page's exit reason, registers and instruction length from L2's VMCS (current). */
function fillFromVmcs(e: NpvEngine, v: L2Vcpu, d: DataView, reason: number): void {
  const h = e.l0.host;
  d.setUint32(NPV_RUN_EXIT_REASON, reason, true);
  d.setUint32(NPV_RUN_FLAGS, 0, true);
  field64(h, d, NPV_RUN_RIP, V.VMCS_GUEST_RIP);
  field64(h, d, NPV_RUN_RFLAGS, V.VMCS_GUEST_RFLAGS);
  for (let r = 0; r < 16; r++) {
    d.setInt32(NPV_RUN_GPRS + 8 * r, v.ctx.lo[r], true);
    d.setInt32(NPV_RUN_GPRS + 8 * r + 4, v.ctx.hi[r], true);
  }
  field64(h, d, NPV_RUN_GPRS + 32, V.VMCS_GUEST_RSP);
  field64(h, d, NPV_RUN_CR0, V.VMCS_GUEST_CR0);
  field64(h, d, NPV_RUN_CR3, V.VMCS_GUEST_CR3);
  field64(h, d, NPV_RUN_CR4, V.VMCS_GUEST_CR4);
  field64(h, d, NPV_RUN_EFER, V.VMCS_GUEST_IA32_EFER);
  const completesInL1 = reason === NPV_EXIT_IO || reason === NPV_EXIT_MSR || reason === NPV_EXIT_HYPERCALL;
  d.setUint32(NPV_RUN_INSN_LEN, completesInL1 ? h.vmread(V.VMCS_EXIT_INSTRUCTION_LENGTH) : 0, true);
}
