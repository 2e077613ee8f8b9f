/**
 * Serves the key-value HTTP API with `node:http` or `node:https` (the npm
 * build under Node; it also runs inside Deno, which is how it is tested).
 * Requests and responses are converted to and from the fetch API's
 * `Request`/`Response`, so {@linkcode KvHttpApi} is the same handler on
 * both runtimes. The body is streamed into the `Request`, so the API's
 * body limit, deadline and in-flight bound apply here too.
 *
 * @module
 */

import * as http from "node:http";
import * as https from "node:https";
import { Readable } from "node:stream";
import type { KvHttpApi, KvHttpServer, KvHttpTls } from "./http_api.ts";

/** Connection limits of the `node:http` server, ms (0: none). */
export interface KvHttpNodeLimits {
  /** Time to receive the complete request headers (`headersTimeout`). @default {10000} */
  headersTimeoutMs?: number;
  /** Time to receive the whole request, headers and body (`requestTimeout`). @default {30000} */
  requestTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open (`keepAliveTimeout`). @default {5000} */
  keepAliveTimeoutMs?: number;
  /** TLS certificate and key: serve HTTPS (`node:https`). */
  tls?: KvHttpTls;
}

/**
 * Listens on `hostname:port` (port 0: any free port) with `node:http`
 * (or `node:https` with `limits.tls`).
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
  limits: KvHttpNodeLimits = {},
): Promise<KvHttpServer> {
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    void handle(api, req, res, addr.hostname, limits.tls !== undefined);
  };
  const server = limits.tls === undefined
    ? http.createServer(listener)
    : https.createServer(
      { cert: limits.tls.cert, key: limits.tls.key },
      listener,
    );
  const requestTimeout = limits.requestTimeoutMs ?? 30_000;
  // node:http checks headersTimeout no more often than connectionsCheckingInterval.
  server.headersTimeout = Math.min(
    limits.headersTimeoutMs ?? 10_000,
    requestTimeout || Infinity,
  );
  server.requestTimeout = requestTimeout;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs ?? 5_000;
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

async function handle(
  api: KvHttpApi,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  hostname: string,
  secure: boolean,
): Promise<void> {
  try {
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) {
      if (typeof v === "string") headers.set(k, v);
      else if (Array.isArray(v)) { for (const x of v) headers.append(k, x); }
    }
    const method = req.method ?? "GET";
    const hasBody = method !== "GET" && method !== "HEAD";
    const init: RequestInit & { duplex?: "half" } = { method, headers };
    if (hasBody) {
      init.body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
      init.duplex = "half";
    }
    const request = new Request(
      `${secure ? "https" : "http"}://${req.headers.host ?? hostname}${
        req.url ?? "/"
      }`,
      init,
    );
    const response = await api.handle(request, {
      remoteAddr: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
    });
    const out: Record<string, string> = {};
    response.headers.forEach((v, k) => (out[k] = v));
    const bytes = new Uint8Array(await response.arrayBuffer());
    const unread = hasBody && !req.readableEnded;
    const socket = req.socket as typeof req.socket | null;
    if (unread) out["connection"] = "close";
    res.writeHead(response.status, out);
    res.end(bytes, () => {
      // A body the client is still sending (refused early: 408, 413, 503)
      // is not drained: the connection goes.
      if (unread) socket?.destroy();
    });
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
