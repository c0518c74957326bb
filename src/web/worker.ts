/**
 * The browser page's simulator: a Web Worker that runs one workload on one stack at a time, in
 * simulated time, and streams the guest console and live snapshots to the page. The guest image
 * is fetched as bytes next to this script; the cost profiles are bundled in.
 */
import { bundledProfiles, DEFAULT_PROFILE, loadProfile } from "../cost/profile.js";
import { WORKLOAD_DESCRIPTIONS, WORKLOADS, workloadCmdline } from "../report/workloads.js";
import { setGuestImageSource } from "../stacks/guest-images.js";
import { getStack, STACKS } from "../stacks/index.js";
import { LiveRecorder } from "./live-recorder.js";
import type { Catalog, RunRequest, RunSummary, WorkerMessage } from "./protocol.js";

/** The worker's global scope, as far as this file uses it. */
const scope = self as unknown as {
  postMessage(m: WorkerMessage): void;
  onmessage: ((e: MessageEvent<RunRequest>) => void) | null;
};
const post = (m: WorkerMessage) => scope.postMessage(m);

/** Guest RAM and limits: `run`'s defaults. */
const MEMORY = 256 * 1024 * 1024;
const MAX_INSTRUCTIONS = 2_000_000_000;

let kernel: Promise<Uint8Array> | undefined;
function fetchImage(file: string, what: string): Promise<Uint8Array> {
  return fetch(new URL(file, import.meta.url)).then(async (r) => {
    if (!r.ok) throw new Error(`cannot fetch ${what}: HTTP ${r.status}`);
    return new Uint8Array(await r.arrayBuffer());
  });
}

function kernelImage(): Promise<Uint8Array> {
  kernel ??= fetchImage("kernel.elf", "the guest kernel");
  return kernel;
}

/** The executed L1 hypervisor, for the nested stacks: fetched once, then served to them as bytes. */
let l1hv: Promise<Uint8Array> | undefined;
async function registerL1Image(): Promise<void> {
  l1hv ??= fetchImage("l1hv.elf", "the L1 hypervisor image");
  const bytes = await l1hv;
  setGuestImageSource((name) => (name === "l1hv" ? bytes : undefined));
}

function catalog(): Catalog {
  return {
    stacks: [...STACKS.values()].map((s) => ({ name: s.name, description: s.description })),
    workloads: WORKLOADS.map((name) => ({ name, description: WORKLOAD_DESCRIPTIONS[name] })),
    profiles: bundledProfiles(),
    defaultProfile: DEFAULT_PROFILE,
  };
}

async function run(req: RunRequest): Promise<void> {
  const image = await kernelImage();
  await registerL1Image();
  const profile = loadProfile(req.profile);
  let line = "";
  const rec = new LiveRecorder((snapshot) => {
    if (line !== "") {
      post({ type: "serial", text: line });
      line = "";
    }
    post({ type: "live", snapshot });
  });
  const r = getStack(req.stack).run({
    image,
    cmdline: workloadCmdline(req.workload, req.iters),
    memory: MEMORY,
    maxInstructions: MAX_INSTRUCTIONS,
    profile: req.profile,
    npvMap: req.npvMap,
    trace: rec,
    onSerial: (s) => {
      line += s;
      if (s === "\n") {
        post({ type: "serial", text: line });
        line = "";
      }
    },
  });
  if (line !== "") post({ type: "serial", text: line });
  const ok = r.exitStatus === 1 && r.guest.failures.length === 0;
  const message =
    r.outcome.kind === "debug-exit"
      ? ok
        ? "the guest reported success"
        : `the guest reported failure${r.guest.failures.map((f) => `: ${f.name} ${f.fields.reason ?? ""}`).join("")}`
      : `${r.outcome.kind}: ${r.outcome.message}`;
  const summary: RunSummary = {
    stack: req.stack,
    workload: req.workload,
    profile: profile.name,
    ghz: profile.profile.machine.ghz,
    outcome: r.outcome.kind,
    message,
    ok,
    cycles: r.cycles,
    instructions: r.instructions,
    exits: r.exits,
    ledger: r.ledger ?? [],
    wallSeconds: r.wallSeconds,
  };
  post({ type: "done", summary });
}

scope.onmessage = (e) => {
  run(e.data).catch((err: unknown) =>
    post({ type: "error", message: err instanceof Error ? err.message : String(err) }),
  );
};
post({ type: "catalog", catalog: catalog() });
