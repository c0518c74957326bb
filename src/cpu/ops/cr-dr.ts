/**
 * Control and debug registers: MOV to/from CRn and DRn, CLTS, SMSW, LMSW (SDM vol. 2 for each;
 * the registers' side effects are in control-regs.ts and debug.ts). In VMX non-root operation
 * CR accesses may exit (CR masks and shadows, SDM vol. 3, 25.1.3) and host-owned bits read from
 * the shadows and stay unchanged on writes (24.6.6, 25.3).
 */
import { CR0_TS } from "../../x86/control.js";
import { UD } from "../../x86/exceptions.js";
import * as CH from "../charges.js";
import { crExists, drIndex, readCr, readDr, writeCr, writeCr0, writeDr } from "../control-regs.js";
import type { Cpu } from "../cpu.js";
import { checkGeneralDetect } from "../debug.js";
import type { Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";
import { priv } from "./system-common.js";

/** Scratch for 64-bit results (no allocation). */
const t = new Int32Array(4);

/** MOV r, CRn (0F 20): operand is 64-bit in 64-bit mode, 32-bit otherwise; mod ignored. */
function movFromCr(c: Cpu, i: Insn): void {
  if (!crExists(c, i.reg)) c.raise(UD);
  priv(c);
  if (c.nonRoot) c.vmxUnit.checkCrRead(i, i.reg, i.rm);
  readCr(c, i.reg, t);
  if (c.nonRoot) {
    // Host-owned CR0/CR4 bits read from the read shadows (SDM vol. 3, 24.6.6).
    if (i.reg === 0) t[0] = c.vmxUnit.shadowCr0(t[0]);
    else if (i.reg === 4) t[0] = c.vmxUnit.shadowCr4(t[0]);
  }
  if (c.mode64) c.set64(i.rm, t[0], t[1]);
  else c.set32(i.rm, t[0]);
}

/** MOV CRn, r (0F 22). Side effects in control-regs.ts. */
function movToCr(c: Cpu, i: Insn): void {
  if (!crExists(c, i.reg)) c.raise(UD);
  priv(c);
  let lo = c.lo[i.rm];
  if (c.nonRoot) {
    c.vmxUnit.checkCrWrite(i, i.reg, lo, i.rm);
    // A MOV to CR0/CR4 that does not exit leaves the host-owned bits unchanged (SDM vol. 3, 25.3).
    if (i.reg === 0) lo = (lo & ~c.vmxUnit.cr0Mask) | (c.cr0 & c.vmxUnit.cr0Mask);
    else if (i.reg === 4) lo = (lo & ~c.vmxUnit.cr4Mask) | (c.cr4 & c.vmxUnit.cr4Mask);
  }
  if (i.reg !== 8) c.chargeEvent(CH.CHARGE_CR_WRITE);
  writeCr(c, i.reg, lo, c.mode64 ? c.hi[i.rm] : 0);
}

/** MOV r, DRn (0F 21). */
function movFromDr(c: Cpu, i: Insn): void {
  const n = drIndex(c, i.reg);
  priv(c);
  checkGeneralDetect(c);
  readDr(c, n, t);
  if (c.mode64) c.set64(i.rm, t[0], t[1]);
  else c.set32(i.rm, t[0]);
}

/** MOV DRn, r (0F 23). */
function movToDr(c: Cpu, i: Insn): void {
  const n = drIndex(c, i.reg);
  priv(c);
  checkGeneralDetect(c);
  writeDr(c, n, c.lo[i.rm], c.mode64 ? c.hi[i.rm] : 0);
}

/** CLTS (0F 06): clear CR0.TS. */
function clts(c: Cpu, i: Insn): void {
  priv(c);
  if (c.nonRoot) {
    c.vmxUnit.checkClts(i);
    if ((c.vmxUnit.cr0Mask & CR0_TS) !== 0) return; // a host-owned TS stays as it is (25.3)
  }
  c.cr0 &= ~CR0_TS;
}

/** SMSW (0F 01 /4): CR0 to a register (operand size) or the low 16 bits to memory. */
function smsw(c: Cpu, i: Insn): void {
  if (i.isMem) {
    c.ea(i);
    c.write16(c.eaLo, c.eaHi, c.nonRoot ? c.vmxUnit.shadowCr0(c.cr0) : c.cr0); // host-owned bits: the shadow (25.3)
  } else c.setReg(i.rm, i.size, c.nonRoot ? c.vmxUnit.shadowCr0(c.cr0) : c.cr0, 0);
}

/** LMSW (0F 01 /6): load CR0 bits 3:0 (PE can be set, not cleared). */
function lmsw(c: Cpu, i: Insn): void {
  priv(c);
  const src = c.readRm(i);
  let v = src & 0xf;
  if (c.nonRoot) {
    c.vmxUnit.checkLmsw(i, src, c.eaLo, c.eaHi);
    v = (v & ~c.vmxUnit.cr0Mask) | (c.cr0 & c.vmxUnit.cr0Mask & 0xf); // host-owned bits stay (25.3)
  }
  writeCr0(c, (c.cr0 & ~0xe) | v | (c.cr0 & 1), 0);
}

export const CR_DR_OPS: readonly OpDef[] = [
  { name: "mov", map: 1, code: 0x20, modrm: true, modIgnored: true, size: "f64", exec: movFromCr },
  { name: "mov", map: 1, code: 0x21, modrm: true, modIgnored: true, size: "f64", exec: movFromDr },
  { name: "mov", map: 1, code: 0x22, modrm: true, modIgnored: true, size: "f64", exec: movToCr },
  { name: "mov", map: 1, code: 0x23, modrm: true, modIgnored: true, size: "f64", exec: movToDr },
  { name: "clts", map: 1, code: 0x06, modrm: false, size: "v", exec: clts },
  { name: "smsw", map: 1, code: 0x01, ext: 4, modrm: true, size: "v", exec: smsw },
  { name: "lmsw", map: 1, code: 0x01, ext: 6, modrm: true, size: "w", exec: lmsw },
];
