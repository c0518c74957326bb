/**
 * Reading and writing L1 memory on L1's behalf, only after checking that every byte lies in one
 * of L1's RAM memslots (docs/npv-abi.md §5 rule 1): never MMIO, never another VM's memory.
 */
import type { Vm } from "../vm.js";

/** True when [gpa, gpa + len) is entirely L1 RAM (it may span adjacent memslots). */
export function isL1Ram(vm: Vm, gpa: number, len: number): boolean {
  if (!Number.isSafeInteger(gpa) || !Number.isSafeInteger(len) || gpa < 0 || len <= 0) return false;
  let a = gpa;
  const end = gpa + len;
  while (a < end) {
    let next = -1;
    for (const s of vm.memslots.slots) {
      if (a >= s.gpa && a < s.gpa + s.size) {
        next = s.gpa + s.size;
        break;
      }
    }
    if (next < 0) return false;
    a = next;
  }
  return true;
}

/** Copy [gpa, gpa + len) of L1 RAM (caller checked isL1Ram). */
export function readL1(vm: Vm, gpa: number, len: number): DataView {
  const b = vm.memory.readBytes(gpa, len);
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Copy [gpa, gpa + out.length) of L1 RAM into `out`, allocating nothing (caller checked isL1Ram). */
export function readL1Into(vm: Vm, gpa: number, out: Uint8Array): void {
  vm.memory.readInto(gpa, out);
}

export function writeL1(vm: Vm, gpa: number, bytes: Uint8Array): void {
  vm.memory.writeBytes(gpa, bytes);
}

/** A u64 at `off` as a number (exact below 2^53; above it, only ever used to fail a range check). */
export function u64(dv: DataView, off: number): number {
  return dv.getUint32(off + 4, true) * 4294967296 + dv.getUint32(off, true);
}
