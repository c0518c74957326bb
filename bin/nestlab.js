#!/usr/bin/env node
// The CLI runs from its bundle, dist/cli/ (built by `npm install` / `npm ci` through the prepare
// script, or `npm run build`): a few files instead of ~190 modules, most of a short command's
// start-up (README.md, "Where the CLI's code comes from").
let cli;
try {
  cli = await import("../dist/cli/main.js");
} catch (e) {
  if (e && e.code === "ERR_MODULE_NOT_FOUND" && String(e.message).includes("dist/cli/main.js")) {
    console.error("nestlab: the project is not built yet; run `npm install` (or `npm run build`) first.");
    process.exit(2);
  }
  throw e;
}
process.exitCode = await cli.main(process.argv);
// Leave once the command is done (every command awaits its own work; stdout and stderr writes are
// synchronous): Node would otherwise wait for V8's background jobs, optimizing compiles the
// simulation queued, before exiting, 20-40 ms of a short run. After the immediate, so an output
// error of the last write (EPIPE) still ends with its own code (src/cli/output.ts).
setImmediate(() => process.exit());
