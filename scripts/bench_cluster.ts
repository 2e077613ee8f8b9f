/**
 * `deno task bench:cluster`: a 3-node cluster (WAL with fsync on, TCP) and a
 * closed-loop HTTP load generator in its own process, all requests to the
 * leader. For each client count C it reports ops/s, p50/p90/p99/max latency
 * and CPU seconds used by every process during the run, as a table and JSON.
 *
 * Flags: --clients 1,16,64,256  --seconds 10  --warmup 1
 *
 * @module
 */

import { LocalCluster } from "./lib/local_cluster.ts";

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

const clientCounts = flag("clients", "1,16,64,256").split(",").map(Number);
const seconds = Number(flag("seconds", "10"));
const warmup = Number(flag("warmup", "1"));
const CLK_TCK = 100;

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

interface Row {
  clients: number;
  opsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  cpuSeconds: Record<string, number>;
}

const cluster = await LocalCluster.start({
  nodes: 3,
  root: `.bench-data/cluster-${Date.now()}`,
});
const rows: Row[] = [];
try {
  const leader = await cluster.waitForLeader();
  const url = cluster.node(leader.id).httpUrl;
  for (const clients of clientCounts) {
    const pids = cluster.nodes.map((n) => n.process!.pid);
    const before = pids.map(cpuSeconds);
    const gen = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        new URL("./load_gen.ts", import.meta.url).pathname,
        "--url",
        url,
        "--clients",
        String(clients),
        "--seconds",
        String(seconds),
        "--warmup",
        String(warmup),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const genPid = gen.pid;
    let genCpu = 0;
    const sampler = setInterval(() => {
      const c = cpuSeconds(genPid);
      if (!Number.isNaN(c)) genCpu = c;
    }, 200);
    const out = await gen.output();
    clearInterval(sampler);
    const result = JSON.parse(
      new TextDecoder().decode(out.stdout).trim().split("\n").pop()!,
    );
    const after = pids.map(cpuSeconds);
    const cpu: Record<string, number> = {};
    cluster.nodes.forEach((n, i) => {
      cpu[`node${n.id}${n.id === leader.id ? "(leader)" : ""}`] =
        +(after[i] - before[i]).toFixed(2);
    });
    cpu["loadgen"] = +genCpu.toFixed(2);
    const row: Row = { ...result, cpuSeconds: cpu };
    rows.push(row);
    console.log(JSON.stringify({ case: "cluster-put", ...row }));
  }
} finally {
  await cluster.destroy();
}

const header = [
  "C",
  "ops/s",
  "p50 ms",
  "p90 ms",
  "p99 ms",
  "max ms",
  "errors",
  "CPU s (per process)",
];
const lines = rows.map((r) => [
  String(r.clients),
  r.opsPerSec.toFixed(0),
  r.p50Ms.toFixed(2),
  r.p90Ms.toFixed(2),
  r.p99Ms.toFixed(2),
  r.maxMs.toFixed(2),
  String(r.errors),
  Object.entries(r.cpuSeconds).map(([k, v]) => `${k} ${v}`).join(", "),
]);
const widths = header.map((_, c) =>
  Math.max(header[c].length, ...lines.map((l) => l[c].length))
);
console.log(
  "\n| " + header.map((h, c) => h.padEnd(widths[c])).join(" | ") + " |",
);
console.log("| " + widths.map((w) => "-".repeat(w)).join(" | ") + " |");
for (const l of lines) {
  console.log("| " + l.map((v, c) => v.padEnd(widths[c])).join(" | ") + " |");
}
