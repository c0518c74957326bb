import { describe, expect, it } from "vitest";
import { DebugExit } from "../../src/devices/debug-exit.js";
import { IoPortBus } from "../../src/machine/io-port-bus.js";

describe("DebugExit", () => {
  it("computes QEMU's (value << 1) | 1 exit status", () => {
    expect(DebugExit.statusFor(0)).toBe(1);
    expect(DebugExit.statusFor(0x10)).toBe(0x21);
    expect(DebugExit.statusFor(0x7f)).toBe(0xff);
    expect(DebugExit.statusFor(0xffffffff)).toBe(0x1ffffffff);
  });

  it("calls onExit with status and value for writes through the bus", () => {
    const calls: [number, number][] = [];
    const dev = new DebugExit({ onExit: (s, v) => calls.push([s, v]) });
    const bus = new IoPortBus();
    dev.attach(bus);
    expect(dev.exited).toBe(false);
    bus.portOut(0xf4, 4, 0x31);
    expect(calls).toEqual([[0x63, 0x31]]);
    expect(dev.exited).toBe(true);
    expect(dev.exitCode).toBe(0x63);
    bus.portOut(0xf4, 1, 0x1ff); // byte access: only the low 8 bits are written
    expect(calls[1]).toEqual([0x1ff, 0xff]);
    expect(dev.exitCode).toBe(0xff);
    bus.portOut(0xf4, 2, 0x12345);
    expect(calls[2]).toEqual([0x468b, 0x2345]);
    expect(bus.portIn(0xf4, 1)).toBe(0xff);
  });
});
