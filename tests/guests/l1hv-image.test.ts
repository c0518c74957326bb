/**
 * The committed L1 hypervisor image (guests/images/l1hv.elf) is what its sources build: a rebuild
 * with the system toolchain into a temporary directory gives the same bytes. Skipped when make/gcc
 * cannot build it here.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";

function rebuild(): Uint8Array | null {
  const dir = mkdtempSync(join(tmpdir(), "nestlab-l1hv-"));
  try {
    const out = join(dir, "l1hv.elf");
    execFileSync("make", ["-s", "-C", join(packageRoot(), "guests"), "l1hv", `BUILD=${dir}`, `L1HV_OUT=${out}`], {
      stdio: "pipe",
    });
    return new Uint8Array(readFileSync(out));
  } catch {
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const built = rebuild();

describe.skipIf(built === null)("guests/images/l1hv.elf", () => {
  it("matches a rebuild from guests/l1hv and the shared guest-kernel sources", { timeout: 60_000 }, () => {
    const committed = new Uint8Array(readFileSync(join(packageRoot(), "guests/images/l1hv.elf")));
    expect(built?.length).toBe(committed.length);
    expect(Buffer.compare(Buffer.from(built as Uint8Array), Buffer.from(committed))).toBe(0);
  });
});
