/**
 * The VMX instructions as guest software executes them in VMX root operation (SDM vol. 3,
 * chapter 31): VMXON, VMXOFF, VMCLEAR, VMPTRLD, VMPTRST, VMREAD, VMWRITE, VMLAUNCH, VMRESUME,
 * INVEPT, INVVPID and VMCALL, with VMsucceed / VMfailInvalid / VMfailValid(n) (31.2) and the
 * VM-instruction error numbers of table 31-1. In non-root operation they exit before reaching
 * here (ops/vmx.ts), except VMREAD/VMWRITE that VMCS shadowing lets through (shadow.ts).
 *
 * VM entry and exit are `VmxUnit`'s, shared with VmxHost: VMLAUNCH checks the controls and the
 * host state (entry-checks.ts), calls `VmxUnit.enter`, and ends the run so that instructions
 * are attributed to the new level; exits of such a guest load the host state (host-state.ts).
 */

import { isCanonical } from "../../x86/canonical.js";
import { CR0_PE, CR4_VMXE, EFER_LMA } from "../../x86/control.js";
import { GP, UD } from "../../x86/exceptions.js";
import * as V from "../../x86/vmx.js";
import * as C from "../../x86/vmx-controls.js";
import { CHARGE_VMENTRY, CHARGE_VMINJECT } from "../charges.js";
import { maxPhysAddr } from "../control-regs.js";
import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import { CR0_FIXED0, inveptTypeSupported, invvpidTypeSupported } from "./caps.js";
import { checkEntry, ENTRY_CHECKS_PASSED, ENTRY_FAILED_LINK_POINTER, eptpValid } from "./entry-checks.js";
import { enterFailed, loadHostState } from "./host-state.js";
import { vmxAdvertised } from "./msrs.js";
import { Vmcs } from "./vmcs.js";
import { clearRegionLaunchState, readRegion, writeRegion } from "./vmcs-region.js";
import { ENTERED_AND_EXITED } from "./vmx.js";

const CF = 0x1;
const ZF = 0x40;
/** CF, PF, AF, ZF, SF, OF: the flags the VM-instruction outcomes define (31.2). */
const STATUS = 0x8d5;
const RFLAGS_VM = 1 << 17;

/** VMsucceed: every status flag clear. */
export function vmSucceed(c: Cpu): void {
  c.setFlags(c.getFlags() & ~STATUS);
}

function vmFailInvalid(c: Cpu): void {
  c.setFlags((c.getFlags() & ~STATUS) | CF);
}

/** VMfail(n): VMfailValid with the error number when a VMCS is current, else VMfailInvalid. */
export function vmFail(c: Cpu, error: number): void {
  const v = c.vmxUnit.vmcs;
  if (v === null) {
    vmFailInvalid(c);
    return;
  }
  v.write(V.VMCS_VM_INSTRUCTION_ERROR, error);
  c.setFlags((c.getFlags() & ~STATUS) | ZF);
}

/**
 * The #UD conditions every VMX instruction but VMCALL and VMFUNC shares: real/virtual-8086 mode,
 * compatibility mode. Checked before the VM exit in non-root operation too (chapter 31's
 * pseudocode tests them ahead of "ELSIF in VMX non-root operation THEN VM exit").
 */
export function checkMode(c: Cpu): void {
  if ((c.cr0 & CR0_PE) === 0 || (c.getFlags() & RFLAGS_VM) !== 0) c.raise(UD);
  if ((c.efer & EFER_LMA) !== 0 && !c.mode64) c.raise(UD);
}

/** Preconditions of every VMX instruction but VMXON: in VMX operation, CPL 0. */
function checkOperation(c: Cpu): void {
  checkMode(c);
  if (!c.vmxUnit.software.inVmx) c.raise(UD);
  if (c.cpl !== 0) c.raise(GP, 0);
}

/** A 4 KiB-aligned physical address within MAXPHYADDR (a VMCS or VMXON pointer), or -1. */
function readPointer(c: Cpu, i: Insn): number {
  c.ea(i);
  const lo = c.read64(c.eaLo, c.eaHi);
  const hi = c.vHi;
  if ((lo & 0xfff) !== 0) return -1;
  const width = maxPhysAddr(c);
  if (hi >>> 0 >= 2 ** (width - 32)) return -1;
  return (hi >>> 0) * 4294967296 + (lo >>> 0);
}

