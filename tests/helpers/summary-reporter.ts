import type { Reporter, TestModule } from "vitest/node";

/** Ends the run with the plain `N passed, N failed` line CI reads (and `, N skipped`). */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of testModules) {
      for (const t of m.children.allTests()) {
        const s = t.result().state;
        if (s === "passed") passed++;
        else if (s === "failed") failed++;
        else skipped++;
      }
      // A file that failed to load counts as a failure.
      if (m.state() === "failed" && [...m.children.allTests()].length === 0) failed++;
    }
    const line = `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`;
    // Printed at process exit so it is the very last line, after vitest's own summary.
    process.once("exit", () => process.stdout.write(`\n${line}\n`));
  }
}
