/**
 * Closed-loop HTTP load generator for the cluster benchmark: C clients, each
 * with one request in flight, PUT random keys (16 bytes, from a key space)
 * with fixed-size values to one URL. Prints one JSON line with ops/s and
 * latency percentiles of the measured window (after the warm-up).
 *
 * deno run --allow-net=127.0.0.1 scripts/load_gen.ts --url http://127.0.0.1:8001 \
 *   --clients 64 --seconds 10 --warmup 1 [--keys 10000] [--value-bytes 100]
 *   [--target raft-io|etcd] [--http raw|fetch] [--count N --key-offset O]
 *
 * `--count N`: write exactly N distinct keys (O, O+1, …, zero-padded) and
 * stop (a preload); the JSON line then also has `elapsedSeconds`.
 *
 * `--http raw` (default) speaks HTTP/1.1 itself over one keep-alive TCP
 * connection per client: a prebuilt request whose key bytes are overwritten
 * in place, one write per request, and a minimal response parser (status
 * line, `content-length` or chunked body). On a 2-core machine `fetch` costs
 * the generator about as much CPU as the server it measures, which then
 * competes with the cluster for the same cores; the raw client keeps the
 * measurement overhead small for every system alike. `--http fetch` uses
 * the fetch API instead.
 *
 * @module
 */

function flag(name: string, fallback?: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < Deno.args.length) return Deno.args[i + 1];
  if (fallback === undefined) throw new Error(`missing --${name}`);
  return fallback;
}

const url = flag("url");
const clients = Number(flag("clients", "1"));
const seconds = Number(flag("seconds", "10"));
const warmup = Number(flag("warmup", "1"));
const keys = Number(flag("keys", "10000"));
const valueBytes = Number(flag("value-bytes", "100"));
// "raft-io": PUT /kv/{key}; "etcd": etcd's v3 JSON gateway, POST /v3/kv/put.
const target = flag("target", "raft-io");
const mode = flag("http", "raw");
const count = Number(flag("count", "0"));
const keyOffset = Number(flag("key-offset", "0"));
let issued = 0;
if (mode !== "raw" && mode !== "fetch") throw new Error("--http raw|fetch");

const okStatus = target === "etcd" ? 200 : 204;
const value = new Uint8Array(valueBytes).fill(0x61);
const valueBase64 = btoa("a".repeat(valueBytes));
const latencies: number[] = [];
let errors = 0;
let running = true;
const start = performance.now();
const measureFrom = start + warmup * 1000;
const stopAt = measureFrom + seconds * 1000;
const KEY_BYTES = 16;

function key(): string {
  // 16-byte keys: "k" + 15 zero-padded digits.
  if (count > 0) return "k" + String(keyOffset + issued++).padStart(15, "0");
  return "k" + String(Math.floor(Math.random() * keys)).padStart(15, "0");
}

function record(t: number, status: number): void {
  const done = performance.now();
  if (status !== okStatus) errors++;
  else if (t >= measureFrom && done <= stopAt) latencies.push(done - t);
}

