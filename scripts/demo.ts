/**
 * The cluster demo: three raft-io processes on loopback with fresh data
 * folders. It writes keys through the HTTP API while printing the cluster's
 * status, kills the leader with SIGKILL, shows the election and writes going
 * on, restarts the killed node and shows it catch up, reads back every
 * acknowledged write, then stops its processes (by pid) and removes its data.
 *
 * @module
 */

import { LocalCluster, type NodeStatus } from "./lib/local_cluster.ts";

const WRITES_PER_PHASE = 300;
const CONCURRENCY = 8;

function table(
  statuses: (NodeStatus | undefined)[],
  cluster: LocalCluster,
): string {
  const rows = [["node", "role", "term", "leader", "commit", "applied", "lag"]];
  const leaderCommit = Math.max(0, ...statuses.map((s) => s?.commit ?? 0));
  cluster.nodes.forEach((node, i) => {
    const s = statuses[i];
    rows.push(
      s
        ? [
          String(node.id),
          s.role,
          String(s.term),
          String(s.leader || "-"),
          String(s.commit),
          String(s.applied),
          String(Math.max(0, leaderCommit - s.applied)),
        ]
        : [
          String(node.id),
          node.process ? "(no answer)" : "(down)",
          "-",
          "-",
          "-",
          "-",
          "-",
        ],
    );
  });
  const widths = rows[0].map((_, c) =>
    Math.max(...rows.map((r) => r[c].length))
  );
  return rows.map((r) =>
    "  " + r.map((cell, c) => cell.padStart(widths[c])).join("  ")
  ).join(
    "\n",
  );
}

/** A counter from node `id`'s Prometheus /metrics, or 0. */
async function metricValue(
  cluster: LocalCluster,
  id: number,
  name: string,
): Promise<number> {
  try {
    const text = await (await fetch(`${cluster.node(id).httpUrl}/metrics`))
      .text();
    const line = text.split("\n").find((l) =>
      l.startsWith(name + " ") || l.startsWith(name + "{")
    );
    return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
  } catch {
    return 0;
  }
}

async function show(cluster: LocalCluster, title: string): Promise<void> {
  console.log(`\n${title}`);
  console.log(table(await cluster.statuses(), cluster));
}

