/**
 * Model-specific registers, CPUID and the time-stamp counter: RDMSR/WRMSR (the MSRs are in
 * msr.ts), CPUID (the CPU model, cpuid.ts), RDTSC/RDTSCP (simulated cycles; SDM vol. 2 for each).
 */
import { CR4_TSD } from "../../x86/control.js";
import { F1D_APIC } from "../../x86/cpuid.js";
import { GP } from "../../x86/exceptions.js";
import * as VX from "../../x86/vmx.js";
import { CPU_RDTSC_EXITING } from "../../x86/vmx-controls.js";
import * as CH from "../charges.js";
import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import { readMsr, readTsc, writeMsr } from "../msr.js";
import type { OpDef } from "../opdef.js";
import { priv } from "./system-common.js";

/** Scratch for 64-bit results (no allocation). */
const t = new Int32Array(4);

/** RDMSR (0F 32): EDX:EAX = MSR[ECX]. */
function rdmsr(c: Cpu, i: Insn): void {
  priv(c);
  if (c.nonRoot) c.vmxUnit.checkMsr(i, c.lo[1], false);
  c.chargeEvent(CH.CHARGE_MSR);
  readMsr(c, c.lo[1], t);
  c.set32(0, t[0]);
  c.set32(2, t[1]);
}

/** WRMSR (0F 30): MSR[ECX] = EDX:EAX. */
function wrmsr(c: Cpu, i: Insn): void {
  priv(c);
  if (c.nonRoot) c.vmxUnit.checkMsr(i, c.lo[1], true);
  c.chargeEvent(CH.CHARGE_MSR);
  writeMsr(c, c.lo[1], c.lo[0], c.lo[2]);
}

/** CPUID (0F A2): leaf EAX, subleaf ECX, from the CPU model. */
function cpuid(c: Cpu, i: Insn): void {
  if (c.nonRoot) c.vmxUnit.instructionExit(VX.EXIT_CPUID, i); // CPUID always exits (25.1.2)
  c.chargeEvent(CH.CHARGE_CPUID);
  c.model.query(c.lo[0], c.lo[1], t);
  // CPUID.1:EDX.APIC[bit 9] is 0 while IA32_APIC_BASE.EN is 0 (SDM vol. 3, 11.4.3).
  if (c.lo[0] === 1 && c.apicEnabled !== null && !c.apicEnabled()) t[3] &= ~F1D_APIC;
  c.set32(0, t[0]);
  c.set32(3, t[1]);
  c.set32(1, t[2]);
  c.set32(2, t[3]);
}

/** RDTSC (0F 31): simulated cycles + TSC offset; #GP at CPL > 0 with CR4.TSD. */
function rdtsc(c: Cpu, i: Insn): void {
  if ((c.cr4 & CR4_TSD) !== 0 && c.cpl !== 0) c.raise(GP, 0);
  if (c.nonRoot && (c.vmxUnit.proc & CPU_RDTSC_EXITING) !== 0)
    c.vmxUnit.instructionExit(i.opcode === 0x1f9 ? VX.EXIT_RDTSCP : VX.EXIT_RDTSC, i);
  readTsc(c, t);
  c.set32(0, t[0]);
  c.set32(2, t[1]);
}

/** RDTSCP (0F 01 F9): RDTSC plus ECX = IA32_TSC_AUX. */
function rdtscp(c: Cpu, i: Insn): void {
  rdtsc(c, i);
  c.set32(1, c.tscAux);
}

export const MSR_CPUID_OPS: readonly OpDef[] = [
  { name: "wrmsr", map: 1, code: 0x30, modrm: false, size: "v", exec: wrmsr },
  { name: "rdtsc", map: 1, code: 0x31, modrm: false, size: "v", exec: rdtsc },
  { name: "rdmsr", map: 1, code: 0x32, modrm: false, size: "v", exec: rdmsr },
  { name: "cpuid", map: 1, code: 0xa2, modrm: false, size: "v", exec: cpuid },
  { name: "rdtscp", map: 1, code: 0x01, ext: 7, rmExt: 1, modrm: true, size: "v", exec: rdtscp },
];
