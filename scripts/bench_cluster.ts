/**
 * `deno task bench:cluster`: a 3-node raft-io cluster (WAL with fsync on,
 * TCP) and a closed-loop HTTP load generator in its own process, all
 * requests to the leader. For each client count C it reports ops/s,
 * p50/p90/p99/max latency and the CPU seconds every process used, as a table
 * and JSON lines. When an `etcd` binary is installed, a 3-node etcd cluster
 * on the same machine is measured in the same run with the same load (PUTs
 * through its v3 JSON gateway) as the baseline, and ratios are printed.
 *
 * Flags: --clients 1,16,64,256  --seconds 10  --warmup 1  --baseline etcd|none
 *        --peers secret|insecure|encrypt[,...] (peer frames: sealed with a
 *        MAC — the default —, not protected, or encrypted; several modes are
 *        measured one after another in the same run, with their ratio to the
 *        first)
 *        --profile DIR (write a V8 CPU profile of every node into DIR)
 *        --http raw|fetch (the load generator's HTTP client; see load_gen.ts)
 *
 * @module
 */

import { EtcdCluster } from "./lib/etcd_cluster.ts";
import { LocalCluster } from "./lib/local_cluster.ts";

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

const clientCounts = flag("clients", "1,16,64,256").split(",").map(Number);
const seconds = Number(flag("seconds", "10"));
const warmup = Number(flag("warmup", "1"));
const baseline = flag("baseline", "etcd");
const profileDir = flag("profile", "");
const httpClient = flag("http", "raw");
const peerModes = flag("peers", "secret").split(",");
for (const m of peerModes) {
  if (m !== "secret" && m !== "insecure" && m !== "encrypt") {
    throw new Error(`--peers takes secret, insecure or encrypt (got ${m})`);
  }
}
const CLK_TCK = 100;

/**
 * CPU seconds (user + system) a process has used, from /proc/PID/stat. Read
 * through `cat` because Deno grants /proc only with --allow-all.
 */