/** PUTs keys `prefix-0 .. prefix-(n-1)` through `url`, returns those acknowledged. */
async function writeKeys(
  url: () => string,
  prefix: string,
  n: number,
  acked: Map<string, string>,
): Promise<{ ok: number; failed: number }> {
  let next = 0;
  let ok = 0;
  let failed = 0;
  const worker = async () => {
    while (next < n) {
      const key = `${prefix}-${next++}`;
      const value = `value of ${key} @ ${Date.now()}`;
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          const res = await fetch(`${url()}/kv/${key}`, {
            method: "PUT",
            body: value,
            signal: AbortSignal.timeout(3000),
          });
          await res.body?.cancel();
          if (res.status === 204) {
            acked.set(key, value);
            ok++;
            break;
          }
        } catch {
          // The node may be down or electing; retry after a pause.
        }
        await new Promise((r) => setTimeout(r, 100));
        if (attempt === 19) failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { ok, failed };
}

if (import.meta.main) {
  const started = performance.now();
  const root = `.demo-data/run-${Date.now()}`;
  console.log("raft-io demo: a 3-node cluster of OS processes on 127.0.0.1\n");
  const cluster = await LocalCluster.start({
    nodes: 3,
    root,
    extraArgs: [
      "--snapshot-entries",
      "200",
      "--compaction-lag",
      "50",
      "--quiet",
    ],
  });
  let exitCode = 0;
  try {
    for (const n of cluster.nodes) {
      console.log(
        `  node ${n.id}: raft ${n.raftAddress}  http ${n.httpUrl}  pid ${n.process?.pid}`,
      );
    }
    const first = await cluster.waitForLeader();
    await show(
      cluster,
      `Elected node ${first.id} as leader in term ${first.term}:`,
    );

    const acked = new Map<string, string>();
    const leaderUrl = { id: first.id };
    const url = () => cluster.node(leaderUrl.id).httpUrl;
    const t0 = performance.now();
    const w1 = await writeKeys(url, "before", WRITES_PER_PHASE, acked);
    const s1 = (performance.now() - t0) / 1000;
    await show(
      cluster,
      `Wrote ${w1.ok} keys through node ${first.id} in ${s1.toFixed(2)} s (${
        (w1.ok / s1).toFixed(0)
      } writes/s with ${CONCURRENCY} clients):`,
    );

    console.log(
      `\nKilling the leader, node ${first.id} (pid ${
        cluster.node(first.id).process?.pid
      }), with SIGKILL...`,
    );
    const killedAt = performance.now();
    await cluster.stopNode(first.id, "SIGKILL");
    const second = await cluster.waitForLeader(20000, first.term);
    await show(
      cluster,
      `Node ${second.id} took over in term ${second.term} after ${
        ((performance.now() - killedAt) / 1000).toFixed(2)
      } s:`,
    );
    leaderUrl.id = second.id;
    const w2 = await writeKeys(url, "during", WRITES_PER_PHASE, acked);
    await show(cluster, `Wrote ${w2.ok} more keys with node ${first.id} down:`);

    console.log(`\nRestarting node ${first.id}...`);
    cluster.startNode(first.id);
    const deadline = Date.now() + 20000;
    let caughtUp = false;
    while (Date.now() < deadline) {
      const [killed, leader] = [
        await cluster.status(first.id),
        await cluster.status(second.id),
      ];
      if (
        killed && leader && killed.applied >= leader.commit &&
        killed.leader === leader.id
      ) {
        caughtUp = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    const restored = await metricValue(
      cluster,
      first.id,
      "raft_snapshots_restored_total",
    );
    await show(
      cluster,
      !caughtUp
        ? `Node ${first.id} did not catch up within 20 s:`
        : restored > 0
        ? `Node ${first.id} caught up: the leader had compacted past its log, so it was sent a snapshot (${restored} restored):`
        : `Node ${first.id} caught up from the leader's log:`,
    );
    if (!caughtUp) exitCode = 1;

    let missing = 0;
    for (const [key, value] of acked) {
      const res = await fetch(`${url()}/kv/${key}`);
      const body = await res.text();
      if (res.status !== 200 || body !== value) missing++;
    }
    console.log(
      `\nRead back ${acked.size} acknowledged writes (linearizable reads): ${
        missing === 0 ? "all present and exact" : `${missing} MISSING OR WRONG`
      }.`,
    );
    if (missing > 0) exitCode = 1;

    console.log(
      `\nDone in ${
        ((performance.now() - started) / 1000).toFixed(1)
      } s; its processes and folders are gone. Next, start a cluster that stays up:
  npx --yes deno@2.9.6 task cluster --nodes 3 --base-port 7000   # Ctrl-C stops it
and talk to it (HTTP ports are base + 100 + id; any node forwards to the leader):
  curl -X PUT --data 'hello' http://127.0.0.1:7101/kv/greeting
  curl http://127.0.0.1:7102/kv/greeting                  # linearizable read on a follower
  curl 'http://127.0.0.1:7103/kv/greeting?consistency=stale'
  curl -X POST -d '{"expect":"hello","value":"bye"}' http://127.0.0.1:7101/kv/greeting/cas
  curl http://127.0.0.1:7101/status
  curl http://127.0.0.1:7101/metrics`,
    );
  } catch (error) {
    console.error(
      `demo failed: ${error instanceof Error ? error.message : error}`,
    );
    for (const n of cluster.nodes) {
      const log = await Deno.readTextFile(n.logFile).catch(() => "");
      console.error(
        `--- node ${n.id} log (tail) ---\n${
          log.split("\n").slice(-15).join("\n")
        }`,
      );
    }
    exitCode = 1;
  } finally {
    await cluster.destroy();
  }
  Deno.exit(exitCode);
}
