/**
 * What L0's run/exit core and the ledger tell a timeline recorder. Hypervisors hold a
 * `TraceRecorder | null` and check it for null once per call site: with tracing off nothing is
 * built or allocated. Every time argument is implicit: the recorder reads the simulated clock.
 */
import type { ChargeObserver } from "../cost/ledger.js";

/** What a slice in L0's handling of an exit is. */
export type SliceCategory = "handler" | "hypercall" | "world-switch" | "engine";

export interface TraceRecorder extends ChargeObserver {
  /**
   * A vCPU's run loop starts (`vcpu` names it; `level` is the level of its code). It starts in
   * L0, preparing the first entry. A nested engine's run of an L2 starts inside its owner's exit.
   */
  runBegin(vcpu: object, level: number): void;
  /** That run loop returned: whatever ran before it resumes. */
  runEnd(): void;
  /** The running vCPU's guest is entered (nothing when it already runs). */
  entered(): void;
  /** A VM exit of the running vCPU: until the next entry the time is L0's, under this exit. */
  exited(reason: string): void;
  /** A slice inside L0's handling of the current exit (closed by `end`). */
  begin(category: SliceCategory, name: string): void;
  end(): void;
  /** An event (interrupt, exception) goes into the running vCPU at this entry. */
  injected(kind: string, vector: number): void;
}
