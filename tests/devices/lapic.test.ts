import { describe, expect, it } from "vitest";
import { type IpiInfo, LocalApic } from "../../src/devices/lapic.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";

class FakeClock {
  t = 0;
  now(): number {
    return this.t;
  }
}

function setup(opts: { apicId?: number; cyclesPerTick?: number } = {}) {
  const clock = new FakeClock();
  const ipis: IpiInfo[] = [];
  const apic = new LocalApic({ clock, onIpi: (i) => ipis.push(i), ...opts });
  const mem = new PhysicalMemory(0x10000);
  mem.addMmio(0xfee00000, 0x1000, apic);
  const rd = (off: number) => mem.read(0xfee00000 + off, 4);
  const wr = (off: number, v: number) => mem.write(0xfee00000 + off, 4, v);
  return { clock, apic, mem, rd, wr, ipis };
}

function enabled(opts: { apicId?: number; cyclesPerTick?: number } = {}) {
  const s = setup(opts);
  s.wr(0xf0, 0x1ff); // SVR: enable, spurious vector 0xFF
  return s;
}

describe("LocalApic registers (xAPIC MMIO)", () => {
  it("has SDM/QEMU reset values", () => {
    const { apic, rd } = setup({ apicId: 2 });
    expect(rd(0x20)).toBe(0x02000000);
    expect(rd(0x30)).toBe(0x00050014);
    expect(rd(0x80)).toBe(0);
    expect(rd(0xe0)).toBe(0xffffffff);
    expect(rd(0xf0)).toBe(0xff);
    expect(rd(0x320)).toBe(0x00010000);
    expect(rd(0x350)).toBe(0x00000700); // BSP LINT0: ExtINT, unmasked
    expect(rd(0x360)).toBe(0x00010000);
    expect(rd(0x370)).toBe(0x00010000);
    expect(apic.readMsr(0x1b)).toEqual([0xfee00900, 0]);
    expect(apic.softwareEnabled).toBe(false);
  });

  it("masks writable bits and keeps LVTs masked while software-disabled", () => {
    const { rd, wr } = setup();
    wr(0x320, 0xffffffff);
    expect(rd(0x320)).toBe(0x000700ff);
    wr(0x370, 0x33);
    expect(rd(0x370)).toBe(0x00010033); // mask forced: SVR[8] = 0
    wr(0xf0, 0x1ff);
    wr(0x370, 0x33);
    expect(rd(0x370)).toBe(0x33);
    wr(0x80, 0x1234);
    expect(rd(0x80)).toBe(0x34);
    wr(0xd0, 0xffffffff);
    expect(rd(0xd0)).toBe(0xff000000);
    wr(0xe0, 0);
    expect(rd(0xe0)).toBe(0x0fffffff);
    wr(0xf0, 0x0ff); // software disable masks every LVT
    expect(rd(0x370)).toBe(0x00010033);
    expect(rd(0x350)).toBe(0x00010700);
  });

  it("ignores sub-dword writes and returns bytes of the register for narrow reads", () => {
    const { mem, rd } = setup();
    mem.write(0xfee000f0, 2, 0x1ff);
    expect(rd(0xf0)).toBe(0xff);
    expect(mem.read(0xfee00032, 1)).toBe(0x05);
    expect(mem.read(0xfee00030, 2)).toBe(0x0014);
  });

  it("logs illegal register accesses in ESR (visible after an ESR write)", () => {
    const { rd, wr } = enabled();
    expect(rd(0x3f0)).toBe(0);
    expect(rd(0x280)).toBe(0);
    wr(0x280, 0);
    expect(rd(0x280)).toBe(0x80);
    wr(0x280, 0);
    expect(rd(0x280)).toBe(0);
  });
});

