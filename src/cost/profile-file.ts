/** A cost profile given as a JSON file (`--profile FILE.json`): read and checked here, in Node. */
import { existsSync, readFileSync } from "node:fs";
import { bundledProfiles, type CostProfile, checkProfile, ProfileError, type ProfileSpec } from "./profile.js";

/** Read and check a profile file; the document is what the simulator is then given. */
export function readProfileFile(file: string): CostProfile {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ProfileError(`profile ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return checkProfile(doc, file).profile;
}

/** A bundled profile's name stays a name; an existing `.json` path becomes its checked document. */
export function resolveProfile(nameOrPath: string): ProfileSpec | undefined {
  if (bundledProfiles().includes(nameOrPath)) return nameOrPath;
  if (nameOrPath.endsWith(".json") && existsSync(nameOrPath)) return readProfileFile(nameOrPath);
  return undefined;
}
