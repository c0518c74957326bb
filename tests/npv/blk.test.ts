/**
 * The mediated virtio-blk data path: L2's QueueNotify write is handled by L0, which walks the
 * split ring through the L2 map, performs the request on the backend and writes the used ring —
 * L1 sees nothing per request. Bad buffers fail the request (IOERR); a malformed ring stops the
 * device and RUN returns BLK_ERROR.
 */
import { describe, expect, it } from "vitest";
import * as ABI from "../../src/hypervisors/npv-abi.js";
import { HAVE_AS } from "../helpers/asm.js";
import { BLK_DESC_PAGE, NpvBed } from "../helpers/npv.js";

const WINDOW = 0x10000000;
const DESC = 0x30000;
const AVAIL = 0x31000;
const USED = 0x32000;
const HDR = 0x33000;
const DATA = 0x34000;
const STATUS = 0x35000;

function setup(opts: { dataAt?: number; head?: number; vector?: number } = {}) {
  const b = new NpvBed();
  const { vm, vcpu } = b.tinyL2(`
    mov rsi, ${WINDOW}
    mov dword ptr [rsi + 0x50], 0
    out 0x70, al
    hlt
  `);
  const { id, disk } = b.assignDisk();
  for (let i = 0; i < 512; i++) disk.data[512 + i] = (i * 7) & 0xff;
  const L = (l2: number) => b.backing(l2);
  const desc = (k: number, addr: number, len: number, flags: number, next: number) => {
    b.w64(L(DESC + 16 * k), addr);
    b.w32(L(DESC + 16 * k + 8), len);
    b.w16(L(DESC + 16 * k + 12), flags);
    b.w16(L(DESC + 16 * k + 14), next);
  };
  desc(0, HDR, 16, 1, 1);
  desc(1, opts.dataAt ?? DATA, 512, 3, 2);
  desc(2, STATUS, 1, 2, 0);
  b.w32(L(HDR), 0); // VIRTIO_BLK_T_IN
  b.w64(L(HDR + 8), 1); // sector 1
  b.w16(L(AVAIL), 0);
  b.w16(L(AVAIL + 2), 1);
  b.w16(L(AVAIL + 4), opts.head ?? 0);
  b.w8(L(STATUS), 0xff);
  expect(b.hc(ABI.NPV_HC_MMIO_REGION, vm, WINDOW, 1, 0).status).toBe(0);
  const d = BLK_DESC_PAGE;
  b.w64(d + ABI.NPV_BLK_MMIO_GPA, WINDOW);
  b.w32(d + ABI.NPV_BLK_QUEUE_SIZE, 8);
  b.w32(d + ABI.NPV_BLK_BACKEND, id);
  b.w64(d + ABI.NPV_BLK_DESC_GPA, DESC);
  b.w64(d + ABI.NPV_BLK_AVAIL_GPA, AVAIL);
  b.w64(d + ABI.NPV_BLK_USED_GPA, USED);
  b.w32(d + ABI.NPV_BLK_IRQ_VECTOR, opts.vector ?? 0);
  b.w64(d + ABI.NPV_BLK_FEATURES, 2 ** 32);
  expect(b.hc(ABI.NPV_HC_BLK_SETUP, vm, d).status).toBe(0);
  return { b, vm, vcpu, L, disk };
}

describe.skipIf(!HAVE_AS)("npv mediated virtio-blk", () => {
  it("completes a read request without L1: data, status, used ring", () => {
    const { b, vcpu, L } = setup();
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_IO);
    expect(b.data32(0) & 0xffff).toBe(0x70);
    expect(b.r16(L(USED + 2))).toBe(1);
    expect(b.r32(L(USED + 4))).toBe(0);
    expect(b.r32(L(USED + 8))).toBe(513);
    expect(b.r8(L(STATUS))).toBe(0);
    for (let i = 0; i < 512; i += 97) expect(b.r8(L(DATA + i))).toBe((i * 7) & 0xff);
    const st = b.engine.stats();
    expect(st["npv.blk.requests"]).toBe(1);
    expect(st["npv.l2_exits.l0.blk_notify"]).toBe(1);
    expect(st["npv.l2_exits.l1.mmio"]).toBeUndefined();
    expect(st["npv.l2_exits.l1.io"]).toBe(1);
  });

  it("a buffer in an unmapped L2 page fails that request with IOERR", () => {
    const { b, vcpu, L } = setup({ dataAt: 0x90000 });
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_IO);
    expect(b.r16(L(USED + 2))).toBe(1);
    expect(b.r32(L(USED + 8))).toBe(1);
    expect(b.r8(L(STATUS))).toBe(1); // VIRTIO_BLK_S_IOERR
    expect(b.engine.stats()["npv.blk.io_errors"]).toBe(1);
  });

  it("a malformed ring stops the device and returns BLK_ERROR with the window", () => {
    const { b, vcpu } = setup({ head: 9 });
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_BLK_ERROR);
    expect(b.data64(0)).toBe(WINDOW);
    expect(b.engine.stats()["npv.blk.stopped"]).toBe(1);
  });

  it("BLK_TEARDOWN gives the device back: the notify write then goes to L1 as MMIO", () => {
    const { b, vm, vcpu } = setup();
    const r = b.hc(ABI.NPV_HC_BLK_TEARDOWN, vm, WINDOW);
    expect(r.status).toBe(0);
    expect(r.rbx).toBe(0);
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_MMIO);
    expect(b.data64(0)).toBe(WINDOW + 0x50);
    expect(b.hc(ABI.NPV_HC_BLK_TEARDOWN, vm, WINDOW).status).toBe(ABI.NPV_E_NOENT);
  });

  it("the completion vector is queued for L2", () => {
    const { b, vcpu } = setup({ vector: 0x60 });
    expect(b.run(vcpu)).toBe(ABI.NPV_EXIT_IO);
    const v = b.engine.l1(b.vm)!.vcpus.get(vcpu)!;
    expect(v.injectQueue).toEqual([0x60]);
  });
});
