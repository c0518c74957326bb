/** A cost profile as reports show it: machine, clock, and every primitive with its value and source. */

import { PRIMITIVES } from "../cost/primitives.js";
import { loadProfile, type ProfileSpec } from "../cost/profile.js";
import type { CompareProfileInfo } from "./compare-doc.js";

export function profileInfo(spec?: ProfileSpec): CompareProfileInfo {
  const p = loadProfile(spec).profile;
  return {
    name: p.name,
    description: p.description,
    cpu: p.machine.cpu,
    ghz: p.machine.ghz,
    primitives: PRIMITIVES.map(([name, what]) => ({
      name,
      what,
      cycles: p.costs[name].cycles,
      source: p.costs[name].source,
    })),
  };
}
