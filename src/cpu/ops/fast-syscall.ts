/**
 * Fast system calls: SYSCALL/SYSRET, SYSENTER/SYSEXIT and SWAPGS (SDM vol. 2 for each), with the
 * flat segments they load from the STAR and SYSENTER MSRs.
 */

import { isCanonical as canonical } from "../../x86/canonical.js";
import { EFER_SCE } from "../../x86/control.js";
import { GP, UD } from "../../x86/exceptions.js";
import { IF, RF, VM } from "../../x86/flags.js";
import * as CH from "../charges.js";
import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";
import {
  AR_CODE32_KERNEL,
  AR_CODE32_USER,
  AR_CODE64_KERNEL,
  AR_CODE64_USER,
  AR_DATA_KERNEL,
  AR_DATA_USER,
  setSegment,
} from "../segments.js";
import { lma, priv } from "./system-common.js";

/** SWAPGS (0F 01 F8): exchange GS.base with IA32_KERNEL_GS_BASE; 64-bit mode only, CPL 0. */
function swapgs(c: Cpu, _i: Insn): void {
  if (!c.mode64) c.raise(UD);
  priv(c);
  const lo = c.segBaseLo[5];
  const hi = c.segBaseHi[5];
  c.segBaseLo[5] = c.kernelGsBaseLo;
  c.segBaseHi[5] = c.kernelGsBaseHi;
  c.kernelGsBaseLo = lo;
  c.kernelGsBaseHi = hi;
}

/**
 * SYSCALL (0F 05; SDM vol. 2): RCX = next RIP, R11 = RFLAGS, RFLAGS &= ~IA32_FMASK (and RF),
 * CS = STAR[47:32] & ~3 (flat 64-bit, DPL 0), SS = STAR[47:32] + 8, CPL 0, RIP = LSTAR.
 * #UD outside 64-bit mode or with EFER.SCE = 0 (compatibility-mode SYSCALL is Intel-#UD).
 */
function syscall(c: Cpu, _i: Insn): void {
  c.chargeEvent(CH.CHARGE_SYSCALL);
  if (!c.mode64 || (c.efer & EFER_SCE) === 0) c.raise(UD);
  const flags = c.getFlags();
  c.set64(1, c.ripLo, c.ripHi);
  c.set64(11, flags, 0);
  const sel = c.starHi & 0xffff;
  setSegment(c, 1, sel & 0xfffc, 0, 0, 0xffffffff, AR_CODE64_KERNEL);
  setSegment(c, 2, (sel + 8) & 0xffff, 0, 0, 0xffffffff, AR_DATA_KERNEL);
  c.setCpl(0);
  c.setFlags(flags & ~c.sfmask & ~RF);
  c.ripLo = c.lstarLo;
  c.ripHi = c.lstarHi;
  c.updateMode();
}

/**
 * SYSRET (0F 07; SDM vol. 2): CPL 0 only; RIP = RCX (REX.W: must be canonical, else #GP(0)) or
 * ECX; RFLAGS = (R11 & 3C7FD7h) | 2; CS = STAR[63:48] + 16 (64-bit) or STAR[63:48] (32-bit)
 * with RPL 3; SS = STAR[63:48] + 8 with RPL 3; CPL 3.
 */
function sysret(c: Cpu, i: Insn): void {
  c.chargeEvent(CH.CHARGE_SYSCALL);
  if (!c.mode64 || (c.efer & EFER_SCE) === 0) c.raise(UD);
  priv(c);
  const base = (c.starHi >>> 16) & 0xffff;
  const to64 = i.size === 8;
  let ripHi = 0;
  if (to64) {
    if (!canonical(c.hi[1])) c.raise(GP, 0);
    ripHi = c.hi[1];
  }
  const ripLo = c.lo[1];
  if (to64) setSegment(c, 1, ((base + 16) & 0xffff) | 3, 0, 0, 0xffffffff, AR_CODE64_USER);
  else setSegment(c, 1, base | 3, 0, 0, 0xffffffff, AR_CODE32_USER);
  setSegment(c, 2, ((base + 8) & 0xffff) | 3, 0, 0, 0xffffffff, AR_DATA_USER);
  c.setCpl(3);
  c.setFlags((c.lo[11] & 0x3c7fd7) | 2);
  c.ripLo = ripLo;
  c.ripHi = ripHi;
  c.updateMode();
}

