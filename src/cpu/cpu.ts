import { CostLedger } from "../cost/ledger.js";
import { P, PRIMITIVES } from "../cost/primitives.js";
import { MC } from "../mmu/counters.js";
import { type DataCacheGeometry, DataCacheModel, type DataTouch, NoDataCache } from "../mmu/data-cache.js";
import { Mmu, maxPhysAddrOf } from "../mmu/mmu.js";
import { PAGE_SIZE, type PhysicalMemory } from "../mmu/phys.js";
import {
  ACC_FETCH,
  ACC_USER,
  ACC_WRITE,
  FAULT_EPT_MISCONFIG,
  FAULT_PF,
  type PageWalker,
  type PagingControls,
} from "../mmu/walker.js";
import { CR0_PG, CR0_WP, CR4_LA57, CR4_PCIDE, CR4_SMAP, CR4_SMEP, EFER_LMA, EFER_NXE } from "../x86/control.js";
import { GP, PF_, SS_ } from "../x86/exceptions.js";
import { AC, CF, FIXED1, IF, OF, RF, SF, TF, ZF } from "../x86/flags.js";
import { EXIT_INTERRUPT_WINDOW, EXIT_PREEMPTION_TIMER } from "../x86/vmx.js";
import {
  CHARGE_PMH_NESTED_STEP,
  CHARGE_PMH_WALK,
  CHARGE_STLB_HIT,
  CHARGE_STLB_MISS,
  CHARGE_VMEXIT,
  CHARGE_WALK_L1D,
  CHARGE_WALK_REF,
  CPU_CHARGES,
} from "./charges.js";
import { type CodePage, DecodedCodeCache } from "./code-cache.js";
import { CpuModel } from "./cpuid.js";
import { DebugState, debugBoundary, debugFlagsLoaded, instructionBreakpoints } from "./debug.js";
import { decode } from "./decoder.js";
import { LF_NONE, LF_RES } from "./flags.js";
import { BASE_RIP, HIGH8_BASE, type Insn, NONE } from "./insn.js";
import { deliverEvent } from "./interrupts.js";
import { BlockJit } from "./jit/block-jit.js";
import { type JitOptions, jitDefaults } from "./jit/options.js";
import { lazyAF, lazyCF, lazyFlags, lazyOF, lazyPF, lazySF, lazyZF } from "./lazy-flags.js";
import { CodePageWrites, readSlow, TLB_INVALID, TLB_SIZE, writeSlow } from "./memory-slow.js";
import { checkNmi } from "./nmi.js";
import { type InterruptController, type IoBus, NullIoBus } from "./ports.js";
import { loadHostState } from "./vmx/host-state.js";
import type { Vmcs } from "./vmx/vmcs.js";
import { VMEXIT, VmxUnit } from "./vmx/vmx.js";

function defaultCosts(): Float64Array {
  const c = new Float64Array(PRIMITIVES.length);
  c[P["insn.base"]] = 1;
  return c;
}

/** Thrown (as this one preallocated object) to abandon the current instruction on a fault. */
export const FAULT = { fault: true } as const;

/** Why `run` returned. */
export const STOP_BUDGET = 0; // instruction budget used up
export const STOP_HALT = 1; // HLT with nothing to wake it
export const STOP_SHUTDOWN = 2; // triple fault or another unrecoverable condition
export const STOP_REQUEST = 3; // a device or hypervisor asked to stop (debug exit…)
export const STOP_VMEXIT = 4; // a VM exit in non-root operation: the exit record is in cpu.vmxUnit

/** Architectural details of a stop, for the report. */
export interface StopInfo {
  reason: string;
  ripLo: number;
  ripHi: number;
}

/** Intercepts for MSRs the core does not own (LAPIC x2APIC range, TSC deadline…). */
export interface MsrHandler {
  /** Return true and fill out[0..1] when handled. */
  readMsr(index: number, out: Int32Array): boolean;
  writeMsr(index: number, lo: number, hi: number): boolean;
}

/** Hook for instructions later layers give meaning to (VMX, VMCALL); default is #UD. */
export interface VmxHooks {
  vmxInstruction(c: Cpu, i: Insn): void;
}

/**
 * The x86-64 processor core: architectural state, the memory path with a small software TLB
 * (a cache of the page walker's answers), lazy flags, and the fetch/decode/execute loop over
 * a decoded-instruction cache keyed by physical address.
 *
 * 64-bit quantities are kept as two int32 halves (`lo`, `hi`): no BigInt anywhere here.
 */
export class Cpu {
  // ---- General-purpose registers: low and high 32-bit halves. ----
  readonly lo = new Int32Array(16);
  readonly hi = new Int32Array(16);
  ripLo = 0;
  ripHi = 0;
  /** RIP of the instruction being executed (faults restart here). */
  startLo = 0;
  startHi = 0;

  // ---- Flags: non-status bits always live in flagsBase; status bits per lazy kind. ----
  flagsBase = FIXED1;
  lfOp = LF_NONE;
  lfSize = 4;
  lfResLo = 0;
  lfResHi = 0;
  lfDstLo = 0;
  lfDstHi = 0;
  lfSrcLo = 0;
  lfSrcHi = 0;
  lfAux = 0;

  // ---- Segments (selector, base halves, limit, access rights as in VMCS AR format). ----
  readonly segSel = new Int32Array(6);
  readonly segBaseLo = new Int32Array(6);
  readonly segBaseHi = new Int32Array(6);
  readonly segLimit = new Uint32Array(6);
  readonly segAr = new Int32Array(6);
  gdtrBaseLo = 0;
  gdtrBaseHi = 0;
  gdtrLimit = 0xffff;
  idtrBaseLo = 0;
  idtrBaseHi = 0;
  idtrLimit = 0xffff;
  trSel = 0;
  trBaseLo = 0;
  trBaseHi = 0;
  trLimit = 0xffff;
  trAr = 0x8b;
  ldtrSel = 0;
  ldtrBaseLo = 0;
  ldtrBaseHi = 0;
  ldtrLimit = 0xffff;

  // ---- Control and system registers. ----
  cr0 = 0x60000010 | 1; // CD|NW|ET|PE: protected mode, paging off (real mode is out of scope)
  cr2Lo = 0;
  cr2Hi = 0;
  cr3Lo = 0;
  cr3Hi = 0;
  cr4 = 0;
  cr8 = 0;
  efer = 0;
  readonly drLo = new Int32Array(8);
  readonly drHi = new Int32Array(8);
  /** Current privilege level (CS.RPL). */
  cpl = 0;
  /** 64-bit mode: EFER.LMA and CS.L. */
  mode64 = false;
  /** CS.D in legacy/compat mode: default operand/address size 32. */
  csDefault32 = true;
  /** STI / MOV SS interrupt shadow: interrupts are blocked until after the next instruction. */
  intShadow = false;
  /** Blocking by NMI: an NMI handler runs; NMIs wait for the next IRET (see nmi.ts). */
  nmiBlocked = false;
  halted = false;
  /** VMX non-root operation (a guest under a hypervisor). */
  nonRoot = false;
  /** Delivering an event injected at VM entry (the exception bitmap does not apply to it). */
  injecting = false;
  /**
   * While a hypervisor emulates one MMIO instruction: guest-physical [gpaBase, gpaBase+size)
   * translates to host-physical hostBase+offset (its device window) instead of exiting.
   */
  readonly mmioWindow = { gpaBase: 0, size: 0, hostBase: 0 };