/** The revision identifier nestlab's processor expects in VMXON and VMCS regions. */
const REVISION = C.VMCS_REVISION_ID;

/** Execute a VMX instruction in root operation (Insn.op is a VMXI_* number). */
export function vmxInstruction(c: Cpu, i: Insn): void {
  if (!vmxAdvertised(c)) c.raise(UD);
  switch (i.op) {
    case V.VMXI_VMXON:
      vmxon(c, i);
      return;
    case V.VMXI_VMXOFF:
      vmxoff(c);
      return;
    case V.VMXI_VMCLEAR:
      vmclear(c, i);
      return;
    case V.VMXI_VMPTRLD:
      vmptrld(c, i);
      return;
    case V.VMXI_VMPTRST:
      vmptrst(c, i);
      return;
    case V.VMXI_VMREAD:
      checkOperation(c);
      c.vmxUnit.software.vmreads++;
      vmread(c, i, c.vmxUnit.vmcs);
      return;
    case V.VMXI_VMWRITE:
      checkOperation(c);
      c.vmxUnit.software.vmwrites++;
      vmwrite(c, i, c.vmxUnit.vmcs);
      return;
    case V.VMXI_VMLAUNCH:
      launch(c, false);
      return;
    case V.VMXI_VMRESUME:
      launch(c, true);
      return;
    case V.VMXI_INVEPT:
      invept(c, i);
      return;
    case V.VMXI_INVVPID:
      invvpid(c, i);
      return;
    case V.VMXI_VMCALL:
      checkOperation(c);
      vmFail(c, V.VMXERR_VMCALL_IN_ROOT);
      return; // no dual-monitor treatment (31, VMCALL)
    default:
      c.raise(UD); // VMFUNC outside non-root operation
  }
}

function vmxon(c: Cpu, i: Insn): void {
  checkMode(c);
  if ((c.cr4 & CR4_VMXE) === 0) c.raise(UD);
  const s = c.vmxUnit.software;
  if (s.inVmx) {
    if (c.cpl !== 0) c.raise(GP, 0);
    vmFail(c, V.VMXERR_VMXON_IN_ROOT);
    return;
  }
  // CPL 0, CR0/CR4 fixed bits, IA32_FEATURE_CONTROL locked with VMXON outside SMX enabled.
  // A20M is not modelled (the address line is always enabled).
  const fc = s.featureControl;
  if (
    c.cpl !== 0 ||
    (c.cr0 & CR0_FIXED0) !== CR0_FIXED0 ||
    (fc & C.FEATURE_CONTROL_LOCK) === 0 ||
    (fc & C.FEATURE_CONTROL_VMXON_OUTSIDE_SMX) === 0
  )
    c.raise(GP, 0);
  const ptr = readPointer(c, i);
  if (ptr < 0 || c.mem.read(ptr, 4) >>> 0 !== REVISION) {
    vmFailInvalid(c);
    return;
  }
  s.inVmx = true;
  s.vmxonPtr = ptr;
  c.vmxUnit.vmcs = null;
  vmSucceed(c);
}

function vmxoff(c: Cpu): void {
  checkOperation(c);
  const s = c.vmxUnit.software;
  // Software should VMCLEAR its VMCSs first (24.11.1); nestlab writes cached ones back anyway.
  for (const v of s.cache.values()) writeRegion(c.mem, v, REVISION);
  s.cache.clear();
  s.inVmx = false;
  s.vmxonPtr = -1;
  c.vmxUnit.vmcs = null;
  vmSucceed(c);
}

function vmclear(c: Cpu, i: Insn): void {
  checkOperation(c);
  const s = c.vmxUnit.software;
  const ptr = readPointer(c, i);
  if (ptr < 0) {
    vmFail(c, V.VMXERR_VMCLEAR_INVALID_ADDR);
    return;
  }
  if (ptr === s.vmxonPtr) {
    vmFail(c, V.VMXERR_VMCLEAR_VMXON_PTR);
    return;
  }
  const v = s.cache.get(ptr);
  if (v !== undefined) {
    v.launched = false;
    writeRegion(c.mem, v, REVISION);
    s.cache.delete(ptr);
  } else clearRegionLaunchState(c.mem, ptr);
  const u = c.vmxUnit;
  if (u.vmcs !== null && u.vmcs.address === ptr) u.vmcs = null;
  vmSucceed(c);
}