describe("LocalApic interrupt acceptance", () => {
  it("drops fixed interrupts while software-disabled", () => {
    const { apic } = setup();
    apic.acceptExternal(0x41);
    expect(apic.isIrrSet(0x41)).toBe(false);
    expect(apic.hasPending()).toBe(false);
  });

  it("follows IRR/ISR/PPR priority-class rules and EOI", () => {
    const { apic, rd, wr } = enabled();
    apic.acceptExternal(0x41);
    expect(apic.hasPending()).toBe(true);
    expect(rd(0x200 + 0x20)).toBe(1 << 1); // IRR word 2 bit 1 (vector 0x41)
    expect(apic.acknowledge()).toBe(0x41);
    expect(apic.isIsrSet(0x41)).toBe(true);
    expect(rd(0xa0)).toBe(0x40); // PPR from ISR
    apic.acceptExternal(0x45); // same class: blocked
    expect(apic.hasPending()).toBe(false);
    apic.acceptExternal(0x51); // higher class: nests
    expect(apic.hasPending()).toBe(true);
    expect(apic.acknowledge()).toBe(0x51);
    expect(rd(0xa0)).toBe(0x50);
    wr(0xb0, 0); // EOI clears 0x51
    expect(apic.isIsrSet(0x51)).toBe(false);
    expect(apic.isIsrSet(0x41)).toBe(true);
    wr(0xb0, 0);
    expect(rd(0xa0)).toBe(0);
    expect(apic.acknowledge()).toBe(0x45);
    wr(0xb0, 0);
    wr(0x80, 0x60); // TPR above 0x5x
    apic.acceptExternal(0x51);
    expect(rd(0xa0)).toBe(0x60);
    expect(apic.hasPending()).toBe(false);
    expect(apic.acknowledge()).toBe(0xff); // spurious vector, ISR untouched
    expect(apic.isIsrSet(0x51)).toBe(false);
    apic.setCr8(0);
    expect(rd(0x80)).toBe(0);
    expect(apic.acknowledge()).toBe(0x51);
  });

  it("records level-triggered vectors in TMR and reports their EOI", () => {
    const clock = new FakeClock();
    const eois: number[] = [];
    const apic = new LocalApic({ clock, onLevelEoi: (v) => eois.push(v) });
    apic.mmioWrite(0xf0, 4, 0x1ff, 0);
    apic.acceptExternal(0x60, true);
    expect(apic.isTmrSet(0x60)).toBe(true);
    expect(apic.acknowledge()).toBe(0x60);
    apic.eoi();
    expect(eois).toEqual([0x60]);
    expect(apic.isTmrSet(0x60)).toBe(false);
  });

  it("rejects vectors 0-15 with receive/send-illegal-vector errors and an error interrupt", () => {
    const { apic, rd, wr } = enabled();
    wr(0x370, 0xfe); // LVT error: vector 0xFE, unmasked
    apic.acceptExternal(0x05);
    expect(apic.isIrrSet(0x05)).toBe(false);
    expect(apic.isIrrSet(0xfe)).toBe(true);
    wr(0x310, 0);
    wr(0x300, 0x00040007); // self IPI, vector 7
    wr(0x280, 0);
    expect(rd(0x280)).toBe(0x60);
  });

  it("delivers fixed self-IPIs through ICR (shorthand and physical destination)", () => {
    const { apic, rd, wr, ipis } = enabled({ apicId: 1 });
    wr(0x300, 0x00040031); // shorthand self
    expect(apic.isIrrSet(0x31)).toBe(true);
    wr(0x310, 0x01000000);
    wr(0x300, 0x00000032); // physical destination 1 = us
    expect(apic.isIrrSet(0x32)).toBe(true);
    wr(0x310, 0x02000000);
    wr(0x300, 0x00000033); // another CPU
    expect(apic.isIrrSet(0x33)).toBe(false);
    wr(0x300, 0x000c0034); // all excluding self
    expect(apic.isIrrSet(0x34)).toBe(false);
    wr(0x300, 0x00004500); // INIT to APIC 2: reported, not delivered
    expect(ipis.map((i) => [i.vector, i.deliveryMode, i.toSelf])).toEqual([
      [0x31, 0, true],
      [0x32, 0, true],
      [0x33, 0, false],
      [0x34, 0, false],
      [0x00, 5, false],
    ]);
    expect(rd(0x300)).toBe(0x00004500); // delivery status reads idle
  });
});