  // ---- MSRs owned by the core (as halves). ----
  starLo = 0;
  starHi = 0;
  lstarLo = 0;
  lstarHi = 0;
  cstarLo = 0;
  cstarHi = 0;
  sfmask = 0;
  kernelGsBaseLo = 0;
  kernelGsBaseHi = 0;
  tscAux = 0;
  patLo = 0x00070406;
  patHi = 0x00070406;
  sysenterCs = 0;
  sysenterEspLo = 0;
  sysenterEspHi = 0;
  sysenterEipLo = 0;
  sysenterEipHi = 0;
  /** Other MSRs a guest wrote that nobody owns (kept so a read returns what was written). */
  readonly msrStore = new Map<number, [number, number]>();

  // ---- Time. Cycles are simulated; RDTSC reads them. ----
  /** Retired instructions (a typed-array slot: cheaper to bump than a double field). */
  readonly icountSlot = new Float64Array(1);
  get icount(): number {
    return this.icountSlot[0];
  }
  set icount(v: number) {
    this.icountSlot[0] = v;
  }
  /** Cycles charged so far beyond the per-instruction base cost. */
  extraCycles = 0;
  /**
   * Called after every `charge` (the run watchdog's check: stacks/watchdog.ts); null: nobody
   * watches. A field every Cpu has from construction, so that arming the watchdog changes no
   * object's shape (replacing the `charge` method per object did, and deoptimised the run loop).
   */
  chargeWatch: ((cpu: Cpu) => void) | null = null;
  /** Base cost of one instruction in cycles (from the cost profile). */
  cyclesPerInsn = 1;
  /** Cost of every primitive (indexed as `P`); all zero but `insn.base` until a profile is set. */
  costs: Float64Array = defaultCosts();
  /** Where charged cycles are attributed. */
  ledger = new CostLedger();
  /**
   * Level numbers for attribution: code in root operation, and in VMX non-root operation (each
   * VM entry sets the latter from the VMCS: the level of the code that VMCS runs).
   */
  levelRoot = 0;
  levelNonRoot = 1;
  private chargeIds = new Int32Array(CPU_CHARGES.length * 2);
  /** Per level, the ledger ids `idsOfLevel` interned (emptied when the ledger changes). */
  private levelIds: Int32Array[] = [];
  /** Ledger ids of "guest instructions" at the root and the non-root level. */
  private readonly instructionIds = new Int32Array(2);
  private chargeCycles = new Float64Array(CPU_CHARGES.length);
  /** TSC offset (VMX's TSC offsetting, in non-root operation only). */
  tscOffset = 0;
  /** IA32_TSC_ADJUST (SDM vol. 3, 17.17.3): the TSC is cycles + this (+ tscOffset). */
  tscAdjust = 0;
  /** IA32_SPEC_CTRL's value (kept only; exists when CPUID enumerates it). */
  specCtrl = 0;

  // ---- Attached hardware. ----
  readonly mem: PhysicalMemory;
  io: IoBus = new NullIoBus();
  intc: InterruptController | null = null;
  msrHandler: MsrHandler | null = null;
  vmx: VmxHooks | null = null;
  /** The local APIC's TPR seen as CR8 (MOV to/from CR8); null: CR8 is a plain register (cr8). */
  tpr: { getCr8(): number; setCr8(value: number): void } | null = null;
  /** IA32_APIC_BASE.EN of the local APIC, which CPUID.1:EDX.APIC reports; null: no APIC attached. */
  apicEnabled: (() => boolean) | null = null;
  readonly model: CpuModel;
  /** The MMU model (TLBs, paging-structure caches, walker); translate() goes through it. */
  readonly mmu: Mmu;
  /** The MMU's guest page walker. */
  readonly walker: PageWalker;
  /** The MMU counter slot bumped per data access (DTLB accesses; hits = accesses - misses). @internal (jit) */
  readonly dAccesses: Float64Array;
  /** The VMX hardware: VM entry/exit and the exit conditions of non-root operation. */
  readonly vmxUnit: VmxUnit;
  readonly paging: PagingControls = { wp: false, nxe: false, smep: false, smap: false, ac: false, la57: false };

  /** Set when an interrupt might be deliverable; the loop then asks the controller. */
  irqCheck = false;
  /** Debug work is due at instruction boundaries (breakpoints, TF, RF: debug.ts); implies irqCheck. */
  dbgActive = false;
  /** A data breakpoint is enabled: slow-path accesses are checked and the software TLB is not filled. */
  dbgData = false;
  readonly debug = new DebugState();
  /** Set by devices/hypervisors to stop the loop after the current instruction. */
  stopRequested = false;
  stopReason: StopInfo | null = null;

  // ---- Scratch outputs (no allocation on the hot path). ----
  /** High half of the last 64-bit value a read helper returned. */
  vHi = 0;
  /** Effective linear address of the last memory operand. */
  eaLo = 0;
  eaHi = 0;
  /** The last memory operand was based on RSP/RBP (faults are #SS, not #GP). */
  eaStack = false;
  readonly tmp = new Int32Array(2);

  // ---- Exception bookkeeping. ----
  faultVector = -1;
  faultError = -1;
  faultCr2Lo = 0;
  faultCr2Hi = 0;
  /** Vector being delivered when the fault happened (for #DF / triple-fault rules), or -1. */
  delivering = -1;

  // ---- Software TLB: direct-mapped, per privilege set (0 = supervisor, 1 = user). ----
  // Not private: the block compiler (jit/) inlines the same probe. @internal
  readonly rTagLo = new Int32Array(TLB_SIZE * 2).fill(TLB_INVALID);
  readonly rTagHi = new Int32Array(TLB_SIZE * 2);
  readonly rView: (DataView | null)[] = new Array(TLB_SIZE * 2).fill(null);
  readonly wTagLo = new Int32Array(TLB_SIZE * 2).fill(TLB_INVALID);
  readonly wTagHi = new Int32Array(TLB_SIZE * 2);
  readonly wView: (DataView | null)[] = new Array(TLB_SIZE * 2).fill(null);
  /** First cache-line number of each entry's physical page (data-cache.ts pageLine). */
  readonly rLine = new Int32Array(TLB_SIZE * 2);
  readonly wLine = new Int32Array(TLB_SIZE * 2);
  tlbSet = 0;
  /**
   * The data-cache model every load and store touches (the MMU's): `dcMru`/`dcMask` are its L1D
   * MRU filter, which the fast paths and compiled code test before calling it. @internal
   */
  dcache: DataTouch;
  dcMru: Int32Array;
  dcMask: number;
  /** Write translations of pages that hold code (checked in the slow path only). */
  readonly codeWrites = new CodePageWrites();

  // ---- Decoded-instruction cache (code-cache.ts) and the page executed from now. ----
  private readonly codeCache = new DecodedCodeCache();
  // Not private: the block compiler reads the current code page (its blocks live only while
  // curCodeLo still names their linear page). @internal
  curCodeLo = TLB_INVALID;
  curCodeHi = 0;
  curCode: CodePage = [];
  curCodePfn = -1;

