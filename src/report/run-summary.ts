/** What one run reports: its JSON document and the summary printed after the guest's console. */
import type { StackRunResult } from "../stacks/stack.js";
import { eventsOf, exitsHandledBy } from "../stats/run-stats.js";
import { groupDigits as num } from "./group-digits.js";

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
    events: r.events,
    ledger: r.ledger,
    wallSeconds: Number(r.wallSeconds.toFixed(3)),
  };
}

/**
 * A run's nested-PV summary: L2's exits L0 handled alone vs forwarded to L1 (the exits L1
 * handled, numbered in the npv ABI's space), and L1's hypercalls to L0 by number. Empty for a
 * run without them.
 */
export function npvSummary(r: Pick<StackRunResult, "exits" | "events">): string {
  const byCount = (xs: [string, number][]) => xs.sort((a, b) => b[1] - a[1]);
  const alone = byCount(eventsOf(r.events, "npv.l2_exits.l0").map((e) => [e.name, e.count]));
  const fwd = byCount(
    exitsHandledBy(
      r.exits.filter((e) => e.space === "npv"),
      1,
    ).map((e) => [e.reason, e.count]),
  );
  const hcs = byCount(
    eventsOf(r.events, "npv.hypercalls").map((e) => [
      e.key === undefined ? e.name : `0x${e.key.toString(16)} ${e.name}`,
      e.count,
    ]),
  );
  if (alone.length === 0 && fwd.length === 0 && hcs.length === 0) return "";
  const total = (xs: [string, number][]) => xs.reduce((n, [, v]) => n + v, 0);
  const list = (xs: [string, number][]) => xs.map(([k, v]) => `${k} ${num(v)}`).join(", ") || "none";
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
  out.push(npvSummary(r));
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
