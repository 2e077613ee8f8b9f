import assert from "node:assert/strict";
import type { Message } from "../../src/core/messages.ts";
import { MemoryNetwork } from "../../src/transport/memory_network.ts";
import { serveKvHttp } from "../../src/kv/http_api.ts";
import { serveKvHttpNode } from "../../src/kv/node_http.ts";
import { call, startKvTestNode, stopKvTestNode } from "./helpers.ts";

const BACKENDS = ["deno", "node"] as const;

/** A one-node cluster whose API is served by `backend`, with tight limits. */
async function startNode(
  backend: "deno" | "node",
  limits: { bodyTimeoutMs?: number; maxInflightBytes?: number },
) {
  const net = new MemoryNetwork<Message>();
  const n = await startKvTestNode(net, 1, [1], limits);
  await n.server.waitForLeader({ ready: true });
  const http = backend === "deno"
    ? serveKvHttp(n.api, { hostname: "127.0.0.1", port: 0 })
    : await serveKvHttpNode(n.api, { hostname: "127.0.0.1", port: 0 });
  const [hostname, port] = http.address.split(":");
  return {
    n,
    url: `http://${http.address}`,
    hostname,
    port: Number(port),
    stop: async () => {
      await http.shutdown();
      await stopKvTestNode(n);
      await net.close();
    },
  };
}

/** Opens a connection and sends request headers and `first` body bytes, never the rest. */
async function openStalledRequest(
  hostname: string,
  port: number,
  headers: string,
  first: string,
): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname, port });
  await conn.write(
    new TextEncoder().encode(
      `PUT /kv/stalled HTTP/1.1\r\nHost: ${hostname}:${port}\r\n${headers}\r\n${first}`,
    ),
  );
  return conn;
}

/** What the server did with a stalled connection within `ms`: its status line, "closed", or "open". */
async function outcome(conn: Deno.TcpConn, ms: number): Promise<string> {
  const buf = new Uint8Array(512);
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch {
      // closed already
    }
  }, ms);
  let text = "";
  try {
    const n = await conn.read(buf);
    if (n === null) return "closed";
    text = new TextDecoder().decode(buf.subarray(0, n));
    return text.split("\r\n")[0];
  } catch {
    return text === "" ? "open" : text;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed already
    }
  }
}

for (const backend of BACKENDS) {
  Deno.test(`http limits (${backend}): 50 never-ending chunked bodies are cut at the body deadline while a normal PUT succeeds`, async () => {
    const node = await startNode(backend, { bodyTimeoutMs: 600 });
    try {
      const conns: Deno.TcpConn[] = [];
      for (let i = 0; i < 50; i++) {
        conns.push(
          await openStalledRequest(
            node.hostname,
            node.port,
            "Transfer-Encoding: chunked\r\n",
            "5\r\nhello\r\n",
          ),
        );
      }
      const started = performance.now();
      const put = await call(`${node.url}/kv/normal`, {
        method: "PUT",
        body: "fine",
      });
      assert.equal(put.status, 204, put.text);
      assert.ok(performance.now() - started < 500, "the PUT waited");
      const results = await Promise.all(conns.map((c) => outcome(c, 5000)));
      for (const r of results) {
        assert.ok(
          r === "closed" || /^HTTP\/1\.1 408/.test(r),
          `a stalled body was not cut: ${r}`,
        );
      }
      assert.ok(performance.now() - started < 4500);
      const metrics = await call(`${node.url}/metrics`);
      assert.match(metrics.text, /raft_http_body_timeouts_total 50\b/);
      assert.match(metrics.text, /raft_http_inflight_body_bytes 0\b/);
      assert.equal(node.n.kv.get("stalled"), undefined);
    } finally {
      await node.stop();
    }
  });

  Deno.test(`http limits (${backend}): a burst beyond the in-flight bound is answered 503 at once`, async () => {
    const node = await startNode(backend, {
      bodyTimeoutMs: 5000,
      maxInflightBytes: 256 * 1024,
    });
    try {
      // Four slow uploads declare 64 KiB each: the bound is full.
      const conns: Deno.TcpConn[] = [];
      for (let i = 0; i < 4; i++) {
        conns.push(
          await openStalledRequest(
            node.hostname,
            node.port,
            `Content-Length: ${64 * 1024}\r\n`,
            "x",
          ),
        );
      }
      let full = false;
      for (let i = 0; i < 100 && !full; i++) {
        full = node.n.api.inflightBytes === 256 * 1024;
        if (!full) await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(full, `in flight: ${node.n.api.inflightBytes}`);
      const started = performance.now();
      const burst = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          call(`${node.url}/kv/burst-${i}`, {
            method: "PUT",
            body: new Uint8Array(32 * 1024),
          })),
      );
      for (const r of burst) {
        assert.equal(r.status, 503, r.text);
        assert.equal(JSON.parse(r.text).error.code, "OVERLOADED");
      }
      assert.ok(performance.now() - started < 1000, "503 was not quick");
      const metrics = await call(`${node.url}/metrics`);
      assert.match(metrics.text, /raft_http_overloaded_total 8\b/);
      // Once the slow uploads go, the node takes writes again.
      for (const c of conns) c.close();
      let ok = 0;
      for (let i = 0; i < 100 && ok !== 204; i++) {
        ok = (await call(`${node.url}/kv/after`, {
          method: "PUT",
          body: new Uint8Array(32 * 1024),
        })).status;
        if (ok !== 204) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(ok, 204);
    } finally {
      await node.stop();
    }
  });
}
