/**
 * `deno task cluster --nodes 3`: starts a local raft-io key-value cluster of
 * OS processes (`scripts/serve.ts`) on 127.0.0.1 with fresh data folders and
 * a fresh cluster secret, prints their addresses, and keeps running until
 * Ctrl-C, which stops every process (by pid) and removes the folders.
 *
 * Flags: `--nodes N` (1-9, default 3), `--base-port P` (Raft ports P+i, HTTP
 * ports P+100+i; default random), `--keep` (leave the data folder on exit),
 * and anything after `--` is passed to every node (e.g. `-- --tick-ms 50`).
 *
 * @module
 */

import { LocalCluster } from "./lib/local_cluster.ts";

const USAGE =
  `Usage: deno task cluster [--nodes N] [--base-port P] [--keep] [-- extra serve.ts flags]`;

function parse(
  args: string[],
): {
  nodes: number;
  basePort: number | undefined;
  keep: boolean;
  extra: string[];
} {
  let nodes = 3;
  let basePort: number | undefined;
  let keep = false;
  const dash = args.indexOf("--");
  const extra = dash >= 0 ? args.slice(dash + 1) : [];
  const own = dash >= 0 ? args.slice(0, dash) : args;
  for (let i = 0; i < own.length; i++) {
    const a = own[i];
    if (a === "--nodes") {
      nodes = Number(own[++i]);
      if (!Number.isInteger(nodes) || nodes < 1 || nodes > 9) {
        throw new Error("--nodes needs an integer from 1 to 9");
      }
    } else if (a === "--base-port") {
      basePort = Number(own[++i]);
      if (!Number.isInteger(basePort) || basePort < 1024 || basePort > 65000) {
        throw new Error("--base-port needs an integer from 1024 to 65000");
      }
    } else if (a === "--keep") {
      keep = true;
    } else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      Deno.exit(0);
    } else {
      throw new Error(`unknown flag ${JSON.stringify(a)}\n${USAGE}`);
    }
  }
  return { nodes, basePort, keep, extra };
}

if (import.meta.main) {
  let opts;
  try {
    opts = parse(Deno.args);
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(2);
  }
  const root = `.demo-data/cluster-${Date.now()}`;
  const cluster = await LocalCluster.start({
    nodes: opts.nodes,
    root,
    basePort: opts.basePort,
    extraArgs: opts.extra,
  });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log("\nstopping the cluster ...");
    if (opts.keep) {
      await cluster.stopAll();
      console.log(`data kept in ${root}`);
    } else {
      await cluster.destroy();
    }
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => void stop());
  Deno.addSignalListener("SIGTERM", () => void stop());
  try {
    const leader = await cluster.waitForLeader();
    console.log(
      `raft-io cluster of ${opts.nodes} nodes (data in ${root}, secret ${cluster.secretFile}):\n`,
    );
    for (const n of cluster.nodes) {
      const mark = n.id === leader.id ? "  <- leader" : "";
      console.log(
        `  node ${n.id}  raft ${n.raftAddress}  http ${n.httpUrl}  pid ${n.process?.pid}  log ${n.logFile}${mark}`,
      );
    }
    const url = cluster.node(leader.id).httpUrl;
    const other = cluster.nodes.find((n) => n.id !== leader.id)?.httpUrl ?? url;
    console.log(`
Try:
  curl -X PUT --data hello ${url}/kv/greeting
  curl ${other}/kv/greeting            # a follower: linearizable read via ReadIndex
  curl '${other}/kv/greeting?consistency=stale'
  curl ${url}/status
  curl ${url}/metrics

Ctrl-C stops every node${opts.keep ? "" : " and removes the data"}.`);
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    await stop();
  }
}
