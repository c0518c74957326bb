/**
 * The nested paravirtual L0↔L1 ABI, version 1: numbers and byte layouts only, shared by L0's
 * nested engine and L1's client. docs/npv-abi.md is the specification; keep the two in step.
 */

// ---- Discovery (CPUID, hypervisor range) ----
export const NPV_CPUID_SIGNATURE_LEAF = 0x40000100;
export const NPV_CPUID_FEATURES_LEAF = 0x40000101;
/** "NestedPVAbi1" in EBX, ECX, EDX of the signature leaf. */
export const NPV_SIGNATURE = "NestedPVAbi1";
export const NPV_ABI_VERSION = 1;
export const NPV_FEAT_BATCH_MAP = 1 << 0;
export const NPV_FEAT_CPUID_POLICY = 1 << 1;
export const NPV_FEAT_MSR_POLICY = 1 << 2;
export const NPV_FEAT_LAPIC_OFFLOAD = 1 << 3;
export const NPV_FEAT_MEDIATED_BLK = 1 << 4;
export const NPV_FEAT_EAGER_MAP = 1 << 5;

// ---- Hypercall numbers (RAX); arguments in RBX, RCX, RDX, RSI; status back in RAX ----
export const NPV_HC_VM_CREATE = 0x100;
export const NPV_HC_VM_DESTROY = 0x101;
export const NPV_HC_VCPU_CREATE = 0x102;
export const NPV_HC_MAP = 0x103;
export const NPV_HC_UNMAP = 0x104;
export const NPV_HC_PROTECT = 0x105;
export const NPV_HC_MAP_BATCH = 0x106;
export const NPV_HC_SET_CPUID = 0x107;
export const NPV_HC_SET_MSRS = 0x108;
export const NPV_HC_RUN = 0x109;
export const NPV_HC_INJECT = 0x10a;
export const NPV_HC_BLK_SETUP = 0x10b;
export const NPV_HC_BLK_TEARDOWN = 0x10c;
export const NPV_HC_MMIO_REGION = 0x10d;
export const NPV_HC_FIRST = NPV_HC_VM_CREATE;
export const NPV_HC_LAST = NPV_HC_MMIO_REGION;
/** MMIO_REGION flags: bit 0 removes the region. */
export const NPV_MMIO_REMOVE = 1;
export const NPV_MAX_MMIO_REGIONS = 16;

export const NPV_HC_NAMES: Record<number, string> = {
  [NPV_HC_VM_CREATE]: "vm_create",
  [NPV_HC_VM_DESTROY]: "vm_destroy",
  [NPV_HC_VCPU_CREATE]: "vcpu_create",
  [NPV_HC_MAP]: "map",
  [NPV_HC_UNMAP]: "unmap",
  [NPV_HC_PROTECT]: "protect",
  [NPV_HC_MAP_BATCH]: "map_batch",
  [NPV_HC_SET_CPUID]: "set_cpuid",
  [NPV_HC_SET_MSRS]: "set_msrs",
  [NPV_HC_RUN]: "run",
  [NPV_HC_INJECT]: "inject",
  [NPV_HC_BLK_SETUP]: "blk_setup",
  [NPV_HC_BLK_TEARDOWN]: "blk_teardown",
  [NPV_HC_MMIO_REGION]: "mmio_region",
};

// ---- Status codes (RAX after the hypercall; negative = error) ----
export const NPV_OK = 0;
export const NPV_E_INVAL = -1; // a malformed argument (flags, counts, permissions, sizes)
export const NPV_E_NOENT = -2; // no such VM, vCPU or device
export const NPV_E_NOMEM = -3; // a per-L1 limit is reached (VMs, vCPUs, mapped pages, devices)
export const NPV_E_FAULT = -4; // an L1 guest-physical address is not in L1's RAM
export const NPV_E_EXIST = -5; // the L2 range is already (partly) mapped / device already set up
export const NPV_E_RANGE = -6; // an L2 address or range is unaligned, wraps, or exceeds the L2 address space
export const NPV_E_BUSY = -7; // the object is in use (destroying a VM whose vCPU is running)
export const NPV_E_NOSYS = -8; // unknown hypercall number
export const NPV_E_STATE = -9; // an L2 vCPU state that violates the rules (not 64-bit long mode)

