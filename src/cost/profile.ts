/**
 * Cost profiles: the schema, the bundled profiles and their validation. No Node API here: the
 * bundled profiles are imported as modules, so the browser page's worker has them too; a profile
 * from a file is read by the CLI (profile-file.ts) and handed over as a parsed document.
 */
import { P, PRIMITIVES, type PrimitiveName } from "./primitives.js";
import { validate as validateGenerated } from "./profile-validate.generated.js";
import cascadelakeKvm from "./profiles/cascadelake-kvm.json" with { type: "json" };
import epycKvm from "./profiles/epyc-kvm.json" with { type: "json" };

export interface CostEntry {
  cycles: number;
  source: string;
}

/** One data-cache level of the profile's machine (src/mmu/data-cache.ts takes kib and ways). */
export interface CacheLevelEntry {
  kib: number;
  ways: number;
  source: string;
}

export interface CostProfile {
  name: string;
  description: string;
  machine: { cpu: string; ghz: number; hypervisor?: string };
  costs: Record<string, CostEntry>;
  /** Data-side caches the page walks go through; their latencies are the mmu.walk_* costs. */
  caches: { l1d: CacheLevelEntry; l2: CacheLevelEntry; llc: CacheLevelEntry };
}

/** A validated profile with costs in a flat array indexed by primitive (see `P`). */
export class LoadedProfile {
  readonly cycles: Float64Array;
  constructor(readonly profile: CostProfile) {
    this.cycles = new Float64Array(PRIMITIVES.length);
    for (const [name] of PRIMITIVES) this.cycles[P[name]] = profile.costs[name].cycles;
  }
  get name(): string {
    return this.profile.name;
  }
  get caches(): CostProfile["caches"] {
    return this.profile.caches;
  }
  cost(name: PrimitiveName): number {
    return this.cycles[P[name]];
  }
}

export class ProfileError extends Error {}

export const DEFAULT_PROFILE = "cascadelake-kvm";

/** The bundled profiles by file name (src/cost/profiles/NAME.json; a test checks every file is here). */
const BUNDLED: Readonly<Record<string, unknown>> = {
  "cascadelake-kvm": cascadelakeKvm,
  "epyc-kvm": epycKvm,
};

/** Names of the bundled profiles. */
export function bundledProfiles(): string[] {
  return Object.keys(BUNDLED).sort();
}

/** A profile as the simulator takes it: a bundled profile's name, or a parsed profile document. */
export type ProfileSpec = string | CostProfile;

/** The schema (profile-schema.json) compiled ahead of time by Ajv (tools/gen-profile-validator.ts). */
const validate = validateGenerated as unknown as {
  (doc: unknown): doc is CostProfile;
  errors?: { instancePath: string; message?: string }[] | null;
};

/** Validate a parsed profile: the schema, and exactly the declared primitives. */
export function checkProfile(doc: unknown, origin: string): LoadedProfile {
  if (!validate(doc)) {
    const msg = (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ");
    throw new ProfileError(`profile ${origin} is invalid: ${msg}`);
  }
  const names = new Set<string>(PRIMITIVES.map(([n]) => n));
  const missing = [...names].filter((n) => !(n in doc.costs));
  const unknown = Object.keys(doc.costs).filter((n) => !names.has(n));
  if (missing.length > 0) throw new ProfileError(`profile ${origin} lacks costs for: ${missing.join(", ")}`);
  if (unknown.length > 0) throw new ProfileError(`profile ${origin} has unknown primitives: ${unknown.join(", ")}`);
  return new LoadedProfile(doc);
}

/** A bundled profile's document as the simulator takes it, or undefined for an unknown name. */
export function bundledProfileDocument(name: string): unknown {
  return Object.hasOwn(BUNDLED, name) ? BUNDLED[name] : undefined;
}

/**
 * Load a bundled profile by name, or check a profile document (e.g. one the CLI read from a file).
 * A bundled profile is not validated again here: it is part of the program, and
 * tests/cost/profile.test.ts checks every bundled document with `checkProfile`; validating it on
 * every load cost each run ~10 ms of a cold validator (issue 11). A document from elsewhere (a
 * file, a sweep's scaled variant) is always checked.
 */
export function loadProfile(spec: ProfileSpec = DEFAULT_PROFILE): LoadedProfile {
  if (typeof spec !== "string") return checkProfile(spec, `"${String((spec as { name?: unknown }).name)}"`);
  const doc = bundledProfileDocument(spec);
  if (doc === undefined) {
    throw new ProfileError(
      `unknown profile "${spec}"; bundled profiles: ${bundledProfiles().join(", ")} (or give a path to a .json file)`,
    );
  }
  return new LoadedProfile(doc as CostProfile);
}
