/**
 * Every npv hypercall, every error status and every rule of docs/npv-abi.md §5, driven by a test
 * driver acting as L1 (l0.guestHypercall: the exit a VMCALL makes), with exact values.
 */
import { describe, expect, it } from "vitest";
import * as ABI from "../../src/hypervisors/npv-abi.js";
import * as V from "../../src/x86/vmx.js";
import { L1_MEMORY, NpvBed, RUN_PAGE, STATE_PAGE, TABLE_PAGE } from "../helpers/npv.js";

const {
  NPV_OK: OK,
  NPV_E_INVAL: INVAL,
  NPV_E_NOENT: NOENT,
  NPV_E_NOMEM: NOMEM,
  NPV_E_FAULT: FAULT,
  NPV_E_EXIST: EXIST,
  NPV_E_RANGE: RANGE,
  NPV_E_BUSY: BUSY,
  NPV_E_NOSYS: NOSYS,
  NPV_E_STATE: STATE,
} = ABI;

function withVcpu(b: NpvBed, vm: number): number {
  b.writeState();
  const r = b.hc(ABI.NPV_HC_VCPU_CREATE, vm, STATE_PAGE);
  expect(r.status).toBe(OK);
  return r.rbx;
}

describe("npv discovery", () => {
  it("CPUID 0x40000100/0x40000101 give the signature, version, features and limits", () => {
    const b = new NpvBed();
    const [a, bx, c, d] = b.l0.guestCpuid(b.vcpu, ABI.NPV_CPUID_SIGNATURE_LEAF);
    expect(a).toBe(0x40000101);
    const sig = [bx, c, d]
      .map((x) => String.fromCharCode(x & 0xff, (x >>> 8) & 0xff, (x >>> 16) & 0xff, x >>> 24))
      .join("");
    expect(sig).toBe("NestedPVAbi1");
    expect(b.l0.guestCpuid(b.vcpu, ABI.NPV_CPUID_FEATURES_LEAF)).toEqual([1, 0x3f, 16, 8]);
  });
});

