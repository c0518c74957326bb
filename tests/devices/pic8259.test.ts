import { describe, expect, it } from "vitest";
import { Pic8259 } from "../../src/devices/pic8259.js";
import { IoPortBus } from "../../src/machine/io-port-bus.js";

/** The Linux/SeaBIOS init sequence: master at 0x20, slave at 0x28, cascade on IRQ2, 8086 mode. */
function setup(icw4 = 0x01) {
  const pic = new Pic8259();
  const bus = new IoPortBus();
  pic.attach(bus);
  const outb = (p: number, v: number) => bus.portOut(p, 1, v);
  const inb = (p: number) => bus.portIn(p, 1);
  outb(0x20, 0x11);
  outb(0x21, 0x20);
  outb(0x21, 0x04);
  outb(0x21, icw4);
  outb(0xa0, 0x11);
  outb(0xa1, 0x28);
  outb(0xa1, 0x02);
  outb(0xa1, icw4);
  return { pic, outb, inb };
}

describe("Pic8259", () => {
  it("initialises with ICW1-ICW4: vector bases, masks cleared", () => {
    const { pic, inb } = setup();
    expect(pic.masterBase).toBe(0x20);
    expect(pic.slaveBase).toBe(0x28);
    expect(inb(0x21)).toBe(0x00);
    expect(inb(0xa1)).toBe(0x00);
    expect(pic.hasPending()).toBe(false);
  });

  it("delivers an edge-triggered IRQ once, sets ISR, and needs a new edge", () => {
    const { pic, outb, inb } = setup();
    pic.setIrq(1, true);
    expect(pic.irr).toBe(0x0002);
    expect(pic.hasPending()).toBe(true);
    expect(pic.acknowledge()).toBe(0x21);
    expect(pic.isr).toBe(0x0002);
    expect(pic.irr).toBe(0);
    outb(0x20, 0x20); // non-specific EOI
    expect(pic.isr).toBe(0);
    pic.setIrq(1, true); // still high: no new edge
    expect(pic.hasPending()).toBe(false);
    pic.setIrq(1, false);
    pic.setIrq(1, true);
    expect(pic.hasPending()).toBe(true);
    outb(0x20, 0x0a); // OCW3: read IRR
    expect(inb(0x20)).toBe(0x02);
  });

  it("resolves priority and nests only higher-priority requests", () => {
    const { pic, outb } = setup();
    pic.setIrq(3, true);
    pic.setIrq(1, true);
    expect(pic.acknowledge()).toBe(0x21);
    expect(pic.hasPending()).toBe(false); // IRQ3 is lower than IRQ1 in service
    pic.setIrq(0, true);
    expect(pic.acknowledge()).toBe(0x20); // IRQ0 nests above IRQ1
    expect(pic.isr).toBe(0x0003);
    outb(0x20, 0x20); // EOI clears the highest in service (IRQ0)
    expect(pic.isr).toBe(0x0002);
    expect(pic.hasPending()).toBe(false);
    outb(0x20, 0x61); // specific EOI for IRQ1
    expect(pic.isr).toBe(0);
    expect(pic.acknowledge()).toBe(0x23);
  });

  it("masks with OCW1 and reads ISR with OCW3", () => {
    const { pic, outb, inb } = setup();
    outb(0x21, 0x02);
    pic.setIrq(1, true);
    expect(pic.hasPending()).toBe(false);
    outb(0x20, 0x0a);
    expect(inb(0x20)).toBe(0x02); // IRR still latched
    outb(0x21, 0x00);
    expect(pic.acknowledge()).toBe(0x21);
    outb(0x20, 0x0b); // OCW3: read ISR
    expect(inb(0x20)).toBe(0x02);
    expect(inb(0x21)).toBe(0x00);
  });

  it("cascades slave IRQs through master IRQ2", () => {
    const { pic, outb } = setup();
    pic.setIrq(11, true);
    expect(pic.hasPending()).toBe(true);
    expect(pic.acknowledge()).toBe(0x2b);
    expect(pic.isr).toBe(0x0804); // slave bit 3 and master bit 2
    pic.setIrq(11, false);
    outb(0xa0, 0x20);
    outb(0x20, 0x20);
    expect(pic.isr).toBe(0);
    outb(0xa1, 0x08); // mask IRQ11 on the slave
    pic.setIrq(11, true);
    expect(pic.hasPending()).toBe(false);
  });

  it("answers spurious IRQ7 and IRQ15 vectors", () => {
    const { pic, outb } = setup();
    expect(pic.acknowledge()).toBe(0x27);
    expect(pic.isr).toBe(0);
    // Master latched IRQ2, then the slave's request went away (masked) before INTA.
    pic.setIrq(10, true);
    outb(0xa1, 0x04);
    expect(pic.acknowledge()).toBe(0x2f);
    expect(pic.isr).toBe(0x0004); // master IRQ2 in service, slave ISR untouched
    expect(pic.spurious).toBe(2);
  });

  it("keeps level-triggered (ELCR) requests asserted until the line drops", () => {
    const { pic, outb, inb } = setup();
    outb(0x4d1, 0xff);
    expect(inb(0x4d1)).toBe(0xde); // IRQ8 and IRQ13 cannot be level-triggered
    outb(0x4d0, 0xff);
    expect(inb(0x4d0)).toBe(0xf8);
    outb(0x4d1, 0x08); // IRQ11 level
    pic.setIrq(11, true);
    expect(pic.acknowledge()).toBe(0x2b);
    outb(0xa0, 0x20);
    outb(0x20, 0x20);
    expect(pic.hasPending()).toBe(true); // line still high
    pic.setIrq(11, false);
    expect(pic.irr & 0xff00).toBe(0); // the slave's request is gone...
    // ...but the master latched the cascade edge (IRQ2 is edge-only), so INTA finds nothing on the
    // slave: spurious IRQ15, as on real hardware and in QEMU.
    expect(pic.acknowledge()).toBe(0x2f);
    outb(0x20, 0x20);
    expect(pic.hasPending()).toBe(false);
  });

  it("supports set-priority rotation, auto-EOI and poll", () => {
    const { pic, outb, inb } = setup();
    outb(0x20, 0xc3); // IRQ3 lowest -> IRQ4 highest
    pic.setIrq(1, true);
    pic.setIrq(5, true);
    expect(pic.acknowledge()).toBe(0x25);
    const b = setup(0x03); // auto-EOI
    b.pic.setIrq(4, true);
    expect(b.pic.acknowledge()).toBe(0x24);
    expect(b.pic.isr).toBe(0);
    b.pic.setIrq(6, true);
    b.outb(0x20, 0x0c); // poll
    expect(b.inb(0x20)).toBe(0x86);
    expect(b.pic.hasPending()).toBe(false);
    expect(inb(0x20)).toBe(0x02); // first PIC: IRR shows IRQ1 still waiting
  });

  it("ignores out-of-range lines and unknown ports", () => {
    const { pic } = setup();
    pic.setIrq(16, true);
    pic.setIrq(-1, true);
    expect(pic.irr).toBe(0);
    expect(pic.read8(0x22)).toBe(0xff);
  });
});