  /** The block compiler (null: interpret only, `--no-jit`). */
  jit: BlockJit | null = null;

  /** Counters the core keeps (cheap ones only; richer stats come from the MMU model). */
  readonly counters = { decodes: 0, tlbFills: 0, tlbFlushes: 0, smcInvalidations: 0, exceptions: 0, interrupts: 0 };

  constructor(mem: PhysicalMemory, model: CpuModel = new CpuModel()) {
    this.mem = mem;
    this.model = model;
    this.mmu = new Mmu(mem, this, { maxPhysAddr: maxPhysAddrOf(model) });
    this.walker = this.mmu.walker;
    this.dAccesses = this.mmu.dataAccesses;
    this.dcache = this.mmu.dataCache as DataTouch;
    this.dcMru = this.dcache.mru;
    this.dcMask = this.dcache.l1Mask;
    this.vmxUnit = new VmxUnit(this);
    this.setCostModel(this.costs, this.ledger, 0, 1);
    this.setJit(jitDefaults);
    mem.onCodeWrite = (pfn) => this.invalidateCodePage(pfn);
    // Flat 32-bit protected-mode segments at reset of our (real-mode-less) machine.
    for (let s = 0; s < 6; s++) {
      this.segLimit[s] = 0xffffffff;
      this.segAr[s] = s === 1 ? 0xc09b : 0xc093;
    }
  }

  /** Turn the block compiler on or off (and set its threshold): see jit/options.ts. */
  setJit(opts: JitOptions): void {
    this.jit = opts.enabled ? new BlockJit(this, opts) : null;
  }

  /**
   * May compiled code run now? Compiled blocks skip the loop's per-instruction checks, so any
   * state that needs them (single-step, breakpoints, pending-event windows…) must return false
   * here; the compiler re-checks it after every call into a handler and leaves the block.
   */
  compiledCodeAllowed(): boolean {
    // Debug work (instruction/data breakpoints, TF single-step, RF, pending #DB: debug.ts) is
    // checked per instruction by the interpreter loop, so compiled blocks wait until it is off.
    return this.mode64 && !this.dbgActive && !this.dbgData;
  }

  // =====================================================================================
  // Time
  // =====================================================================================

  /** Simulated cycles elapsed. */
  cycles(): number {
    return this.icount * this.cyclesPerInsn + this.extraCycles;
  }

  /** Charge extra cycles (exception delivery, walks, exits…); `chargeWatch` then checks the clock. */
  charge(n: number): void {
    this.extraCycles += n;
    if (this.chargeWatch !== null) this.chargeWatch(this);
  }

  /**
   * Use a cost profile's cycles and a ledger; `levelRoot` names the level of code in root
   * operation, `levelNonRoot` the non-root level until a VM entry sets it from its VMCS.
   */
  setCostModel(costs: Float64Array, ledger: CostLedger, levelRoot: number, levelNonRoot = levelRoot + 1): void {
    this.costs = costs;
    this.ledger = ledger;
    this.levelRoot = levelRoot;
    this.cyclesPerInsn = costs[P["insn.base"]];
    for (let k = 0; k < CPU_CHARGES.length; k++) this.chargeCycles[k] = costs[P[CPU_CHARGES[k][0]]];
    this.levelIds = [];
    const rootIds = this.idsOfLevel(levelRoot);
    for (let k = 0; k < CPU_CHARGES.length; k++) this.chargeIds[k] = rootIds[k];
    this.instructionIds[0] = rootIds[CPU_CHARGES.length];
    this.levelNonRoot = -1;
    this.setNonRootLevel(levelNonRoot);
  }

  /**
   * Model the data caches with `geometry` (a profile's `caches`): a new, empty model for the
   * walks and for every load and store. null (`--cache-model off`): no model; walk references
   * are charged flat (`mmu.walk_ref`) and loads and stores touch nothing that costs.
   */
  useDataCache(geometry: DataCacheGeometry | null): void {
    const model = geometry === null ? null : new DataCacheModel(geometry);
    this.mmu.setDataCache(model);
    const dc: DataTouch = model ?? new NoDataCache();
    this.dcache = dc;
    this.dcMru = dc.mru;
    this.dcMask = dc.l1Mask;
  }

  /** The level of the code VMX non-root operation runs now (set at VM entry from the VMCS). */
  setNonRootLevel(level: number): void {
    if (level === this.levelNonRoot) return;
    this.levelNonRoot = level;
    const ids = this.idsOfLevel(level);
    const n = CPU_CHARGES.length;
    for (let k = 0; k < n; k++) this.chargeIds[n + k] = ids[k];
    this.instructionIds[1] = ids[n];
  }

  /**
   * The ledger ids of `level`'s CPU charges (CPU_CHARGES order, then "guest instructions"),
   * interned on the level's first use: a ledger's ids never change, and interning builds strings,
   * which an L1<->L2 switch should not.
   */
  private idsOfLevel(level: number): Int32Array {
    let ids = this.levelIds[level];
    if (ids === undefined) {
      const n = CPU_CHARGES.length;
      ids = new Int32Array(n + 1);
      for (let k = 0; k < n; k++) ids[k] = this.ledger.id(level, CPU_CHARGES[k][1], CPU_CHARGES[k][2]);
      ids[n] = this.ledger.id(level, "guest", "instructions");
      this.levelIds[level] = ids;
    }
    return ids;
  }

  /** The level of the code running now (root or non-root). */
  get runningLevel(): number {
    return this.nonRoot ? this.levelNonRoot : this.levelRoot;
  }

  /** Charge one CPU event (CHARGE_*) `times` times, attributed to the running level. */
  chargeEvent(kind: number, times = 1): void {
    const cyc = this.chargeCycles[kind] * times;
    this.extraCycles += cyc;
    this.ledger.addMany(this.chargeIds[(this.nonRoot ? CPU_CHARGES.length : 0) + kind], cyc, times);
  }

  // =====================================================================================
  // Registers
  // =====================================================================================

  get8(r: number): number {
    return r < HIGH8_BASE ? this.lo[r] & 0xff : (this.lo[r - HIGH8_BASE] >> 8) & 0xff;
  }

  set8(r: number, v: number): void {
    if (r < HIGH8_BASE) this.lo[r] = (this.lo[r] & ~0xff) | (v & 0xff);
    else this.lo[r - HIGH8_BASE] = (this.lo[r - HIGH8_BASE] & ~0xff00) | ((v & 0xff) << 8);
  }

  set16(r: number, v: number): void {
    this.lo[r] = (this.lo[r] & ~0xffff) | (v & 0xffff);
  }

  /** 32-bit writes zero the upper half (SDM vol. 1, 3.4.1.1). */
  set32(r: number, v: number): void {
    this.lo[r] = v;
    this.hi[r] = 0;
  }

  set64(r: number, lo: number, hi: number): void {
    this.lo[r] = lo;
    this.hi[r] = hi;
  }

  /** Read register `r` at `size`; the value is zero-extended for 1 and 2; `vHi` gets the high half. */
  getReg(r: number, size: number): number {
    switch (size) {
      case 1:
        this.vHi = 0;
        return this.get8(r);
      case 2:
        this.vHi = 0;
        return this.lo[r] & 0xffff;
      case 4:
        this.vHi = 0;
        return this.lo[r];
      default:
        this.vHi = this.hi[r];
        return this.lo[r];
    }
  }

