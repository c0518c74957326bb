/**
 * Before every test, let the worker's event loop turn once. Vitest's worker talks to the runner
 * over an RPC with a fixed 60 s reply timeout; a test file whose synchronous work (simulations,
 * spawnSync of the CLI) adds up past 60 s without the loop reaching its poll phase loses the
 * reply and the run ends with "Timeout calling onTaskUpdate" although every test passed.
 * setImmediate runs after the poll phase, so pending replies are read between tests.
 */
import { beforeEach } from "vitest";

beforeEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
