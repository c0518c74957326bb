import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryBlockBackend } from "../../src/devices/block-backend.js";
import { FileBlockBackend } from "../../src/devices/block-file.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe("block backends", () => {
  it("MemoryBlockBackend reads, writes and rejects out-of-range access", () => {
    const b = new MemoryBlockBackend(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    const out = new Uint8Array(3);
    b.read(2, out);
    expect(Array.from(out)).toEqual([3, 4, 5]);
    b.write(6, new Uint8Array([9, 9]));
    expect(Array.from(b.data)).toEqual([1, 2, 3, 4, 5, 6, 9, 9]);
    expect(() => b.read(7, new Uint8Array(2))).toThrow(RangeError);
    expect(() => b.write(-1, new Uint8Array(1))).toThrow(RangeError);
    expect(() => new MemoryBlockBackend(4, { readOnly: true }).write(0, new Uint8Array(1))).toThrow();
  });

  it("FileBlockBackend does positioned I/O on a file and zero-fills past its end", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nestlab-blk-"));
    dirs.push(dir);
    const file = path.join(dir, "disk.img");
    fs.writeFileSync(file, Buffer.from([10, 11, 12, 13]));
    const b = FileBlockBackend.open(file, { size: 1024 });
    expect(b.size).toBe(1024);
    const out = new Uint8Array(6);
    b.read(2, out);
    expect(Array.from(out)).toEqual([12, 13, 0, 0, 0, 0]);
    b.write(512, new Uint8Array([0xaa, 0xbb]));
    b.flush();
    b.close();
    const bytes = fs.readFileSync(file);
    expect(bytes.length).toBe(514);
    expect([bytes[0], bytes[512], bytes[513]]).toEqual([10, 0xaa, 0xbb]);
    const ro = FileBlockBackend.open(file, { readOnly: true });
    expect(ro.size).toBe(514);
    expect(ro.readOnly).toBe(true);
    expect(() => ro.write(0, new Uint8Array(1))).toThrow();
    expect(() => ro.read(514, new Uint8Array(1))).toThrow(RangeError);
    ro.close();
  });
});