export const NPV_STATUS_NAMES: Record<number, string> = {
  0: "ok",
  [-1]: "E_INVAL",
  [-2]: "E_NOENT",
  [-3]: "E_NOMEM",
  [-4]: "E_FAULT",
  [-5]: "E_EXIST",
  [-6]: "E_RANGE",
  [-7]: "E_BUSY",
  [-8]: "E_NOSYS",
  [-9]: "E_STATE",
};

// ---- Permissions (MAP/PROTECT, batch entries) ----
export const NPV_PERM_R = 1;
export const NPV_PERM_W = 2;
export const NPV_PERM_X = 4;

// ---- Limits L0 enforces per L1 ----
export const NPV_MAX_VMS = 16;
export const NPV_MAX_VCPUS_PER_VM = 8;
export const NPV_MAX_L2_GPA_BITS = 46; // L2 guest-physical addresses below 2^46
export const NPV_MAX_PAGES_PER_CALL = 1 << 20; // 4 GiB per MAP/UNMAP/PROTECT
export const NPV_MAX_MAPPED_PAGES = 1 << 22; // 16 GiB of L2 memory per L1
export const NPV_BATCH_ENTRY_SIZE = 24;
export const NPV_MAX_BATCH = 170; // entries in one 4 KiB page
export const NPV_CPUID_ENTRY_SIZE = 32;
export const NPV_MAX_CPUID_ENTRIES = 127;
export const NPV_MSR_ENTRY_SIZE = 16;
export const NPV_MAX_MSR_ENTRIES = 255;
export const NPV_MAX_BLK_DEVICES = 4;

// ---- Batch entry (24 bytes): u64 l2_gpa, u64 l1_gpa, u32 npages, u32 op_flags ----
export const NPV_BATCH_OP_MAP = 0;
export const NPV_BATCH_OP_UNMAP = 1;
export const NPV_BATCH_OP_PROTECT = 2;
/** op_flags: bits 3:0 op, bits 10:8 permissions. */
export const NPV_BATCH_PERM_SHIFT = 8;

// ---- CPUID policy entry (32 bytes): u32 leaf, u32 subleaf, u32 flags, u32 reserved, u32 eax, ebx, ecx, edx ----
export const NPV_CPUID_F_SUBLEAF = 1; // the entry matches only this subleaf

// ---- MSR policy entry (16 bytes): u32 index, u32 mode, u64 value ----
export const NPV_MSR_VALUE = 0; // L0 answers reads with `value`; writes update it
export const NPV_MSR_PASSTHROUGH = 1; // L2 owns the MSR (no exit): only for MSRs in NPV_PASSTHROUGH_OK
export const NPV_MSR_FORWARD = 2; // every access is forwarded to L1 (NPV_EXIT_MSR)

// ---- VCPU_CREATE initial-state page (L1 GPA, 4 KiB): ----
export const NPV_STATE_RIP = 0x00; // u64
export const NPV_STATE_RSP = 0x08;
export const NPV_STATE_RFLAGS = 0x10;
export const NPV_STATE_CR0 = 0x18;
export const NPV_STATE_CR3 = 0x20;
export const NPV_STATE_CR4 = 0x28;
export const NPV_STATE_EFER = 0x30;
export const NPV_STATE_GDTR_BASE = 0x38; // u64 base, then u16 limit at 0x40
export const NPV_STATE_GDTR_LIMIT = 0x40;
export const NPV_STATE_GPRS = 0x48; // u64[16] in ModRM order
export const NPV_STATE_CS_SEL = 0xc8; // u16 selectors: CS, SS, DS
export const NPV_STATE_SS_SEL = 0xca;
export const NPV_STATE_DS_SEL = 0xcc;
export const NPV_STATE_SIZE = 0xd0;

