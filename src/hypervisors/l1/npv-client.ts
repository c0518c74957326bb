/**
 * L1's side of the npv ABI: discovery and one method per hypercall, building the in-memory
 * arguments (batch lists, policy tables, state page, BLK_SETUP descriptor) in L1 pages it owns.
 * Every call is a VMCALL, i.e. an L1→L0 exit with its cost; preparing a list or table is charged
 * to L1 as `l1.hypercall_prep`. A failing call throws NpvCallError naming the call and status.
 */
import * as A from "../npv-abi.js";
import type { Extent } from "./l2-map.js";
import type { L1Platform } from "./platform.js";

export class NpvCallError extends Error {
  constructor(
    readonly call: string,
    readonly status: number,
    detail = "",
  ) {
    super(`npv ${call} failed: ${A.NPV_STATUS_NAMES[status] ?? status}${detail ? ` (${detail})` : ""}`);
  }
}

export class NpvUnavailable extends Error {}

export interface NpvFeatures {
  version: number;
  features: number;
  maxVms: number;
  maxVcpus: number;
}

/** One CPUID policy entry. */
export interface CpuidEntry {
  leaf: number;
  subleaf: number;
  /** Match the subleaf (NPV_CPUID_F_SUBLEAF). */
  matchSubleaf: boolean;
  regs: [number, number, number, number];
}

export interface MsrEntry {
  index: number;
  mode: number;
  value: number;
}

/** The initial state of an L2 vCPU (VCPU_CREATE). 64-bit values as numbers (< 2^53). */
export interface L2VcpuState {
  rip: number;
  rsp: number;
  rflags: number;
  cr0: number;
  cr3: number;
  cr4: number;
  efer: number;
  gdtrBase: number;
  gdtrLimit: number;
  /** 16 GPRs in ModRM order, as [lo, hi] 32-bit halves. */
  gprs: Array<[number, number]>;
  cs: number;
  ss: number;
  ds: number;
}

export interface BlkSetup {
  windowGpa: number;
  queueSize: number;
  backend: number;
  desc: number;
  avail: number;
  used: number;
  vector: number;
  features: [number, number];
}

const PAGE = 4096;

function ascii(words: number[]): string {
  let s = "";
  for (const w of words) for (let i = 0; i < 4; i++) s += String.fromCharCode((w >>> (8 * i)) & 0xff);
  return s;
}

export class NpvClient {
  /** Hypercalls issued, by name. */
  readonly calls = new Map<string, number>();

  constructor(
    private readonly p: L1Platform,
    /** An L1 page L1 keeps for hypercall arguments (lists, tables, descriptors). */
    private readonly argPage: number,
  ) {}

  /** CPUID 0x40000100 / 0x40000101: check the signature and the version before any hypercall. */
  discover(): NpvFeatures {
    const [max, b, c, d] = this.p.cpuid(A.NPV_CPUID_SIGNATURE_LEAF, 0);
    const sig = ascii([b, c, d]);
    if (sig !== A.NPV_SIGNATURE)
      throw new NpvUnavailable(
        `L0 does not offer the npv ABI (CPUID 0x${A.NPV_CPUID_SIGNATURE_LEAF.toString(16)} signature ${JSON.stringify(sig)})`,
      );
    if (max >>> 0 < A.NPV_CPUID_FEATURES_LEAF) throw new NpvUnavailable("L0's npv CPUID range has no features leaf");
    const [version, features, maxVms, maxVcpus] = this.p.cpuid(A.NPV_CPUID_FEATURES_LEAF, 0);
    if (version !== A.NPV_ABI_VERSION)
      throw new NpvUnavailable(`L0 offers npv ABI version ${version}; this L1 speaks version ${A.NPV_ABI_VERSION}`);
    return { version, features: features >>> 0, maxVms, maxVcpus };
  }

  private call(nr: number, a1 = 0, a2 = 0, a3 = 0, a4 = 0, detail = ""): number {
    const name = A.NPV_HC_NAMES[nr] ?? `hc_${nr}`;
    this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
    const r = this.p.hypercall(nr, a1, a2, a3, a4);
    if (r.status !== A.NPV_OK) throw new NpvCallError(name, r.status, detail);
    return r.rbx;
  }

