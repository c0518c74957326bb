import { describe, expect, it } from "vitest";
import { LocalApic } from "../../src/devices/lapic.js";
import { Pic8259 } from "../../src/devices/pic8259.js";
import { InterruptRouter } from "../../src/machine/interrupt-router.js";

function setup() {
  const clock = {
    t: 0,
    now() {
      return this.t;
    },
  };
  const apic = new LocalApic({ clock });
  const pic = new Pic8259();
  for (const [p, v] of [
    [0x20, 0x11],
    [0x21, 0x20],
    [0x21, 0x04],
    [0x21, 0x01],
    [0xa0, 0x11],
    [0xa1, 0x28],
    [0xa1, 0x02],
    [0xa1, 0x01],
  ]) {
    pic.write8(p, v);
  }
  return { clock, apic, pic, router: new InterruptRouter(apic, pic) };
}

describe("InterruptRouter", () => {
  it("passes the 8259 through LINT0 ExtINT at reset", () => {
    const { pic, router } = setup();
    expect(router.hasPendingInterrupt()).toBe(false);
    pic.setIrq(11, true);
    expect(router.hasPendingInterrupt()).toBe(true);
    expect(router.acknowledgeInterrupt()).toBe(0x2b);
    expect(router.picDeliveries).toBe(1);
  });

  it("blocks the 8259 when LINT0 is masked and takes APIC vectors instead", () => {
    const { apic, pic, router } = setup();
    apic.mmioWrite(0xf0, 4, 0x1ff, 0);
    apic.mmioWrite(0x350, 4, 0x10700, 0); // LINT0 masked
    pic.setIrq(1, true);
    expect(router.hasPendingInterrupt()).toBe(false);
    apic.acceptExternal(0x40);
    expect(router.hasPendingInterrupt()).toBe(true);
    expect(router.acknowledgeInterrupt()).toBe(0x40);
    expect(router.acknowledgeInterrupt()).toBe(0xff); // APIC spurious
    apic.writeMsr(0x1b, 0xfee00100, 0); // hardware-disable: PIC wired straight to INTR
    expect(router.hasPendingInterrupt()).toBe(true);
    expect(router.acknowledgeInterrupt()).toBe(0x21);
  });

  it("gives ExtINT precedence over APIC fixed interrupts and works with either part alone", () => {
    const { apic, pic, router } = setup();
    apic.mmioWrite(0xf0, 4, 0x1ff, 0);
    apic.acceptExternal(0x80);
    pic.setIrq(0, true);
    expect(router.acknowledgeInterrupt()).toBe(0x20);
    expect(router.acknowledgeInterrupt()).toBe(0x80);
    const picOnly = new InterruptRouter(null, pic);
    expect(picOnly.hasPendingInterrupt()).toBe(false);
    expect(picOnly.acknowledgeInterrupt()).toBe(0x27);
    expect(new InterruptRouter(null, null).hasPendingInterrupt()).toBe(false);
  });
});
