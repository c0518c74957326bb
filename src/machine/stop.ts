/**
 * Why a run stopped, the same record for every stack: the bare machine, a VM under L0, an L2
 * under an L1 (and each hypervisor's vCPU loop on the way).
 */
export type StopKind = "debug-exit" | "triple-fault" | "halted" | "instruction-limit" | "error";

export interface StopReason {
  kind: StopKind;
  /** Debug-exit status ((value << 1) | 1) when kind is debug-exit. */
  status?: number;
  /** A one-line human explanation (what the guest did, where). */
  message: string;
}