describe("LocalApic timer", () => {
  it("fires one-shot after exactly count x divide x cyclesPerTick cycles", () => {
    const { clock, apic, rd, wr } = enabled();
    wr(0x3e0, 0x0b); // divide by 1
    wr(0x320, 0x20);
    clock.t = 100;
    wr(0x380, 1000);
    expect(apic.nextEventCycle()).toBe(1100);
    clock.t = 600;
    expect(rd(0x390)).toBe(500);
    apic.advance(1099);
    expect(apic.isIrrSet(0x20)).toBe(false);
    apic.advance(1100);
    expect(apic.isIrrSet(0x20)).toBe(true);
    clock.t = 1100;
    expect(rd(0x390)).toBe(0);
    expect(apic.nextEventCycle()).toBe(Number.POSITIVE_INFINITY);
    expect(apic.timerFires).toBe(1);
  });

  it("applies the divide configuration and the cycles-per-tick option", () => {
    const { clock, apic, rd, wr } = enabled({ cyclesPerTick: 2 });
    wr(0x3e0, 0x03); // divide by 16
    expect(apic.tickCycles()).toBe(32);
    wr(0x320, 0x20);
    wr(0x380, 10);
    expect(apic.nextEventCycle()).toBe(320);
    clock.t = 64;
    expect(rd(0x390)).toBe(8);
    wr(0x3e0, 0x08); // divide by 32, count continues from 8
    expect(apic.nextEventCycle()).toBe(64 + 8 * 64);
    clock.t = 64 + 64;
    expect(rd(0x390)).toBe(7);
    wr(0x3e0, 0x0a); // divide by 128
    expect(apic.tickCycles()).toBe(256);
  });

  it("reloads in periodic mode and coalesces missed periods", () => {
    const { clock, apic, rd, wr } = enabled();
    wr(0x3e0, 0x0b);
    wr(0x320, 0x20020); // periodic, vector 0x20
    wr(0x380, 100);
    expect(apic.nextEventCycle()).toBe(100);
    apic.advance(100);
    expect(apic.acknowledge()).toBe(0x20);
    wr(0xb0, 0);
    expect(apic.nextEventCycle()).toBe(200);
    apic.advance(450);
    expect(apic.timerFires).toBe(2);
    expect(apic.nextEventCycle()).toBe(500);
    clock.t = 530;
    expect(rd(0x390)).toBe(70);
    clock.t = 600;
    expect(rd(0x390)).toBe(100);
    wr(0x380, 0); // stop
    expect(apic.nextEventCycle()).toBe(Number.POSITIVE_INFINITY);
  });

  it("expires a masked timer without raising an interrupt", () => {
    const { apic, wr } = enabled();
    wr(0x3e0, 0x0b);
    wr(0x320, 0x10020);
    wr(0x380, 5);
    apic.advance(5);
    expect(apic.timerFires).toBe(1);
    expect(apic.isIrrSet(0x20)).toBe(false);
  });

  it("fires TSC-deadline timers at the deadline and clears the MSR", () => {
    const { clock, apic, rd, wr } = enabled();
    expect(apic.writeMsr(0x6e0, 5000, 0)).toBe(true); // one-shot mode: ignored
    expect(apic.readMsr(0x6e0)).toEqual([0, 0]);
    wr(0x380, 77);
    wr(0x320, 0x40030); // TSC-deadline mode: disarms the count
    expect(rd(0x380)).toBe(0);
    apic.writeMsr(0x6e0, 5000, 0);
    expect(apic.readMsr(0x6e0)).toEqual([5000, 0]);
    expect(apic.nextEventCycle()).toBe(5000);
    apic.advance(4999);
    expect(apic.isIrrSet(0x30)).toBe(false);
    apic.advance(5000);
    expect(apic.isIrrSet(0x30)).toBe(true);
    expect(apic.readMsr(0x6e0)).toEqual([0, 0]);
    expect(apic.nextEventCycle()).toBe(Number.POSITIVE_INFINITY);
    // A deadline in the past fires as soon as the APIC is looked at.
    apic.acknowledge();
    apic.eoi();
    clock.t = 10000;
    apic.writeMsr(0x6e0, 9000, 0);
    expect(apic.hasPending()).toBe(true);
    expect(apic.acknowledge()).toBe(0x30);
    // 64-bit deadlines.
    apic.writeMsr(0x6e0, 1, 2);
    expect(apic.nextEventCycle()).toBe(2 * 2 ** 32 + 1);
  });
});

