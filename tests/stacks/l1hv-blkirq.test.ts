/**
 * virtio-blk interrupts to L2 under the executed L1 (`blkirq=11` on L2's command line): L1's device
 * process raises the device's line on L2's 8259 (a DEVSYS_IRQ system call, QEMU's KVM_IRQ_LINE),
 * L1's in-kernel PIC model turns it into the vector L2's ICW2 gave, and the back end injects it
 * (through an interrupt window while L2 has IF = 0). L2 takes one interrupt per request, as on
 * the `vm` stack, and acknowledges it at the device (InterruptStatus read, InterruptACK write)
 * and at the PIC (EOI). Under npv, L0's mediated data path completes the request and injects the
 * vector L1 gave in BLK_SETUP, as ExtINT (docs/npv-abi.md).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";
import { bareL1Stack } from "../../src/stacks/bare-l1.js";
import { npvStack } from "../../src/stacks/npv.js";
import { nvmxStack } from "../../src/stacks/nvmx.js";
import type { Stack, StackRunResult } from "../../src/stacks/stack.js";
import { vmStack } from "../../src/stacks/vm.js";

const kernel = new Uint8Array(readFileSync(join(packageRoot(), "guests/images/kernel.elf")));
const ITERS = 8;

function run(stack: Stack, extra: string): StackRunResult {
  return stack.run({
    image: kernel,
    cmdline: `workload=io iters=${ITERS} tick=0 ${extra}`,
    memory: 64 * 1024 * 1024,
    maxInstructions: 200_000_000,
  });
}

/** The guest kernel's own count of block interrupts (its STATS line). */
function blkIrqs(r: StackRunResult): number {
  expect(r.outcome.kind, `${r.outcome.message}\n${r.serial}`).toBe("debug-exit");
  const m = r.serial.match(/STATS name=io .*blk_irqs=(\d+)/);
  expect(m, r.serial).not.toBeNull();
  return Number(m?.[1]);
}

describe("virtio-blk interrupts to L2 through L1's PIC (blkirq=11)", () => {
  it("vm: the reference — one interrupt per request (two requests per io iteration)", { timeout: 60_000 }, () => {
    expect(blkIrqs(run(vmStack, "blkirq=11"))).toBe(2 * ITERS);
  });

  for (const stack of [bareL1Stack, nvmxStack]) {
    it(`${stack.name}: L1 injects the same interrupts; polled without blkirq`, { timeout: 60_000 }, () => {
      const irq = run(stack, "blkirq=11");
      const polled = run(stack, "");
      expect(blkIrqs(irq)).toBe(2 * ITERS);
      expect(blkIrqs(polled)).toBe(0);
      // Each interrupt: an interrupt window (the request is issued with IF = 0), then the
      // handler's EOI to the master PIC (an OUT) beyond the polled run's exits.
      const c = (r: StackRunResult, k: string) => r.counters[`exits.L1.${k}`] ?? 0;
      expect(c(irq, "interrupt_window") - c(polled, "interrupt_window")).toBe(2 * ITERS);
    });
  }

  it("npv: L0's mediated data path injects BLK_SETUP's vector as ExtINT; polled without blkirq", {
    timeout: 60_000,
  }, () => {
    const irq = run(npvStack, "blkirq=11");
    const polled = run(npvStack, "");
    expect(blkIrqs(irq)).toBe(2 * ITERS);
    expect(blkIrqs(polled)).toBe(0);
    // L1 handles no request either way: the interrupts come from L0 (one queue re-hand-over when
    // L2 unmasks the line: BLK_TEARDOWN + BLK_SETUP, two more hypercalls).
    expect(irq.counters["npv.l2_interrupts_injected"] - (polled.counters["npv.l2_interrupts_injected"] ?? 0)).toBe(
      2 * ITERS,
    );
  });
});
