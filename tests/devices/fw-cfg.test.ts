import { describe, expect, it } from "vitest";
import { FwCfg } from "../../src/devices/fw-cfg.js";
import { IoPortBus } from "../../src/machine/io-port-bus.js";

function setup() {
  const fw = new FwCfg({ ramSize: 128 * 1024 * 1024, cpus: 4 });
  const bus = new IoPortBus();
  fw.attach(bus);
  const read = (key: number, n: number) => {
    bus.portOut(0x510, 2, key);
    return Array.from({ length: n }, () => bus.portIn(0x511, 1));
  };
  return { fw, bus, read };
}

describe("FwCfg", () => {
  it("returns the QEMU signature and the ID with only the traditional-interface bit", () => {
    const { read } = setup();
    expect(read(0x0000, 4)).toEqual([0x51, 0x45, 0x4d, 0x55]);
    expect(read(0x0001, 4)).toEqual([0x01, 0, 0, 0]);
  });

  it("returns RAM size as u64 LE and CPU count as u16 LE, then zeros past the end", () => {
    const { read } = setup();
    expect(read(0x0003, 10)).toEqual([0, 0, 0, 0x08, 0, 0, 0, 0, 0, 0]);
    expect(read(0x0005, 3)).toEqual([4, 0, 0]);
    const big = new FwCfg({ ramSize: 6 * 2 ** 32 + 0x1234 });
    big.select(3);
    expect(Array.from({ length: 8 }, () => big.readData())).toEqual([0x34, 0x12, 0, 0, 6, 0, 0, 0]);
  });

  it("has an empty file directory (u32 BE count) and lists added files", () => {
    const { fw, read } = setup();
    expect(read(0x0019, 5)).toEqual([0, 0, 0, 0, 0]);
    const key = fw.addFile("etc/nestlab", new Uint8Array([1, 2, 3]));
    expect(key).toBe(0x20);
    const dir = read(0x0019, 4 + 64);
    expect(dir.slice(0, 4)).toEqual([0, 0, 0, 1]);
    expect(dir.slice(4, 8)).toEqual([0, 0, 0, 3]); // size BE
    expect(dir.slice(8, 10)).toEqual([0, 0x20]); // select BE
    expect(String.fromCharCode(...dir.slice(12, 23))).toBe("etc/nestlab");
    expect(dir[23]).toBe(0);
    expect(read(0x20, 4)).toEqual([1, 2, 3, 0]);
  });

  it("restarts at offset 0 on every select and reads zeros for unknown keys", () => {
    const { fw, read, bus } = setup();
    expect(read(0x0000, 2)).toEqual([0x51, 0x45]);
    expect(read(0x0000, 1)).toEqual([0x51]);
    expect(fw.readOffset).toBe(1);
    expect(read(0x1234, 2)).toEqual([0, 0]);
    expect(read(0x8003, 1)).toEqual([0]); // arch-local space is separate
    expect(read(0x4000, 1)).toEqual([0x51]); // write-channel bit ignored on select
    expect(bus.portIn(0x511, 2)).toBe(0xffff); // wider data reads are rejected
    bus.portOut(0x511, 1, 0x99); // data write ignored
    bus.portOut(0x510, 2, 0x0005);
    expect(bus.portIn(0x510, 1)).toBe(4); // 8-bit read at 0x510 also reads data
  });
});
