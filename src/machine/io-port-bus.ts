import type { IoBus } from "../cpu/ports.js";
import { allOnes, type PortIoHandler, type PortRegistrar } from "../devices/port-io.js";

/** One registered port range with its access counters. */
export interface PortRange {
  readonly name: string;
  readonly base: number;
  readonly count: number;
  readonly handler: PortIoHandler;
  /** Number of IN accesses (any size) that started in this range. */
  reads: number;
  /** Number of OUT accesses (any size) that started in this range. */
  writes: number;
}

const PORT_SPACE = 0x10000;

/**
 * The x86 port I/O space (64 Ki ports). Dispatch is one typed-array lookup: `owner[port]` holds the
 * index (+1) of the range that claims the port, 0 for unclaimed. An access is routed to the range that
 * claims its first port (the handler sees the absolute port number and the access size), as the ISA
 * bus decodes the starting address. Unclaimed reads return all-ones, unclaimed writes are dropped,
 * and both are counted.
 */
export class IoPortBus implements IoBus, PortRegistrar {
  private readonly owner = new Uint16Array(PORT_SPACE);
  private readonly ranges: PortRange[] = [];
  /** Accesses to ports nobody claims. */
  unclaimedReads = 0;
  unclaimedWrites = 0;

  /**
   * Claim ports [base, base + count). Throws on a bad range or an overlap: that is a wiring bug in the
   * machine, never something a guest can cause.
   */
  register(base: number, count: number, handler: PortIoHandler, name = `ports@0x${base.toString(16)}`): void {
    if (!Number.isInteger(base) || !Number.isInteger(count) || base < 0 || count <= 0 || base + count > PORT_SPACE) {
      throw new RangeError(`bad port range 0x${base.toString(16)}+${count}`);
    }
    if (this.ranges.length >= 0xffff) throw new RangeError("too many port ranges");
    for (let p = base; p < base + count; p++) {
      if (this.owner[p] !== 0) {
        const other = this.ranges[this.owner[p] - 1];
        throw new RangeError(`port 0x${p.toString(16)} already claimed by ${other.name}`);
      }
    }
    this.ranges.push({ name, base, count, handler, reads: 0, writes: 0 });
    const id = this.ranges.length;
    this.owner.fill(id, base, base + count);
  }

  /** The range claiming `port`, if any. */
  rangeAt(port: number): PortRange | undefined {
    const id = this.owner[port & 0xffff];
    return id === 0 ? undefined : this.ranges[id - 1];
  }

  portIn(port: number, size: 1 | 2 | 4): number {
    const p = port & 0xffff;
    const id = this.owner[p];
    if (id === 0) {
      this.unclaimedReads++;
      return allOnes(size);
    }
    const r = this.ranges[id - 1];
    r.reads++;
    const v = r.handler.portIn(p, size);
    return size === 4 ? v >>> 0 : size === 2 ? v & 0xffff : v & 0xff;
  }

  portOut(port: number, size: 1 | 2 | 4, value: number): void {
    const p = port & 0xffff;
    const id = this.owner[p];
    if (id === 0) {
      this.unclaimedWrites++;
      return;
    }
    const r = this.ranges[id - 1];
    r.writes++;
    r.handler.portOut(p, size, size === 4 ? value >>> 0 : size === 2 ? value & 0xffff : value & 0xff);
  }

  /** Snapshot of every range's counters (for stats/reports). */
  stats(): { name: string; base: number; count: number; reads: number; writes: number }[] {
    return this.ranges.map((r) => ({ name: r.name, base: r.base, count: r.count, reads: r.reads, writes: r.writes }));
  }
}
