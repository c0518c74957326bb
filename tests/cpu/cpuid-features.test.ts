/**
 * CPUID tells the truth: every feature bit the CPU model advertises (leaves 1, 7.0 and
 * 0x80000001) is linked in src/cpu/features.ts to what implements it, and each link is followed
 * here: the opcode-table rows exist, the MSRs read without #GP on the machine, the CR4/EFER bits
 * are legal, and each named mechanism behaves (checked below by running it).
 */
import { describe, expect, it } from "vitest";
import { cr4Allowed, eferAllowed, writeCr4 } from "../../src/cpu/control-regs.js";
import { FAULT, STOP_HALT } from "../../src/cpu/cpu.js";
import { CpuModel } from "../../src/cpu/cpuid.js";
import { FEATURE_IMPLS, FEATURE_REGISTERS, type FeatureImpl, type Mechanism } from "../../src/cpu/features.js";
import { readMsr, writeMsr } from "../../src/cpu/msr.js";
import { OPCODES } from "../../src/cpu/optable.js";
import { HostPageAllocator } from "../../src/hypervisors/l0/host-pages.js";
import { Vm } from "../../src/hypervisors/l0/vm.js";
import { Machine } from "../../src/machine/machine.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";
import { ACC_FETCH, ACC_READ, FAULT_NONE, FAULT_PF, LEAF_G, LEAF_PAT_SHIFT, PageWalker } from "../../src/mmu/walker.js";
import { CR4_PCIDE, EFER_LMA } from "../../src/x86/control.js";
import { F1C_VMX } from "../../src/x86/cpuid.js";
import { MSR_IA32_APIC_BASE } from "../../src/x86/msr.js";
import { CODE_BASE, DATA_BASE, makeCpu64 } from "../helpers/machine.js";
import { ctl, G, halves, NX, P, PCD, PWT, RW, Tables, US } from "../mmu/tables.js";

const VA = 0x00007f12_3456_7000n;

/** Walk VA through tables with one leaf at `level` (flags `flags`), with paging controls `c`. */
function walkOne(flags: bigint, level: number, access: number, c = ctl()): PageWalker {
  const mem = new PhysicalMemory(16 << 20);
  const t = new Tables(mem, 0x100000);
  const root = t.alloc();
  t.map(root, VA, level === 3 ? 0x40000000n : 0x356000n, flags, level);
  const w = new PageWalker(mem);
  w.root = root;
  const [lo, hi] = halves(VA);
  w.walk(lo, hi, access, c);
  return w;
}

/** Each mechanism's behavioural check (on the CPUID model under test): true when it is there and works. */
const MECHANISM_CHECKS: Record<Mechanism, (model: CpuModel) => boolean> = {
  "ia32e-paging": () => {
    const c = makeCpu64();
    return c.mode64 && (c.efer & EFER_LMA) !== 0 && c.translate(0x1000, 0, ACC_READ) === 0x1000;
  },
  "global-pages": () => (walkOne(P | RW | G, 1, ACC_READ).leafInfo & LEAF_G) !== 0,
  "pat-index": () => ((walkOne(P | RW | PCD | PWT, 1, ACC_READ).leafInfo >> LEAF_PAT_SHIFT) & 7) === 3,
  nx: () => walkOne(P | RW | NX, 1, ACC_FETCH, ctl({ nxe: true })).fault === FAULT_PF,
  smep: () =>
    walkOne(P | RW | US, 1, ACC_FETCH, ctl({ smep: true })).fault === FAULT_PF &&
    walkOne(P | RW | US, 1, ACC_FETCH).fault === FAULT_NONE,
  smap: () =>
    walkOne(P | RW | US, 1, ACC_READ, ctl({ smap: true })).fault === FAULT_PF &&
    walkOne(P | RW | US, 1, ACC_READ, ctl({ smap: true, ac: true })).fault === FAULT_NONE,
  "1g-pages": () => {
    const w = walkOne(P | RW, 3, ACC_READ);
    return w.fault === FAULT_NONE && w.pageShift === 30;
  },
  pcid: () => {
    const c = makeCpu64();
    writeCr4(c, c.cr4 | CR4_PCIDE, 0);
    return c.pcidEnabled();
  },
  cmpxchg16b: () => {
    // lock cmpxchg16b [rsi]; hlt — with RDX:RAX = 0 matching the zeroed memory, RCX:RBX is stored.
    const c = makeCpu64();
    c.mem.writeBytes(CODE_BASE, Uint8Array.of(0xf0, 0x48, 0x0f, 0xc7, 0x0e, 0xf4));
    c.ripLo = CODE_BASE;
    c.lo[6] = DATA_BASE;
    c.lo[3] = 7;
    c.lo[1] = 9;
    return c.run(10) === STOP_HALT && c.mem.read(DATA_BASE, 4) === 7 && c.mem.read(DATA_BASE + 8, 4) === 9;
  },
  "hypervisor-leaves": (model) => {
    const r = new Int32Array(4);
    model.query(0x40000000, 0, r);
    return r[0] >>> 0 >= 0x40000000 && (r[1] | r[2] | r[3]) !== 0;
  },
  "local-apic": () => {
    const m = new Machine({ memory: 4 << 20 });
    return m.lapic.readMsr(MSR_IA32_APIC_BASE) !== null;
  },
};

