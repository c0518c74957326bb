import { describe, expect, it } from "vitest";
import { Uart16550 } from "../../src/devices/uart16550.js";
import { IoPortBus } from "../../src/machine/io-port-bus.js";

function setup() {
  const out: number[] = [];
  const irqs: boolean[] = [];
  const uart = new Uart16550({ onTransmit: (b) => out.push(b), setIrq: (l) => irqs.push(l) });
  const bus = new IoPortBus();
  uart.attach(bus);
  return {
    uart,
    bus,
    out,
    irqs,
    inb: (p: number) => bus.portIn(p, 1),
    outb: (p: number, v: number) => bus.portOut(p, 1, v),
  };
}

describe("Uart16550", () => {
  it("has QEMU's reset register values", () => {
    const { inb } = setup();
    expect(inb(0x3f9)).toBe(0x00); // IER
    expect(inb(0x3fa)).toBe(0x01); // IIR: no interrupt
    expect(inb(0x3fb)).toBe(0x00); // LCR
    expect(inb(0x3fc)).toBe(0x08); // MCR: OUT2
    expect(inb(0x3fd)).toBe(0x60); // LSR: THRE | TEMT
    expect(inb(0x3fe)).toBe(0xb0); // MSR: DCD | DSR | CTS
    expect(inb(0x3ff)).toBe(0x00); // SCR
  });

  it("switches offsets 0/1 to the divisor latch when LCR.DLAB is set", () => {
    const { uart, inb, outb, out } = setup();
    outb(0x3fb, 0x80);
    outb(0x3f8, 0x01);
    outb(0x3f9, 0x02);
    expect(inb(0x3f8)).toBe(0x01);
    expect(inb(0x3f9)).toBe(0x02);
    expect(uart.divisorLatch).toBe(0x0201);
    expect(out).toEqual([]); // DLL write did not transmit
    outb(0x3fb, 0x03); // 8N1, DLAB off
    expect(inb(0x3f9)).toBe(0x00); // IER again
    outb(0x3f8, 0x48);
    outb(0x3f8, 0x69);
    expect(out).toEqual([0x48, 0x69]);
    expect(inb(0x3fd)).toBe(0x60);
  });

  it("receives queued input with LSR.DR and raises the RDA interrupt", () => {
    const { uart, inb, outb, irqs } = setup();
    uart.enqueueInput("ab");
    expect(inb(0x3fd)).toBe(0x61);
    expect(uart.irq).toBe(false); // IER = 0
    outb(0x3f9, 0x01);
    expect(uart.irq).toBe(true);
    expect(inb(0x3fa)).toBe(0x04);
    expect(inb(0x3f8)).toBe(0x61);
    expect(inb(0x3fd)).toBe(0x61);
    expect(inb(0x3f8)).toBe(0x62);
    expect(inb(0x3fd)).toBe(0x60);
    expect(inb(0x3fa)).toBe(0x01);
    expect(uart.irq).toBe(false);
    expect(irqs).toEqual([true, false]);
    expect(inb(0x3f8)).toBe(0x00); // empty RBR
  });

  it("reports FIFO mode in IIR and the timeout interrupt below the trigger level", () => {
    const { uart, inb, outb } = setup();
    outb(0x3fa, 0xc7); // enable + clear both FIFOs, trigger 14
    outb(0x3f9, 0x01);
    uart.enqueueInput([1, 2]);
    expect(inb(0x3fa)).toBe(0xcc);
    outb(0x3fa, 0x07); // trigger level 1
    expect(uart.pendingInput).toBe(0); // RX FIFO was cleared
    uart.enqueueInput([3]);
    expect(inb(0x3fa)).toBe(0xc4);
    outb(0x3fa, 0x00);
    expect(inb(0x3fa)).toBe(0x04);
  });

  it("raises THRE on enabling ETBEI, clears it by reading IIR, re-raises after a write", () => {
    const { uart, inb, outb } = setup();
    outb(0x3f9, 0x02);
    expect(uart.irq).toBe(true);
    expect(inb(0x3fa)).toBe(0x02);
    expect(inb(0x3fa)).toBe(0x01);
    expect(uart.irq).toBe(false);
    outb(0x3f8, 0x41);
    expect(inb(0x3fa)).toBe(0x02);
  });

  it("prioritises receiver line status over received data; reading LSR clears it", () => {
    const { uart, inb, outb } = setup();
    outb(0x3f9, 0x05);
    uart.enqueueInput("x");
    uart.injectLineError(0x02);
    expect(inb(0x3fa)).toBe(0x06);
    expect(inb(0x3fd)).toBe(0x63); // DR | OE | THRE | TEMT
    expect(inb(0x3fd)).toBe(0x61);
    expect(inb(0x3fa)).toBe(0x04);
  });

  it("loops transmitted bytes back and mirrors MCR into MSR in loopback mode", () => {
    const { inb, outb, out } = setup();
    outb(0x3fc, 0x13); // LOOP | RTS | DTR
    expect(inb(0x3fe)).toBe(0x30); // CTS | DSR
    outb(0x3fc, 0x1c); // LOOP | OUT2 | OUT1
    expect(inb(0x3fe)).toBe(0xc0); // DCD | RI
    outb(0x3f8, 0x5a);
    expect(out).toEqual([]);
    expect(inb(0x3fd) & 1).toBe(1);
    expect(inb(0x3f8)).toBe(0x5a);
  });

  it("keeps SCR, masks IER to 4 bits, ignores bad offsets", () => {
    const { uart, inb, outb } = setup();
    outb(0x3ff, 0xa5);
    expect(inb(0x3ff)).toBe(0xa5);
    outb(0x3f9, 0xff);
    expect(inb(0x3f9)).toBe(0x0f);
    expect(uart.read(9)).toBe(0xff);
    uart.write(-3, 1);
    expect(uart.read(7)).toBe(0xa5);
  });
});