async function cpuSeconds(pid: number): Promise<number> {
  try {
    const out = await new Deno.Command("cat", {
      args: [`/proc/${pid}/stat`],
      stderr: "null",
    })
      .output();
    if (!out.success) return NaN;
    const stat = new TextDecoder().decode(out.stdout);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

interface Row {
  system: string;
  clients: number;
  opsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  cpuSeconds: Record<string, number>;
}

/** Runs the load generator against `url` once, sampling CPU of `pids`. */
async function measure(
  system: string,
  target: string,
  url: string,
  clients: number,
  pids: Record<string, number>,
): Promise<Row> {
  const names = Object.keys(pids);
  const before = await Promise.all(names.map((n) => cpuSeconds(pids[n])));
  const gen = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      new URL("./load_gen.ts", import.meta.url).pathname,
      "--url",
      url,
      "--target",
      target,
      "--clients",
      String(clients),
      "--seconds",
      String(seconds),
      "--warmup",
      String(warmup),
      "--http",
      httpClient,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  // The generator's last CPU reading before it exits is its total.
  let genCpu = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const c = await cpuSeconds(gen.pid);
      if (!Number.isNaN(c)) genCpu = c;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const out = await gen.output();
  sampling = false;
  await sampler;
  const result = JSON.parse(
    new TextDecoder().decode(out.stdout).trim().split("\n").pop()!,
  );
  const cpu: Record<string, number> = {};
  const after = await Promise.all(names.map((n) => cpuSeconds(pids[n])));
  names.forEach((n, i) => cpu[n] = +(after[i] - before[i]).toFixed(2));
  cpu["loadgen"] = +genCpu.toFixed(2);
  const row: Row = { system, ...result, cpuSeconds: cpu };
  console.log(JSON.stringify({ case: "cluster-put", ...row }));
  return row;
}

const rows: Row[] = [];

for (const mode of peerModes) {
  const system = mode === "secret" ? "raft-io" : `raft-io (${mode})`;
  const raft = await LocalCluster.start({
    nodes: 3,
    root: `.bench-data/cluster-${Date.now()}`,
    extraArgs: ["--quiet", ...(mode === "encrypt" ? ["--encrypt-frames"] : [])],
    insecure: mode === "insecure",
    denoFlags: profileDir === ""
      ? []
      : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`],
  });
  try {
    const leader = await raft.waitForLeader();
    const pids: Record<string, number> = {};
    for (const n of raft.nodes) {
      pids[`node${n.id}${n.id === leader.id ? "*" : ""}`] = n.process!.pid;
    }
    for (const c of clientCounts) {
      rows.push(
        await measure(
          system,
          "raft-io",
          raft.node(leader.id).httpUrl,
          c,
          pids,
        ),
      );
    }
  } finally {
    await raft.destroy();
  }
}
if (peerModes.length > 1) {
  const first = peerModes[0] === "secret"
    ? "raft-io"
    : `raft-io (${peerModes[0]})`;
  for (const row of rows) {
    const base = rows.find((r) =>
      r.system === first && r.clients === row.clients
    );
    if (base === undefined || row.system === first) continue;
    console.log(JSON.stringify({
      case: "peer-frames",
      system: row.system,
      clients: row.clients,
      opsPerSecRatio: +(row.opsPerSec / base.opsPerSec).toFixed(3),
      vs: first,
    }));
  }
}

if (baseline === "etcd") {
  if (await EtcdCluster.available()) {
    // etcd_cluster.ts picks ports in 40000-50099, inside Linux's ephemeral
    // range (32768-60999): a member's dial of a peer that is not listening
    // yet can connect to itself and take that peer's port ("bind: address
    // already in use"), so a member often exits at startup. Retry with a
    // fresh cluster (fresh ports and data) rather than lose the run.
    let etcd = await EtcdCluster.start(`.bench-data/etcd-${Date.now()}`);
    let url: string | undefined;
    for (let attempt = 1; url === undefined; attempt++) {
      try {
        url = await etcd.leaderUrl();
        // A member that could not bind its port exits; a leader of the
        // other two would make a faster, invalid baseline.
        await new Promise((r) => setTimeout(r, 500));
        const exited = await Promise.all(
          etcd.processes.map((p) =>
            Promise.race([
              p.status.then(() => true),
              new Promise<boolean>((r) => setTimeout(() => r(false), 10)),
            ])
          ),
        );
        if (exited.some((x) => x)) {
          url = undefined;
          throw new Error("an etcd member exited");
        }
      } catch (e) {
        await etcd.destroy();
        if (attempt === 8) throw e;
        console.error(`etcd: ${e}; starting a fresh cluster`);
        etcd = await EtcdCluster.start(`.bench-data/etcd-${Date.now()}`);
      }
    }
    try {
      const pids: Record<string, number> = {};
      etcd.processes.forEach((p, i) => {
        pids[`etcd${i + 1}${etcd.clientUrls[i] === url ? "*" : ""}`] = p.pid;
      });
      for (const c of clientCounts) {
        rows.push(await measure("etcd", "etcd", url, c, pids));
      }
    } finally {
      await etcd.destroy();
    }
  } else {
    console.log(
      "(no etcd binary found: apt-get install etcd-server to measure the baseline)",
    );
  }
}

const header = [
  "system",
  "C",
  "ops/s",
  "p50 ms",
  "p90 ms",
  "p99 ms",
  "max ms",
  "errors",
  "vs etcd",
  "CPU s (* = leader)",
];
const fixed = (n: number | null) =>
  n === null || Number.isNaN(n) ? "-" : n.toFixed(2);
const lines = rows.map((r) => {
  const base = rows.find((b) => b.system === "etcd" && b.clients === r.clients);
  return [
    r.system,
    String(r.clients),
    r.opsPerSec.toFixed(0),
    fixed(r.p50Ms),
    fixed(r.p90Ms),
    fixed(r.p99Ms),
    fixed(r.maxMs),
    String(r.errors),
    base && r.system !== "etcd"
      ? `${(r.opsPerSec / base.opsPerSec).toFixed(2)}x`
      : "",
    Object.entries(r.cpuSeconds).map(([k, v]) => `${k} ${v}`).join(", "),
  ];
});
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
