/**
 * The npv fuzzer: drives L0's NpvEngine with random and hostile hypercall sequences from two L1
 * VMs (valid and invalid handles; addresses inside, outside and straddling L1 RAM, in the MMIO
 * hole and at the LAPIC; huge counts; overlapping maps; batches and policy tables of garbage;
 * occasional RUNs of tiny L2s executing partly random code) and, after every call, checks:
 *
 *  - the call came back (nothing threw out of L0), with a defined status, the CPU back in the
 *    calling L1's context, and no internal error counted by the engine;
 *  - L0's map of every L2 VM of the calling L1 equals the fuzzer's own model of what L1 asked
 *    for (built only from calls that returned OK), and the mapped-page accounting agrees;
 *  - every EPT02 leaf of every L2 VM of that L1 maps a host page inside that L1's RAM, at an L2
 *    address L1 mapped for that L2, to exactly the host page backing the L1 page L1 named, with
 *    permissions ⊆ what L1 gave, and never at the LAPIC page; the leaf count matches.
 *
 * Every 64 calls (and at the end) both L1s are checked in full. Deterministic from the seed.
 */

import { loadProfile } from "../../src/cost/profile.js";
import { Cpu } from "../../src/cpu/cpu.js";
import { VmxHost } from "../../src/cpu/vmx/host.js";
import { MemoryBlockBackend } from "../../src/devices/block-backend.js";
import { L0Hypervisor, type Vcpu } from "../../src/hypervisors/l0/l0.js";
import { NpvEngine } from "../../src/hypervisors/l0/npv/engine.js";
import type { L2Vm } from "../../src/hypervisors/l0/npv/state.js";
import type { Vm } from "../../src/hypervisors/l0/vm.js";
import * as A from "../../src/hypervisors/npv-abi.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { EPT_LARGE } from "../../src/x86/vmx-controls.js";

const L1_MEM = 8 * 1024 * 1024;
const TWO32 = 4294967296;
const STATUSES = new Set(Object.keys(A.NPV_STATUS_NAMES).map(Number));
/** L1 pages the fuzzer uses for its structures (lists, tables, run pages, state pages). */
const SCRATCH = 0x10000;
/** L1 RAM backing the runnable L2's boot pages (0x40 pages). */
const RUNNABLE_BACKING = 0x700000;

/** mulberry32: a small deterministic PRNG. */
export class Prng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / TWO32;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  u32(): number {
    return (this.next() * TWO32) >>> 0;
  }
}

