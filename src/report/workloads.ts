/** The bundled guest kernel's workloads (docs/guest-kernel.md) and how to ask for one. */

/** Workloads the bundled kernel knows. */
export const WORKLOADS = [
  "syscall",
  "pagefault",
  "fork",
  "ctxsw",
  "exec",
  "cpuid",
  "msr",
  "wrmsr",
  "exception",
  "pio",
  "io",
  "tlb",
  "compute",
  "all",
] as const;

/** One line per workload: what one iteration does (docs/guest-kernel.md has the full table). */
export const WORKLOAD_DESCRIPTIONS: Readonly<Record<(typeof WORKLOADS)[number], string>> = {
  syscall: "getpid() from ring 3: a SYSCALL/SYSRET round trip",
  pagefault: "first write to a fresh demand-paged anonymous page (#PF, allocate, zero, map)",
  fork: "fork, the child dirties its stack (copy-on-write) and exits, the parent waits",
  ctxsw: "1-byte ping-pong over two pipes: 2 context switches (2 CR3 writes), 4 syscalls",
  exec: "exec: build a new address space, tear down the old, fault in a stack page",
  cpuid: "CPUID leaf 0 in the kernel",
  msr: "RDMSR IA32_APIC_BASE in the kernel",
  wrmsr: "WRMSR IA32_APIC_BASE with its current value",
  exception: "UD2 → #UD → the handler skips it → IRETQ",
  pio: "OUTB to port 0x80",
  io: "virtio-blk: write 8 sectors, read them back, compare",
  tlb: "one read at a random page of an 8 MiB working set",
  compute: "integer work: LCG fill, heapsort, CRC32, FNV mix of 1024 words",
  all: "every workload above, in order",
};

/** The suite `compare` runs by default: every workload that reports one RESULT (not wrmsr, not all). */
export const SUITE: string[] = WORKLOADS.filter((w) => w !== "wrmsr" && w !== "all");

/** Every workload that reports one RESULT, wrmsr too: what each stack's own tests run (not `all`). */
export const EVERY_WORKLOAD: string[] = WORKLOADS.filter((w) => w !== "all");

/** The kernel's self-tests of its failure paths (not in `all`): they make the guest report failure. */
export const SELF_TESTS: Readonly<Record<string, string>> = {
  crash: "kernel write to an unmapped address: PANIC, the guest writes 1 to the debug-exit port",
  segv: "user write to an unmapped address: FAIL name=segv, the guest writes 1 to the debug-exit port",
  kread:
    "user reads of kernel data and of the entry code: the #PF error codes show what the user page table maps (pti=on: kernel data not present)",
};

export class UnknownWorkloadError extends Error {}

/** Build the kernel command line for a bundled workload (comma-separated names allowed). */
export function workloadCmdline(workload: string, iters?: number, extra = ""): string {
  const known = new Set<string>([...WORKLOADS, ...Object.keys(SELF_TESTS)]);
  for (const w of workload.split(",")) {
    if (!known.has(w)) {
      throw new UnknownWorkloadError(`unknown workload "${w}"; known workloads: ${WORKLOADS.join(", ")}`);
    }
  }
  return [`workload=${workload}`, iters ? `iters=${iters}` : "", extra].filter(Boolean).join(" ");
}
