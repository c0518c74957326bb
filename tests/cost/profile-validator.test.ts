import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { loadProfile } from "../../src/cost/profile.js";
import { validate } from "../../src/cost/profile-validate.generated.js";
import { packageRoot } from "../../src/paths.js";
import { GENERATED_VALIDATOR, profileValidatorSource } from "../../tools/gen-profile-validator.js";

describe("the cost-profile validator generated ahead of time", () => {
  it("is what tools/gen-profile-validator.ts makes from profile-schema.json now", () => {
    const committed = readFileSync(join(packageRoot(), GENERATED_VALIDATOR), "utf8");
    expect(committed).toBe(profileValidatorSource());
  });

  it("accepts and rejects what Ajv compiling the schema at run time does, with the same errors", () => {
    const schema = JSON.parse(readFileSync(join(packageRoot(), "src", "cost", "profile-schema.json"), "utf8"));
    const live = new Ajv({ allErrors: true }).compile(schema);
    const good = structuredClone(loadProfile("cascadelake-kvm").profile);
    const docs: unknown[] = [good, {}, null, 7, { ...good, name: "Bad Name" }, { ...good, extra: 1 }];
    const shortSource = structuredClone(good);
    shortSource.costs["insn.base"].source = "ab";
    const surrogates = structuredClone(good);
    surrogates.costs["insn.base"].source = "\u{1F600}\u{1F600}"; // 2 code points, 4 UTF-16 units
    const slowInsn = structuredClone(good);
    slowInsn.costs["insn.base"].cycles = 101;
    docs.push(shortSource, surrogates, slowInsn);
    const verdicts: boolean[] = [];
    for (const doc of docs) {
      const v = validate as unknown as ((d: unknown) => boolean) & { errors?: unknown };
      const ok = v(doc);
      expect(ok).toBe(live(doc));
      expect(v.errors ?? null).toEqual(live.errors ?? null);
      verdicts.push(ok);
    }
    expect(verdicts).toEqual([true, false, false, false, false, false, false, false, false]);
  });
});