  vmCreate(eager: boolean): number {
    return this.call(A.NPV_HC_VM_CREATE, eager ? 1 : 0);
  }

  /** MAP one range (RWX unless told). */
  map(vm: number, l2Gpa: number, l1Gpa: number, npages: number, perms = 7): void {
    this.call(
      A.NPV_HC_MAP,
      vm,
      l2Gpa,
      l1Gpa,
      npages + perms * 4294967296,
      `L2 0x${l2Gpa.toString(16)} → L1 0x${l1Gpa.toString(16)}, ${npages} pages`,
    );
  }

  /** Map extents with MAP_BATCH, at most NPV_MAX_BATCH entries per call. */
  mapBatch(vm: number, extents: Extent[]): number {
    let calls = 0;
    for (let i = 0; i < extents.length; i += A.NPV_MAX_BATCH) {
      const chunk = extents.slice(i, i + A.NPV_MAX_BATCH);
      const list = new Uint8Array(PAGE);
      const dv = new DataView(list.buffer);
      chunk.forEach((e, k) => {
        const o = k * A.NPV_BATCH_ENTRY_SIZE;
        const l2 = e.l2Pfn * PAGE;
        const l1 = e.l1Pfn * PAGE;
        dv.setUint32(o, l2 % 4294967296, true);
        dv.setUint32(o + 4, Math.floor(l2 / 4294967296), true);
        dv.setUint32(o + 8, l1 % 4294967296, true);
        dv.setUint32(o + 12, Math.floor(l1 / 4294967296), true);
        dv.setUint32(o + 16, e.npages, true);
        dv.setUint32(o + 20, A.NPV_BATCH_OP_MAP | (e.perms << A.NPV_BATCH_PERM_SHIFT), true);
      });
      this.p.mem.writeBytes(this.argPage, list.subarray(0, chunk.length * A.NPV_BATCH_ENTRY_SIZE));
      this.p.charge("l1.hypercall_prep", "map_batch");
      const nr = A.NPV_HC_MAP_BATCH;
      this.calls.set("map_batch", (this.calls.get("map_batch") ?? 0) + 1);
      const r = this.p.hypercall(nr, vm, this.argPage, chunk.length);
      if (r.status !== A.NPV_OK) {
        const bad = chunk[r.rbx];
        throw new NpvCallError(
          "map_batch",
          r.status,
          bad ? `entry ${i + r.rbx}: L2 pfn 0x${bad.l2Pfn.toString(16)}+${bad.npages}` : "",
        );
      }
      calls++;
    }
    return calls;
  }

  setCpuid(vm: number, entries: CpuidEntry[]): void {
    if (entries.length > A.NPV_MAX_CPUID_ENTRIES) throw new RangeError(`too many CPUID entries (${entries.length})`);
    const t = new Uint8Array(entries.length * A.NPV_CPUID_ENTRY_SIZE);
    const dv = new DataView(t.buffer);
    entries.forEach((e, k) => {
      const o = k * A.NPV_CPUID_ENTRY_SIZE;
      dv.setUint32(o, e.leaf >>> 0, true);
      dv.setUint32(o + 4, e.subleaf >>> 0, true);
      dv.setUint32(o + 8, e.matchSubleaf ? A.NPV_CPUID_F_SUBLEAF : 0, true);
      for (let r = 0; r < 4; r++) dv.setUint32(o + 16 + 4 * r, e.regs[r] >>> 0, true);
    });
    this.p.mem.writeBytes(this.argPage, t);
    this.p.charge("l1.hypercall_prep", "set_cpuid");
    this.call(A.NPV_HC_SET_CPUID, vm, this.argPage, entries.length);
  }

  setMsrs(vm: number, entries: MsrEntry[]): void {
    if (entries.length > A.NPV_MAX_MSR_ENTRIES) throw new RangeError(`too many MSR entries (${entries.length})`);
    const t = new Uint8Array(entries.length * A.NPV_MSR_ENTRY_SIZE);
    const dv = new DataView(t.buffer);
    entries.forEach((e, k) => {
      const o = k * A.NPV_MSR_ENTRY_SIZE;
      dv.setUint32(o, e.index >>> 0, true);
      dv.setUint32(o + 4, e.mode, true);
      dv.setUint32(o + 8, e.value % 4294967296, true);
      dv.setUint32(o + 12, Math.floor(e.value / 4294967296), true);
    });
    this.p.mem.writeBytes(this.argPage, t);
    this.p.charge("l1.hypercall_prep", "set_msrs");
    this.call(A.NPV_HC_SET_MSRS, vm, this.argPage, entries.length);
  }