describe("npv hypercalls", () => {
  it("VM_CREATE returns small per-L1 handles from 1", () => {
    const b = new NpvBed();
    expect(b.hc(ABI.NPV_HC_VM_CREATE, 0)).toEqual({ status: OK, rbx: 1 });
    expect(b.hc(ABI.NPV_HC_VM_CREATE, 1)).toEqual({ status: OK, rbx: 2 });
    expect(b.engine.l1(b.vm)!.vms.get(2)!.eager).toBe(true);
  });

  it("VM_DESTROY unmaps everything, frees EPT02 pages and the handle", () => {
    const b = new NpvBed();
    const vm = b.vmCreate(1);
    expect(b.map(vm, 0, 0x100000, 16)).toBe(OK);
    const l1 = b.engine.l1(b.vm)!;
    expect(l1.mappedPages).toBe(16);
    const free0 = b.engine.pages.freePages;
    expect(b.hc(ABI.NPV_HC_VM_DESTROY, vm).status).toBe(OK);
    expect(l1.mappedPages).toBe(0);
    expect(b.engine.pages.freePages).toBe(free0 + 5); // root, 3 tables, MSR bitmap
    expect(b.hc(ABI.NPV_HC_VM_DESTROY, vm).status).toBe(NOENT);
    expect(b.hc(ABI.NPV_HC_VM_CREATE, 0).rbx).toBe(vm);
  });

  it("VCPU_CREATE returns a vCPU handle", () => {
    const b = new NpvBed();
    const vm = b.vmCreate();
    b.writeState();
    expect(b.hc(ABI.NPV_HC_VCPU_CREATE, vm, STATE_PAGE)).toEqual({ status: OK, rbx: 1 });
    expect(b.hc(ABI.NPV_HC_VCPU_CREATE, vm, STATE_PAGE)).toEqual({ status: OK, rbx: 2 });
  });

  it("MAP records pages; eager VMs get EPT02 leaves at once with the given permissions", () => {
    const b = new NpvBed();
    const vm = b.vmCreate(1);
    expect(b.map(vm, 0x400000, 0x100000, 3, ABI.NPV_PERM_R | ABI.NPV_PERM_X)).toBe(OK);
    const v = b.engine.l1(b.vm)!.vms.get(vm)!;
    expect(v.map.size).toBe(3);
    const leaf = v.ept.lookup(0x401000)!;
    expect(leaf.perms).toBe(5);
    expect(leaf.pa).toBe(b.vm.memslots.translate(0x101000));
    expect(b.engine.checkInvariants()).toEqual([]);
  });

  it("UNMAP removes mapped pages and their leaves (unmapped pages skipped)", () => {
    const b = new NpvBed();
    const vm = b.vmCreate(1);
    expect(b.map(vm, 0x400000, 0x100000, 2)).toBe(OK);
    expect(b.unmap(vm, 0x3ff000, 4)).toBe(OK);
    const v = b.engine.l1(b.vm)!.vms.get(vm)!;
    expect(v.map.size).toBe(0);
    expect(v.ept.leaves).toBe(0);
    expect(b.engine.stats()["npv.invalidations"]).toBe(1);
    expect(b.unmap(vm, 0x400000, 2)).toBe(OK); // nothing mapped: no invalidation
    expect(b.engine.stats()["npv.invalidations"]).toBe(1);
  });

  it("PROTECT changes permissions of mapped pages and of their leaves", () => {
    const b = new NpvBed();
    const vm = b.vmCreate(1);
    expect(b.map(vm, 0x400000, 0x100000, 2, 7)).toBe(OK);
    expect(b.protect(vm, 0x400000, 2, ABI.NPV_PERM_R)).toBe(OK);
    const v = b.engine.l1(b.vm)!.vms.get(vm)!;
    expect(v.ept.lookup(0x400000)!.perms).toBe(1);
    expect(v.map.get(0x400) % 8).toBe(1);
    expect(b.engine.checkInvariants()).toEqual([]);
  });

  it("MAP_BATCH applies entries in order and returns how many in RBX", () => {
    const b = new NpvBed();
    const vm = b.vmCreate();
    const e = (k: number, l2: number, l1: number, n: number, op: number, perms: number) => {
      b.w64(TABLE_PAGE + 24 * k, l2);
      b.w64(TABLE_PAGE + 24 * k + 8, l1);
      b.w32(TABLE_PAGE + 24 * k + 16, n);
      b.w32(TABLE_PAGE + 24 * k + 20, op | (perms << 8));
    };
    e(0, 0x0, 0x100000, 4, ABI.NPV_BATCH_OP_MAP, 7);
    e(1, 0x1000, 0, 1, ABI.NPV_BATCH_OP_UNMAP, 0);
    e(2, 0x2000, 0, 1, ABI.NPV_BATCH_OP_PROTECT, 1);
    expect(b.hc(ABI.NPV_HC_MAP_BATCH, vm, TABLE_PAGE, 3)).toEqual({ status: OK, rbx: 3 });
    const v = b.engine.l1(b.vm)!.vms.get(vm)!;
    expect(v.map.size).toBe(3);
    expect(v.map.get(2) % 8).toBe(1);
    // The first failing entry stops the batch: RAX its status, RBX the entries applied before it.
    e(0, 0x10000, 0x100000, 1, ABI.NPV_BATCH_OP_MAP, 3);
    e(1, 0x0, 0x100000, 1, ABI.NPV_BATCH_OP_MAP, 3); // already mapped
    e(2, 0x20000, 0x100000, 1, ABI.NPV_BATCH_OP_MAP, 3);
    expect(b.hc(ABI.NPV_HC_MAP_BATCH, vm, TABLE_PAGE, 3)).toEqual({ status: EXIST, rbx: 1 });
    expect(v.map.get(0x20)).toBe(0);
    e(0, 0x30000, 0x100000, 1, 7, 3); // unknown op
    expect(b.hc(ABI.NPV_HC_MAP_BATCH, vm, TABLE_PAGE, 1)).toEqual({ status: INVAL, rbx: 0 });
  });

  it("SET_CPUID replaces the policy; L0 forces the hypervisor bit on and VMX off", () => {
    const b = new NpvBed();
    const vm = b.vmCreate();
    expect(
      b.setCpuid(vm, [
        { leaf: 1, regs: [0x806f8, 0, 0x20, 0] },
        { leaf: 7, subleaf: 1, flags: 1, regs: [9, 0, 0, 0] },
      ]),
    ).toBe(OK);
    const p = b.engine.l1(b.vm)!.vms.get(vm)!.cpuid;
    const out = new Int32Array(4);
    p.query(1, 0, out);
    expect([out[0], out[2] >>> 0]).toEqual([0x806f8, 0x80000000]);
    p.query(7, 1, out);
    expect(out[0]).toBe(9);
    p.query(7, 0, out);
    expect(out[0]).toBe(0);
    expect(b.setCpuid(vm, [{ leaf: 2, regs: [1, 2, 3, 4] }])).toBe(OK);
    b.engine.l1(b.vm)!.vms.get(vm)!.cpuid.query(1, 0, out);
    expect(out[0]).toBe(0);
  });

  it("SET_MSRS replaces the policy; PASSTHROUGH clears the MSR bitmap bits", () => {
    const b = new NpvBed();
    const vm = b.vmCreate();
    expect(
      b.setMsrs(vm, [
        { index: 0xc0000082, mode: ABI.NPV_MSR_PASSTHROUGH },
        { index: 0x10, mode: ABI.NPV_MSR_VALUE, value: 5 },
      ]),
    ).toBe(OK);
    const v = b.engine.l1(b.vm)!.vms.get(vm)!;
    expect(v.msrs.entries.get(0x10)!.lo).toBe(5);
    const bit = 0x82;
    expect(b.cpu.mem.read(v.msrBitmap + 1024 + (bit >> 3), 1) & (1 << (bit & 7))).toBe(0);
    expect(b.cpu.mem.read(v.msrBitmap + 2048 + 1024 + (bit >> 3), 1) & (1 << (bit & 7))).toBe(0);
    expect(b.cpu.mem.read(v.msrBitmap + 2, 1)).toBe(0xff);
  });

  it("RUN with a bad handle or run page", () => {
    const b = new NpvBed();
    const vm = b.vmCreate();
    const v = withVcpu(b, vm);
    expect(b.hc(ABI.NPV_HC_RUN, 77, RUN_PAGE).status).toBe(NOENT);
    expect(b.hc(ABI.NPV_HC_RUN, v, L1_MEMORY - 0x80).status).toBe(FAULT);
  });

  it("INJECT queues a vector", () => {
    const b = new NpvBed();
    const vm = b.vmCreate();
    const v = withVcpu(b, vm);
    expect(b.hc(ABI.NPV_HC_INJECT, v, 32, 0).status).toBe(OK);
    expect(b.hc(ABI.NPV_HC_INJECT, v, 255, 0).status).toBe(OK);
    expect(b.engine.l1(b.vm)!.vcpus.get(v)!.injectQueue).toEqual([32, 255]);
  });

  it("MMIO_REGION declares and removes regions (at most 16)", () => {
    const b = new NpvBed();
    const vm = b.vmCreate();
    for (let k = 0; k < 16; k++)
      expect(b.hc(ABI.NPV_HC_MMIO_REGION, vm, 0x10000000 + k * 0x10000, 2, 0).status).toBe(OK);
    expect(b.hc(ABI.NPV_HC_MMIO_REGION, vm, 0x20000000, 1, 0).status).toBe(NOMEM);
    expect(b.hc(ABI.NPV_HC_MMIO_REGION, vm, 0x10000000, 2, 1).status).toBe(OK);
    expect(b.hc(ABI.NPV_HC_MMIO_REGION, vm, 0x10000000, 2, 1).status).toBe(NOENT);
    expect(b.hc(ABI.NPV_HC_MMIO_REGION, vm, 0x10010000, 1, 1).status).toBe(NOENT);
    expect(b.hc(ABI.NPV_HC_MMIO_REGION, vm, 0x10011000, 1, 0).status).toBe(EXIST);
    expect(b.map(vm, 0x10010000, 0x100000, 1)).toBe(EXIST);
    expect(b.map(vm, 0x30000000, 0x100000, 1)).toBe(OK);
    expect(b.hc(ABI.NPV_HC_MMIO_REGION, vm, 0x30000000, 1, 0).status).toBe(EXIST);
  });

  it("BLK_SETUP validates its descriptor", () => {
    const b = new NpvBed();
    const vm = b.vmCreate();
    const { id } = b.assignDisk();
    const d = TABLE_PAGE;
    const write = (qsize: number, backend: number, vector = 0, desc = 0x30000) => {
      b.w64(d + ABI.NPV_BLK_MMIO_GPA, 0x10000000);
      b.w32(d + ABI.NPV_BLK_QUEUE_SIZE, qsize);
      b.w32(d + ABI.NPV_BLK_BACKEND, backend);
      b.w64(d + ABI.NPV_BLK_DESC_GPA, desc);
      b.w64(d + ABI.NPV_BLK_AVAIL_GPA, 0x31000);
      b.w64(d + ABI.NPV_BLK_USED_GPA, 0x32000);
      b.w32(d + ABI.NPV_BLK_IRQ_VECTOR, vector);
    };
    write(12, id);
    expect(b.hc(ABI.NPV_HC_BLK_SETUP, vm, d).status).toBe(INVAL);
    write(8, id, 5);
    expect(b.hc(ABI.NPV_HC_BLK_SETUP, vm, d).status).toBe(INVAL);
    write(8, id, 0, 0x30008);
    expect(b.hc(ABI.NPV_HC_BLK_SETUP, vm, d).status).toBe(INVAL);
    write(8, id + 1);
    expect(b.hc(ABI.NPV_HC_BLK_SETUP, vm, d).status).toBe(NOENT);
    write(8, id, 0, 2 ** 46);
    expect(b.hc(ABI.NPV_HC_BLK_SETUP, vm, d).status).toBe(RANGE);
    write(8, id);
    expect(b.hc(ABI.NPV_HC_BLK_SETUP, vm, d).status).toBe(OK);
    expect(b.hc(ABI.NPV_HC_BLK_SETUP, vm, d).status).toBe(EXIST);
    expect(b.hc(ABI.NPV_HC_BLK_SETUP, vm, L1_MEMORY - 8).status).toBe(FAULT);
    expect(b.hc(ABI.NPV_HC_BLK_TEARDOWN, vm, 0x10000000).status).toBe(OK);
  });
});