/** Every (leaf, subleaf, register, bit) the model sets in a feature register. */
function advertised(model: CpuModel): { leaf: number; subleaf: number; reg: number; bit: number }[] {
  const out: { leaf: number; subleaf: number; reg: number; bit: number }[] = [];
  const r = new Int32Array(4);
  for (const [leaf, subleaf, reg] of FEATURE_REGISTERS) {
    model.query(leaf, subleaf, r);
    for (let b = 0; b < 32; b++) if ((r[reg] >>> b) & 1) out.push({ leaf, subleaf, reg, bit: (1 << b) | 0 });
  }
  return out;
}

function implOf(a: { leaf: number; subleaf: number; reg: number; bit: number }): FeatureImpl | undefined {
  return FEATURE_IMPLS.find(
    (f) => f.leaf === a.leaf && f.subleaf === a.subleaf && f.reg === a.reg && (f.bit | 0) === a.bit,
  );
}

const REG = ["EAX", "EBX", "ECX", "EDX"];
const label = (a: { leaf: number; reg: number; bit: number }): string =>
  `CPUID.${a.leaf.toString(16)}:${REG[a.reg]}[${31 - Math.clz32(a.bit)}]`;

/** L0's CPUID policy for a VM (the host model plus the hypervisor bit and KVM's leaves). */
function vmPolicy(cpuModel?: CpuModel): CpuModel {
  const host = new PhysicalMemory(32 << 20);
  const vm = new Vm(
    host,
    new HostPageAllocator(host, 0x100000, 32 << 20),
    { memory: 8 << 20, cpuModel },
    { now: () => 0 },
    2 ** 40,
  );
  return vm.cpuid;
}

/** The bare CPU's models: the default, and the option that gives guest software VMX. */
const MODELS: [string, CpuModel][] = [
  ["default model", new CpuModel()],
  ["model with VMX", new CpuModel({ vmx: true })],
];

