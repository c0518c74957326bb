/**
 * The browser page end to end: `nestlab serve` serves a freshly built page, headless Chromium
 * loads it, and `cpuid` runs on `vm` and `npv` in the page's Web Worker. The RESULT line the page
 * shows and the counts it draws are those of the same run made here in Node (same image, stack,
 * profile: identical by determinism), so this checks the page's wiring, not the model's fidelity.
 * A screenshot is kept in tests/web/out/.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundledKernelPath } from "../../src/paths.js";
import { workloadCmdline } from "../../src/report/workloads.js";
import { getStack } from "../../src/stacks/index.js";
import { buildWeb } from "../../tools/build-web.js";
import { BIN, ensureBuilt, nestlabAsync } from "../cli/cli-helpers.js";
import { CHROMIUM, HAVE_CHROMIUM, launchChromium, pageWithErrors } from "../helpers/chromium.js";

if (!HAVE_CHROMIUM)
  console.warn(`page.test: skipped the browser checks: ${CHROMIUM} is not installed (apt-get install chromium)`);

const ITERS = 50;
const site = mkdtempSync(join(tmpdir(), "nestlab-web-"));
let server: ChildProcess | undefined;
let url = "";

/** Start `nestlab serve` on a free port and read the address it prints. */
function serve(dir: string): Promise<string> {
  const child = spawn(process.execPath, [BIN, "serve", "--dir", dir, "--port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  server = child;
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (b: Buffer) => {
      out += b.toString();
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.stderr?.on("data", (b: Buffer) => {
      out += b.toString();
    });
    child.on("exit", (code) => reject(new Error(`nestlab serve exited ${code}: ${out}`)));
  });
}

beforeAll(async () => {
  ensureBuilt();
  await buildWeb(site);
  url = await serve(site);
}, 120_000);

afterAll(() => {
  server?.kill("SIGTERM");
  rmSync(site, { recursive: true, force: true });
});

describe("nestlab serve", () => {
  it("serves the built page and its worker, and nothing outside the folder", async () => {
    const index = await fetch(url);
    expect(index.status).toBe(200);
    expect(await index.text()).toContain('<script type="module" src="page.js">');
    const worker = await fetch(`${url}worker.js`);
    expect(worker.headers.get("content-type")).toMatch(/javascript/);
    const kernel = new Uint8Array(await (await fetch(`${url}kernel.elf`)).arrayBuffer());
    expect(kernel).toEqual(new Uint8Array(readFileSync(bundledKernelPath())));
    expect((await fetch(`${url}..%2f..%2fetc%2fpasswd`)).status).toBe(404);
  });

  it("refuses a folder with no built page, saying how to build one", async () => {
    const empty = mkdtempSync(join(tmpdir(), "nestlab-empty-"));
    const r = await nestlabAsync(["serve", "--dir", empty, "--port", "0"]);
    rmSync(empty, { recursive: true });
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(
      /holds no built page \(index\.html and worker\.js\); build one with `node dist\/tools\/build-web\.js/,
    );
  });
});

describe.skipIf(!HAVE_CHROMIUM)("the browser page", () => {
  it("runs cpuid on vm and npv in its worker and draws the run's exits and ledger", async () => {
    const image = new Uint8Array(readFileSync(bundledKernelPath()));
    const { context, close } = await launchChromium();
    try {
      const { page, errors } = await pageWithErrors(context);
      await page.goto(url, { waitUntil: "load" });
      await page.waitForSelector("#run:not([disabled])", { timeout: 20_000 });
      // The choices come from the registries.
      const stacks = await page.$$eval("#stack option", (os) => os.map((o) => (o as HTMLOptionElement).value));
      expect(stacks).toEqual(expect.arrayContaining(["vm", "npv"]));
      for (const stack of ["vm", "npv"]) {
        await page.selectOption("#stack", stack);
        await page.selectOption("#workload", "cpuid");
        await page.fill("#iters", String(ITERS));
        await page.click("#run");
        await page.waitForSelector('#status[data-state="done"], #status[data-state="error"]', { timeout: 45_000 });
        expect(await page.textContent("#status")).toBe("done: the guest reported success");
        const shown = await page.evaluate(() => ({
          console: document.getElementById("console")?.textContent ?? "",
          live: Object.fromEntries(
            [...document.querySelectorAll<HTMLElement>("[data-exit]")].map((e) => [
              e.dataset.exit,
              Number(e.dataset.count),
            ]),
          ),
          handled: [...document.querySelectorAll<HTMLElement>("[data-handled]")].map((e) => ({
            key: e.dataset.handled,
            count: Number(e.dataset.count),
          })),
          ledger: Object.fromEntries(
            [...document.querySelectorAll<HTMLElement>("[data-ledger]")].map((e) => [
              e.dataset.ledger,
              Number(e.dataset.cycles),
            ]),
          ),
        }));
        const r = getStack(stack).run({
          image,
          cmdline: workloadCmdline("cpuid", ITERS),
          memory: 256 * 1024 * 1024,
          maxInstructions: 2_000_000_000,
        });
        const result = r.serial.split("\n").find((l) => l.startsWith("RESULT name=cpuid"));
        expect(result).toMatch(new RegExp(`^RESULT name=cpuid iterations=${ITERS} cycles=\\d+ cycles_per_iter=\\d+`));
        expect(shown.console.split("\n")).toContain(result);
        expect(shown.handled).toEqual(r.exits.map((e) => ({ key: `L${e.handledBy}.${e.reason}`, count: e.count })));
        // Live counts are by the guest that exited; each is an exit L0 handled first.
        const byReason: Record<string, number> = {};
        for (const [k, n] of Object.entries(shown.live)) {
          const reason = k.slice(k.indexOf(".") + 1);
          byReason[reason] = (byReason[reason] ?? 0) + n;
        }
        const l0: Record<string, number> = {};
        for (const e of r.exits) if (e.handledBy === 0) l0[e.reason] = (l0[e.reason] ?? 0) + e.count;
        expect(byReason).toEqual(l0);
        // The kernel's 50 measured CPUIDs and 2 of its own, taken by the guest the kernel runs as.
        expect(shown.live[stack === "vm" ? "L1.cpuid" : "L2.cpuid"]).toBe(ITERS + 2);
        const ledger: Record<string, number> = {};
        for (const l of r.ledger ?? [])
          ledger[`${l.level}/${l.category}`] = (ledger[`${l.level}/${l.category}`] ?? 0) + l.cycles;
        expect(shown.ledger).toEqual(ledger);
        expect(await page.locator("#timeline").boundingBox()).toMatchObject({ height: expect.any(Number) });
      }
      mkdirSync(join("tests", "web", "out"), { recursive: true });
      await page.setViewportSize({ width: 1200, height: 1400 });
      await page.screenshot({ path: join("tests", "web", "out", "page.png"), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 55_000);
});