  setReg(r: number, size: number, lo: number, hi: number): void {
    switch (size) {
      case 1:
        this.set8(r, lo);
        return;
      case 2:
        this.set16(r, lo);
        return;
      case 4:
        this.lo[r] = lo;
        this.hi[r] = 0;
        return;
      default:
        this.lo[r] = lo;
        this.hi[r] = hi;
    }
  }

  // =====================================================================================
  // Effective addresses and operands
  // =====================================================================================

  /** Compute the linear address of `i`'s memory operand into eaLo/eaHi. */
  ea(i: Insn): void {
    let lo = i.disp;
    let hi = i.dispHi;
    const b = i.base;
    if (b !== NONE) {
      let blo: number;
      let bhi: number;
      if (b === BASE_RIP) {
        blo = this.ripLo;
        bhi = this.ripHi;
      } else {
        blo = this.lo[b];
        bhi = this.hi[b];
      }
      const s = (lo + blo) | 0;
      hi = (hi + bhi + (s >>> 0 < lo >>> 0 ? 1 : 0)) | 0;
      lo = s;
    }
    const x = i.index;
    if (x !== NONE) {
      let xlo = this.lo[x];
      let xhi = this.hi[x];
      const sc = i.scale;
      if (sc !== 0) {
        xhi = (xhi << sc) | (xlo >>> (32 - sc));
        xlo <<= sc;
      }
      const s = (lo + xlo) | 0;
      hi = (hi + xhi + (s >>> 0 < lo >>> 0 ? 1 : 0)) | 0;
      lo = s;
    }
    const seg = i.seg;
    if (this.mode64) {
      if (i.asize === 4) hi = 0;
      if (seg >= 4) {
        // Only FS and GS have bases in 64-bit mode.
        const s = (lo + this.segBaseLo[seg]) | 0;
        hi = (hi + this.segBaseHi[seg] + (s >>> 0 < lo >>> 0 ? 1 : 0)) | 0;
        lo = s;
      }
    } else {
      lo = (lo + this.segBaseLo[seg]) | 0;
      hi = 0;
    }
    this.eaLo = lo;
    this.eaHi = hi;
    this.eaStack = seg === 2;
  }

  /** Read the r/m operand at the instruction's size; `vHi` gets the high half for size 8. */
  readRm(i: Insn): number {
    if (!i.isMem) return this.getReg(i.rm, i.size);
    this.ea(i);
    return this.readMem(this.eaLo, this.eaHi, i.size);
  }

  /** Write the r/m operand; for memory reuses the address readRm/ea computed. */
  writeRm(i: Insn, lo: number, hi: number): void {
    if (!i.isMem) this.setReg(i.rm, i.size, lo, hi);
    else this.writeMem(this.eaLo, this.eaHi, i.size, lo, hi);
  }

  /** Write the r/m operand computing its address first (for pure stores). */
  storeRm(i: Insn, lo: number, hi: number): void {
    if (!i.isMem) this.setReg(i.rm, i.size, lo, hi);
    else {
      this.ea(i);
      this.writeMem(this.eaLo, this.eaHi, i.size, lo, hi);
    }
  }

  readMem(lo: number, hi: number, size: number): number {
    switch (size) {
      case 1:
        this.vHi = 0;
        return this.read8(lo, hi);
      case 2:
        this.vHi = 0;
        return this.read16(lo, hi);
      case 4:
        this.vHi = 0;
        return this.read32(lo, hi);
      default:
        return this.read64(lo, hi);
    }
  }

  writeMem(lo: number, hi: number, size: number, vlo: number, vhi: number): void {
    switch (size) {
      case 1:
        this.write8(lo, hi, vlo);
        return;
      case 2:
        this.write16(lo, hi, vlo);
        return;
      case 4:
        this.write32(lo, hi, vlo);
        return;
      default:
        this.write64(lo, hi, vlo, vhi);
    }
  }

  // =====================================================================================
  // Memory path: software TLB over the page walker
  // =====================================================================================

  read8(lo: number, hi: number): number {
    this.dAccesses[0]++;
    const idx = (((lo >>> 12) ^ hi) & (TLB_SIZE - 1)) | this.tlbSet;
    if (this.rTagLo[idx] === (lo & ~0xfff) && this.rTagHi[idx] === hi) {
      const ln = this.rLine[idx] + ((lo >>> 6) & 63);
      if (this.dcMru[ln & this.dcMask] !== ln) this.dcache.touchData(ln);
      return (this.rView[idx] as DataView).getUint8(lo & 0xfff);
    }
    return readSlow(this, lo, hi, 1);
  }

  read16(lo: number, hi: number): number {
    this.dAccesses[0]++;
    const idx = (((lo >>> 12) ^ hi) & (TLB_SIZE - 1)) | this.tlbSet;
    const off = lo & 0xfff;
    if (this.rTagLo[idx] === (lo & ~0xfff) && this.rTagHi[idx] === hi && off <= 4094) {
      const ln = this.rLine[idx] + (off >>> 6);
      if (this.dcMru[ln & this.dcMask] !== ln) this.dcache.touchData(ln);
      return (this.rView[idx] as DataView).getUint16(off, true);
    }
    return readSlow(this, lo, hi, 2);
  }

  read32(lo: number, hi: number): number {
    this.dAccesses[0]++;
    const idx = (((lo >>> 12) ^ hi) & (TLB_SIZE - 1)) | this.tlbSet;
    const off = lo & 0xfff;
    if (this.rTagLo[idx] === (lo & ~0xfff) && this.rTagHi[idx] === hi && off <= 4092) {
      const ln = this.rLine[idx] + (off >>> 6);
      if (this.dcMru[ln & this.dcMask] !== ln) this.dcache.touchData(ln);
      return (this.rView[idx] as DataView).getInt32(off, true);
    }
    return readSlow(this, lo, hi, 4);
  }

  /** Returns the low half; `vHi` holds the high half. */
  read64(lo: number, hi: number): number {
    this.dAccesses[0]++;
    const idx = (((lo >>> 12) ^ hi) & (TLB_SIZE - 1)) | this.tlbSet;
    const off = lo & 0xfff;
    if (this.rTagLo[idx] === (lo & ~0xfff) && this.rTagHi[idx] === hi && off <= 4088) {
      const ln = this.rLine[idx] + (off >>> 6);
      if (this.dcMru[ln & this.dcMask] !== ln) this.dcache.touchData(ln);
      const v = this.rView[idx] as DataView;
      this.vHi = v.getInt32(off + 4, true);
      return v.getInt32(off, true);
    }
    // Slow path: translate both halves first so a fault leaves nothing half-done.
    const l = readSlow(this, lo, hi, 4);
    const lo2 = (lo + 4) | 0;
    const h = readSlow(this, lo2, lo2 >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi, 4);
    this.vHi = h;
    return l;
  }