for (const [name, model] of MODELS) {
  describe(`CPUID advertises only what is implemented (${name})`, () => {
    const bits = advertised(model);

    it("every advertised feature bit has a declared implementation", () => {
      const missing = bits.filter((a) => implOf(a) === undefined).map(label);
      expect(missing).toEqual([]);
      expect(bits.length).toBeGreaterThan(20);
    });

    it("the rows each advertised feature names are in the opcode table", () => {
      const names = new Set(OPCODES.map((r) => r.name));
      const bad: string[] = [];
      for (const a of bits) {
        const f = implOf(a);
        for (const n of f?.insns ?? []) if (!names.has(n)) bad.push(`${f?.name}: ${n}`);
      }
      expect(bad).toEqual([]);
    });

    it("the MSRs each advertised feature names read without #GP (x2APIC range in x2APIC mode)", () => {
      const m = new Machine({ memory: 4 << 20, cpuModel: model });
      const c = m.cpu;
      const out = new Int32Array(2);
      readMsr(c, MSR_IA32_APIC_BASE, out);
      writeMsr(c, MSR_IA32_APIC_BASE, out[0] | (1 << 10) | (1 << 11), out[1]); // EN | EXTD
      const bad: string[] = [];
      for (const a of bits) {
        const f = implOf(a);
        for (const idx of f?.msrs ?? []) {
          try {
            readMsr(c, idx, out);
          } catch (e) {
            if (e !== FAULT) throw e;
            bad.push(`${f?.name}: MSR 0x${idx.toString(16)}`);
          }
        }
      }
      expect(bad).toEqual([]);
    });

    it("the CR4 and EFER bits each advertised feature brings are legal", () => {
      const c = makeCpu64(undefined, model);
      const bad: string[] = [];
      for (const a of bits) {
        const f = implOf(a);
        if (f?.cr4 !== undefined && (cr4Allowed(c) & f.cr4) !== f.cr4) bad.push(`${f.name}: CR4`);
        if (f?.efer !== undefined && (eferAllowed(c) & f.efer) !== f.efer) bad.push(`${f.name}: EFER`);
      }
      expect(bad).toEqual([]);
    });

    it("the mechanisms each advertised feature names behave", () => {
      const bad: string[] = [];
      for (const a of bits) {
        const f = implOf(a);
        for (const m of f?.mechanisms ?? []) if (!MECHANISM_CHECKS[m](model)) bad.push(`${f?.name}: ${m}`);
      }
      expect(bad).toEqual([]);
    });

    it("every declared implementation names something (no empty links)", () => {
      const empty = FEATURE_IMPLS.filter(
        (f) =>
          !f.insns?.length && !f.msrs?.length && f.cr4 === undefined && f.efer === undefined && !f.mechanisms?.length,
      );
      expect(empty.map((f) => f.name)).toEqual([]);
    });
  });
}

describe("CPUID advertises only what is implemented", () => {
  const model = new CpuModel();
  const bits = advertised(model);

  it("so does L0's policy for a VM: every bit it adds has an implementation that holds", () => {
    const policy = vmPolicy();
    const added = advertised(policy);
    expect(added.filter((a) => implOf(a) === undefined).map(label)).toEqual([]);
    const bad: string[] = [];
    for (const a of added)
      for (const m of implOf(a)?.mechanisms ?? []) if (!MECHANISM_CHECKS[m](policy)) bad.push(`${label(a)}: ${m}`);
    expect(bad).toEqual([]);
    expect(added.length).toBe(bits.length + 1); // the hypervisor bit
  });

  it("L0's policy keeps VMX off even when the host model gives guest software VMX", () => {
    const r = new Int32Array(4);
    vmPolicy(new CpuModel({ vmx: true })).query(1, 0, r);
    expect(r[2] & F1C_VMX).toBe(0);
    new CpuModel({ vmx: true }).query(1, 0, r);
    expect(r[2] & F1C_VMX).toBe(F1C_VMX); // the control: the host model has it
  });

  it("x87, SSE/AVX and PSE are not advertised (no x87/SIMD unit, no 32-bit paging)", () => {
    const r = new Int32Array(4);
    model.query(1, 0, r);
    expect(r[3] & ((1 << 0) | (1 << 3) | (1 << 23) | (1 << 24) | (1 << 25) | (1 << 26))).toBe(0); // FPU PSE MMX FXSR SSE SSE2
    expect(r[2] & ((1 << 0) | (1 << 9) | (1 << 19) | (1 << 20) | (1 << 28))).toBe(0); // SSE3 SSSE3 SSE4.1/4.2 AVX
    model.query(7, 0, r);
    expect(r[1] & (1 << 5)).toBe(0); // AVX2
  });

  it("a link that does not hold is caught (the checks can fail)", () => {
    // A model that also advertises AVX (leaf 1 ECX[28]) has a bit with no implementation.
    const m = model.clone();
    const r = new Int32Array(4);
    m.query(1, 0, r);
    m.set(1, 0, [r[0], r[1], r[2] | (1 << 28), r[3]]);
    expect(
      advertised(m)
        .filter((a) => implOf(a) === undefined)
        .map(label),
    ).toEqual(["CPUID.1:ECX[28]"]);
    expect(MECHANISM_CHECKS.smep(model)).toBe(true);
    expect(MECHANISM_CHECKS["hypervisor-leaves"](model)).toBe(false); // the bare CPU has no such leaves
    expect(walkOne(P | RW | US, 1, ACC_FETCH).fault).toBe(FAULT_NONE); // SMEP off: the check's control
  });
});