function vmptrld(c: Cpu, i: Insn): void {
  checkOperation(c);
  const s = c.vmxUnit.software;
  const ptr = readPointer(c, i);
  if (ptr < 0) {
    vmFail(c, V.VMXERR_VMPTRLD_INVALID_ADDR);
    return;
  }
  if (ptr === s.vmxonPtr) {
    vmFail(c, V.VMXERR_VMPTRLD_VMXON_PTR);
    return;
  }
  const rev = c.mem.read(ptr, 4);
  // A shadow VMCS can be made current only when VMCS shadowing exists (24.10): it does.
  if ((rev & 0x7fffffff) !== REVISION) {
    vmFail(c, V.VMXERR_VMPTRLD_BAD_REVISION);
    return;
  }
  c.vmxUnit.vmcs = activeVmcs(c, ptr);
  vmSucceed(c);
}

/** The processor's copy of the VMCS region at `ptr`, read from memory if it has none. */
export function activeVmcs(c: Cpu, ptr: number): Vmcs {
  const s = c.vmxUnit.software;
  let v = s.cache.get(ptr);
  if (v === undefined) {
    v = new Vmcs();
    v.level = c.levelRoot + 1;
    readRegion(c.mem, ptr, v);
    s.cache.set(ptr, v);
  }
  return v;
}

function vmptrst(c: Cpu, i: Insn): void {
  checkOperation(c);
  const v = c.vmxUnit.vmcs;
  c.ea(i);
  if (v === null) c.write64(c.eaLo, c.eaHi, V.VMCS_PTR_INVALID_LO, V.VMCS_PTR_INVALID_HI);
  else c.write64(c.eaLo, c.eaHi, (v.address % 4294967296) | 0, Math.floor(v.address / 4294967296));
  vmSucceed(c);
}

/** The field encoding in VMREAD/VMWRITE's register operand, or -1 when no field can have it. */
function fieldOperand(c: Cpu, i: Insn): number {
  const enc = c.getReg(i.reg, i.size);
  if (i.size === 8 && c.vHi !== 0) return -1;
  if ((enc & ~0x7fff) !== 0 || !Vmcs.supports(enc)) return -1;
  return enc;
}

/** VMREAD of `v` (the current VMCS, or the shadow VMCS in non-root operation). */
export function vmread(c: Cpu, i: Insn, v: Vmcs | null): void {
  if (v === null) {
    vmFailInvalid(c);
    return;
  }
  const enc = fieldOperand(c, i);
  if (enc < 0) {
    vmFail(c, V.VMXERR_UNSUPPORTED_FIELD);
    return;
  }
  const lo = v.read(enc);
  // The "high" access of a 64-bit field and 16/32-bit fields read as zero-extended 32 bits.
  const hi = (enc & 1) === 0 ? v.readHi(enc) : 0;
  c.storeRm(i, lo, hi);
  vmSucceed(c);
}

/** VMWRITE to `v` (the current VMCS, or the shadow VMCS in non-root operation). */
export function vmwrite(c: Cpu, i: Insn, v: Vmcs | null): void {
  if (v === null) {
    vmFailInvalid(c);
    return;
  }
  const lo = c.readRm(i);
  const hi = i.size === 8 ? c.vHi : 0;
  const enc = fieldOperand(c, i);
  if (enc < 0) {
    vmFail(c, V.VMXERR_UNSUPPORTED_FIELD);
    return;
  }
  if (V.vmcsFieldReadOnly(enc)) {
    vmFail(c, V.VMXERR_VMWRITE_READONLY);
    return;
  }
  v.write(enc, lo, hi);
  vmSucceed(c);
}