  write8(lo: number, hi: number, v: number): void {
    this.dAccesses[0]++;
    const idx = (((lo >>> 12) ^ hi) & (TLB_SIZE - 1)) | this.tlbSet;
    if (this.wTagLo[idx] === (lo & ~0xfff) && this.wTagHi[idx] === hi) {
      const ln = this.wLine[idx] + ((lo >>> 6) & 63);
      if (this.dcMru[ln & this.dcMask] !== ln) this.dcache.touchData(ln);
      (this.wView[idx] as DataView).setUint8(lo & 0xfff, v);
      return;
    }
    writeSlow(this, lo, hi, 1, v);
  }

  write16(lo: number, hi: number, v: number): void {
    this.dAccesses[0]++;
    const idx = (((lo >>> 12) ^ hi) & (TLB_SIZE - 1)) | this.tlbSet;
    const off = lo & 0xfff;
    if (this.wTagLo[idx] === (lo & ~0xfff) && this.wTagHi[idx] === hi && off <= 4094) {
      const ln = this.wLine[idx] + (off >>> 6);
      if (this.dcMru[ln & this.dcMask] !== ln) this.dcache.touchData(ln);
      (this.wView[idx] as DataView).setUint16(off, v, true);
      return;
    }
    writeSlow(this, lo, hi, 2, v);
  }

  write32(lo: number, hi: number, v: number): void {
    this.dAccesses[0]++;
    const idx = (((lo >>> 12) ^ hi) & (TLB_SIZE - 1)) | this.tlbSet;
    const off = lo & 0xfff;
    if (this.wTagLo[idx] === (lo & ~0xfff) && this.wTagHi[idx] === hi && off <= 4092) {
      const ln = this.wLine[idx] + (off >>> 6);
      if (this.dcMru[ln & this.dcMask] !== ln) this.dcache.touchData(ln);
      (this.wView[idx] as DataView).setInt32(off, v, true);
      return;
    }
    writeSlow(this, lo, hi, 4, v);
  }

  write64(lo: number, hi: number, vlo: number, vhi: number): void {
    this.dAccesses[0]++;
    const idx = (((lo >>> 12) ^ hi) & (TLB_SIZE - 1)) | this.tlbSet;
    const off = lo & 0xfff;
    if (this.wTagLo[idx] === (lo & ~0xfff) && this.wTagHi[idx] === hi && off <= 4088) {
      const ln = this.wLine[idx] + (off >>> 6);
      if (this.dcMru[ln & this.dcMask] !== ln) this.dcache.touchData(ln);
      const v = this.wView[idx] as DataView;
      v.setInt32(off, vlo, true);
      v.setInt32(off + 4, vhi, true);
      return;
    }
    const lo2 = (lo + 4) | 0;
    const hi2 = lo2 >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi;
    // Probe the first byte and, when the store straddles a page, the first byte of the next
    // page, before storing either half (faults are precise; CR2 is where the fault begins).
    this.translate(lo, hi, ACC_WRITE | this.userAccess());
    if ((lo & 0xfff) > 0xff8) {
      const next = ((lo | 0xfff) + 1) | 0;
      this.translate(next, next === 0 ? (hi + 1) | 0 : hi, ACC_WRITE | this.userAccess());
    }
    writeSlow(this, lo, hi, 4, vlo);
    writeSlow(this, lo2, hi2, 4, vhi);
  }

  /** The ACC_USER bit for an access at the current privilege level. @internal */
  userAccess(): number {
    return this.cpl === 3 ? ACC_USER : 0;
  }

  /** Raise #GP(0) (or #SS(0) for stack references) unless lo/hi is canonical in 64-bit mode. */
  checkCanonical(hi: number, lo: number, stack: boolean): void {
    if (this.mode64) {
      const top = hi >> 15; // bits 63:47 must all equal bit 47
      if (top !== 0 && top !== -1) this.raise(stack ? SS_ : GP, 0);
    }
    void lo;
  }

  /**
   * Translate a linear address for `access` (ACC_* bits) to a physical address, raising #PF on
   * a fault. Does not touch the software TLB.
   */
  translate(lo: number, hi: number, access: number): number {
    if (this.mode64) {
      const top = hi >> 15;
      if (top !== 0 && top !== -1) this.raise(this.eaStack ? SS_ : GP, 0);
    }
    if ((this.cr0 & CR0_PG) === 0) {
      // Paging off: the linear address is guest-physical; under EPT it still goes through the
      // TLBs and EPT (mmu.translate), and a miss is charged as any walk.
      if (!this.nonRoot || this.mmu.ept === null) return lo >>> 0;
      hi = 0;
    } else if (!this.mode64) hi = 0;
    const mc = this.mmu.counters;
    const stlbHits = mc[MC.stlb_hits];
    const pa = this.mmu.translate(lo, hi, access);
    if (this.mmu.lastWalkRefs > 0) this.chargeWalk();
    else if (mc[MC.stlb_hits] !== stlbHits) this.chargeEvent(CHARGE_STLB_HIT);
    if (pa < 0) {
      const f = this.mmu.fault;
      if (f !== FAULT_PF && this.mmu.ept !== null) {
        const e = this.mmu.ept;
        return this.eptFault(f, e.faultGpa, e.qualification, lo, hi);
      }
      // CR2 is written when the #PF is delivered, not when it is raised: a #PF that becomes a
      // VM exit leaves the guest's CR2 alone (SDM vol. 3, 27.1); the address goes in the exit qualification.
      this.faultCr2Lo = lo;
      this.faultCr2Hi = hi;
      this.raise(PF_, this.mmu.errorCode);
    }
    return pa;
  }

  /**
   * Charge the last walk: the STLB lookup that missed, the page-miss handler's fixed latency and
   * its latency per EPT translation (nested step), then the references: by where the data caches
   * found each one (FOUND_* order = CHARGE_WALK_L1D..DRAM), or at the flat `mmu.walk_ref` if the
   * MMU has no cache model attached (`--cache-model off`).
   */
  private chargeWalk(): void {
    const m = this.mmu;
    this.chargeEvent(CHARGE_STLB_MISS);
    this.chargeEvent(CHARGE_PMH_WALK);
    if (m.lastNestedSteps > 0) this.chargeEvent(CHARGE_PMH_NESTED_STEP, m.lastNestedSteps);
    if (m.dataCache === null) {
      this.chargeEvent(CHARGE_WALK_REF, m.lastWalkRefs);
      return;
    }
    const f = m.lastWalkFound;
    for (let k = 0; k < 4; k++) if (f[k] > 0) this.chargeEvent(CHARGE_WALK_L1D + k, f[k]);
  }

  /**
   * A failed EPT translation: a VM exit (EPT violation or misconfiguration, SDM vol. 3, 28.3.3),
   * unless the hypervisor is emulating this access against its device window (see mmioWindow).
   */
  private eptFault(fault: number, gpa: number, qual: number, glaLo: number, glaHi: number): number {
    const w = this.mmioWindow;
    if (w.size !== 0 && gpa >= w.gpaBase && gpa < w.gpaBase + w.size) {
      return w.hostBase + (gpa - w.gpaBase);
    }
    if (fault === FAULT_EPT_MISCONFIG) return this.vmxUnit.eptViolation(gpa, 0, 0, 0, true);
    // Bit 7: the guest-linear address is valid (it is for table and final accesses here).
    return this.vmxUnit.eptViolation(gpa, qual, glaLo, glaHi, false);
  }