describe("npv error statuses", () => {
  it("E_INVAL: flags, permissions, counts, alignment of the L1 GPA, vectors, modes", () => {
    const b = new NpvBed();
    expect(b.hc(ABI.NPV_HC_VM_CREATE, 2).status).toBe(INVAL);
    const vm = b.vmCreate();
    for (const p of [0, 2, 6, 8, 0xff]) expect(b.map(vm, 0, 0x100000, 1, p)).toBe(INVAL);
    expect(b.map(vm, 0, 0x100000, 0)).toBe(INVAL);
    expect(b.map(vm, 0, 0x100000, 2 ** 20 + 1)).toBe(INVAL);
    expect(b.map(vm, 0, 0x100800, 1)).toBe(INVAL);
    expect(b.unmap(vm, 0, 0)).toBe(INVAL);
    expect(b.protect(vm, 0, 1, 2)).toBe(INVAL);
    expect(b.hc(ABI.NPV_HC_MAP_BATCH, vm, TABLE_PAGE, 0).status).toBe(INVAL);
    expect(b.hc(ABI.NPV_HC_MAP_BATCH, vm, TABLE_PAGE, 171).status).toBe(INVAL);
    expect(b.hc(ABI.NPV_HC_SET_CPUID, vm, TABLE_PAGE, 128).status).toBe(INVAL);
    expect(b.hc(ABI.NPV_HC_SET_MSRS, vm, TABLE_PAGE, 256).status).toBe(INVAL);
    expect(b.setMsrs(vm, [{ index: 0x10, mode: ABI.NPV_MSR_PASSTHROUGH }])).toBe(INVAL);
    expect(b.setMsrs(vm, [{ index: 0x10, mode: 3 }])).toBe(INVAL);
    expect(b.setCpuid(vm, [{ leaf: 0, flags: 2, regs: [] }])).toBe(INVAL);
    const v = withVcpu(b, vm);
    expect(b.hc(ABI.NPV_HC_INJECT, v, 31, 0).status).toBe(INVAL);
    expect(b.hc(ABI.NPV_HC_INJECT, v, 256, 0).status).toBe(INVAL);
    expect(b.hc(ABI.NPV_HC_INJECT, v, 40, 1).status).toBe(INVAL);
    expect(b.hc(ABI.NPV_HC_MMIO_REGION, vm, 0x10000000, 1, 2).status).toBe(INVAL);
  });

  it("E_NOENT: unknown VM and vCPU handles", () => {
    const b = new NpvBed();
    for (const nr of [
      ABI.NPV_HC_VM_DESTROY,
      ABI.NPV_HC_VCPU_CREATE,
      ABI.NPV_HC_MAP,
      ABI.NPV_HC_UNMAP,
      ABI.NPV_HC_PROTECT,
      ABI.NPV_HC_MAP_BATCH,
      ABI.NPV_HC_SET_CPUID,
      ABI.NPV_HC_SET_MSRS,
      ABI.NPV_HC_RUN,
      ABI.NPV_HC_INJECT,
      ABI.NPV_HC_BLK_SETUP,
      ABI.NPV_HC_BLK_TEARDOWN,
      ABI.NPV_HC_MMIO_REGION,
    ])
      expect(b.hc(nr, 1, TABLE_PAGE, 1, 1).status).toBe(NOENT);
    expect(b.hc(ABI.NPV_HC_MAP, 2 ** 32 + 1, 0, 0x100000, 1 + 7 * 2 ** 32).status).toBe(NOENT);
  });

  it("RBX changes only for the calls that return a value: an error after one leaves L1's RBX as it was", () => {
    const b = new NpvBed();
    expect(b.hc(ABI.NPV_HC_VM_CREATE, 0)).toEqual({ status: OK, rbx: 1 });
    expect(b.hc(ABI.NPV_HC_VM_DESTROY, 7)).toEqual({ status: NOENT, rbx: 7 });
    expect(b.hc(ABI.NPV_HC_VM_CREATE, 2)).toEqual({ status: INVAL, rbx: 2 });
    expect(b.hc(ABI.NPV_HC_MAP, 1, 0, 0x100000, 1)).toEqual({ status: INVAL, rbx: 1 }); // permissions 0
    expect(b.hc(0x1ff, 5)).toEqual({ status: NOSYS, rbx: 5 });
    // MAP_BATCH answers RBX even when it fails: the entries done (none for a bad count).
    expect(b.hc(ABI.NPV_HC_MAP_BATCH, 1, TABLE_PAGE, 0)).toEqual({ status: INVAL, rbx: 0 });
  });

  it("E_NOMEM: 16 VMs, 8 vCPUs per VM, 2^22 mapped pages per L1", () => {
    const b = new NpvBed();
    for (let k = 0; k < 16; k++) b.vmCreate();
    expect(b.hc(ABI.NPV_HC_VM_CREATE, 0).status).toBe(NOMEM);
    for (let k = 0; k < 8; k++) withVcpu(b, 1);
    expect(b.hc(ABI.NPV_HC_VCPU_CREATE, 1, STATE_PAGE).status).toBe(NOMEM);
    // 2^22 pages: aliases of the same 16 MiB of L1 RAM across L2 ranges and VMs.
    const n = 2 ** 20;
    for (let vm = 1; vm <= 4; vm++) for (let k = 0; k < n; k += 4096) expect(b.map(vm, k * 4096, 0, 4096)).toBe(OK);
    expect(b.engine.l1(b.vm)!.mappedPages).toBe(2 ** 22);
    expect(b.map(5, 0, 0, 1)).toBe(NOMEM);
    expect(b.unmap(1, 0, 1)).toBe(OK);
    expect(b.map(5, 0, 0, 1)).toBe(OK);
  });

  it("E_FAULT: L1 addresses not entirely in L1 RAM", () => {
    const b = new NpvBed();
    const vm = b.vmCreate();
    expect(b.map(vm, 0, L1_MEMORY, 1)).toBe(FAULT);
    expect(b.map(vm, 0, L1_MEMORY - 0x1000, 2)).toBe(FAULT); // straddles the end
    expect(b.map(vm, 0, 0xfee00000, 1)).toBe(FAULT); // the L1's own LAPIC page
    expect(b.hc(ABI.NPV_HC_VCPU_CREATE, vm, L1_MEMORY - 0x10).status).toBe(FAULT);
    expect(b.hc(ABI.NPV_HC_MAP_BATCH, vm, L1_MEMORY, 1).status).toBe(FAULT);
    expect(b.hc(ABI.NPV_HC_SET_CPUID, vm, L1_MEMORY - 32, 2).status).toBe(FAULT);
    expect(b.hc(ABI.NPV_HC_SET_MSRS, vm, 2 ** 60, 1).status).toBe(FAULT);
    expect(b.engine.l1(b.vm)!.vms.get(vm)!.map.size).toBe(0);
  });

  it("E_EXIST: MAP over mapped pages", () => {
    const b = new NpvBed();
    const vm = b.vmCreate();
    expect(b.map(vm, 0x10000, 0x100000, 4)).toBe(OK);
    expect(b.map(vm, 0x13000, 0x200000, 4)).toBe(EXIST);
    expect(b.engine.l1(b.vm)!.vms.get(vm)!.map.size).toBe(4);
  });

  it("E_RANGE: unaligned, wrapping or ≥ 2^46 L2 ranges", () => {
    const b = new NpvBed();
    const vm = b.vmCreate();
    expect(b.map(vm, 0x10010, 0x100000, 1)).toBe(RANGE);
    expect(b.map(vm, 2 ** 46 - 0x1000, 0x100000, 2)).toBe(RANGE);
    expect(b.map(vm, 2 ** 46, 0x100000, 1)).toBe(RANGE);
    expect(b.map(vm, 2 ** 46 - 0x1000, 0x100000, 1)).toBe(OK);
    expect(b.unmap(vm, 2 ** 63, 1)).toBe(RANGE);
    expect(b.protect(vm, 0x123, 1, 1)).toBe(RANGE);
    expect(b.hc(ABI.NPV_HC_MMIO_REGION, vm, 0x1001, 1, 0).status).toBe(RANGE);
  });

  it("E_BUSY: VM_DESTROY while one of its vCPUs runs", () => {
    const b = new NpvBed();
    const vm = b.vmCreate();
    const v = withVcpu(b, vm);
    const vc = b.engine.l1(b.vm)!.vcpus.get(v)!;
    vc.running = true; // as if another L1 vCPU were inside RUN
    expect(b.hc(ABI.NPV_HC_VM_DESTROY, vm).status).toBe(BUSY);
    vc.running = false;
    expect(b.hc(ABI.NPV_HC_VM_DESTROY, vm).status).toBe(OK);
  });

  it("E_NOSYS: unknown numbers in the npv range", () => {
    const b = new NpvBed();
    expect(b.hc(0x10e).status).toBe(NOSYS);
    expect(b.hc(0x1ff).status).toBe(NOSYS);
    expect(b.engine.stats()["npv.hypercalls.unknown"]).toBe(2);
  });

  it("E_STATE: the initial state must be 64-bit long mode", () => {
    const b = new NpvBed();
    const vm = b.vmCreate();
    const bad: Record<number, number>[] = [
      { [ABI.NPV_STATE_CR0]: 0x00010031 }, // PG clear
      { [ABI.NPV_STATE_CR0]: 0x80010030 }, // PE clear
      { [ABI.NPV_STATE_CR4]: 0 }, // PAE clear
      { [ABI.NPV_STATE_EFER]: 0x100 }, // LMA clear
      { [ABI.NPV_STATE_EFER]: 0x400 }, // LME clear
      { [ABI.NPV_STATE_RFLAGS]: 0 }, // bit 1 clear
      { [ABI.NPV_STATE_RIP]: 0x0000800000000000 }, // non-canonical
      { [ABI.NPV_STATE_CS_SEL]: 0 }, // null CS
      { [ABI.NPV_STATE_CS_SEL]: 0x20 }, // outside the GDT
    ];
    for (const p of bad) {
      b.writeState(STATE_PAGE, p);
      expect(b.hc(ABI.NPV_HC_VCPU_CREATE, vm, STATE_PAGE).status).toBe(STATE);
    }
    expect(b.engine.l1(b.vm)!.vms.get(vm)!.vcpus.length).toBe(0);
  });

  it("a VMCALL from L1 at CPL 3 gets #UD and does not retire", () => {
    const b = new NpvBed();
    b.vcpu.vmcs.write(V.VMCS_GUEST_SS_AR, 0xc0f3); // DPL 3
    const rip = b.vcpu.vmcs.readNumber(V.VMCS_GUEST_RIP);
    b.hc(ABI.NPV_HC_VM_CREATE, 0);
    expect(b.vcpu.pendingException).toBe(6);
    expect(b.vcpu.vmcs.readNumber(V.VMCS_GUEST_RIP)).toBe(rip);
    expect(b.engine.l1(b.vm)!.vms.size).toBe(0);
  });
});

