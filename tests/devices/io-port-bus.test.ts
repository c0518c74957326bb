import { describe, expect, it } from "vitest";
import { IoPortBus } from "../../src/machine/io-port-bus.js";

function recorder() {
  const log: string[] = [];
  return {
    log,
    portIn(port: number, size: number): number {
      log.push(`in ${port.toString(16)}/${size}`);
      return 0x12345678;
    },
    portOut(port: number, size: number, value: number): void {
      log.push(`out ${port.toString(16)}/${size}=${value.toString(16)}`);
    },
  };
}

describe("IoPortBus", () => {
  it("returns all-ones for unclaimed reads and counts them", () => {
    const bus = new IoPortBus();
    expect(bus.portIn(0x80, 1)).toBe(0xff);
    expect(bus.portIn(0x80, 2)).toBe(0xffff);
    expect(bus.portIn(0x80, 4)).toBe(0xffffffff);
    bus.portOut(0x80, 1, 0x55);
    expect(bus.unclaimedReads).toBe(3);
    expect(bus.unclaimedWrites).toBe(1);
  });

  it("dispatches to the claiming handler with the absolute port and truncates to the access size", () => {
    const bus = new IoPortBus();
    const dev = recorder();
    bus.register(0x3f8, 8, dev, "com1");
    expect(bus.portIn(0x3fd, 1)).toBe(0x78);
    expect(bus.portIn(0x3fd, 2)).toBe(0x5678);
    expect(bus.portIn(0x3f8, 4)).toBe(0x12345678);
    bus.portOut(0x3f8, 1, 0x1ff);
    expect(dev.log).toEqual(["in 3fd/1", "in 3fd/2", "in 3f8/4", "out 3f8/1=ff"]);
    expect(bus.portIn(0x400, 1)).toBe(0xff); // just past the range
    expect(bus.stats()).toEqual([{ name: "com1", base: 0x3f8, count: 8, reads: 3, writes: 1 }]);
  });

  it("wraps ports to 16 bits and rejects overlapping or bad ranges", () => {
    const bus = new IoPortBus();
    const dev = recorder();
    bus.register(0x20, 2, dev);
    expect(bus.portIn(0x10020, 1)).toBe(0x78);
    expect(() => bus.register(0x21, 1, recorder())).toThrow(RangeError);
    expect(() => bus.register(0xffff, 2, recorder())).toThrow(RangeError);
    expect(bus.rangeAt(0x21)?.base).toBe(0x20);
    expect(bus.rangeAt(0x22)).toBeUndefined();
  });
});
