#!/usr/bin/env node
// The compiled CLI lives in dist/ (built by `npm install` / `npm ci` through the prepare script).
let cli;
try {
  cli = await import("../dist/src/cli/main.js");
} catch (e) {
  if (e && e.code === "ERR_MODULE_NOT_FOUND" && String(e.message).includes("dist/src/cli/main.js")) {
    console.error("nestlab: the project is not built yet; run `npm install` (or `npm run build`) first.");
    process.exit(2);
  }
  throw e;
}
process.exitCode = await cli.main(process.argv);