function launch(c: Cpu, resume: boolean): void {
  checkOperation(c);
  const u = c.vmxUnit;
  const v = u.vmcs;
  // No current VMCS, or a shadow VMCS current (24.10): VMfailInvalid.
  if (v === null || v.shadow) {
    vmFailInvalid(c);
    return;
  }
  if (!resume && v.launched) {
    vmFail(c, V.VMXERR_VMLAUNCH_NONCLEAR);
    return;
  }
  if (resume && !v.launched) {
    vmFail(c, V.VMXERR_VMRESUME_NONLAUNCHED);
    return;
  }
  const checked = checkEntry(c, v);
  if (checked > 0) {
    vmFail(c, checked); // invalid controls or host state
    return;
  }
  // Past these checks the instruction does not fail: entry succeeds or exits with bit 31 set.
  if (checked !== ENTRY_CHECKS_PASSED) {
    // Exit qualification 4 for the VMCS link pointer, 0 for the other checks (26.8).
    enterFailed(c, v, V.EXIT_INVALID_GUEST_STATE, checked === ENTRY_FAILED_LINK_POINTER ? 4 : 0);
    return;
  }
  u.software.guestRunning = true;
  // The hardware VM entry (and an injected event) costs cycles at the launching level (charges.ts).
  c.chargeEvent(CHARGE_VMENTRY);
  if ((v.read(V.VMCS_ENTRY_INTR_INFO) & C.INTR_INFO_VALID) !== 0) c.chargeEvent(CHARGE_VMINJECT);
  const r = u.enter();
  if (r === ENTERED_AND_EXITED) loadHostState(c, v);
  else if (r !== null) {
    u.software.guestRunning = false;
    enterFailed(c, v, V.EXIT_INVALID_GUEST_STATE);
    return;
  }
  c.requestStop(); // end the run at the level change (instructions are attributed per run)
}

/** Read the 128-bit INVEPT/INVVPID descriptor: [lo0, hi0, lo1, hi1]. */
const desc = new Int32Array(4);
function readDescriptor(c: Cpu, i: Insn): Int32Array {
  c.ea(i);
  desc[0] = c.read64(c.eaLo, c.eaHi);
  desc[1] = c.vHi;
  const a = (c.eaLo + 8) | 0;
  const ah = a >>> 0 < c.eaLo >>> 0 ? (c.eaHi + 1) | 0 : c.eaHi;
  desc[2] = c.read64(a, ah);
  desc[3] = c.vHi;
  return desc;
}

/** The INVEPT/INVVPID type in the register operand (64-bit in 64-bit mode), or -1 if too large. */
function typeOperand(c: Cpu, i: Insn): number {
  const t = c.getReg(i.reg, c.mode64 ? 8 : 4);
  if (c.mode64 && c.vHi !== 0) return -1;
  return t >>> 0 > 3 ? -1 : t;
}

function invept(c: Cpu, i: Insn): void {
  checkOperation(c);
  const type = typeOperand(c, i);
  if (!inveptTypeSupported(type)) {
    vmFail(c, V.VMXERR_INVALID_OPERAND);
    return;
  }
  const d = readDescriptor(c, i);
  if (type === C.INVEPT_SINGLE && !eptpValid(c, d[0], d[1])) {
    vmFail(c, V.VMXERR_INVALID_OPERAND);
    return;
  }
  // Invalidating more than the EP4TA's mappings is allowed (28.4.3.1): nestlab drops them all.
  c.vmxUnit.invalidateEpt();
  vmSucceed(c);
}

function invvpid(c: Cpu, i: Insn): void {
  checkOperation(c);
  const type = typeOperand(c, i);
  if (!invvpidTypeSupported(type)) {
    vmFail(c, V.VMXERR_INVALID_OPERAND);
    return;
  }
  const d = readDescriptor(c, i);
  if ((d[0] & ~0xffff) !== 0 || d[1] !== 0) {
    vmFail(c, V.VMXERR_INVALID_OPERAND);
    return;
  } // bits 63:16 reserved
  const vpid = d[0] & 0xffff;
  if (type !== C.INVVPID_ALL && vpid === 0) {
    vmFail(c, V.VMXERR_INVALID_OPERAND);
    return;
  }
  if (type === C.INVVPID_ADDR && !isCanonical(d[3])) {
    vmFail(c, V.VMXERR_INVALID_OPERAND);
    return;
  }
  // Individual-address and retaining-globals invalidate the whole context: more is allowed (28.4.3.3).
  if (type === C.INVVPID_ALL) c.vmxUnit.invalidateAllVpids();
  else c.vmxUnit.invalidateVpid(vpid);
  vmSucceed(c);
}
