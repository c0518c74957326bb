import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Cpu, STOP_HALT } from "../../src/cpu/cpu.js";
import type { IoBus } from "../../src/cpu/ports.js";
import { PhysicalMemory } from "../../src/mmu/phys.js";

/**
 * Boot smoke test: guests/smoke/smoke.bin (built from smoke.S, committed) starts in 32-bit
 * protected mode at 0x100000, enters long mode, installs an IDT, takes two #PF, a #UD and a
 * #BP, and reports every step through port I/O. No toolchain needed.
 */
const BIN = join(dirname(fileURLToPath(import.meta.url)), "../../guests/smoke/smoke.bin");
const LOAD = 0x100000;
// Addresses of labels in smoke.S (`nm guests/smoke/smoke.elf`): update when smoke.S changes.
const UD_SITE = 0x10015c;
const AFTER_INT3 = 0x100163;

class Recorder implements IoBus {
  readonly log: string[] = [];
  status = -1;
  portIn(_port: number, size: 1 | 2 | 4): number {
    return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
  }
  portOut(port: number, size: 1 | 2 | 4, value: number): void {
    if (port === 0xe9 && size === 1) this.log.push(String.fromCharCode(value));
    else if (port === 0xe8 && size === 4) this.log.push(`0x${(value >>> 0).toString(16)}`);
    else if (port === 0xf4) {
      this.status = value;
      this.log.push(`status ${value}`);
    } else this.log.push(`port 0x${port.toString(16)}/${size} = 0x${(value >>> 0).toString(16)}`);
  }
}

describe("boot smoke image", () => {
  it("boots from 32-bit protected mode to long mode and reports #PF, #UD, #BP exactly", () => {
    const image = new Uint8Array(readFileSync(BIN));
    const mem = new PhysicalMemory(4 * 1024 * 1024);
    mem.writeBytes(LOAD, image);
    const cpu = new Cpu(mem);
    // Reset state: 32-bit protected mode, CPL 0, flat segments, paging off.
    expect(cpu.mode64).toBe(false);
    expect(cpu.cpl).toBe(0);
    cpu.ripLo = LOAD;
    const io = new Recorder();
    cpu.io = io;
    const stop = cpu.run(200_000);
    expect(cpu.stopReason).toBeNull();
    expect(stop).toBe(STOP_HALT);
    expect(io.log).toEqual([
      "P", // 32-bit entry
      "0x100", // EFER after WRMSR: LME
      "C", // CR0.PG set: compatibility mode
      "0x500", // EFER: LME | LMA
      "L", // 64-bit mode after the far jump
      // Read of the unmapped page: #PF, error 0 (not present, supervisor read), CR2.
      "F",
      "0xe",
      "0x0",
      "0x1f0000",
      "r",
      "0x0",
      // Write to the read-only page: #PF, error 3 (present, write), CR2.
      "F",
      "0xe",
      "0x3",
      "0x1f1008",
      "w",
      "0x12345678",
      // UD2: #UD with the faulting RIP; the handler skips it.
      "U",
      "0x6",
      `0x${UD_SITE.toString(16)}`,
      "u",
      // INT3: #BP with the next RIP.
      "B",
      "0x3",
      `0x${AFTER_INT3.toString(16)}`,
      "b",
      "status 0",
      "H",
    ]);
    expect(io.status).toBe(0);
    expect(cpu.mode64).toBe(true);
    expect(cpu.cr2Lo).toBe(0x1f1008);
  });
});
