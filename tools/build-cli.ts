/**
 * Bundle the CLI (dist/cli/): tsc's output for the CLI entry and the cell-pool worker, bundled by
 * esbuild into a few ES modules that share chunks, so that a process loads a handful of files
 * instead of resolving and compiling ~190 modules one by one (the bulk of a short command's wall
 * time; see "Where the CLI's code comes from" in README.md). Packages stay external (node_modules).
 * The entries keep their names, as code finds files beside itself: cell-pool.ts starts
 * `./cell-worker.js` relative to its own URL, paths.ts walks up to the package root.
 * `npm run build` runs this after tsc; bin/nestlab.js loads dist/cli/main.js.
 */
import { readdirSync, rmSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { packageRoot } from "../src/paths.js";

/** Every script the CLI runs: the command itself and each worker thread it starts. */
export const CLI_ENTRIES = ["main", "cell-worker"] as const;

export async function buildCli(outDir = join(packageRoot(), "dist", "cli")): Promise<string> {
  const compiled = join(packageRoot(), "dist", "src", "cli");
  const { metafile } = await build({
    entryPoints: Object.fromEntries(CLI_ENTRIES.map((e) => [e, join(compiled, `${e}.js`)])),
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    outdir: outDir,
    logLevel: "warning",
    metafile: true,
  });
  // Chunks of an earlier build go (their names hash their content); the folder itself is never
  // emptied, so a CLI started meanwhile (tests build on demand, in parallel) finds its files.
  const made = new Set(Object.keys(metafile.outputs).map((f) => basename(f)));
  for (const f of readdirSync(outDir)) if (!made.has(f)) rmSync(join(outDir, f));
  return outDir;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await buildCli(process.argv[2]);
}