export function parseSeed(s: string): number {
  if (/^\d+$/.test(s)) return Number(s) >>> 0;
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

interface ModelEntry {
  l1pfn: number;
  perms: number;
}

/** The fuzzer's own record of what one L1 asked for (only calls that returned OK). */
class L1Model {
  readonly vms = new Map<number, Map<number, ModelEntry>>();
  readonly vcpus = new Set<number>();
  runnable: { vm: number; vcpu: number } | null = null;
  constructor(
    readonly vm: Vm,
    readonly vcpu: Vcpu,
    readonly backend: number,
  ) {}
}

export interface FuzzResult {
  calls: number;
  violations: number;
  messages: string[];
  statuses: Record<string, number>;
  runs: number;
  exits: Record<string, number>;
  /** Mediated-device requests L2 submitted (random rings), failed with IOERR, devices stopped. */
  blk: { requests: number; ioErrors: number; stopped: number };
  seconds: number;
}

export interface FuzzOptions {
  calls: number;
  seed: number;
  /** Stop collecting messages after this many (violations are still counted). */
  maxMessages?: number;
  onProgress?: (done: number) => void;
}

export function fuzz(opts: FuzzOptions): FuzzResult {
  const t0 = performance.now();
  const rng = new Prng(opts.seed);
  const profile = loadProfile();
  const hostMem = new PhysicalMemory(48 * 1024 * 1024 + 2 * L1_MEM);
  const cpu = new Cpu(hostMem);
  const l0 = new L0Hypervisor(new VmxHost(cpu), profile);
  cpu.setCostModel(profile.cycles, l0.ledger, 0, 2);
  const engine = new NpvEngine(l0);
  engine.sliceInstructions = 3000;
  const models: L1Model[] = [];
  for (let k = 0; k < 2; k++) {
    const vm = l0.createVm({ memory: L1_MEM });
    engine.attach(vm);
    const backend = engine.assignBackend(vm, new MemoryBlockBackend(64 * 1024));
    models.push(new L1Model(vm, l0.createVcpu(vm), backend));
  }
  const messages: string[] = [];
  let violations = 0;
  const statuses: Record<string, number> = {};
  let runs = 0;
  const violation = (m: string): void => {
    violations++;
    if (messages.length < (opts.maxMessages ?? 20)) messages.push(m);
  };

  // ---- Argument generators ----
  const l1Addr = (): number => {
    switch (rng.int(12)) {
      case 0:
        return 0;
      case 1:
        return L1_MEM - 4096 * rng.int(3);
      case 2:
        return L1_MEM - rng.int(64); // straddling the end
      case 3:
        return L1_MEM + 4096 * rng.int(1024); // outside
      case 4:
        return rng.pick([0xfeb00000, 0xfee00000, 0xfec00000, 2 ** 32 - 4096, 2 ** 46, 2 ** 52, 2 ** 63]);
      case 5:
        return rng.u32();
      default:
        return rng.int(L1_MEM / 4096) * 4096 + (rng.chance(0.05) ? rng.int(4096) : 0);
    }
  };
  const l2Addr = (): number => {
    switch (rng.int(10)) {
      case 0:
        return rng.pick([2 ** 46 - 4096, 2 ** 46, 2 ** 46 - 4096 * rng.int(8), 2 ** 53, 2 ** 63, 0xfee00000]);
      case 1:
        return rng.u32() + (rng.chance(0.5) ? 0 : rng.int(4096));
      case 2:
        return 0x10000000 + 4096 * rng.int(32);
      default:
        return 4096 * rng.int(2048); // 0 .. 8 MiB: lots of overlap
    }
  };
  const npages = (): number => {
    switch (rng.int(12)) {
      case 0:
        return rng.pick([0, A.NPV_MAX_PAGES_PER_CALL, A.NPV_MAX_PAGES_PER_CALL + 1, TWO32 - 1, 2048, 2049]);
      case 1:
        return rng.int(4096);
      default:
        return 1 + rng.int(rng.chance(0.7) ? 4 : 64);
    }
  };
  const perms = (): number => (rng.chance(0.85) ? rng.pick([1, 3, 5, 7, 4]) : rng.int(16));
  const vmHandle = (m: L1Model): number => {
    if (rng.chance(0.85) && m.vms.size > 0) return rng.pick([...m.vms.keys()]);
    return rng.pick([0, 1, 2, 17, 255, TWO32 + 1, rng.int(20)]);
  };
  const vcpuHandle = (m: L1Model): number => {
    if (rng.chance(0.85) && m.vcpus.size > 0) return rng.pick([...m.vcpus]);
    return rng.pick([0, 1, 99, TWO32 + 1, rng.int(20)]);
  };
  const scratch = (): number => SCRATCH + 4096 * rng.int(16);

  // ---- L1 memory writes (the L1 preparing structures) ----
  const w32 = (m: L1Model, gpa: number, v: number): void => {
    if (m.vm.memory.isRam(gpa, 4)) m.vm.memory.write32(gpa, v);
  };
  const w64 = (m: L1Model, gpa: number, v: number): void => {
    w32(m, gpa, v % TWO32);
    w32(m, gpa + 4, Math.floor(v / TWO32));
  };
  const fillGarbage = (m: L1Model, gpa: number, len: number): void => {
    for (let o = 0; o < len; o += 4) w32(m, gpa + o, rng.u32());
  };

  // ---- The model ----
  const modelOf = (m: L1Model, vm: number): Map<number, ModelEntry> | undefined => m.vms.get(vm);
  const applyMap = (mm: Map<number, ModelEntry>, l2: number, l1: number, n: number, p: number): void => {
    for (let k = 0; k < n; k++) mm.set(l2 / 4096 + k, { l1pfn: l1 / 4096 + k, perms: p });
  };
  const applyUnmap = (mm: Map<number, ModelEntry>, l2: number, n: number): void => {
    if (n > mm.size) {
      const lo = l2 / 4096;
      for (const k of [...mm.keys()]) if (k >= lo && k < lo + n) mm.delete(k);
    } else for (let k = 0; k < n; k++) mm.delete(l2 / 4096 + k);
  };
  const applyProtect = (mm: Map<number, ModelEntry>, l2: number, n: number, p: number): void => {
    const lo = l2 / 4096;
    if (n > mm.size) {
      for (const [k, e] of mm) if (k >= lo && k < lo + n) e.perms = p;
    } else
      for (let k = 0; k < n; k++) {
        const e = mm.get(lo + k);
        if (e !== undefined) e.perms = p;
      }
  };

  // ---- Calls ----
  const hc = (m: L1Model, nr: number, a1 = 0, a2 = 0, a3 = 0, a4 = 0): { status: number; rbx: number } => {
    const r = l0.guestHypercall(m.vcpu, nr, a1, a2, a3, a4);
    return { status: r.status | 0, rbx: r.rbx };
  };

  /** Build a runnable L2 (boot pages, page tables, GDT, partly random code) with hypercalls. */
  const makeRunnable = (m: L1Model): number => {
    const c = hc(m, A.NPV_HC_VM_CREATE, rng.int(2));
    if (c.status !== 0) return c.status;
    const vm = c.rbx;
    m.vms.set(vm, new Map());
    const b = RUNNABLE_BACKING;
    w64(m, b + 0x1000, 0x2003);
    w64(m, b + 0x2000, 0x3003);
    for (let i = 1; i < 4; i++) w64(m, b + 0x2000 + 8 * i, i * 0x40000000 + 0x83);
    for (let i = 0; i < 512; i++) w64(m, b + 0x3000 + 8 * i, i * 0x200000 + 0x83);
    w64(m, b + 0x4008, 0x00af9b00 * TWO32 + 0xffff);
    w64(m, b + 0x4010, 0x00cf9300 * TWO32 + 0xffff);
    // Code at L2 0x10000: snippets (CPUID, OUT, touch unmapped/MMIO/LAPIC, VMCALL, WRMSR, HLT)
    // interleaved with random bytes.
    const snippets: number[][] = [
      [0x0f, 0xa2], // cpuid
      [0xe6, 0x10], // out 0x10, al
      [0x8b, 0x04, 0x25, 0x00, 0x00, 0x50, 0x00], // mov eax, [0x500000]
      [0x89, 0x04, 0x25, 0x00, 0x00, 0x00, 0x10], // mov [0x10000000], eax
      [0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x10], // mov eax, [0x10000000]
      [0x89, 0x04, 0x25, 0x50, 0x00, 0x00, 0x10], // mov [0x10000050], eax (a mediated device's QueueNotify)
      [0x48, 0xbe, 0x00, 0x00, 0xe0, 0xfe, 0, 0, 0, 0, 0x8b, 0x46, 0x30], // mov rsi, 0xfee00000; mov eax,[rsi+0x30]
      [0x0f, 0x01, 0xc1], // vmcall
      [0xb9, 0x10, 0, 0, 0, 0x0f, 0x30], // mov ecx, 0x10; wrmsr
      [0xf4], // hlt
      [0xfb], // sti
      [0x0f, 0x0b], // ud2
    ];
    const code: number[] = [];
    // Often start with a QueueNotify, so a mediated device set up on this L2 sees requests.
    if (rng.chance(0.4)) code.push(0x89, 0x04, 0x25, 0x50, 0x00, 0x00, 0x10, 0xeb, 0xf7); // notify; jmp back
    while (code.length < 256) {
      if (rng.chance(0.7)) code.push(...rng.pick(snippets));
      else code.push(rng.int(256));
    }
    for (let i = 0; i < code.length; i += 4)
      w32(m, b + 0x10000 + i, code[i] | (code[i + 1] << 8) | (code[i + 2] << 16) | ((code[i + 3] ?? 0) << 24));
    const s = hc(m, A.NPV_HC_MAP, vm, 0, b, 0x40 + 7 * TWO32);
    if (s.status === 0) applyMap(m.vms.get(vm)!, 0, b, 0x40, 7);
    else return s.status;
    hc(m, A.NPV_HC_MMIO_REGION, vm, 0x10000000, 1, 0);
    const st = SCRATCH + 0x20000;
    for (let o = 0; o < A.NPV_STATE_SIZE; o += 4) w32(m, st + o, 0);
    w64(m, st + A.NPV_STATE_RIP, 0x10000);
    w64(m, st + A.NPV_STATE_RSP, 0x30000);
    w64(m, st + A.NPV_STATE_RFLAGS, 2);
    w64(m, st + A.NPV_STATE_CR0, 0x80010031);
    w64(m, st + A.NPV_STATE_CR3, 0x1000);
    w64(m, st + A.NPV_STATE_CR4, 0x20);
    w64(m, st + A.NPV_STATE_EFER, 0x500);
    w64(m, st + A.NPV_STATE_GDTR_BASE, 0x4000);
    w32(m, st + A.NPV_STATE_GDTR_LIMIT, 23);
    w32(m, st + A.NPV_STATE_CS_SEL, 0x100008);
    w32(m, st + A.NPV_STATE_DS_SEL, 0x10);
    const v = hc(m, A.NPV_HC_VCPU_CREATE, vm, st);
    if (v.status === 0) {
      m.vcpus.add(v.rbx);
      m.runnable = { vm, vcpu: v.rbx };
    }
    return v.status;
  };

  const oneCall = (m: L1Model): number => {
    const roll = rng.int(100);
    if (roll < 16) {
      // MAP
      const vm = vmHandle(m);
      const l2 = l2Addr();
      const l1 = l1Addr();
      const n = npages();
      const p = perms();
      const r = hc(m, A.NPV_HC_MAP, vm, l2, l1, n + p * TWO32);
      const mm = modelOf(m, vm);
      if (r.status === 0 && mm) applyMap(mm, l2, l1, n, p);
      return r.status;
    }
    if (roll < 26) {
      const vm = vmHandle(m);
      const l2 = l2Addr();
      const n = npages();
      const r = hc(m, A.NPV_HC_UNMAP, vm, l2, n);
      const mm = modelOf(m, vm);
      if (r.status === 0 && mm) applyUnmap(mm, l2, n);
      return r.status;
    }
    if (roll < 34) {
      const vm = vmHandle(m);
      const l2 = l2Addr();
      const n = npages();
      const p = perms();
      const r = hc(m, A.NPV_HC_PROTECT, vm, l2, n, p);
      const mm = modelOf(m, vm);
      if (r.status === 0 && mm) applyProtect(mm, l2, n, p);
      return r.status;
    }
    if (roll < 46) {
      // MAP_BATCH: a list of plausible and garbage entries.
      const vm = vmHandle(m);
      const list = rng.chance(0.9) ? scratch() + (rng.chance(0.1) ? 4096 - 24 * rng.int(4) : 0) : l1Addr();
      const count = rng.chance(0.9)
        ? 1 + rng.int(rng.chance(0.8) ? 8 : A.NPV_MAX_BATCH)
        : rng.pick([0, 171, TWO32 + 1, 1000]);
      const entries: { l2: number; l1: number; n: number; op: number; p: number; raw: number }[] = [];
      for (let k = 0; k < Math.min(count, A.NPV_MAX_BATCH); k++) {
        const o = list + 24 * k;
        if (rng.chance(0.05)) {
          fillGarbage(m, o, 24);
          entries.push({ l2: -1, l1: 0, n: 0, op: -1, p: 0, raw: 0 });
          continue;
        }
        const l2 = l2Addr() % 2 ** 53;
        const l1 = l1Addr() % 2 ** 53;
        const n = rng.chance(0.9) ? 1 + rng.int(8) : rng.u32();
        const op = rng.chance(0.95) ? rng.int(3) : rng.int(16);
        const p = perms();
        const raw = (op | (p << 8) | (rng.chance(0.02) ? 1 << 20 : 0)) >>> 0;
        w64(m, o, l2);
        w64(m, o + 8, l1);
        w32(m, o + 16, n);
        w32(m, o + 20, raw);
        entries.push({ l2, l1, n, op, p, raw });
      }
      const r = hc(m, A.NPV_HC_MAP_BATCH, vm, list, count);
      const mm = modelOf(m, vm);
      if (mm && r.status !== A.NPV_E_NOENT) {
        const done = r.rbx;
        if (!Number.isInteger(done) || done < 0 || done > Math.min(count, A.NPV_MAX_BATCH))
          violation(`MAP_BATCH: RBX ${done} for count ${count}`);
        for (let k = 0; k < done && k < entries.length; k++) {
          const e = entries[k];
          if (e.op === -1) {
            // Garbage that applied: re-read what L0 saw.
            const dv = m.vm.memory.readBytes(list + 24 * k, 24);
            const d = new DataView(dv.buffer);
            e.l2 = d.getUint32(4, true) * TWO32 + d.getUint32(0, true);
            e.l1 = d.getUint32(12, true) * TWO32 + d.getUint32(8, true);
            e.n = d.getUint32(16, true);
            e.raw = d.getUint32(20, true);
            e.op = e.raw & 0xf;
            e.p = (e.raw >>> 8) & 0xff;
          }
          if (e.op === 0) applyMap(mm, e.l2, e.l1, e.n, e.p);
          else if (e.op === 1) applyUnmap(mm, e.l2, e.n);
          else if (e.op === 2) applyProtect(mm, e.l2, e.n, e.p);
        }
      }
      return r.status;
    }
    if (roll < 52) {
      const r = hc(m, A.NPV_HC_VM_CREATE, rng.chance(0.9) ? rng.int(2) : rng.u32());
      if (r.status === 0) {
        if (m.vms.has(r.rbx)) violation(`VM_CREATE returned live handle ${r.rbx}`);
        m.vms.set(r.rbx, new Map());
      }
      return r.status;
    }
    if (roll < 56) {
      const vm = vmHandle(m);
      const r = hc(m, A.NPV_HC_VM_DESTROY, vm);
      if (r.status === 0) {
        m.vms.delete(vm);
        const st = engine.l1(m.vm)!;
        for (const h of [...m.vcpus]) if (!st.vcpus.has(h)) m.vcpus.delete(h);
        if (m.runnable?.vm === vm) m.runnable = null;
      }
      return r.status;
    }
    if (roll < 60) {
      const vm = vmHandle(m);
      const st = rng.chance(0.8) ? SCRATCH + 0x20000 : l1Addr();
      if (rng.chance(0.5)) fillGarbage(m, st, A.NPV_STATE_SIZE);
      const r = hc(m, A.NPV_HC_VCPU_CREATE, vm, st);
      if (r.status === 0) m.vcpus.add(r.rbx);
      return r.status;
    }
    if (roll < 64) {
      const t = rng.chance(0.9) ? scratch() : l1Addr();
      const n = rng.chance(0.9) ? 1 + rng.int(A.NPV_MAX_CPUID_ENTRIES) : rng.pick([0, 128, TWO32]);
      for (let k = 0; k < Math.min(n, 128); k++) {
        w32(m, t + 32 * k, rng.int(0x20));
        w32(m, t + 32 * k + 4, rng.int(3));
        w32(m, t + 32 * k + 8, rng.chance(0.95) ? rng.int(2) : rng.u32());
        w32(m, t + 32 * k + 12, rng.chance(0.97) ? 0 : 1);
      }
      return hc(m, A.NPV_HC_SET_CPUID, vmHandle(m), t, n).status;
    }
    if (roll < 68) {
      const t = rng.chance(0.9) ? scratch() : l1Addr();
      const n = rng.chance(0.9) ? 1 + rng.int(A.NPV_MAX_MSR_ENTRIES) : rng.pick([0, 256, TWO32]);
      const idx = [0x10, 0x1b, 0x6e0, 0x277, 0xc0000080, 0xc0000081, 0xc0000082, 0xc0000100, 0xc0000103, 0x40000000];
      for (let k = 0; k < Math.min(n, 256); k++) {
        w32(m, t + 16 * k, rng.chance(0.9) ? rng.pick(idx) : rng.u32());
        w32(m, t + 16 * k + 4, rng.chance(0.95) ? rng.int(3) : rng.u32());
        w32(m, t + 16 * k + 8, rng.u32());
      }
      return hc(m, A.NPV_HC_SET_MSRS, vmHandle(m), t, n).status;
    }
    if (roll < 72) {
      const vm = vmHandle(m);
      const l2 = rng.chance(0.7) ? 0x10000000 + 4096 * rng.int(40) : l2Addr();
      const r = hc(
        m,
        A.NPV_HC_MMIO_REGION,
        vm,
        l2,
        rng.chance(0.8) ? 1 + rng.int(4) : npages(),
        rng.chance(0.9) ? rng.int(2) : rng.u32(),
      );
      return r.status;
    }
    if (roll < 75) {
      return hc(
        m,
        A.NPV_HC_INJECT,
        vcpuHandle(m),
        rng.chance(0.8) ? 32 + rng.int(224) : rng.u32(),
        rng.chance(0.9) ? 0 : rng.int(4),
      ).status;
    }
    if (roll < 79) {
      const d = scratch();
      w64(m, d + A.NPV_BLK_MMIO_GPA, rng.chance(0.8) ? 0x10000000 + 0x1000 * rng.int(8) : l2Addr());
      w32(m, d + A.NPV_BLK_QUEUE_SIZE, rng.chance(0.8) ? rng.pick([1, 2, 8, 256, 1024]) : rng.u32());
      w32(m, d + A.NPV_BLK_BACKEND, rng.chance(0.8) ? m.backend : rng.int(4));
      w64(m, d + A.NPV_BLK_DESC_GPA, rng.chance(0.8) ? 16 * rng.int(0x8000) : l2Addr());
      w64(m, d + A.NPV_BLK_AVAIL_GPA, rng.chance(0.8) ? 2 * rng.int(0x40000) : l2Addr());
      w64(m, d + A.NPV_BLK_USED_GPA, rng.chance(0.8) ? 4 * rng.int(0x20000) : l2Addr());
      w32(m, d + A.NPV_BLK_IRQ_VECTOR, rng.chance(0.8) ? rng.pick([0, 33, 200]) : rng.u32());
      if (m.runnable !== null && rng.chance(0.5)) {
        // A device on the runnable L2, rings inside its mapped pages (whose contents its random code scribbles on).
        w64(m, d + A.NPV_BLK_MMIO_GPA, 0x10000000);
        w32(m, d + A.NPV_BLK_QUEUE_SIZE, rng.pick([2, 8, 64]));
        w32(m, d + A.NPV_BLK_BACKEND, m.backend);
        w64(m, d + A.NPV_BLK_DESC_GPA, 0x20000 + 16 * rng.int(64));
        w64(m, d + A.NPV_BLK_AVAIL_GPA, 0x28000 + 2 * rng.int(64));
        w64(m, d + A.NPV_BLK_USED_GPA, rng.chance(0.9) ? 0x30000 + 4 * rng.int(64) : 0x50000);
        const vm = m.runnable.vm;
        // Sometimes a plausible request: header, data, status inside the mapped pages.
        if (rng.chance(0.5)) {
          const b = RUNNABLE_BACKING;
          const desc = b + 0x20000;
          w64(m, d + A.NPV_BLK_DESC_GPA, 0x20000);
          w64(m, d + A.NPV_BLK_AVAIL_GPA, 0x28000);
          w64(m, desc, 0x38000);
          w32(m, desc + 8, 16);
          w32(m, desc + 12, 1 | (1 << 16));
          w64(m, desc + 16, rng.chance(0.8) ? 0x39000 : 0x90000);
          w32(m, desc + 24, 512);
          w32(m, desc + 28, 3 | (2 << 16));
          w64(m, desc + 32, 0x3a000);
          w32(m, desc + 40, 1);
          w32(m, desc + 44, 2);
          w32(m, b + 0x38000, rng.int(2));
          w64(m, b + 0x38008, rng.int(200));
          w32(m, b + 0x28000, (rng.int(3) << 16) >>> 0);
          w32(m, b + 0x28004, 0);
        }
        return hc(m, A.NPV_HC_BLK_SETUP, vm, d).status;
      }
      return hc(m, A.NPV_HC_BLK_SETUP, vmHandle(m), rng.chance(0.9) ? d : l1Addr()).status;
    }
    if (roll < 81) {
      return hc(m, A.NPV_HC_BLK_TEARDOWN, vmHandle(m), rng.chance(0.8) ? 0x10000000 + 0x1000 * rng.int(8) : l2Addr())
        .status;
    }
    if (roll < 86) {
      // RUN: mostly the runnable L2 (built on demand), sometimes anything.
      if (m.runnable === null || rng.chance(0.02)) return makeRunnable(m);
      const v = rng.chance(0.8) ? m.runnable.vcpu : vcpuHandle(m);
      const page = rng.chance(0.9) ? SCRATCH + 0x30000 : l1Addr();
      if (rng.chance(0.1)) fillGarbage(m, page, 256);
      else if (rng.chance(0.5)) {
        // What L1 does after an IO/MSR/HYPERCALL exit: advance RIP, flag the registers.
        const rip = m.vm.memory.isRam(page, 256) ? m.vm.memory.read64(page + A.NPV_RUN_RIP) : 0;
        const len = m.vm.memory.isRam(page, 256) ? m.vm.memory.read32(page + A.NPV_RUN_INSN_LEN) : 0;
        w64(m, page + A.NPV_RUN_RIP, rip + len);
        w32(m, page + A.NPV_RUN_FLAGS, 1);
      }
      runs++;
      const r = hc(m, A.NPV_HC_RUN, v, page);
      if (r.status === 0 && m.vm.memory.isRam(page, 256)) {
        const reason = m.vm.memory.read32(page);
        const name = A.NPV_EXIT_NAMES[reason];
        if (name === undefined || reason === 0) violation(`RUN returned exit reason ${reason}`);
        else exits[name] = (exits[name] ?? 0) + 1;
      }
      return r.status;
    }
    if (roll < 88) {
      // Unknown numbers, and the npv range edges.
      return hc(m, rng.pick([0x10e, 0x1ff, 0x100 + rng.int(256)]), rng.u32(), rng.u32(), rng.u32(), rng.u32()).status;
    }
    // Remap churn: unmap a VM's whole low range, or destroy/recreate.
    const vm = vmHandle(m);
    const r = hc(m, A.NPV_HC_UNMAP, vm, 0, 2048);
    const mm = modelOf(m, vm);
    if (r.status === 0 && mm) applyUnmap(mm, 0, 2048);
    return r.status;
  };
  const exits: Record<string, number> = {};

  // ---- Checks ----
  const hostRanges = (vm: Vm): [number, number][] => vm.memslots.slots.map((s) => [s.hpa, s.hpa + s.size]);
  const checkVm = (m: L1Model, who: string, vm: L2Vm, mm: Map<number, ModelEntry>): void => {
    if (vm.map.size !== mm.size) violation(`${who}: L0 map has ${vm.map.size} pages, L1 mapped ${mm.size}`);
    for (const [pfn, e] of mm) {
      const got = vm.map.get(pfn);
      if (got !== e.l1pfn * 8 + e.perms) {
        violation(
          `${who}: L2 page 0x${pfn.toString(16)}: L0 has ${got}, L1 mapped l1pfn 0x${e.l1pfn.toString(16)} perms ${e.perms}`,
        );
        break;
      }
    }
    const ranges = hostRanges(m.vm);
    let leaves = 0;
    walkLeaves(hostMem, vm.ept.root, (gpa, hpa, p) => {
      leaves++;
      if (!ranges.some(([a, b]) => hpa >= a && hpa + 4096 <= b))
        violation(`${who}: EPT02 leaf L2 0x${gpa.toString(16)} → host 0x${hpa.toString(16)} outside L1 RAM`);
      const e = mm.get(gpa / 4096);
      if (e === undefined) {
        violation(`${who}: EPT02 leaf at L2 0x${gpa.toString(16)} that L1 did not map`);
        return;
      }
      if (gpa / 4096 === 0xfee00) violation(`${who}: EPT02 leaf at the LAPIC page`);
      const want = m.vm.memslots.translate(e.l1pfn * 4096);
      if (hpa !== want)
        violation(
          `${who}: EPT02 leaf L2 0x${gpa.toString(16)} → host 0x${hpa.toString(16)}, L1 named host 0x${want.toString(16)}`,
        );
      if ((p & ~e.perms) !== 0) violation(`${who}: EPT02 leaf L2 0x${gpa.toString(16)} perms ${p} ⊄ ${e.perms}`);
    });
    if (leaves !== vm.ept.leaves) violation(`${who}: EPT02 leaf count ${vm.ept.leaves}, ${leaves} present`);
  };
  const checkL1 = (m: L1Model, mi: number): void => {
    const st = engine.l1(m.vm)!;
    let total = 0;
    if (st.vms.size !== m.vms.size) violation(`L1 ${mi}: L0 has ${st.vms.size} VMs, L1 created ${m.vms.size}`);
    for (const [h, mm] of m.vms) {
      const vm = st.vms.get(h);
      if (vm === undefined) {
        violation(`L1 ${mi}: VM ${h} missing in L0`);
        continue;
      }
      total += mm.size;
      checkVm(m, `L1 ${mi} VM ${h}`, vm, mm);
    }
    if (st.mappedPages !== total) violation(`L1 ${mi}: mappedPages ${st.mappedPages}, L1 mapped ${total}`);
  };

  let internal = 0;
  for (let i = 0; i < opts.calls; i++) {
    const mi = rng.chance(0.8) ? 0 : 1;
    const m = models[mi];
    let status: number;
    try {
      status = oneCall(m);
    } catch (x) {
      violation(`call ${i}: threw out of L0: ${x instanceof Error ? (x.stack ?? x.message) : String(x)}`);
      continue;
    }
    statuses[A.NPV_STATUS_NAMES[status] ?? `bad_${status}`] =
      (statuses[A.NPV_STATUS_NAMES[status] ?? `bad_${status}`] ?? 0) + 1;
    if (!STATUSES.has(status)) violation(`call ${i}: undefined status ${status}`);
    if (l0.host.current !== m.vcpu.vmcs || l0.host.entered)
      violation(`call ${i}: the CPU is not back in the calling L1's context`);
    const ie = engine.internalErrors;
    if (ie !== internal) {
      internal = ie;
      violation(`call ${i}: internal error: ${engine.lastInternalError.split("\n").slice(0, 4).join(" | ")}`);
    }
    checkL1(m, mi);
    if (i % 64 === 63) checkL1(models[1 - mi], 1 - mi);
    if (opts.onProgress && i % 10000 === 9999) opts.onProgress(i + 1);
  }
  checkL1(models[0], 0);
  checkL1(models[1], 1);
  const es = engine.stats();
  const blk = {
    requests: es["npv.blk.requests"] ?? 0,
    ioErrors: es["npv.blk.io_errors"] ?? 0,
    stopped: es["npv.blk.stopped"] ?? 0,
  };
  return {
    calls: opts.calls,
    violations,
    messages,
    statuses,
    runs,
    exits,
    blk,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Every present EPT leaf (4 KiB or large) as (gpa, hpa, perms), reading table pages directly. */
function walkLeaves(mem: PhysicalMemory, root: number, cb: (gpa: number, hpa: number, perms: number) => void): void {
  const walk = (table: number, level: number, base: number): void => {
    const page = mem.page(table / 4096);
    if (page === undefined) return;
    for (let i = 0; i < 512; i++) {
      const lo = page.getUint32(i * 8, true);
      if ((lo & 7) === 0) continue;
      const hi = page.getUint32(i * 8 + 4, true);
      const addr = (hi & 0xfffff) * TWO32 + ((lo & ~0xfff) >>> 0);
      const gpa = base + i * 2 ** (12 + 9 * (level - 1));
      if (level === 1 || (lo & EPT_LARGE) !== 0) cb(gpa, addr, lo & 7);
      else walk(addr, level - 1, gpa);
    }
  };
  walk(root, 4, 0);
}
