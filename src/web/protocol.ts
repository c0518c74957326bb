/** What the browser page and its simulator worker say to each other (structured-clone messages). */
import type { LedgerLine } from "../cost/ledger.js";
import type { ExitCount } from "../stacks/stack.js";
import type { LiveSnapshot } from "./live-recorder.js";

export interface Catalog {
  stacks: { name: string; description: string }[];
  workloads: { name: string; description: string }[];
  profiles: string[];
  defaultProfile: string;
}

/** Page → worker: run one workload on one stack. */
export interface RunRequest {
  type: "run";
  stack: string;
  workload: string;
  profile: string;
  /** Iterations (default: the workload's own). */
  iters?: number;
  npvMap: "eager" | "demand";
}

/** How a run ended, as the page shows it when the worker is done. */
export interface RunSummary {
  stack: string;
  workload: string;
  profile: string;
  ghz: number;
  /** "debug-exit", "triple-fault", "cycle-limit", … */
  outcome: string;
  /** The guest's verdict (success, failure) or why the run stopped. */
  message: string;
  ok: boolean;
  cycles: number;
  instructions: number;
  /** Exits by the level that handled them (0: L0; 1: forwarded to L1) and took them, as `run` reports them. */
  exits: ExitCount[];
  ledger: LedgerLine[];
  wallSeconds: number;
}

export type WorkerMessage =
  | { type: "catalog"; catalog: Catalog }
  | { type: "serial"; text: string }
  | { type: "live"; snapshot: LiveSnapshot }
  | { type: "done"; summary: RunSummary }
  | { type: "error"; message: string };