describe("LocalApic x2APIC and IA32_APIC_BASE", () => {
  it("refuses x2APIC MSRs until x2APIC mode is enabled", () => {
    const { apic } = setup();
    expect(apic.readMsr(0x802)).toBeNull();
    expect(apic.writeMsr(0x808, 0, 0)).toBe(false);
    expect(apic.writeMsr(0x1b, 0xfee00d00, 0)).toBe(true);
    expect(apic.x2apicMode).toBe(true);
    expect(apic.readMsr(0x1b)).toEqual([0xfee00d00, 0]);
  });

  it("exposes x2APIC registers with their MSR semantics", () => {
    const { apic, mem } = setup({ apicId: 0x23 });
    apic.writeMsr(0x1b, 0xfee00d00, 0);
    expect(apic.readMsr(0x802)).toEqual([0x23, 0]);
    expect(apic.readMsr(0x803)).toEqual([0x00050014, 0]);
    expect(apic.readMsr(0x80d)).toEqual([0x00020008, 0]); // cluster 2, bit 3
    expect(apic.writeMsr(0x802, 0, 0)).toBe(false); // ID read-only
    expect(apic.writeMsr(0x80d, 0, 0)).toBe(false); // LDR read-only
    expect(apic.readMsr(0x80e)).toBeNull(); // no DFR
    expect(apic.readMsr(0x80b)).toBeNull(); // EOI write-only
    expect(apic.readMsr(0x831)).toBeNull(); // no ICR high half
    expect(apic.readMsr(0x82f)).toBeNull(); // no CMCI LVT
    expect(apic.writeMsr(0x80f, 0x1ff, 0)).toBe(true);
    expect(apic.readMsr(0x80f)).toEqual([0x1ff, 0]);
    expect(apic.writeMsr(0x808, 0x20, 1)).toBe(false); // high half reserved
    expect(apic.writeMsr(0x808, 0x20, 0)).toBe(true);
    expect(apic.readMsr(0x808)).toEqual([0x20, 0]);
    expect(apic.writeMsr(0x83f, 0x140, 0)).toBe(false); // SELF_IPI reserved bits
    expect(apic.writeMsr(0x83f, 0x40, 0)).toBe(true);
    expect(apic.isIrrSet(0x40)).toBe(true);
    expect(apic.readMsr(0x83f)).toBeNull();
    expect(apic.writeMsr(0x830, 0x00000050, 0x23)).toBe(true); // fixed, physical dest 0x23
    expect(apic.readMsr(0x830)).toEqual([0x50, 0x23]);
    expect(apic.readMsr(0x80a)).toEqual([0x20, 0]); // PPR = TPR
    expect(apic.acknowledge()).toBe(0x50);
    expect(apic.readMsr(0x80a)).toEqual([0x50, 0]);
    expect(apic.writeMsr(0x80b, 1, 0)).toBe(false); // EOI must be 0
    expect(apic.writeMsr(0x80b, 0, 0)).toBe(true);
    expect(apic.readMsr(0x80a)).toEqual([0x20, 0]);
    expect(apic.writeMsr(0x828, 5, 0)).toBe(false); // ESR write must be 0
    expect(apic.writeMsr(0x828, 0, 0)).toBe(true);
    expect(apic.readMsr(0x839)).toEqual([0, 0]); // current count
    expect(apic.writeMsr(0x839, 1, 0)).toBe(false); // read-only
    expect(mem.read(0xfee00030, 4)).toBe(0xffffffff); // MMIO page off in x2APIC mode
  });

  it("enforces the IA32_APIC_BASE state machine", () => {
    const { apic } = setup();
    expect(apic.writeMsr(0x1b, 0xfee00500, 0)).toBe(false); // EXTD without EN
    expect(apic.writeMsr(0x1b, 0xfee00980, 0)).toBe(false); // reserved bit 7
    expect(apic.writeMsr(0x1b, 0xfee00900, 0x100)).toBe(false); // above MAXPHYADDR 40
    expect(apic.writeMsr(0x1b, 0xfee00d00, 0)).toBe(true); // xAPIC -> x2APIC
    expect(apic.writeMsr(0x1b, 0xfee00900, 0)).toBe(false); // x2APIC -> xAPIC illegal
    expect(apic.writeMsr(0x1b, 0xfee00100, 0)).toBe(true); // -> disabled
    expect(apic.hardwareEnabled).toBe(false);
    expect(apic.writeMsr(0x1b, 0xfee00d00, 0)).toBe(false); // disabled -> x2APIC illegal
    expect(apic.writeMsr(0x1b, 0xfed00900, 0)).toBe(true); // relocated, xAPIC
    expect(apic.baseAddress).toBe(0xfed00000);
    expect(apic.readMsr(0x1b)).toEqual([0xfed00900, 0]);
  });

  it("resets its registers when hardware-disabled", () => {
    const { apic, rd, wr } = enabled();
    wr(0x80, 0x30);
    apic.writeMsr(0x1b, 0xfee00100, 0);
    expect(apic.acceptsPicInterrupts()).toBe(true);
    apic.writeMsr(0x1b, 0xfee00900, 0);
    expect(rd(0x80)).toBe(0);
    expect(rd(0xf0)).toBe(0xff);
  });
});
