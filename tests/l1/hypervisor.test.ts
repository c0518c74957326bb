import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { L1Hypervisor, type L1Options, PASSTHROUGH_MSRS } from "../../src/hypervisors/l1/hypervisor.js";
import { L2_VIRTIO_GPA } from "../../src/hypervisors/l1/l2-devices.js";
import { NpvUnavailable } from "../../src/hypervisors/l1/npv-client.js";
import * as A from "../../src/hypervisors/npv-abi.js";
import { DEFAULT_TUNABLES } from "../../src/machine/tunables.js";
import { packageRoot } from "../../src/paths.js";
import { type ArrayMemory, FakeL0 } from "./fake-l0.js";

const FAULT_BATCH_PAGES = DEFAULT_TUNABLES.faultBatchPages;

const kernel = new Uint8Array(readFileSync(join(packageRoot(), "guests/images/kernel.elf")));
const MiB = 1024 * 1024;

function make(
  mode: "eager" | "demand",
  extra: Partial<L1Options> = {},
): { l0: FakeL0; l1: L1Hypervisor; serial: number[] } {
  const l0 = new FakeL0(48 * MiB);
  const serial: number[] = [];
  const l1 = new L1Hypervisor(l0, {
    image: kernel,
    cmdline: "workload=cpuid",
    l2Memory: 16 * MiB,
    mapMode: mode,
    pool: { base: 16 * MiB, size: 32 * MiB },
    scratch: { base: 1 * MiB, size: 1 * MiB },
    faultBatchPages: FAULT_BATCH_PAGES,
    disk: { backendId: 3, size: 8 * MiB, readOnly: false },
    onSerial: (b) => serial.push(b),
    maxInstructions: 1000,
    instructionsRetired: () => 0,
    ...extra,
  });
  return { l0, l1, serial };
}

const put = (mem: ArrayMemory, rp: number, reason: number, fill: (d: number) => void, insnLen = 0, rip = 0x1000) => {
  mem.write32(rp + A.NPV_RUN_EXIT_REASON, reason);
  mem.write64(rp + A.NPV_RUN_RIP, rip);
  mem.write32(rp + A.NPV_RUN_INSN_LEN, insnLen);
  fill(rp + A.NPV_RUN_DATA);
};

