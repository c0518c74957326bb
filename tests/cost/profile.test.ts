import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CostLedger } from "../../src/cost/ledger.js";
import { PRIMITIVES } from "../../src/cost/primitives.js";
import {
  bundledProfileDocument,
  bundledProfiles,
  checkProfile,
  loadProfile,
  ProfileError,
} from "../../src/cost/profile.js";
import { packageRoot } from "../../src/paths.js";

describe("cost profiles", () => {
  it("bundles an Intel and an AMD profile, each valid and complete", () => {
    expect(bundledProfiles()).toEqual(["cascadelake-kvm", "epyc-kvm"]);
    for (const name of bundledProfiles()) {
      // loadProfile trusts a bundled document without validating it (start-up cost, issue 11):
      // this check, on the very objects it loads, is what makes that safe.
      const checked = checkProfile(bundledProfileDocument(name), name);
      const p = loadProfile(name);
      expect(p.cycles.length).toBe(PRIMITIVES.length);
      expect([...p.cycles]).toEqual([...checked.cycles]);
      expect(p.profile).toBe(checked.profile);
    }
    expect(bundledProfileDocument("nope")).toBeUndefined();
    expect(bundledProfileDocument("toString")).toBeUndefined();
  });
  it("validates a profile given as a document, even one equal to a bundled profile", () => {
    const doc = structuredClone(bundledProfileDocument("cascadelake-kvm")) as { costs: Record<string, unknown> };
    delete doc.costs["vmx.exit"];
    expect(() => loadProfile(doc as never)).toThrow(/lacks costs for: vmx.exit/);
  });
  it("registers every profile file of src/cost/profiles (the browser bundle imports them as modules)", () => {
    const files = readdirSync(join(packageRoot(), "src", "cost", "profiles"))
      .filter((f) => f.endsWith(".json"))
      .map((f) => f.slice(0, -".json".length))
      .sort();
    expect(bundledProfiles()).toEqual(files);
    for (const name of files) expect(loadProfile(name).name).toBe(name);
  });
  it("composes the published CPUID round trip from its parts (1,350 cycles on the 8269CY)", () => {
    const p = loadProfile("cascadelake-kvm");
    expect(p.cost("vmx.exit") + p.cost("vmx.entry") + p.cost("l0.cpuid")).toBe(1350);
    expect(p.cost("vmx.exit") + p.cost("vmx.entry") + p.cost("l0.hypercall")).toBe(1150);
  });
  it("documents every primitive of every profile in docs/cost-model.md", () => {
    const doc = readFileSync(join(packageRoot(), "docs", "cost-model.md"), "utf8");
    for (const [name] of PRIMITIVES) expect(doc, name).toContain(`\`${name}\``);
  });
  it("rejects unknown profiles, missing costs, unknown primitives and bad values", () => {
    expect(() => loadProfile("nope")).toThrow(/unknown profile "nope".*cascadelake-kvm/);
    const good = JSON.parse(readFileSync(join(packageRoot(), "src/cost/profiles/cascadelake-kvm.json"), "utf8"));
    const missing = structuredClone(good);
    delete missing.costs["vmx.exit"];
    expect(() => checkProfile(missing, "t")).toThrow(/lacks costs for: vmx.exit/);
    const extra = structuredClone(good);
    extra.costs["foo.bar"] = { cycles: 1, source: "test" };
    expect(() => checkProfile(extra, "t")).toThrow(/unknown primitives: foo.bar/);
    const neg = structuredClone(good);
    neg.costs["vmx.exit"].cycles = -5;
    expect(() => checkProfile(neg, "t")).toThrow(ProfileError);
    const nosrc = structuredClone(good);
    delete nosrc.costs["vmx.exit"].source;
    expect(() => checkProfile(nosrc, "t")).toThrow(/source/);
  });
});

describe("cost ledger", () => {
  it("attributes charges by (level, category, reason) and totals them", () => {
    const l = new CostLedger();
    const a = l.id(0, "handler", "cpuid");
    const b = l.id(1, "guest", "instructions");
    expect(l.id(0, "handler", "cpuid")).toBe(a);
    l.add(a, 1090);
    l.add(a, 1090);
    l.addMany(b, 500, 500);
    expect(l.total()).toBe(2680);
    expect(l.lines()).toEqual([
      { level: 0, category: "handler", reason: "cpuid", cycles: 2180, count: 2 },
      { level: 1, category: "guest", reason: "instructions", cycles: 500, count: 500 },
    ]);
  });
});