  /** Read a byte of the instruction stream (decoder only; the loop uses the code cache). */
  fetchByte(lo: number, hi: number): number {
    const pa = this.translate(lo, hi, ACC_FETCH | this.userAccess());
    return this.mem.read(pa, 1);
  }

  // ---- Supervisor-implicit accesses (descriptor tables, TSS, IDT): never user-checked. ----

  readSys(lo: number, hi: number, size: 1 | 2 | 4): number {
    const pa = this.translate(lo, hi, 0);
    if ((pa % PAGE_SIZE) + size > PAGE_SIZE) {
      let v = 0;
      for (let k = size - 1; k >= 0; k--) v = v * 256 + this.mem.read(this.translate(lo + k, hi, 0), 1);
      return v | 0;
    }
    return this.mem.read(pa, size) | 0;
  }

  writeSys(lo: number, hi: number, size: 1 | 2 | 4, v: number): void {
    this.mem.write(this.translate(lo, hi, ACC_WRITE), size, v);
  }

  // =====================================================================================
  // TLB and code-cache maintenance
  // =====================================================================================

  /** Flush the software TLB (CR3 write, INVLPG, paging-mode change, CPL-relevant changes). */
  flushTlb(): void {
    this.rTagLo.fill(TLB_INVALID);
    this.wTagLo.fill(TLB_INVALID);
    this.codeWrites.tagLo.fill(TLB_INVALID);
    this.curCodeLo = TLB_INVALID;
    this.counters.tlbFlushes++;
  }

  /** Drop the cached translation of one linear page (INVLPG). */
  flushTlbPage(lo: number, hi: number): void {
    for (let set = 0; set < 2; set++) {
      const idx = (((lo >>> 12) ^ hi) & (TLB_SIZE - 1)) | (set * TLB_SIZE);
      this.rTagLo[idx] = TLB_INVALID;
      this.wTagLo[idx] = TLB_INVALID;
      this.codeWrites.tagLo[idx] = TLB_INVALID;
    }
    this.curCodeLo = TLB_INVALID;
  }

  /** Drop the decoded instructions of a physical page (and its predecessor: cross-page code). */
  invalidateCodePage(pfn: number): void {
    this.codeCache.dropPage(pfn);
    if (this.curCodePfn === pfn || this.curCodePfn === pfn - 1) this.curCodeLo = TLB_INVALID;
    if (this.jit !== null) this.jit.invalidatePage(pfn);
    this.counters.smcInvalidations++;
  }

  /** Drop every decoded instruction (mode switch: the same bytes decode differently). */
  flushCodeCache(): void {
    this.codeCache.clear();
    this.curCodeLo = TLB_INVALID;
    if (this.jit !== null) this.jit.flush();
  }

  /** Record decoded code at [off, off+len) of page pfn; a new code page loses its fast write mappings. */
  private markCode(pfn: number, off: number, len: number): void {
    if (!this.mem.markCode(pfn, off, len)) return;
    const view = this.mem.page(pfn);
    for (let k = 0; k < TLB_SIZE * 2; k++) if (this.wView[k] === view) this.wTagLo[k] = TLB_INVALID;
  }

  /** Recompute derived state after CR0/CR4/EFER/CS/RFLAGS.AC changes; flush only what changed. */
  updateMode(): void {
    const lma = (this.efer & EFER_LMA) !== 0;
    const m64 = lma && (this.segAr[1] & 0x2000) !== 0;
    const d32 = (this.segAr[1] & 0x4000) !== 0;
    if (m64 !== this.mode64 || d32 !== this.csDefault32) {
      this.flushCodeCache();
      this.mode64 = m64;
      this.csDefault32 = d32;
    }
    this.mmu.syncControls(); // model TLB invalidations for CR0/CR4 changes (SDM 4.10.4.1)
    const p = this.paging;
    const wp = (this.cr0 & CR0_WP) !== 0;
    const nxe = (this.efer & EFER_NXE) !== 0;
    const smep = (this.cr4 & CR4_SMEP) !== 0;
    const smap = (this.cr4 & CR4_SMAP) !== 0;
    const la57 = (this.cr4 & CR4_LA57) !== 0;
    const ac = (this.flagsBase & AC) !== 0;
    const pg = (this.cr0 & CR0_PG) !== 0;
    if (
      wp !== p.wp ||
      nxe !== p.nxe ||
      smep !== p.smep ||
      smap !== p.smap ||
      la57 !== p.la57 ||
      ac !== p.ac ||
      pg !== this.pagingOn
    ) {
      p.wp = wp;
      p.nxe = nxe;
      p.smep = smep;
      p.smap = smap;
      p.la57 = la57;
      p.ac = ac;
      this.pagingOn = pg;
      this.flushTlb();
    }
    this.tlbSet = this.cpl === 3 ? TLB_SIZE : 0;
  }

  private pagingOn = false;

  /** Set CPL (on CS loads, SYSCALL/SYSRET, interrupts, IRET). */
  setCpl(cpl: number): void {
    if (cpl !== this.cpl) {
      this.cpl = cpl;
      this.tlbSet = cpl === 3 ? TLB_SIZE : 0;
      this.curCodeLo = TLB_INVALID;
    }
  }

  pcidEnabled(): boolean {
    return (this.cr4 & CR4_PCIDE) !== 0;
  }

  // =====================================================================================
  // Flags
  // =====================================================================================

  /** Record an arithmetic result for lazy flags. */
  setLazy(
    op: number,
    size: number,
    resLo: number,
    resHi: number,
    dstLo: number,
    dstHi: number,
    srcLo: number,
    srcHi: number,
    aux: number,
  ): void {
    this.lfOp = op;
    this.lfSize = size;
    this.lfResLo = resLo;
    this.lfResHi = resHi;
    this.lfDstLo = dstLo;
    this.lfDstHi = dstHi;
    this.lfSrcLo = srcLo;
    this.lfSrcHi = srcHi;
    this.lfAux = aux;
  }

  /** Set result-derived flags with explicit CF/OF/AF (logic ops, shifts, multiplies). */
  setLazyRes(size: number, resLo: number, resHi: number, cfOfAf: number): void {
    this.lfOp = LF_RES;
    this.lfSize = size;
    this.lfResLo = resLo;
    this.lfResHi = resHi;
    this.lfAux = cfOfAf;
  }

  // Reading the record back: lazy-flags.ts (thin methods here, inlined by V8).
  getCF(): number {
    return lazyCF(this);
  }
  getZF(): number {
    return lazyZF(this);
  }
  getSF(): number {
    return lazySF(this);
  }
  getPF(): number {
    return lazyPF(this);
  }
  getAF(): number {
    return lazyAF(this);
  }
  getOF(): number {
    return lazyOF(this);
  }
  /** The full RFLAGS value (low 32 bits; the high half is reserved zero). */
  getFlags(): number {
    return lazyFlags(this);
  }

  /** Replace RFLAGS (callers apply privilege masks first). */
  setFlags(v: number): void {
    const oldAc = this.flagsBase & AC;
    const oldIf = this.flagsBase & IF;
    this.flagsBase = (v & 0x3f7fd7) | FIXED1;
    this.lfOp = LF_NONE;
    if ((this.flagsBase & AC) !== oldAc) {
      this.paging.ac = (this.flagsBase & AC) !== 0;
      this.flushTlb();
    }
    if ((this.flagsBase & IF) !== 0 && oldIf === 0) this.irqCheck = true;
    if ((this.flagsBase & (RF | TF)) !== 0) debugFlagsLoaded(this);
  }

