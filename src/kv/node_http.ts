/**
 * Serves the key-value HTTP API with `node:http` (the npm build under Node;
 * it also runs inside Deno, which is how it is tested). Requests and
 * responses are converted to and from the fetch API's `Request`/`Response`,
 * so {@linkcode KvHttpApi} is the same handler on both runtimes.
 *
 * @module
 */

import * as http from "node:http";
import { Buffer } from "node:buffer";
import type { KvHttpApi, KvHttpServer } from "./http_api.ts";

/**
 * Listens on `hostname:port` (port 0: any free port) with `node:http`.
 *
 * @example
 * ```ts ignore
 * const server = await serveKvHttpNode(api, { hostname: "127.0.0.1", port: 0 });
 * console.log(server.address);
 * await server.shutdown();
 * ```
 */
export function serveKvHttpNode(
  api: KvHttpApi,
  addr: { hostname: string; port: number },
): Promise<KvHttpServer> {
  const server = http.createServer((req, res) => {
    void handle(api, req, res, addr.hostname);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: addr.hostname, port: addr.port }, () => {
      server.off("error", reject);
      const a = server.address();
      const port = typeof a === "object" && a !== null ? a.port : addr.port;
      const host = addr.hostname.includes(":")
        ? `[${addr.hostname}]`
        : addr.hostname;
      resolve({
        address: `${host}:${port}`,
        shutdown: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

async function readBody(
  req: http.IncomingMessage,
  limit: number,
): Promise<Uint8Array | "too large"> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req) {
    const c = chunk as Uint8Array;
    size += c.byteLength;
    if (size > limit) return "too large";
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

async function handle(
  api: KvHttpApi,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  hostname: string,
): Promise<void> {
  try {
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) {
      if (typeof v === "string") headers.set(k, v);
      else if (Array.isArray(v)) { for (const x of v) headers.append(k, x); }
    }
    const method = req.method ?? "GET";
    let body: Uint8Array<ArrayBuffer> | undefined;
    if (method !== "GET" && method !== "HEAD") {
      // The API enforces its own limit; cap what is buffered here just above the largest sane limit.
      const read = await readBody(req, 64 * 1024 * 1024);
      if (read === "too large") {
        res.writeHead(413, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            error: { code: "BODY_TOO_LARGE", message: "the body is too large" },
          }),
        );
        return;
      }
      body = new Uint8Array(read);
    }
    const request = new Request(
      `http://${req.headers.host ?? hostname}${req.url ?? "/"}`,
      { method, headers, body },
    );
    const response = await api.handle(request);
    const out: Record<string, string> = {};
    response.headers.forEach((v, k) => (out[k] = v));
    const bytes = new Uint8Array(await response.arrayBuffer());
    res.writeHead(response.status, out);
    res.end(bytes);
  } catch (e) {
    if (!res.headersSent) {
      res.writeHead(500, { "content-type": "application/json" });
    }
    res.end(
      JSON.stringify({
        error: {
          code: "INTERNAL",
          message: e instanceof Error ? e.message : String(e),
        },
      }),
    );
  }
}
