/**
 * The shape of a port-I/O device as the I/O bus sees it, and the registration surface devices use
 * to attach themselves. Kept here (not in src/machine) so devices depend on nothing above them;
 * `IoPortBus` (src/machine/io-port-bus.ts) implements `PortRegistrar`.
 */

/** A device that claims a range of I/O ports. `port` is the absolute port number. */
export interface PortIoHandler {
  /** Return the value read (zero-extended, unsigned). Only the low `size` bytes are used. */
  portIn(port: number, size: 1 | 2 | 4): number;
  portOut(port: number, size: 1 | 2 | 4, value: number): void;
}

/** Something that can map a port range onto a handler (the machine's I/O bus). */
export interface PortRegistrar {
  register(base: number, count: number, handler: PortIoHandler, name?: string): void;
}

/** All-ones for an access of `size` bytes: what an unclaimed or rejected read returns. */
export function allOnes(size: 1 | 2 | 4 | 8): number {
  return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
}

/**
 * Split a multi-byte port access into byte accesses on consecutive ports, as QEMU's memory core does
 * for a device whose registers are one byte wide (access size 1 only). Little-endian.
 */
export function splitIn(port: number, size: 1 | 2 | 4, read8: (port: number) => number): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + (read8(port + i) & 0xff);
  return v >>> 0;
}

export function splitOut(
  port: number,
  size: 1 | 2 | 4,
  value: number,
  write8: (port: number, v: number) => void,
): void {
  for (let i = 0; i < size; i++) write8(port + i, (value >>> (8 * i)) & 0xff);
}