// ---- RUN page (L1 GPA, 4 KiB) ----
export const NPV_RUN_EXIT_REASON = 0x00; // u32 (NPV_EXIT_*)
export const NPV_RUN_FLAGS = 0x04; // u32: bit 0 = L1 changed GPRs/RIP (L0 reloads them)
export const NPV_RUN_RIP = 0x08; // u64
export const NPV_RUN_RFLAGS = 0x10; // u64
export const NPV_RUN_GPRS = 0x18; // u64[16]
export const NPV_RUN_CR0 = 0x98; // u64 (read-only snapshots)
export const NPV_RUN_CR3 = 0xa0;
export const NPV_RUN_CR4 = 0xa8;
export const NPV_RUN_EFER = 0xb0;
export const NPV_RUN_INSN_LEN = 0xb8; // u32: length of the exiting instruction (L1 advances RIP)
export const NPV_RUN_DATA = 0xc0; // exit-specific data, below
export const NPV_RUN_F_REGS_DIRTY = 1;
// IO: u16 port @+0, u8 size @+2, u8 direction @+3 (1 = in), u32 value @+4
// MMIO: u64 l2_gpa @+0, u8 size @+8, u8 is_write @+9, u64 value @+16
// MEMORY_FAULT: u64 l2_gpa @+0, u32 access @+8 (NPV_PERM_* of the access)
// MSR: u32 index @+0, u8 is_write @+4, u64 value @+8
// HYPERCALL: (the L2's registers are in GPRS)
// SHUTDOWN / MODE / HALT: u32 detail @+0
export const NPV_RUN_DATA_SIZE = 0x40;

export const NPV_EXIT_NONE = 0;
export const NPV_EXIT_IO = 1;
export const NPV_EXIT_MMIO = 2;
export const NPV_EXIT_MEMORY_FAULT = 3;
export const NPV_EXIT_MSR = 4;
export const NPV_EXIT_HYPERCALL = 5;
export const NPV_EXIT_HALT = 6; // L2 halted with nothing that can wake it
export const NPV_EXIT_SHUTDOWN = 7; // L2 triple-faulted; the vCPU is stopped
export const NPV_EXIT_MODE = 8; // L2 left 64-bit long mode; the vCPU is stopped
export const NPV_EXIT_BLK_ERROR = 9; // a mediated device met a malformed queue; it is stopped
export const NPV_EXIT_TIMESLICE = 10; // L0 returned to L1 after a scheduling slice (nothing to handle)

export const NPV_EXIT_NAMES: Record<number, string> = {
  0: "none",
  1: "io",
  2: "mmio",
  3: "memory_fault",
  4: "msr",
  5: "hypercall",
  6: "halt",
  7: "shutdown",
  8: "mode",
  9: "blk_error",
  10: "timeslice",
};

// ---- BLK_SETUP descriptor (L1 GPA, 64 bytes) ----
export const NPV_BLK_MMIO_GPA = 0x00; // u64: L2 GPA of the virtio-mmio window (notify at +0x50)
export const NPV_BLK_QUEUE_SIZE = 0x08; // u32: entries (power of two, <= 1024)
export const NPV_BLK_BACKEND = 0x0c; // u32: backend id L0 assigned to this L1
export const NPV_BLK_DESC_GPA = 0x10; // u64: L2 GPAs of the split-ring areas
export const NPV_BLK_AVAIL_GPA = 0x18;
export const NPV_BLK_USED_GPA = 0x20;
export const NPV_BLK_IRQ_VECTOR = 0x28; // u32: vector to inject into L2 on completion, 0 = none
export const NPV_BLK_IRQ_TYPE = 0x2c; // u32: how the vector is delivered (NPV_BLK_IRQ_FIXED / _EXTINT)
/** Through L2's LAPIC (IRR/ISR): L2 EOIs it at its LAPIC, as any fixed interrupt. */
export const NPV_BLK_IRQ_FIXED = 0;
/** As an 8259's interrupt through LINT0 in virtual-wire mode (ExtINT): injected directly, never in
 * L2's LAPIC IRR/ISR; L2 acknowledges it at its PIC, which L1 emulates. */
export const NPV_BLK_IRQ_EXTINT = 1;
export const NPV_BLK_FEATURES = 0x30; // u64: negotiated virtio features
export const NPV_BLK_DESC_SIZE = 0x38;

// ---- INJECT: RBX vcpu, RCX vector (32..255), RDX type (0 = external interrupt) ----
export const NPV_INJECT_EXTERNAL = 0;
