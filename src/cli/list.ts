/** `nestlab list`: stacks, workloads, cost profiles and every cost primitive with its source. */
import { bundledProfiles, DEFAULT_PROFILE, type ProfileSpec } from "../cost/profile.js";
import { profileInfo } from "../report/profile-info.js";
import { SELF_TESTS, SUITE, WORKLOAD_DESCRIPTIONS, WORKLOADS } from "../report/workloads.js";
import { STACKS } from "../stacks/index.js";

export function listDocument() {
  const profiles = bundledProfiles().map((name) => profileInfo(name));
  return {
    stacks: [...STACKS.values()].map((s) => ({ name: s.name, description: s.description })),
    workloads: WORKLOADS.map((name) => ({
      name,
      description: WORKLOAD_DESCRIPTIONS[name],
      inSuite: SUITE.includes(name),
    })),
    selfTests: Object.entries(SELF_TESTS).map(([name, description]) => ({ name, description })),
    defaultProfile: DEFAULT_PROFILE,
    profiles: profiles.map((p) => ({ name: p.name, description: p.description, cpu: p.cpu, ghz: p.ghz })),
    primitives: profiles[0].primitives.map((x) => ({
      name: x.name,
      what: x.what,
      costs: Object.fromEntries(
        profiles.map((p) => {
          const c = p.primitives.find((y) => y.name === x.name)!;
          return [p.name, { cycles: c.cycles, source: c.source }];
        }),
      ),
    })),
  };
}

export function listCommand(opts: { json?: boolean; profile?: ProfileSpec }): string {
  if (opts.json) return `${JSON.stringify(listDocument(), null, 2)}\n`;
  const out: string[] = [];
  const rows = (xs: [string, string][]) => {
    const w = Math.max(...xs.map(([a]) => a.length));
    for (const [a, b] of xs) out.push(`  ${a.padEnd(w)}  ${b}`);
  };
  out.push("Stacks (--stack, --stacks):");
  rows([...STACKS.values()].map((s) => [s.name, s.description]));
  out.push("", "Workloads (--workload, --workloads; * = in compare's default suite):");
  rows(WORKLOADS.map((w) => [`${w}${SUITE.includes(w) ? " *" : ""}`, WORKLOAD_DESCRIPTIONS[w]]));
  out.push("", "Self-tests of the guest's failure paths (--workload):");
  rows(Object.entries(SELF_TESTS));
  out.push("", "Cost profiles (--profile NAME or a path to a JSON file):");
  rows(
    bundledProfiles().map((name) => {
      const p = profileInfo(name);
      return [`${name}${name === DEFAULT_PROFILE ? " (default)" : ""}`, `${p.cpu}, ${p.ghz} GHz: ${p.description}`];
    }),
  );
  const p = profileInfo(opts.profile);
  out.push("", `Cost primitives (cycles in ${p.name}; --profile NAME shows another; list --json has every profile):`);
  const w = Math.max(...p.primitives.map((x) => x.name.length));
  for (const x of p.primitives) {
    out.push(`  ${x.name.padEnd(w)}  ${String(x.cycles).padStart(6)}  ${x.what}`);
    out.push(`  ${"".padEnd(w)}          source: ${x.source}`);
  }
  return `${out.join("\n")}\n`;
}
