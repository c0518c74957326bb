/**
 * A fake L0 for unit-testing L1's pieces: L1 memory in a Uint8Array, the npv hypercalls recorded
 * and answered per the ABI's shape (handles, MAP bookkeeping, policies read back), RUN answering
 * from a script of exits the test writes into the run page.
 */
import type { PrimitiveName } from "../../src/cost/primitives.js";
import type { HypercallResult, L1Memory, L1Platform } from "../../src/hypervisors/l1/platform.js";
import * as A from "../../src/hypervisors/npv-abi.js";

export class ArrayMemory implements L1Memory {
  readonly bytes: Uint8Array;
  private readonly dv: DataView;
  constructor(readonly size: number) {
    this.bytes = new Uint8Array(size);
    this.dv = new DataView(this.bytes.buffer);
  }
  isRam(gpa: number, len: number): boolean {
    return gpa >= 0 && len > 0 && gpa + len <= this.size;
  }
  read32(gpa: number): number {
    return this.dv.getUint32(gpa, true);
  }
  read64(gpa: number): number {
    return this.dv.getUint32(gpa + 4, true) * 4294967296 + this.dv.getUint32(gpa, true);
  }
  write32(gpa: number, v: number): void {
    this.dv.setUint32(gpa, v >>> 0, true);
  }
  write64(gpa: number, v: number): void {
    this.write32(gpa, v % 4294967296);
    this.write32(gpa + 4, Math.floor(v / 4294967296));
  }
  readBytes(gpa: number, len: number): Uint8Array {
    return this.bytes.slice(gpa, gpa + len);
  }
  writeBytes(gpa: number, b: Uint8Array): void {
    this.bytes.set(b, gpa);
  }
}

export interface Call {
  nr: number;
  args: number[];
}

/** A scripted exit: fill the run page (fields written by the test's callback). */
export type ScriptedExit = (mem: ArrayMemory, runPage: number, before: ArrayMemory) => void;

export class FakeL0 implements L1Platform {
  readonly mem: ArrayMemory;
  readonly calls: Call[] = [];
  readonly charges = new Map<string, number>();
  /** L2 pfn → L1 pfn, as L0 would record it. */
  readonly l2map = new Map<number, number>();
  cpuidTable: Uint8Array | null = null;
  msrTable: Uint8Array | null = null;
  state: Uint8Array | null = null;
  blk: Uint8Array | null = null;
  mmioRegions: Array<[number, number]> = [];
  script: ScriptedExit[] = [];
  /** The flags word of the run page as L0 saw it at each RUN (after the first). */
  runFlags: number[] = [];
  signature = A.NPV_SIGNATURE;
  version = A.NPV_ABI_VERSION;

  constructor(size = 48 * 1024 * 1024) {
    this.mem = new ArrayMemory(size);
  }

  count(nr: number): number {
    return this.calls.filter((c) => c.nr === nr).length;
  }

  cpuid(leaf: number): [number, number, number, number] {
    const w = (s: string) =>
      (s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24)) >>> 0;
    if (leaf === A.NPV_CPUID_SIGNATURE_LEAF)
      return [
        A.NPV_CPUID_FEATURES_LEAF,
        w(this.signature.slice(0, 4)),
        w(this.signature.slice(4, 8)),
        w(this.signature.slice(8, 12)),
      ];
    if (leaf === A.NPV_CPUID_FEATURES_LEAF) return [this.version, 0x3f, A.NPV_MAX_VMS, A.NPV_MAX_VCPUS_PER_VM];
    return [0, 0, 0, 0];
  }

  charge(name: PrimitiveName, _reason: string, times = 1): void {
    this.charges.set(name, (this.charges.get(name) ?? 0) + times);
  }

  private mapRange(l2: number, l1: number, n: number): number {
    for (let i = 0; i < n; i++) if (this.l2map.has(l2 / 4096 + i)) return A.NPV_E_EXIST;
    for (let i = 0; i < n; i++) this.l2map.set(l2 / 4096 + i, l1 / 4096 + i);
    return 0;
  }

  hypercall(nr: number, a1 = 0, a2 = 0, a3 = 0, a4 = 0): HypercallResult {
    this.calls.push({ nr, args: [a1, a2, a3, a4] });
    switch (nr) {
      case A.NPV_HC_VM_CREATE:
        return { status: 0, rbx: 1 };
      case A.NPV_HC_VCPU_CREATE:
        this.state = this.mem.readBytes(a2, A.NPV_STATE_SIZE);
        return { status: 0, rbx: 7 };
      case A.NPV_HC_MAP:
        return { status: this.mapRange(a2, a3, a4 % 4294967296), rbx: 0 };
      case A.NPV_HC_MAP_BATCH: {
        for (let i = 0; i < a3; i++) {
          const o = a2 + i * A.NPV_BATCH_ENTRY_SIZE;
          const s = this.mapRange(this.mem.read64(o), this.mem.read64(o + 8), this.mem.read32(o + 16));
          if (s !== 0) return { status: s, rbx: i };
        }
        return { status: 0, rbx: a3 };
      }
      case A.NPV_HC_SET_CPUID:
        this.cpuidTable = this.mem.readBytes(a2, a3 * A.NPV_CPUID_ENTRY_SIZE);
        return { status: 0, rbx: 0 };
      case A.NPV_HC_SET_MSRS:
        this.msrTable = this.mem.readBytes(a2, a3 * A.NPV_MSR_ENTRY_SIZE);
        return { status: 0, rbx: 0 };
      case A.NPV_HC_MMIO_REGION:
        this.mmioRegions.push([a2, a3]);
        return { status: 0, rbx: 0 };
      case A.NPV_HC_BLK_SETUP:
        this.blk = this.mem.readBytes(a2, A.NPV_BLK_DESC_SIZE);
        return { status: 0, rbx: 0 };
      case A.NPV_HC_BLK_TEARDOWN:
        return { status: 0, rbx: 0 };
      case A.NPV_HC_RUN: {
        if (this.calls.filter((c) => c.nr === A.NPV_HC_RUN).length > 1)
          this.runFlags.push(this.mem.read32(a2 + A.NPV_RUN_FLAGS));
        const next = this.script.shift();
        // What L1 left in the run page, as L0 reads it at RUN (offsets as in the page).
        const before = new ArrayMemory(4096);
        before.writeBytes(0, this.mem.readBytes(a2, 4096));
        this.mem.writeBytes(a2, new Uint8Array(0x100));
        if (next === undefined) {
          this.mem.write32(a2, A.NPV_EXIT_HALT);
          return { status: 0, rbx: 0 };
        }
        next(this.mem, a2, before);
        return { status: 0, rbx: 0 };
      }
      default:
        return { status: A.NPV_E_NOSYS, rbx: 0 };
    }
  }
}