  /** Set or clear CF only, materializing the other flags. */
  setCF(v: number): void {
    this.flagsBase = (this.getFlags() & ~CF) | (v & 1);
    this.lfOp = LF_NONE;
  }

  /**
   * Evaluate condition code cc (0..15, as in Jcc/SETcc/CMOVcc). Kept here rather than in
   * lazy-flags.ts: the interpreter's Jcc calls it for nearly every branch, and one more call level
   * (the handler, this, a lazyCond, the flag) cost bench cpu --no-jit about 2%.
   */
  cond(cc: number): boolean {
    let r: boolean;
    switch (cc >> 1) {
      case 0:
        r = lazyOF(this) !== 0;
        break;
      case 1:
        r = lazyCF(this) !== 0;
        break;
      case 2:
        r = lazyZF(this) !== 0;
        break;
      case 3:
        r = lazyCF(this) !== 0 || lazyZF(this) !== 0;
        break;
      case 4:
        r = lazySF(this) !== 0;
        break;
      case 5:
        r = lazyPF(this) !== 0;
        break;
      case 6:
        r = lazySF(this) !== lazyOF(this);
        break;
      default:
        r = lazyZF(this) !== 0 || lazySF(this) !== lazyOF(this);
        break;
    }
    return (cc & 1) === 0 ? r : !r;
  }

  // =====================================================================================
  // Stack
  // =====================================================================================

  /** Stack address size: 8 in 64-bit mode, else SS.B (4; 16-bit stacks are out of scope). */
  push(size: number, lo: number, hi: number): void {
    if (this.mode64) {
      let rlo = this.lo[4];
      let rhi = this.hi[4];
      const n = (rlo - size) | 0;
      if (n >>> 0 > rlo >>> 0) rhi = (rhi - 1) | 0;
      rlo = n;
      this.eaStack = true;
      this.writeMem(rlo, rhi, size, lo, hi);
      this.lo[4] = rlo;
      this.hi[4] = rhi;
    } else {
      const n = (this.lo[4] - size) | 0;
      this.eaStack = true;
      this.writeMem((n + this.segBaseLo[2]) | 0, 0, size, lo, hi);
      this.lo[4] = n;
    }
  }

  /** Pop `size` bytes; returns the low half, `vHi` the high half. */
  pop(size: number): number {
    this.eaStack = true;
    if (this.mode64) {
      const rlo = this.lo[4];
      const rhi = this.hi[4];
      const v = this.readMem(rlo, rhi, size);
      const vh = this.vHi;
      const n = (rlo + size) | 0;
      this.lo[4] = n;
      if (n >>> 0 < rlo >>> 0) this.hi[4] = (rhi + 1) | 0;
      this.vHi = vh;
      return v;
    }
    const rlo = this.lo[4];
    const v = this.readMem((rlo + this.segBaseLo[2]) | 0, 0, size);
    this.lo[4] = (rlo + size) | 0;
    return v;
  }

  /** Operand size of near branches/push/pop: 8 in 64-bit mode (unless 66h: 2), else 4 or 2. */

  // =====================================================================================
  // Control transfer helpers
  // =====================================================================================

  /** Jump to lo/hi, applying the mode's address width. */
  jump(lo: number, hi: number): void {
    if (this.mode64) {
      const top = hi >> 15;
      if (top !== 0 && top !== -1) this.raise(GP, 0);
      this.ripLo = lo;
      this.ripHi = hi;
    } else {
      this.ripLo = lo;
      this.ripHi = 0;
    }
  }

  /** Relative jump by a sign-extended 32-bit displacement. */
  jumpRel(disp: number, opsize: number): void {
    const lo = (this.ripLo + disp) | 0;
    let hi = this.ripHi;
    if (this.mode64) {
      // Carry/borrow of a signed 32-bit addend into the high half.
      if (disp >= 0) {
        if (lo >>> 0 < this.ripLo >>> 0) hi = (hi + 1) | 0;
      } else if (lo >>> 0 > this.ripLo >>> 0) hi = (hi - 1) | 0;
      this.jump(lo, hi);
    } else this.ripLo = opsize === 2 ? lo & 0xffff : lo;
  }

  // =====================================================================================
  // Faults
  // =====================================================================================

  /** Abandon the current instruction with exception `vector` (errorCode -1 = none). */
  raise(vector: number, errorCode = -1): never {
    this.faultVector = vector;
    this.faultError = errorCode;
    throw FAULT;
  }

  /** Stop the machine (triple fault, unsupported condition) with a report. */
  shutdown(reason: string): void {
    this.stopReason = { reason, ripLo: this.startLo, ripHi: this.startHi };
    this.stopRequested = true;
    this.irqCheck = true; // so the loop sees the stop even when raised inside an instruction (INT n)
  }

  // =====================================================================================
  // The loop
  // =====================================================================================

  /**
   * Run up to `budget` instructions. Returns STOP_* . Faults are delivered through the IDT
   * inside the loop; only shutdown, HLT, stop requests and the budget end it.
   */
  run(budget: number): number {
    // Instructions are attributed to the level that ran them when each run ends: a run never
    // spans a VM entry or exit (an exit ends it), so every entry and exit is a boundary.
    const start = this.icount;
    const id = this.instructionIds[this.nonRoot ? 1 : 0];
    const timed = this.nonRoot && this.vmxUnit.software.guestRunning && this.vmxUnit.preemptionTimerArmed();
    if (timed) {
      budget = this.softwarePreemption(budget);
      if (budget < 0) return STOP_REQUEST;
    }
    let stop = this.runUntilStop(budget);
    const n = this.icount - start;
    if (n > 0) this.ledger.addMany(id, n * this.cyclesPerInsn, n);
    // Still in the guest at the end of the slice: the timer may have expired on its last instruction.
    if (timed && this.nonRoot && this.softwarePreemption(1) < 0) stop = STOP_REQUEST;
    return stop;
  }

  private runUntilStop(budget: number): number {
    const end = this.icount + budget;
    for (;;) {
      try {
        return this.runInner(end);
      } catch (e) {
        if (e === VMEXIT) return this.takeVmExit();
        if (e !== FAULT) throw e;
        this.ripLo = this.startLo;
        this.ripHi = this.startHi;
        this.icount++; // the faulting instruction still took a slot of the budget
        try {
          this.deliverFault();
        } catch (e2) {
          if (e2 === VMEXIT) return this.takeVmExit();
          throw e2;
        }
        if (this.stopRequested) {
          this.stopRequested = false;
          return STOP_SHUTDOWN;
        }
      }
    }
  }

  /** A VM exit abandoned the instruction at startLo/Hi: commit it and leave the loop. */
  private takeVmExit(): number {
    this.ripLo = this.startLo;
    this.ripHi = this.startHi;
    this.vmxUnit.completeExit();
    // A guest that guest software launched returns to the host-state area of its VMCS; the run
    // ends at the level change, as every run does.
    if (this.vmxUnit.software.guestRunning) {
      this.softwareGuestExited();
      return STOP_REQUEST;
    }
    return STOP_VMEXIT;
  }