  vcpuCreate(vm: number, s: L2VcpuState): number {
    const page = new Uint8Array(A.NPV_STATE_SIZE);
    const dv = new DataView(page.buffer);
    const u64 = (o: number, v: number) => {
      dv.setUint32(o, v % 4294967296, true);
      dv.setUint32(o + 4, Math.floor(v / 4294967296), true);
    };
    u64(A.NPV_STATE_RIP, s.rip);
    u64(A.NPV_STATE_RSP, s.rsp);
    u64(A.NPV_STATE_RFLAGS, s.rflags);
    u64(A.NPV_STATE_CR0, s.cr0);
    u64(A.NPV_STATE_CR3, s.cr3);
    u64(A.NPV_STATE_CR4, s.cr4);
    u64(A.NPV_STATE_EFER, s.efer);
    u64(A.NPV_STATE_GDTR_BASE, s.gdtrBase);
    dv.setUint16(A.NPV_STATE_GDTR_LIMIT, s.gdtrLimit, true);
    s.gprs.forEach(([lo, hi], r) => {
      dv.setUint32(A.NPV_STATE_GPRS + 8 * r, lo >>> 0, true);
      dv.setUint32(A.NPV_STATE_GPRS + 8 * r + 4, hi >>> 0, true);
    });
    dv.setUint16(A.NPV_STATE_CS_SEL, s.cs, true);
    dv.setUint16(A.NPV_STATE_SS_SEL, s.ss, true);
    dv.setUint16(A.NPV_STATE_DS_SEL, s.ds, true);
    this.p.mem.writeBytes(this.argPage, page);
    this.p.charge("l1.hypercall_prep", "vcpu_create");
    return this.call(A.NPV_HC_VCPU_CREATE, vm, this.argPage);
  }

  mmioRegion(vm: number, l2Gpa: number, npages: number, remove = false): void {
    this.call(A.NPV_HC_MMIO_REGION, vm, l2Gpa, npages, remove ? A.NPV_MMIO_REMOVE : 0);
  }

  blkSetup(vm: number, d: BlkSetup): void {
    const b = new Uint8Array(A.NPV_BLK_DESC_SIZE);
    const dv = new DataView(b.buffer);
    const u64 = (o: number, v: number) => {
      dv.setUint32(o, v % 4294967296, true);
      dv.setUint32(o + 4, Math.floor(v / 4294967296), true);
    };
    u64(A.NPV_BLK_MMIO_GPA, d.windowGpa);
    dv.setUint32(A.NPV_BLK_QUEUE_SIZE, d.queueSize, true);
    dv.setUint32(A.NPV_BLK_BACKEND, d.backend, true);
    u64(A.NPV_BLK_DESC_GPA, d.desc);
    u64(A.NPV_BLK_AVAIL_GPA, d.avail);
    u64(A.NPV_BLK_USED_GPA, d.used);
    dv.setUint32(A.NPV_BLK_IRQ_VECTOR, d.vector, true);
    dv.setUint32(A.NPV_BLK_FEATURES, d.features[0] >>> 0, true);
    dv.setUint32(A.NPV_BLK_FEATURES + 4, d.features[1] >>> 0, true);
    this.p.mem.writeBytes(this.argPage, b);
    this.p.charge("l1.hypercall_prep", "blk_setup");
    this.call(A.NPV_HC_BLK_SETUP, vm, this.argPage);
  }

  blkTeardown(vm: number, windowGpa: number): void {
    this.call(A.NPV_HC_BLK_TEARDOWN, vm, windowGpa);
  }

  /** RUN: enter L2 until L1 is needed; the exit is in the run page. */
  run(vcpu: number, runPage: number): void {
    this.call(A.NPV_HC_RUN, vcpu, runPage);
  }
}
