/** Run the built `nestlab` command as a user would (bin/nestlab.js → dist/cli/), building it first if stale. */
import { type SpawnSyncOptions, spawn, spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../src/paths.js";

const root = packageRoot();
export const BIN = join(root, "bin", "nestlab.js");

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

let built = false;
/** CI builds through `npm ci` (prepare); a developer's edit since the last build is compiled here. */
export function ensureBuilt(): void {
  if (built) return;
  const main = join(root, "dist", "cli", "main.js"); // the bundle, made after tsc's output
  let stale = true;
  try {
    stale = statSync(main).mtimeMs < newestMtime(join(root, "src"));
  } catch {
    stale = true;
  }
  if (stale) {
    for (const [cmd, args] of [
      ["npx", ["tsc", "-p", "tsconfig.json"]],
      [process.execPath, [join(root, "dist", "tools", "build-cli.js")]],
    ] as const) {
      const r = spawnSync(cmd, args, { cwd: root, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`build failed: ${r.stdout}${r.stderr}`);
    }
  }
  built = true;
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function nestlab(args: string[], opts: SpawnSyncOptions = {}): CliResult {
  ensureBuilt();
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: root, encoding: "utf8", ...opts });
  return { status: r.status, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
}

/** As `nestlab`, without blocking the test's event loop (long runs: vitest's worker RPC must get through). */
export function nestlabAsync(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  ensureBuilt();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: root, env: opts.env ?? process.env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}
