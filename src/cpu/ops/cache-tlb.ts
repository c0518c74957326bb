/**
 * TLB and cache maintenance: INVLPG, INVPCID, INVD/WBINVD, CLFLUSH and the fences (SDM vol. 2
 * for each). Caches are not modelled as state, so the cache instructions only check and exit.
 */
import { ACC_USER } from "../../mmu/walker.js";
import { isCanonical as canonical } from "../../x86/canonical.js";
import { CR4_PCIDE } from "../../x86/control.js";
import { GP } from "../../x86/exceptions.js";
import * as VX from "../../x86/vmx.js";
import { CPU_INVLPG_EXITING, CPU2_WBINVD_EXITING } from "../../x86/vmx-controls.js";
import * as CH from "../charges.js";
import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";
import { addr, addrHi, priv } from "./system-common.js";

/** INVLPG m (0F 01 /7): drop the translation of the page (no fault for any address). */
function invlpg(c: Cpu, i: Insn): void {
  priv(c);
  c.ea(i);
  if (c.nonRoot && (c.vmxUnit.proc & CPU_INVLPG_EXITING) !== 0) c.vmxUnit.instructionExit(VX.EXIT_INVLPG, i, c.eaLo);
  c.chargeEvent(CH.CHARGE_INVLPG);
  c.mmu.invlpg(c.eaLo, c.eaHi); // TLB model + PSCs; drops the page from the software TLB too
}

/**
 * INVPCID r, m128 (66 0F 38 82): types 0 (address), 1 (PCID), 2 (all incl. global), 3 (all
 * but global). The software TLB is not PCID-tagged: type 0 drops the page in every PCID,
 * types 1-3 flush everything (conservative).
 */
function invpcid(c: Cpu, i: Insn): void {
  c.chargeEvent(CH.CHARGE_INVLPG);
  priv(c);
  const typeLo = c.lo[i.reg];
  const typeHi = c.mode64 ? c.hi[i.reg] : 0;
  if (typeHi !== 0 || typeLo >>> 0 > 3) c.raise(GP, 0);
  c.ea(i);
  const lo = c.eaLo;
  const hi = c.eaHi;
  const pcid = c.read64(lo, hi);
  const pcidHi = c.vHi;
  const a = addr(c, lo, hi, 8);
  const laLo = c.read64(a, addrHi());
  const laHi = c.vHi;
  if ((pcid & ~0xfff) !== 0 || pcidHi !== 0) c.raise(GP, 0);
  if (typeLo <= 1 && (c.cr4 & CR4_PCIDE) === 0 && (pcid & 0xfff) !== 0) c.raise(GP, 0);
  if (typeLo === 0 && !canonical(laHi)) c.raise(GP, 0);
  c.mmu.invpcid(typeLo, pcid & 0xfff, laLo, laHi); // TLB model + PSCs (and the software TLB)
}

/** WBINVD/INVD (0F 09, 0F 08): privileged no-ops (no caches are modelled). */
function wbinvd(c: Cpu, i: Insn): void {
  priv(c); // #GP at CPL > 0 comes before the VM exit (SDM vol. 3, 25.1.1)
  if (!c.nonRoot) return;
  if (i.opcode === 0x108) c.vmxUnit.instructionExit(VX.EXIT_INVD, i); // INVD exits unconditionally (25.1.2)
  if ((c.vmxUnit.proc2 & CPU2_WBINVD_EXITING) !== 0) c.vmxUnit.instructionExit(VX.EXIT_WBINVD, i);
}

/** CLFLUSH m8 (0F AE /7): a no-op that still checks the address like a read (without reading MMIO). */
function clflush(c: Cpu, i: Insn): void {
  c.ea(i);
  c.translate(c.eaLo, c.eaHi, c.cpl === 3 ? ACC_USER : 0);
}

function nop(_c: Cpu, _i: Insn): void {}

export const CACHE_TLB_OPS: readonly OpDef[] = [
  { name: "invlpg", map: 1, code: 0x01, ext: 7, form: "mem", modrm: true, size: "v", exec: invlpg },
  { name: "invpcid", map: 2, code: 0x82, prefix: 0x66, form: "mem", modrm: true, size: "f64", exec: invpcid },
  { name: "invd", map: 1, code: 0x08, modrm: false, size: "v", exec: wbinvd },
  { name: "wbinvd", map: 1, code: 0x09, modrm: false, size: "v", exec: wbinvd },
  { name: "clflush", map: 1, code: 0xae, ext: 7, form: "mem", modrm: true, size: "b", exec: clflush },
  { name: "lfence", map: 1, code: 0xae, ext: 5, form: "reg", modrm: true, size: "v", exec: nop },
  { name: "mfence", map: 1, code: 0xae, ext: 6, form: "reg", modrm: true, size: "v", exec: nop },
  { name: "sfence", map: 1, code: 0xae, ext: 7, form: "reg", modrm: true, size: "v", exec: nop },
];
