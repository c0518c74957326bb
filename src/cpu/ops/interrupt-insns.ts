/**
 * Instructions about interrupts: HLT, INT n, INT3, INTO, INT1, UD2 (SDM vol. 2 for each; delivery
 * through the IDT is interrupts.ts) and the interrupt flag, CLI/STI (no VME/PVI). IRET is with
 * the far transfers (far.ts).
 */
import { GP, OF_, UD } from "../../x86/exceptions.js";
import { IF } from "../../x86/flags.js";
import * as VX from "../../x86/vmx.js";
import { CPU_HLT_EXITING } from "../../x86/vmx-controls.js";
import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import { deliverEvent } from "../interrupts.js";
import type { OpDef } from "../opdef.js";
import { iopl } from "./system-common.js";

/** HLT: privileged; stops fetching until an interrupt (or forever with IF=0). */
function hlt(c: Cpu, i: Insn): void {
  if (c.cpl !== 0) c.raise(GP, 0);
  if (c.nonRoot && (c.vmxUnit.proc & CPU_HLT_EXITING) !== 0) c.vmxUnit.instructionExit(VX.EXIT_HLT, i);
  c.halt();
}

/** INT imm8 (CD): software interrupt; the gate's DPL must be >= CPL. Returns after INT. */
function intN(c: Cpu, i: Insn): void {
  deliverEvent(c, i.imm & 0xff, -1, false, 1);
}

/** INT3 (CC): #BP as a software interrupt (trap: the saved RIP follows INT3). */
function int3(c: Cpu, _i: Insn): void {
  deliverEvent(c, 3, -1, false, 1);
}

/** INTO (CE, invalid in 64-bit mode): #OF if OF = 1. */
function into(c: Cpu, _i: Insn): void {
  if (c.getOF() !== 0) deliverEvent(c, OF_, -1, false, 1);
}

/** INT1/ICEBP (F1): #DB as a trap without the gate DPL check (SDM vol. 3, 6.15 interrupt 1). */
function int1(c: Cpu, _i: Insn): void {
  deliverEvent(c, 1, -1, false, 0);
}

function ud2(c: Cpu, _i: Insn): void {
  c.raise(UD);
}

/** CLI (FA): #GP(0) if CPL > IOPL (no VME/PVI). */
function cli(c: Cpu, _i: Insn): void {
  if (c.cpl > iopl(c)) c.raise(GP, 0);
  c.flagsBase &= ~IF;
}

/** STI (FB): when IF was 0, interrupts stay blocked until after the next instruction. */
function sti(c: Cpu, _i: Insn): void {
  if (c.cpl > iopl(c)) c.raise(GP, 0);
  if ((c.flagsBase & IF) === 0) {
    c.flagsBase |= IF;
    c.intShadow = true;
    c.irqCheck = true;
  }
}

export const INTERRUPT_OPS: readonly OpDef[] = [
  { name: "hlt", map: 0, code: 0xf4, modrm: false, size: "v", exec: hlt },
  { name: "int3", map: 0, code: 0xcc, modrm: false, size: "v", exec: int3 },
  { name: "int", map: 0, code: 0xcd, modrm: false, size: "v", imm: "ib", exec: intN },
  { name: "into", map: 0, code: 0xce, modrm: false, size: "v", mode: "no64", exec: into },
  { name: "int1", map: 0, code: 0xf1, modrm: false, size: "v", exec: int1 },
  { name: "ud2", map: 1, code: 0x0b, modrm: false, size: "v", exec: ud2 },
  { name: "cli", map: 0, code: 0xfa, modrm: false, size: "v", exec: cli },
  { name: "sti", map: 0, code: 0xfb, modrm: false, size: "v", exec: sti },
];
