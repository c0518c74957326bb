/**
 * nestlab's VMCS region layout in guest memory. The SDM leaves the format implementation-specific
 * except for the first 8 bytes (24.2); software must only use VMREAD/VMWRITE. nestlab's:
 *
 *   offset 0   u32  bits 30:0 VMCS revision identifier, bit 31 shadow-VMCS indicator
 *   offset 4   u32  VMX-abort indicator
 *   offset 8   u32  launch state: 0 clear, 1 launched
 *   offset 16  u64  × N: every supported field, in ascending encoding order (supportedVmcsFields),
 *                   8 bytes each (low dword, high dword), whatever its width
 *
 * The processor writes the region back on VMCLEAR (and VMXOFF) and reads it on a VMPTRLD of a
 * region it has not cached; VMCLEAR of a region never loaded initializes it (fields zero).
 */

import type { PhysicalMemory } from "../../mmu/phys.js";
import { VMCS_SHADOW_INDICATOR } from "../../x86/vmx-controls.js";
import { VMCS_REGION_SIZE } from "./caps.js";
import { supportedVmcsFields, type Vmcs } from "./vmcs.js";

const LAUNCH_STATE = 8;
const FIELD_AREA = 16;

/** The fields in region order, looked up on first use (the list is built lazily, vmcs.ts). */
function regionFields(): readonly number[] {
  const fields = supportedVmcsFields();
  if (FIELD_AREA + fields.length * 8 > VMCS_REGION_SIZE) throw new Error("VMCS fields do not fit the region");
  return fields;
}

/** Write `v` (its address, revision, launch state and fields) to memory. */
export function writeRegion(mem: PhysicalMemory, v: Vmcs, revision: number): void {
  const a = v.address;
  mem.write(a, 4, (revision & 0x7fffffff) | (v.shadow ? VMCS_SHADOW_INDICATOR : 0));
  mem.write(a + LAUNCH_STATE, 4, v.launched ? 1 : 0);
  const fields = regionFields();
  for (let k = 0; k < fields.length; k++) mem.write64(a + FIELD_AREA + 8 * k, v.read(fields[k]), v.readHi(fields[k]));
}

/** Read the region at `addr` into `v` (fields, launch state, shadow indicator). */
export function readRegion(mem: PhysicalMemory, addr: number, v: Vmcs): void {
  v.address = addr;
  v.shadow = (mem.read(addr, 4) & VMCS_SHADOW_INDICATOR) !== 0;
  v.launched = mem.read(addr + LAUNCH_STATE, 4) === 1;
  const fields = regionFields();
  for (let k = 0; k < fields.length; k++) {
    const o = addr + FIELD_AREA + 8 * k;
    v.write(fields[k], mem.read(o, 4), mem.read(o + 4, 4));
  }
}

/** Set the region's launch state to clear in memory (VMCLEAR of a region not cached). */
export function clearRegionLaunchState(mem: PhysicalMemory, addr: number): void {
  mem.write(addr + LAUNCH_STATE, 4, 0);
}
