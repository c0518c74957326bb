/** What one run reports: its JSON document and the summary printed after the guest's console. */
import { NPV_HC_NAMES } from "../hypervisors/npv-abi.js";
import type { StackRunResult } from "../stacks/stack.js";

export function runJson(r: StackRunResult, cmdline: string): object {
  return {
    stack: r.stack,
    protocol: r.protocol,
    cmdline,
    outcome: r.outcome,
    exitStatus: r.exitStatus,
    results: r.guest.results.map((x) => x.fields),
    failures: r.guest.failures.map((x) => x.fields),
    instructions: r.instructions,
    cycles: r.cycles,
    counters: r.counters,
    exits: r.exits,
    ledger: r.ledger,
    wallSeconds: Number(r.wallSeconds.toFixed(3)),
  };
}

const num = (n: number) => n.toLocaleString("en-US");

/**
 * Nested stacks that report `npv.l2_exits.{l0,l1}.<reason>` and `npv.hypercalls.<name>`: L2's exits
 * handled by L0 alone vs forwarded to L1, and L1's hypercalls to L0 by number.
 */
export function npvSummary(counters: Record<string, number>): string {
  const pick = (prefix: string) =>
    Object.entries(counters)
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, v]) => [k.slice(prefix.length), v] as [string, number])
      .sort((a, b) => b[1] - a[1]);
  const alone = pick("npv.l2_exits.l0.");
  const fwd = pick("npv.l2_exits.l1.");
  const hc = pick("npv.hypercalls.");
  if (alone.length === 0 && fwd.length === 0 && hc.length === 0) return "";
  const total = (xs: [string, number][]) => xs.reduce((n, [, v]) => n + v, 0);
  const list = (xs: [string, number][]) => xs.map(([k, v]) => `${k} ${num(v)}`).join(", ") || "none";
  const nr = new Map(Object.entries(NPV_HC_NAMES).map(([n, name]) => [name, Number(n)]));
  const hcs = hc.map(([k, v]) => [nr.has(k) ? `0x${nr.get(k)!.toString(16)} ${k}` : k, v] as [string, number]);
  return (
    `   L2 exits handled by L0 alone: ${num(total(alone))} (${list(alone)})\n` +
    `   L2 exits forwarded to L1:     ${num(total(fwd))} (${list(fwd)})\n` +
    `   L1→L0 hypercalls:             ${num(total(hcs))} (${list(hcs)})\n`
  );
}

/** The summary `run` prints after the console: outcome, speed, counters, where the cycles went. */
export function runSummary(r: StackRunResult, ledgerLines = 20): string {
  const out: string[] = [];
  const mips = r.instructions / Math.max(r.wallSeconds, 1e-9) / 1e6;
  out.push(`\n── nestlab: stack ${r.stack}, boot ${r.protocol}: ${r.outcome.message}\n`);
  out.push(
    `   ${num(r.instructions)} instructions, ${num(r.cycles)} simulated cycles, ${r.wallSeconds.toFixed(2)} s wall (${mips.toFixed(1)} MIPS)\n`,
  );
  const keys = Object.keys(r.counters).filter((k) => k !== "cpu.instructions" && k !== "cpu.cycles");
  for (const k of keys) out.push(`   ${k.padEnd(34)} ${num(r.counters[k])}\n`);
  out.push(npvSummary(r.counters));
  if (r.ledger && r.ledger.length > 0) {
    out.push("   where the cycles went (level/category/reason):\n");
    for (const l of r.ledger.slice(0, ledgerLines)) {
      out.push(
        `   L${l.level} ${`${l.category}/${l.reason}`.padEnd(30)} ${num(Math.round(l.cycles)).padStart(16)} cycles  ${num(l.count).padStart(10)} events\n`,
      );
    }
  }
  return out.join("");
}