/**
 * SYSENTER (0F 34; SDM vol. 2): #GP(0) if IA32_SYSENTER_CS[15:2] = 0; CS = SYSENTER_CS & ~3
 * (64-bit code in IA-32e mode), SS = CS + 8, RIP/RSP from the SYSENTER MSRs, CPL 0;
 * clears VM, IF and RF.
 */
function sysenter(c: Cpu, _i: Insn): void {
  c.chargeEvent(CH.CHARGE_SYSCALL);
  const cs = c.sysenterCs & 0xfffc;
  if (cs === 0) c.raise(GP, 0);
  const long = lma(c);
  setSegment(c, 1, cs, 0, 0, 0xffffffff, long ? AR_CODE64_KERNEL : AR_CODE32_KERNEL);
  setSegment(c, 2, (cs + 8) & 0xffff, 0, 0, 0xffffffff, AR_DATA_KERNEL);
  c.setCpl(0);
  c.setFlags(c.getFlags() & ~(VM | IF | RF));
  c.ripLo = c.sysenterEipLo;
  c.ripHi = long ? c.sysenterEipHi : 0;
  c.lo[4] = c.sysenterEspLo;
  c.hi[4] = long ? c.sysenterEspHi : 0;
  c.updateMode();
}

/**
 * SYSEXIT (0F 35; SDM vol. 2): CPL 0; to 64-bit code with REX.W (CS = SYSENTER_CS + 32,
 * SS = + 40, RIP = RDX, RSP = RCX, both canonical) or 32-bit (CS + 16, SS + 24); RPL 3.
 */
function sysexit(c: Cpu, i: Insn): void {
  c.chargeEvent(CH.CHARGE_SYSCALL);
  priv(c);
  const cs = c.sysenterCs & 0xfffc;
  if (cs === 0) c.raise(GP, 0);
  const to64 = i.size === 8;
  if (to64 && (!canonical(c.hi[2]) || !canonical(c.hi[1]))) c.raise(GP, 0);
  if (to64) {
    setSegment(c, 1, ((cs + 32) & 0xffff) | 3, 0, 0, 0xffffffff, AR_CODE64_USER);
    setSegment(c, 2, ((cs + 40) & 0xffff) | 3, 0, 0, 0xffffffff, AR_DATA_USER);
  } else {
    setSegment(c, 1, ((cs + 16) & 0xffff) | 3, 0, 0, 0xffffffff, AR_CODE32_USER);
    setSegment(c, 2, ((cs + 24) & 0xffff) | 3, 0, 0, 0xffffffff, AR_DATA_USER);
  }
  c.setCpl(3);
  c.ripLo = c.lo[2];
  c.ripHi = to64 ? c.hi[2] : 0;
  const spLo = c.lo[1];
  const spHi = to64 ? c.hi[1] : 0;
  c.lo[4] = spLo;
  c.hi[4] = spHi;
  c.updateMode();
}

export const FAST_SYSCALL_OPS: readonly OpDef[] = [
  { name: "swapgs", map: 1, code: 0x01, ext: 7, rmExt: 0, modrm: true, size: "v", exec: swapgs },
  { name: "syscall", map: 1, code: 0x05, modrm: false, size: "v", exec: syscall },
  { name: "sysret", map: 1, code: 0x07, modrm: false, size: "v", exec: sysret },
  { name: "sysenter", map: 1, code: 0x34, modrm: false, size: "v", exec: sysenter },
  { name: "sysexit", map: 1, code: 0x35, modrm: false, size: "v", exec: sysexit },
];
