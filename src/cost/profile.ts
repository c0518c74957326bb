import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { Ajv } from "ajv";
import { packageRoot } from "../paths.js";
import { P, PRIMITIVES, type PrimitiveName } from "./primitives.js";

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

function profilesDir(): string {
  return join(packageRoot(), "src", "cost", "profiles");
}

/** Names of the bundled profiles. */
export function bundledProfiles(): string[] {
  return readdirSync(profilesDir())
    .filter((f) => f.endsWith(".json"))
    .map((f) => basename(f, ".json"))
    .sort();
}

const schema = JSON.parse(readFileSync(join(packageRoot(), "src", "cost", "profile-schema.json"), "utf8"));
const validate = new Ajv({ allErrors: true }).compile<CostProfile>(schema);

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

/** Load a bundled profile by name, or a JSON file by path. */
export function loadProfile(nameOrPath: string = DEFAULT_PROFILE): LoadedProfile {
  let file = join(profilesDir(), `${nameOrPath}.json`);
  if (!existsSync(file)) {
    if (nameOrPath.endsWith(".json") && existsSync(nameOrPath)) file = nameOrPath;
    else
      throw new ProfileError(
        `unknown profile "${nameOrPath}"; bundled profiles: ${bundledProfiles().join(", ")} (or give a path to a .json file)`,
      );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ProfileError(`profile ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return checkProfile(doc, file);
}
