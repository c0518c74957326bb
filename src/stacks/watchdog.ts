/**
 * The run watchdog: the instruction limit alone cannot stop a run whose guest makes no progress
 * (an exit storm L0 answers without the guest retiring anything, a hypervisor loop that only
 * charges time). Every hypervisor-side charge (L0 and L1 handlers, transitions, idle time) goes
 * through `Cpu.charge`, which calls `Cpu.chargeWatch`; the watchdog checks there, so it needs no
 * hook in the run loops:
 * - a cycle limit: the simulated clock may not pass `maxCycles`;
 * - a no-progress check: `MAX_STALLED_CHARGES` charges in a row with no guest instruction retired;
 * - the clock must stay below 2^53 cycles, where a double stops counting every cycle and the
 *   simulated TSC would no longer be exact.
 * The cycles the CPU charges for instructions and walks do not pass through `charge`; those are
 * bounded by the instruction limit times the profile's bounded costs (profile-schema.json).
 */
import type { Cpu } from "../cpu/cpu.js";
import type { StackOutcome } from "./stack.js";

/** Default cycle limit: 100 G cycles (40 s simulated at 2.5 GHz; `all` on npv takes ~0.11 G). */
export const DEFAULT_MAX_CYCLES = 100e9;
/** The largest clock value a double holds exactly; the TSC model is exact below it. */
export const MAX_EXACT_CYCLES = 2 ** 53;
/** Hypervisor charges in a row with no guest instruction retired before the run is stopped. */
export const MAX_STALLED_CHARGES = 1_000_000;

const TSC_MESSAGE = "the simulated clock passed 2^53 cycles, where the simulated TSC stops being exact";

type LimitKind = "cycle-limit" | "no-progress" | "error";

class RunLimitReached extends Error {
  constructor(
    readonly kind: LimitKind,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Run `body` (a stack's run loop on `cpu`) under the watchdog. Returns its result, or the stop the
 * watchdog imposed. `maxCycles` above 2^53 is refused up front (RangeError).
 */
export function watchRun<T>(cpu: Cpu, maxCycles: number | undefined, body: () => T): T | StackOutcome {
  const limit = maxCycles ?? DEFAULT_MAX_CYCLES;
  if (!(limit > 0) || limit > MAX_EXACT_CYCLES) {
    throw new RangeError(`the cycle limit must be between 1 and 2^53 (${MAX_EXACT_CYCLES}), got ${limit}`);
  }
  const outer = cpu.chargeWatch;
  let lastIcount = cpu.icount;
  let stalled = 0;
  cpu.chargeWatch = function watchCharge(c: Cpu): void {
    if (outer !== null) outer(c);
    const now = c.cycles();
    if (now >= MAX_EXACT_CYCLES) throw new RunLimitReached("error", TSC_MESSAGE);
    if (now > limit) {
      throw new RunLimitReached(
        "cycle-limit",
        `cycle limit (${limit.toLocaleString("en-US")} cycles) reached after ${c.icount.toLocaleString("en-US")} guest instructions; raise --max-cycles if the run is legitimately long`,
      );
    }
    if (c.icount !== lastIcount) {
      lastIcount = c.icount;
      stalled = 0;
    } else if (++stalled >= MAX_STALLED_CHARGES) {
      throw new RunLimitReached(
        "no-progress",
        `no guest progress: ${MAX_STALLED_CHARGES.toLocaleString("en-US")} hypervisor charges in a row without a guest instruction retired (an exit storm or a hypervisor loop), at ${c.icount.toLocaleString("en-US")} instructions`,
      );
    }
  };
  try {
    const r = body();
    if (cpu.cycles() >= MAX_EXACT_CYCLES) {
      return { kind: "error", message: TSC_MESSAGE };
    }
    return r;
  } catch (e) {
    if (e instanceof RunLimitReached) return { kind: e.kind, message: e.message };
    throw e;
  } finally {
    cpu.chargeWatch = outer;
  }
}