describe("npv rules (docs/npv-abi.md §5)", () => {
  it("1: every byte of every structure must be L1 RAM, else E_FAULT and nothing changes", () => {
    const b = new NpvBed();
    const vm = b.vmCreate();
    b.writeState();
    expect(b.hc(ABI.NPV_HC_VCPU_CREATE, vm, L1_MEMORY - ABI.NPV_STATE_SIZE + 8).status).toBe(FAULT);
    expect(b.hc(ABI.NPV_HC_MAP_BATCH, vm, L1_MEMORY - 24, 2).status).toBe(FAULT);
    expect(b.hc(ABI.NPV_HC_SET_CPUID, vm, -4096, 1).status).toBe(FAULT);
    const v = withVcpu(b, vm);
    expect(b.hc(ABI.NPV_HC_RUN, v, L1_MEMORY - 0x100 + 4).status).toBe(FAULT);
    expect(b.hc(ABI.NPV_HC_RUN, v, 0xfeb00000).status).toBe(FAULT); // MMIO hole, not RAM
  });

  it("2: handles are per L1: another L1 cannot name them", () => {
    const a = new NpvBed({ secondL1: true });
    const other = a.l0.createVm({ memory: L1_MEMORY });
    a.engine.attach(other);
    const ov = a.l0.createVcpu(other);
    const vm = a.vmCreate();
    const v = withVcpu(a, vm);
    expect(a.hc(ABI.NPV_HC_MAP, vm, 0, 0x100000, 1 + 7 * 2 ** 32, ov).status).toBe(NOENT);
    expect(a.hc(ABI.NPV_HC_RUN, v, RUN_PAGE, 0, 0, ov).status).toBe(NOENT);
    expect(a.hc(ABI.NPV_HC_VM_DESTROY, vm, 0, 0, 0, ov).status).toBe(NOENT);
    // The other L1's first VM is its own handle 1, independent of ours.
    expect(a.hc(ABI.NPV_HC_VM_CREATE, 0, 0, 0, 0, ov)).toEqual({ status: OK, rbx: 1 });
    expect(a.engine.l1(a.vm)!.vms.size).toBe(1);
    expect(a.engine.l1(other)!.vms.size).toBe(1);
    // An L1 the engine is not attached to gets E_NOSYS.
    const stranger = a.l0.createVm({ memory: 0x100000 });
    expect(a.hc(ABI.NPV_HC_VM_CREATE, 0, 0, 0, 0, a.l0.createVcpu(stranger)).status).toBe(NOSYS);
  });

  it("3: a batch never reads past its page", () => {
    const b = new NpvBed();
    const vm = b.vmCreate();
    expect(b.hc(ABI.NPV_HC_MAP_BATCH, vm, TABLE_PAGE + 4096 - 24, 2).status).toBe(INVAL);
    expect(b.hc(ABI.NPV_HC_MAP_BATCH, vm, TABLE_PAGE + 16, 170).status).toBe(INVAL);
  });

  it("4: EPT02 maps only L1 RAM at L2 GPAs L1 mapped, with at most its permissions", () => {
    const b = new NpvBed();
    const vm = b.vmCreate(1);
    expect(b.map(vm, 0, 0x100000, 8, 3)).toBe(OK);
    expect(b.protect(vm, 0x2000, 2, 1)).toBe(OK);
    expect(b.unmap(vm, 0x4000, 1)).toBe(OK);
    expect(b.map(vm, 0xfee00000, 0x100000, 1, 3)).toBe(OK); // recorded, never composed
    const v = b.engine.l1(b.vm)!.vms.get(vm)!;
    expect(v.ept.lookup(0xfee00000)).toBeNull();
    const leaves: number[][] = [];
    v.ept.forEachLeaf((g, h, p) => leaves.push([g, h - b.vm.memslots.translate(0), p]));
    expect(leaves).toEqual([
      [0x0, 0x100000, 3],
      [0x1000, 0x101000, 3],
      [0x2000, 0x102000, 1],
      [0x3000, 0x103000, 1],
      [0x5000, 0x105000, 3],
      [0x6000, 0x106000, 3],
      [0x7000, 0x107000, 3],
    ]);
    expect(b.engine.checkInvariants()).toEqual([]);
  });

  it("5: unmap and permission reduction take effect before the hypercall returns (leaf and TLB)", () => {
    const b = new NpvBed();
    const vm = b.vmCreate(1);
    expect(b.map(vm, 0, 0x100000, 1, 3)).toBe(OK);
    const v = b.engine.l1(b.vm)!.vms.get(vm)!;
    expect(b.protect(vm, 0, 1, 1)).toBe(OK);
    expect(v.ept.lookup(0)!.perms).toBe(1);
    expect(b.unmap(vm, 0, 1)).toBe(OK);
    expect(v.ept.lookup(0)).toBeNull();
    expect(b.engine.stats()["npv.invalidations"]).toBe(2);
  });

  it("7: garbage never throws out of L0 and never changes another L1", () => {
    const b = new NpvBed({ secondL1: true });
    const other = b.l0.createVm({ memory: L1_MEMORY });
    b.engine.attach(other);
    const ov = b.l0.createVcpu(other);
    expect(b.hc(ABI.NPV_HC_VM_CREATE, 1, 0, 0, 0, ov).status).toBe(OK);
    expect(b.hc(ABI.NPV_HC_MAP, 1, 0, 0, 16 + 7 * 2 ** 32, ov).status).toBe(OK);
    const vals = [0, 1, 2, 0xfff, 0x1000, L1_MEMORY - 8, L1_MEMORY, 2 ** 32 - 1, 2 ** 46, 2 ** 53, 2 ** 63, 0xfee00000];
    for (let nr = 0x100; nr <= 0x10e; nr++) {
      for (const x of vals) for (const y of vals) expect(() => b.hc(nr, x % 3, x, y, y)).not.toThrow();
    }
    expect(b.engine.l1(other)!.vms.get(1)!.map.size).toBe(16);
    expect(b.engine.checkInvariants()).toEqual([]);
  });
});
