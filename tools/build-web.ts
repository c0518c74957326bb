/**
 * Build the browser page into a folder a user can host anywhere (default web/dist/): the page and
 * its simulator worker bundled by esbuild, the HTML and CSS of web/, and the bundled guest kernel
 * and L1 hypervisor images, which the worker fetches as bytes. `npm run build` runs this after tsc.
 */
import { copyFileSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { bundledImagePath } from "../src/node-images.js";
import { bundledKernelPath, packageRoot } from "../src/paths.js";

export async function buildWeb(outDir = join(packageRoot(), "web", "dist")): Promise<string> {
  const root = packageRoot();
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: { page: join(root, "src", "web", "page.ts"), worker: join(root, "src", "web", "worker.ts") },
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    outdir: outDir,
    logLevel: "warning",
  });
  for (const f of ["index.html", "style.css"]) copyFileSync(join(root, "web", f), join(outDir, f));
  copyFileSync(bundledKernelPath(), join(outDir, "kernel.elf"));
  copyFileSync(bundledImagePath("l1hv"), join(outDir, "l1hv.elf"));
  return outDir;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const out = await buildWeb(process.argv[2]);
  process.stdout.write(`web page built in ${out}\n`);
}
