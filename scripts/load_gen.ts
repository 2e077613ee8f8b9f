/**
 * Closed-loop HTTP load generator for the cluster benchmark: C clients, each
 * with one request in flight, PUT random keys (16 bytes, from a key space)
 * with fixed-size values to one URL. Prints one JSON line with ops/s and
 * latency percentiles of the measured window (after the warm-up).
 *
 * deno run --allow-net=127.0.0.1 scripts/load_gen.ts --url http://127.0.0.1:8001 \
 *   --clients 64 --seconds 10 --warmup 1 [--keys 10000] [--value-bytes 100]
 *   [--target raft-io|etcd]
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

const value = new Uint8Array(valueBytes).fill(0x61);
const valueBase64 = btoa("a".repeat(valueBytes));
const latencies: number[] = [];
let errors = 0;
let running = true;
const start = performance.now();
const measureFrom = start + warmup * 1000;
const stopAt = measureFrom + seconds * 1000;

function key(): string {
  // 16-byte keys: "k" + 15 zero-padded digits.
  return "k" + String(Math.floor(Math.random() * keys)).padStart(15, "0");
}

async function client(): Promise<void> {
  while (running) {
    const t = performance.now();
    if (t >= stopAt) break;
    try {
      const res = target === "etcd"
        ? await fetch(`${url}/v3/kv/put`, {
          method: "POST",
          body: `{"key":"${btoa(key())}","value":"${valueBase64}"}`,
        })
        : await fetch(`${url}/kv/${key()}`, { method: "PUT", body: value });
      await res.body?.cancel();
      const done = performance.now();
      if (res.status !== (target === "etcd" ? 200 : 204)) errors++;
      else if (t >= measureFrom && done <= stopAt) latencies.push(done - t);
    } catch (error) {
      if (errors++ === 0) console.error(`first request error: ${error}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

await Promise.all(Array.from({ length: clients }, client));
running = false;
latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  latencies.length === 0 ? NaN : latencies[
    Math.min(latencies.length - 1, Math.floor(p * latencies.length))
  ];
console.log(JSON.stringify({
  clients,
  ops: latencies.length,
  opsPerSec: latencies.length / seconds,
  p50Ms: pct(0.5),
  p90Ms: pct(0.9),
  p99Ms: pct(0.99),
  maxMs: latencies[latencies.length - 1] ?? NaN,
  errors,
}));
