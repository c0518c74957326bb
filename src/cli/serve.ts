/**
 * `nestlab serve`: serve the built browser page (web/dist/, or any folder `--dir` names) over
 * HTTP on this machine. It only serves files: the simulation runs in the browser's Web Worker.
 */
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import sirv from "sirv";
import { packageRoot } from "../paths.js";
import { EXIT, InputError, UsageError } from "./exit-codes.js";
import { writeOut } from "./output.js";

export interface ServeOptions {
  port: number;
  host: string;
  dir?: string;
}

export const defaultWebDir = () => join(packageRoot(), "web", "dist");

/** Start serving; resolves with the server once it listens. */
export function startServer(opts: ServeOptions): Promise<{ server: Server; url: string; dir: string }> {
  const dir = opts.dir ?? defaultWebDir();
  if (!existsSync(join(dir, "index.html")) || !existsSync(join(dir, "worker.js"))) {
    throw new InputError(
      opts.dir === undefined
        ? `the browser page is not built (no ${dir}/index.html); run \`npm run build\` first`
        : `${dir} holds no built page (index.html and worker.js); build one with \`node dist/tools/build-web.js ${dir}\``,
    );
  }
  const files = sirv(dir, { dev: true, etag: true });
  const server = createServer((req, res) =>
    files(req, res, () => {
      res.statusCode = 404;
      res.end("not found");
    }),
  );
  return new Promise((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        e.code === "EADDRINUSE" || e.code === "EACCES"
          ? new UsageError(`cannot listen on ${opts.host}:${opts.port}: ${e.code}`)
          : e,
      ),
    );
    server.listen(opts.port, opts.host, () => {
      const a = server.address() as AddressInfo;
      const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
      resolve({ server, url: `http://${host}:${a.port}/`, dir });
    });
  });
}

/** Serve until Ctrl-C or SIGTERM, then close and exit 0. */
export async function serveCommand(opts: ServeOptions): Promise<number> {
  const { server, url, dir } = await startServer(opts);
  writeOut(`nestlab: serving ${dir} at ${url} (the simulator runs in the browser; Ctrl-C stops)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.removeListener("SIGINT", stop);
      process.removeListener("SIGTERM", stop);
      server.close(() => resolve());
      server.closeAllConnections();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  return EXIT.ok;
}
