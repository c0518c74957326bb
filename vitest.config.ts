import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    testTimeout: 120_000,
    setupFiles: ["./tests/helpers/yield-setup.ts", "./tests/helpers/node-images-setup.ts"],
    reporters: ["default", "./tests/helpers/summary-reporter.ts"],
  },
});