async function fetchClient(): Promise<void> {
  while (running) {
    const t = performance.now();
    if (t >= stopAt || (count > 0 && issued >= count)) break;
    try {
      const res = target === "etcd"
        ? await fetch(`${url}/v3/kv/put`, {
          method: "POST",
          body: `{"key":"${btoa(key())}","value":"${valueBase64}"}`,
        })
        : await fetch(`${url}/kv/${key()}`, { method: "PUT", body: value });
      await res.body?.cancel();
      record(t, res.status);
    } catch (error) {
      if (errors++ === 0) console.error(`first request error: ${error}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

const te = new TextEncoder();
const parsed = new URL(url);
const host = parsed.hostname;
const port = Number(parsed.port || "80");

/** A prebuilt request and where its key bytes go. */
function requestTemplate(): { bytes: Uint8Array; keyAt: number } {
  const placeholder = "K".repeat(target === "etcd" ? 24 : KEY_BYTES);
  let head: string;
  let body: string;
  if (target === "etcd") {
    body = `{"key":"${placeholder}","value":"${valueBase64}"}`;
    head = `POST /v3/kv/put HTTP/1.1\r\nhost: ${parsed.host}\r\n` +
      `content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
  } else {
    body = "a".repeat(valueBytes);
    head = `PUT /kv/${placeholder} HTTP/1.1\r\nhost: ${parsed.host}\r\n` +
      `content-length: ${valueBytes}\r\n\r\n`;
  }
  const text = head + body;
  return { bytes: te.encode(text), keyAt: text.indexOf(placeholder) };
}

/** Writes a random key (raw, or base64 for etcd) into `buf` at `at`. */
function writeKey(buf: Uint8Array, at: number): void {
  const k = key();
  const text = target === "etcd" ? btoa(k) : k;
  for (let i = 0; i < text.length; i++) buf[at + i] = text.charCodeAt(i);
}

/** Index of `\r\n\r\n` in `buf[from, end)`, or -1. */
function headerEnd(buf: Uint8Array, from: number, end: number): number {
  for (let i = Math.max(0, from - 3); i + 3 < end; i++) {
    if (
      buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 &&
      buf[i + 3] === 10
    ) return i;
  }
  return -1;
}

/** Lower-cased header block text (ASCII). */
function latin1(buf: Uint8Array, from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i++) {
    const c = buf[i];
    s += String.fromCharCode(c >= 65 && c <= 90 ? c | 0x20 : c);
  }
  return s;
}

/** One response on a keep-alive connection: reads until it is complete. */
class ResponseReader {
  buf = new Uint8Array(64 * 1024);
  len = 0;
  constructor(readonly conn: Deno.Conn) {}

  async #fill(): Promise<void> {
    if (this.len === this.buf.length) {
      const bigger = new Uint8Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    const n = await this.conn.read(this.buf.subarray(this.len));
    if (n === null) throw new Error("connection closed by the server");
    this.len += n;
  }

  #consume(n: number): void {
    this.buf.copyWithin(0, n, this.len);
    this.len -= n;
  }

  /** Reads one response; returns its status. */
  async read(): Promise<number> {
    let end: number;
    let scanned = 0;
    while ((end = headerEnd(this.buf, scanned, this.len)) < 0) {
      scanned = this.len;
      await this.#fill();
    }
    const b = this.buf;
    const status = (b[9] - 48) * 100 + (b[10] - 48) * 10 + (b[11] - 48);
    const head = latin1(b, 0, end);
    const bodyAt = end + 4;
    const cl = head.indexOf("\ncontent-length:");
    if (cl >= 0) {
      const length = parseInt(head.slice(cl + 16), 10);
      while (this.len < bodyAt + length) await this.#fill();
      this.#consume(bodyAt + length);
    } else if (head.includes("\ntransfer-encoding: chunked")) {
      // Chunks until the last (zero-length) one and its trailing CRLF.
      let at = bodyAt;
      while (true) {
        let lineEnd: number;
        while ((lineEnd = this.#crlf(at)) < 0) await this.#fill();
        const size = parseInt(latin1(this.buf, at, lineEnd), 16);
        const next = lineEnd + 2 + size + 2;
        while (this.len < next) await this.#fill();
        at = next;
        if (size === 0) break;
      }
      this.#consume(at);
    } else if (
      status === 204 || status === 304 || (status >= 100 && status < 200)
    ) {
      this.#consume(bodyAt);
    } else {
      throw new Error("a response without a length: not keep-alive");
    }
    return status;
  }

  #crlf(from: number): number {
    for (let i = from; i + 1 < this.len; i++) {
      if (this.buf[i] === 13 && this.buf[i + 1] === 10) return i;
    }
    return -1;
  }
}

async function rawClient(): Promise<void> {
  const { bytes, keyAt } = requestTemplate();
  let conn: Deno.TcpConn | undefined;
  let reader: ResponseReader | undefined;
  while (running) {
    const t = performance.now();
    if (t >= stopAt || (count > 0 && issued >= count)) break;
    try {
      if (conn === undefined) {
        conn = await Deno.connect({ hostname: host, port });
        conn.setNoDelay(true);
        reader = new ResponseReader(conn);
      }
      writeKey(bytes, keyAt);
      let off = 0;
      while (off < bytes.length) off += await conn.write(bytes.subarray(off));
      record(t, await reader!.read());
    } catch (error) {
      if (errors++ === 0) console.error(`first request error: ${error}`);
      try {
        conn?.close();
      } catch {
        // already closed
      }
      conn = undefined;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  try {
    conn?.close();
  } catch {
    // already closed
  }
}

await Promise.all(
  Array.from({ length: clients }, mode === "raw" ? rawClient : fetchClient),
);
running = false;
const elapsedSeconds = (performance.now() - start) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  latencies.length === 0 ? NaN : latencies[
    Math.min(latencies.length - 1, Math.floor(p * latencies.length))
  ];
console.log(JSON.stringify({
  clients,
  ops: latencies.length,
  opsPerSec: latencies.length /
    (count > 0 ? elapsedSeconds - warmup : seconds),
  elapsedSeconds,
  p50Ms: pct(0.5),
  p90Ms: pct(0.9),
  p99Ms: pct(0.99),
  maxMs: latencies[latencies.length - 1] ?? NaN,
  errors,
}));