describe("L1 hypervisor against a fake L0", () => {
  it("checks the ABI signature and version before any hypercall", () => {
    const a = make("demand");
    a.l0.signature = "KVMKVMKVM\0\0\0";
    expect(() => a.l1.boot()).toThrow(NpvUnavailable);
    expect(a.l0.calls).toEqual([]);
    const b = make("demand");
    b.l0.version = 2;
    expect(() => b.l1.boot()).toThrow(/version 2/);
    expect(b.l0.calls).toEqual([]);
  });

  it("builds the L2 on demand: the image mapped by MAP_BATCH, policies, MMIO region, a 64-bit vCPU", () => {
    const { l0, l1 } = make("demand");
    l1.boot();
    expect(l0.calls[0].nr).toBe(A.NPV_HC_VM_CREATE);
    expect(l0.calls[0].args[0]).toBe(0); // lazy EPT02
    expect(l0.count(A.NPV_HC_MAP_BATCH)).toBe(1);
    // Every page the loader touched is mapped, with the loader's bytes in the backing L1 page.
    expect(l0.l2map.size).toBe(l1.bootPages);
    expect(l1.bootPages).toBeLessThan(1000);
    const entry = l0.l2map.get(0x100); // kernel at 1 MiB
    expect(entry).toBeDefined();
    expect(l0.mem.bytes.subarray(entry! * 4096, entry! * 4096 + 4096).some((b) => b !== 0)).toBe(true);
    // The map L1 keeps is the one L0 was told.
    for (const [l2, l1pfn] of l0.l2map) expect(l1.map.lookup(l2)?.l1Pfn).toBe(l1pfn);
    expect(l1.map.extentCount).toBeLessThan(20);
    // CPUID policy: hypervisor bit on, VMX off, leaf 0 present.
    const t = new DataView(l0.cpuidTable!.buffer);
    const n = t.byteLength / A.NPV_CPUID_ENTRY_SIZE;
    let leaf1 = -1;
    for (let i = 0; i < n; i++) if (t.getUint32(i * 32, true) === 1) leaf1 = i;
    expect(leaf1).toBeGreaterThanOrEqual(0);
    const ecx = t.getUint32(leaf1 * 32 + 24, true);
    expect(ecx & (1 << 31)).not.toBe(0);
    expect(ecx & (1 << 5)).toBe(0);
    // MSR policy: only pass-through syscall MSRs.
    const mt = new DataView(l0.msrTable!.buffer);
    expect(mt.byteLength / 16).toBe(PASSTHROUGH_MSRS.length);
    for (let i = 0; i < PASSTHROUGH_MSRS.length; i++)
      expect(mt.getUint32(i * 16 + 4, true)).toBe(A.NPV_MSR_PASSTHROUGH);
    expect(l0.mmioRegions).toEqual([[L2_VIRTIO_GPA, 1]]);
    // Initial state: long mode, RSI = boot info at 0x8000.
    const s = new DataView(l0.state!.buffer);
    expect((s.getUint32(A.NPV_STATE_CR0, true) & 0x80000001) >>> 0).toBe(0x80000001);
    expect(s.getUint32(A.NPV_STATE_EFER, true) & 0x500).toBe(0x500);
    expect(s.getUint32(A.NPV_STATE_CR4, true) & 0x20).toBe(0x20);
    expect(s.getUint32(A.NPV_STATE_GPRS + 8 * 6, true)).toBe(0x8000);
    expect(s.getUint32(A.NPV_STATE_RIP, true)).toBeGreaterThanOrEqual(0x100000);
    expect(s.getUint16(A.NPV_STATE_CS_SEL, true)).toBe(0x08);
    expect(l1.vcpu).toBe(7);
  });

  it("maps all of L2 RAM up front when eager", () => {
    const { l0, l1 } = make("eager");
    l1.boot();
    expect(l0.calls[0].args[0]).toBe(1);
    expect(l0.l2map.size).toBe(4096);
    expect(l1.map.extentCount).toBe(1);
  });

  it("completes port I/O: OUT to the UART, IN from fw_cfg, debug-exit stops with L2's status", () => {
    const { l0, l1, serial } = make("demand");
    l1.boot();
    l0.script.push((m, rp) =>
      put(
        m,
        rp,
        A.NPV_EXIT_IO,
        (d) => {
          m.write32(d, 0x3f8 | (1 << 16) | (0 << 24));
          m.write32(d + 4, 0x41);
        },
        1,
      ),
    );
    l0.script.push((m, rp) => {
      put(
        m,
        rp,
        A.NPV_EXIT_IO,
        (d) => {
          m.write32(d, 0x510 | (2 << 16));
          m.write32(d + 4, 0);
        },
        2,
      );
    });
    l0.script.push((m, rp) => {
      put(m, rp, A.NPV_EXIT_IO, (d) => m.write32(d, 0x511 | (1 << 16) | (1 << 24)), 1);
      m.write32(rp + A.NPV_RUN_GPRS, 0xabcdef00);
      m.write32(rp + A.NPV_RUN_GPRS + 4, 0x11);
    });
    l0.script.push((m, rp) =>
      put(
        m,
        rp,
        A.NPV_EXIT_IO,
        (d) => {
          m.write32(d, 0xf4 | (4 << 16));
          m.write32(d + 4, 0);
        },
        1,
      ),
    );
    const stop = l1.run();
    expect(stop).toMatchObject({ kind: "debug-exit", status: 1 });
    expect(String.fromCharCode(...serial)).toBe("A");
    // The IN's result: fw_cfg's signature byte 'Q' in AL, RAX's other bits kept; RIP advanced; flag set.
    expect(l0.runFlags.every((f) => f === A.NPV_RUN_F_REGS_DIRTY)).toBe(true);
    expect(l1.forwarded.get("io")).toBe(4);
    expect(l0.charges.get("l1.exit_handling")).toBe(4);
    expect(l0.charges.get("l1.userspace_hop")).toBe(4);
  });

  it("writes IN results into RAX and advances RIP by the instruction length", () => {
    const { l0, l1 } = make("demand");
    l1.boot();
    const rp = l1.runPage.gpa;
    l0.script.push((m, p) => {
      put(m, p, A.NPV_EXIT_IO, (d) => m.write32(d, 0x3fd | (1 << 16) | (1 << 24)), 1, 0xffffffff);
      m.write32(p + A.NPV_RUN_GPRS, 0x12345678);
    });
    // Run one exit by hand: RUN, then handle.
    l1.client.run(l1.vcpu, rp);
    l1.runPage.flags = 0;
    expect(l1.handle(A.NPV_EXIT_IO)).toBeNull();
    expect(l0.mem.read32(rp + A.NPV_RUN_GPRS) >>> 0).toBe(0x12345660); // LSR = 0x60 (THR empty)
    expect(l0.mem.read64(rp + A.NPV_RUN_RIP)).toBe(0x100000000); // carry into the high half
    expect(l0.mem.read32(rp + A.NPV_RUN_FLAGS)).toBe(1);
  });

  it("handles MEMORY_FAULT by allocating and mapping the neighbouring pages in one call", () => {
    const { l0, l1 } = make("demand");
    l1.boot();
    const before = l0.l2map.size;
    const gpa = 0x800000 + 3 * 4096 + 0x10;
    l0.script.push((m, rp) =>
      put(m, rp, A.NPV_EXIT_MEMORY_FAULT, (d) => {
        m.write64(d, gpa);
        m.write32(d + 8, A.NPV_PERM_W);
      }),
    );
    const stop = l1.run(); // then the fake halts
    expect(stop.kind).toBe("halted");
    expect(stop.message).toMatch(/L2/);
    expect(l0.l2map.size).toBe(before + FAULT_BATCH_PAGES);
    for (let i = 0; i < FAULT_BATCH_PAGES; i++) expect(l1.map.isMapped(0x800 + i)).toBe(true);
    expect(l0.count(A.NPV_HC_MAP)).toBe(1);
    expect(l0.charges.get("l1.memory_fault")).toBe(FAULT_BATCH_PAGES);
    expect(l1.demandPages).toBe(FAULT_BATCH_PAGES);
  });

  it("stops with a message naming L2 on a fault outside RAM", () => {
    const { l0, l1 } = make("demand");
    l1.boot();
    l0.script.push((m, rp) => put(m, rp, A.NPV_EXIT_MEMORY_FAULT, (d) => m.write64(d, 0x40000000)));
    const stop = l1.run();
    expect(stop.kind).toBe("error");
    expect(stop.message).toMatch(/L2 accessed guest-physical 0x40000000/);
  });

  it("answers an L2 hypercall with -1000 and stops on SHUTDOWN", () => {
    const { l0, l1 } = make("demand");
    l1.boot();
    l0.script.push((m, p) => put(m, p, A.NPV_EXIT_HYPERCALL, () => {}, 3));
    l0.script.push((m, p, before) => {
      expect(before.read32(A.NPV_RUN_GPRS) >>> 0).toBe(0xfffffc18);
      expect(before.read32(A.NPV_RUN_GPRS + 4) >>> 0).toBe(0xffffffff);
      expect(before.read64(A.NPV_RUN_RIP)).toBe(0x1003);
      put(m, p, A.NPV_EXIT_SHUTDOWN, () => {});
    });
    const stop = l1.run();
    expect(stop.kind).toBe("triple-fault");
    expect(stop.message).toMatch(/L2 triple-faulted/);
  });

  it("runs the virtio-mmio control path and hands the ready queue to L0 (BLK_SETUP)", () => {
    const { l0, l1 } = make("demand");
    l1.boot();
    const mmio =
      (off: number, write: boolean, value = 0) =>
      (m: ArrayMemory, p: number) =>
        put(m, p, A.NPV_EXIT_MMIO, (d) => {
          m.write64(d, L2_VIRTIO_GPA + off);
          m.bytes[d + 8] = 4;
          m.bytes[d + 9] = write ? 1 : 0;
          m.write64(d + 16, value);
        });
    const reads: number[] = [];
    const grab = (before: ArrayMemory) => reads.push(before.read32(A.NPV_RUN_DATA + 0x10));
    l0.script.push(mmio(0x000, false));
    l0.script.push((m, p, before) => {
      grab(before);
      mmio(0x008, false)(m, p);
    });
    l0.script.push((m, p, before) => {
      grab(before);
      mmio(0x070, true, 1)(m, p);
    });
    for (const [off, v] of [
      [0x070, 3],
      [0x024, 1],
      [0x020, 1],
      [0x070, 11],
      [0x030, 0],
      [0x038, 8],
      [0x080, 0x200000],
      [0x090, 0x200200],
      [0x0a0, 0x200400],
      [0x044, 1],
    ])
      l0.script.push(mmio(off, true, v));
    l0.script.push(mmio(0x070, true, 15));
    const stop = l1.run();
    expect(stop.kind).toBe("halted");
    expect(reads).toEqual([0x74726976, 2]);
    expect(l0.blk).not.toBeNull();
    const b = new DataView(l0.blk!.buffer);
    expect(b.getUint32(A.NPV_BLK_MMIO_GPA, true)).toBe(L2_VIRTIO_GPA);
    expect(b.getUint32(A.NPV_BLK_QUEUE_SIZE, true)).toBe(8);
    expect(b.getUint32(A.NPV_BLK_BACKEND, true)).toBe(3);
    expect(b.getUint32(A.NPV_BLK_DESC_GPA, true)).toBe(0x200000);
    expect(b.getUint32(A.NPV_BLK_AVAIL_GPA, true)).toBe(0x200200);
    expect(b.getUint32(A.NPV_BLK_USED_GPA, true)).toBe(0x200400);
    expect(b.getUint32(A.NPV_BLK_FEATURES + 4, true)).toBe(1); // VIRTIO_F_VERSION_1
    expect(l1.blkMediated).toBe(true);
    expect(l1.devices.notifiesSeen).toBe(0);
  });

  it("stops at the instruction limit when L0 returns a timeslice", () => {
    let icount = 0;
    const { l0, l1 } = make("demand", { maxInstructions: 100, instructionsRetired: () => icount });
    l1.boot();
    l0.script.push((m, p) => {
      icount = 50;
      put(m, p, A.NPV_EXIT_TIMESLICE, () => {});
    });
    l0.script.push((m, p) => {
      icount = 150;
      put(m, p, A.NPV_EXIT_TIMESLICE, () => {});
    });
    const stop = l1.run();
    expect(stop.kind).toBe("instruction-limit");
    expect(l1.forwarded.get("timeslice")).toBe(2);
  });
});
