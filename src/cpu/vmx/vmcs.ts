import * as V from "../../x86/vmx.js";

/**
 * A VMCS: fields stored by their architectural encoding (SDM vol. 3, appendix B). Values are
 * kept as int32 halves; 16- and 32-bit fields use the low half. The encoding's "high" bit (bit 0
 * of 64-bit fields) addresses the high half, as VMREAD/VMWRITE in 32-bit mode do.
 *
 * This is the in-memory format only nestlab's hardware reads (like Intel's, it is opaque to
 * software, which must use VMREAD/VMWRITE); `launched` is the launch state of 24.1.
 */
export class Vmcs {
  private readonly lo = new Int32Array(8192);
  private readonly hi = new Int32Array(8192);
  launched = false;
  /**
   * The level of the code this VMCS runs (1: a VM's code under L0; 2: an L2…): VM entry sets
   * the CPU's attribution from it. Simulator bookkeeping, not an architectural field.
   */
  level = 1;
  /** The guest-physical address of this VMCS region when software gave one (VMPTRLD), else -1. */
  address = -1;
  /** The shadow-VMCS indicator of the region (bit 31 of its first dword, 24.2). */
  shadow = false;

  /** Whether `enc` names a field this implementation supports. */
  static supports(enc: number): boolean {
    const base = V.vmcsFieldBase(enc);
    return base >= 0 && supportedFieldSet().has(base);
  }

  private static slot(enc: number): number {
    return ((((enc >>> 13) & 3) << 2) | ((enc >>> 10) & 3)) * 512 + ((enc >>> 1) & 0x1ff);
  }

  /** Read a field: its low 32 bits (a "high" encoding, bit 0 set, reads bits 63:32). */
  read(enc: number): number {
    const s = Vmcs.slot(enc);
    if ((enc & 1) === 1) return this.hi[s];
    return this.lo[s];
  }

  /** Bits 63:32 of a 64-bit or natural-width field (the other half of the 64-bit VMREAD). */
  readHi(enc: number): number {
    return this.hi[Vmcs.slot(enc)];
  }

  /** Read a natural/64-bit field as a double (exact below 2^53; for addresses and counters). */
  readNumber(enc: number): number {
    const s = Vmcs.slot(enc);
    return (this.hi[s] >>> 0) * 4294967296 + (this.lo[s] >>> 0);
  }

  write(enc: number, lo: number, hi = 0): void {
    const s = Vmcs.slot(enc);
    if ((enc & 1) === 1) {
      this.hi[s] = lo;
      return;
    }
    const w = V.vmcsFieldWidth(enc);
    if (w === V.VMCS_WIDTH_16) {
      this.lo[s] = lo & 0xffff;
      this.hi[s] = 0;
    } else if (w === V.VMCS_WIDTH_32) {
      this.lo[s] = lo;
      this.hi[s] = 0;
    } else {
      this.lo[s] = lo;
      this.hi[s] = hi;
    }
  }

  writeNumber(enc: number, v: number): void {
    this.write(enc, (v % 4294967296) | 0, Math.floor(v / 4294967296) | 0);
  }

  /** Copy every field (VMCS shadowing, vmcs12 ↔ vmcs02 merges start from here). */
  copyFrom(o: Vmcs): void {
    this.lo.set(o.lo);
    this.hi.set(o.hi);
  }
}

/**
 * Every field encoding exported by src/x86/vmx.ts (VMCS_* constants other than widths), built on
 * first use rather than at import: walking the module namespace costs ~4 ms, which every process
 * paid at start-up (issue 11), including the many that never touch VMX.
 */
let supported: ReadonlySet<number> | null = null;
let supportedSorted: readonly number[] | null = null;

function supportedFieldSet(): ReadonlySet<number> {
  if (supported === null) {
    supported = new Set<number>(
      Object.entries(V)
        .filter(([k, v]) => k.startsWith("VMCS_") && !k.startsWith("VMCS_WIDTH") && typeof v === "number")
        .map(([, v]) => v as number),
    );
  }
  return supported;
}

/** The supported field encodings in ascending order (the same array on every call). */
export function supportedVmcsFields(): readonly number[] {
  if (supportedSorted === null) supportedSorted = [...supportedFieldSet()].sort((a, b) => a - b);
  return supportedSorted;
}
