/**
 * QEMU's `isa-debug-exit` device (hw/misc/debugexit.c, read for reference): a write-only port whose
 * every write ends the emulator with exit status `(value << 1) | 1`, so a guest can never produce
 * status 0. QEMU's default is iobase 0x501/iosize 2; nestlab uses the common
 * `-device isa-debug-exit,iobase=0xf4,iosize=0x04` placement. The whole written value (of the access
 * width) is used, as in QEMU. Reads return all-ones (the device has no read side).
 *
 * `status` can exceed 32 bits (value up to 2^32-1 gives up to 2^33-1); it is computed exactly. What a
 * host process would see as its exit code is `status & 0xff`.
 */
import { allOnes, type PortRegistrar } from "./port-io.js";

export const DEBUG_EXIT_PORT = 0xf4;
export const DEBUG_EXIT_IOSIZE = 4;

export interface DebugExitOptions {
  base?: number;
  size?: number;
  /** Called on every write: `status` = (value << 1) | 1, `value` as written (unsigned). */
  onExit?: (status: number, value: number) => void;
}

export class DebugExit {
  readonly base: number;
  readonly size: number;
  private readonly onExit: (status: number, value: number) => void;
  /** Set by the first write; later writes update it too (the machine normally stops at the first). */
  exited = false;
  status = 0;
  value = 0;

  constructor(opts: DebugExitOptions = {}) {
    this.base = opts.base ?? DEBUG_EXIT_PORT;
    this.size = opts.size ?? DEBUG_EXIT_IOSIZE;
    this.onExit = opts.onExit ?? (() => {});
  }

  /** Claim the device's ports on `bus`. */
  attach(bus: PortRegistrar): void {
    bus.register(this.base, this.size, this, "isa-debug-exit");
  }

  /** The status QEMU exits with for a written value. */
  static statusFor(value: number): number {
    return (value >>> 0) * 2 + 1;
  }

  /** The exit code a host process would see (status truncated to 8 bits). */
  get exitCode(): number {
    return this.status % 256;
  }

  portIn(_port: number, size: 1 | 2 | 4): number {
    return allOnes(size);
  }

  portOut(_port: number, size: 1 | 2 | 4, value: number): void {
    const v = size === 4 ? value >>> 0 : size === 2 ? value & 0xffff : value & 0xff;
    this.exited = true;
    this.value = v;
    this.status = DebugExit.statusFor(v);
    this.onExit(this.status, v);
  }
}
