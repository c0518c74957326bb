/**
 * Bundle the CLI (dist/cli/): tsc's output for the CLI entry and the cell-pool worker, bundled by
 * esbuild into a few ES modules that share chunks, so that a process loads a handful of files
 * instead of resolving and compiling ~190 modules one by one (the bulk of a short command's wall
 * time; see "Where the CLI's code comes from" in README.md). Packages stay in node_modules but
 * commander, which every command loads: bundled, it is not resolved and lexed as CommonJS by the
 * ESM loader at each start (its require() of Node's own modules goes through createRequire).
 * The entries keep their names, as code finds files beside itself: cell-pool.ts starts
 * `./cell-worker.js` relative to its own URL, paths.ts walks up to the package root.
 * `npm run build` runs this after tsc; bin/nestlab.js loads dist/cli/main.js.
 */
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { packageRoot } from "../src/paths.js";

/** Every script the CLI runs: the command itself and each worker thread it starts. */
export const CLI_ENTRIES = ["main", "cell-worker"] as const;

/** Packages bundled into the CLI rather than loaded from node_modules. */
const BUNDLED_PACKAGES = ["commander"];

export async function buildCli(outDir = join(packageRoot(), "dist", "cli")): Promise<string> {
  const compiled = join(packageRoot(), "dist", "src", "cli");
  const pkg = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8"));
  const external = Object.keys(pkg.dependencies).filter((p) => !BUNDLED_PACKAGES.includes(p));
  const { metafile } = await build({
    entryPoints: Object.fromEntries(CLI_ENTRIES.map((e) => [e, join(compiled, `${e}.js`)])),
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    external,
    // A bundled CommonJS package's require() of node:events & co. needs a real require in ESM.
    banner: {
      js: 'import { createRequire as __cliRequire } from "node:module";\nconst require = __cliRequire(import.meta.url);',
    },
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