  /** A guest that guest software launched has exited (committed): the hardware exit's cost, host state. */
  private softwareGuestExited(): void {
    this.chargeEvent(CHARGE_VMEXIT);
    loadHostState(this, this.vmxUnit.vmcs as Vmcs);
  }

  /**
   * The VMX-preemption timer of a guest that guest software launched (the same deadline
   * `VmxHost.run` honours for nestlab's own hypervisors): clamp `budget` to it, or take the
   * exit when it has expired. Returns the budget, or -1 when the exit was taken.
   */
  private softwarePreemption(budget: number): number {
    const left = this.vmxUnit.preemptionInsnsLeft();
    if (left > 0) return Math.min(budget, left);
    this.vmxUnit.exitBetweenInstructions(EXIT_PREEMPTION_TIMER);
    this.softwareGuestExited();
    return -1;
  }

  /** Deliver an event injected at VM entry (or by a test) through the guest IDT now. */
  injectEvent(vector: number, errorCode: number, external: boolean): void {
    this.startLo = this.ripLo;
    this.startHi = this.ripHi;
    deliverEvent(this, vector, errorCode, external, 0);
  }

  private deliverFault(): void {
    this.counters.exceptions++;
    const v = this.faultVector;
    const err = this.faultError;
    this.faultVector = -1;
    deliverEvent(this, v, err, false, 0);
  }

  private runInner(end: number): number {
    const ic = this.icountSlot;
    const jit = this.jit;
    let entry = true; // RIP is a block entry point (after a jump or a stop of straight-line flow)
    while (ic[0] < end) {
      if (this.irqCheck) {
        entry = true;
        if (this.stopRequested) {
          this.stopRequested = false;
          // In non-root operation the boundary check is still owed to the next instruction
          // (VM entry asked for it: an open interrupt or NMI window exits before the guest's
          // first instruction, SDM vol. 3, 26.7.5-26.7.6; this covers guest software's VM entry
          // too); elsewhere the stop consumed it.
          this.irqCheck = this.nonRoot;
          return this.stopReason !== null ? STOP_SHUTDOWN : STOP_REQUEST;
        }
        const dbg = this.dbgActive && debugBoundary(this);
        if (!this.checkInterrupts() && this.halted) {
          this.irqCheck = true; // stay halted until an interrupt is delivered
          return STOP_HALT;
        }
        if (dbg) {
          this.irqCheck = true;
          instructionBreakpoints(this);
        }
      }
      const lo = this.ripLo;
      const hi = this.ripHi;
      let insn: Insn | undefined;
      this.startLo = lo;
      this.startHi = hi;
      if ((lo & ~0xfff) === this.curCodeLo && hi === this.curCodeHi) {
        insn = this.curCode[lo & 0xfff];
      } else {
        this.enterCodePage(lo, hi);
        insn = this.curCode[lo & 0xfff];
      }
      // BlockJit.enter refuses while irqCheck is set (a check owed after this one instruction).
      if (entry && jit !== null && insn !== undefined && jit.enter(lo, hi, end)) continue;
      if (insn === undefined) insn = this.decodeAt(lo, hi);
      const n = (lo + insn.len) | 0;
      this.ripLo = n;
      if (n >>> 0 < lo >>> 0 && this.mode64) this.ripHi = (hi + 1) | 0;
      insn.exec(this, insn);
      ic[0]++;
      entry = this.ripLo !== n;
    }
    return STOP_BUDGET;
  }

  /** Translate the page of RIP for execution and select its decoded-instruction array. */
  private enterCodePage(lo: number, hi: number): void {
    this.eaStack = false;
    const pa = this.translate(lo, hi, ACC_FETCH | this.userAccess());
    const pfn = Math.floor(pa / PAGE_SIZE);
    if (!this.mem.isRam(pa)) {
      // Executing from MMIO or outside RAM: never cached.
      this.curCodeLo = TLB_INVALID;
      this.curCode = [];
      return;
    }
    this.curCode = this.codeCache.page(pfn);
    this.curCodePfn = pfn;
    this.curCodeLo = lo & ~0xfff;
    this.curCodeHi = hi;
  }

  private decodeAt(lo: number, hi: number): Insn {
    this.counters.decodes++;
    const insn = decode(this, lo, hi);
    // Cache unless the instruction crosses into the next page (its second page may remap).
    if ((lo & 0xfff) + insn.len <= PAGE_SIZE && this.curCodeLo === (lo & ~0xfff)) {
      this.curCode[lo & 0xfff] = insn;
      this.markCode(this.curCodePfn, lo & 0xfff, insn.len);
    }
    return insn;
  }

  /** Deliver a pending external interrupt if allowed. Returns true when one was delivered. */
  checkInterrupts(): boolean {
    this.irqCheck = false;
    this.startLo = this.ripLo;
    this.startHi = this.ripHi;
    if (this.intShadow) {
      this.intShadow = false;
      this.irqCheck = true; // look again after the next instruction
      return false;
    }
    if (checkNmi(this)) return true; // NMI-window exits, NMI exits and NMIs come first (SDM 6.9)
    // External-interrupt exiting (SDM vol. 3, 25.2): an interrupt exits whatever RFLAGS.IF says.
    if (
      this.nonRoot &&
      this.intc !== null &&
      this.vmxUnit.externalInterruptExiting() &&
      this.intc.hasPendingInterrupt()
    )
      this.vmxUnit.externalInterruptExit(this.intc);
    // Interrupt-window exiting (SDM vol. 3, 25.2): the guest can now take an interrupt.
    if (this.nonRoot && (this.flagsBase & IF) !== 0 && this.vmxUnit.interruptWindowOpen()) {
      this.vmxUnit.exitNow(EXIT_INTERRUPT_WINDOW);
    }
    const intc = this.intc;
    if (intc === null || (this.flagsBase & IF) === 0) return false;
    if (!intc.hasPendingInterrupt()) return false;
    const vector = intc.acknowledgeInterrupt();
    this.halted = false;
    this.counters.interrupts++;
    this.startLo = this.ripLo;
    this.startHi = this.ripHi;
    try {
      deliverEvent(this, vector, -1, true, 0);
    } catch (e) {
      if (e !== FAULT) throw e;
      // A fault while delivering: handled as a fault during delivery of an external event.
      this.deliverFault();
    }
    this.irqCheck = true; // more may be pending
    return true;
  }

  /** HLT: stop fetching until an interrupt is delivered. The loop notices through irqCheck. */
  halt(): void {
    this.halted = true;
    this.irqCheck = true;
  }

  /** Ask the loop to re-check interrupts (a device raised a line, IF became 1…). */
  notifyInterrupt(): void {
    this.irqCheck = true;
  }

  /** Ask the loop to stop after the current instruction. */
  requestStop(): void {
    this.stopRequested = true;
    this.irqCheck = true;
  }

  /** Convenience for tests and loaders: status flags as an object-free check. */
  flagSet(bit: number): boolean {
    return (this.getFlags() & bit) !== 0;
  }
}

// Re-exported for handlers that build flag values.
export { CF, OF, SF, ZF };
