/**
 * `deno task bench:snapshot`: what a snapshot costs the commit path. A
 * 3-node raft-io KV cluster (OS processes, WAL with fsync, TCP), preloaded
 * with 1,000,000 keys of 100 bytes, then three measured phases under the same
 * closed-loop PUT load (C clients, 100-byte values, random keys of the
 * preloaded space), all requests to the leader:
 *
 * - (a) no snapshot;
 * - (b) while every node takes a snapshot: the nodes run with
 *   `--snapshot-entries S`; before the phase the log is filled up to a few
 *   thousand entries short of the next multiple of S, so one falls due
 *   early in the phase;
 * - (c) while a lagging follower installs a snapshot: the follower is
 *   frozen (SIGSTOP), the log is filled past the leader's next snapshot (it
 *   compacts past the follower, `--compaction-lag`), and the follower is
 *   resumed as the phase starts, so the leader sends it InstallSnapshot.
 *
 * Load: scripts/load_gen.ts (raw HTTP/1.1 keep-alive clients in their own
 * process; `wrk` is not used, so the numbers compare with bench:cluster).
 * Elections: the rise of the highest term any node reports over the phase.
 * Snapshot durations are read by polling `/status` every 50 ms (±50 ms):
 * take = from the leader's applied index reaching the due index to its
 * `snapshotIndex` moving; install = from the resume to the follower's
 * `snapshotIndex` moving. The snapshot's size is the leader's snapshot
 * file. The last line is a JSON object with the ratios p99(b)/p99(a) and
 * p99(c)/p99(a).
 *
 * Flags: --keys 1000000  --clients 16  --seconds 10  --snapshot-entries 400000
 *        --preload-clients 256
 *
 * @module
 */

import { LocalCluster, type NodeStatus } from "./lib/local_cluster.ts";

function flag(name: string, fallback: string): number {
  const i = Deno.args.indexOf(`--${name}`);
  return Number(
    i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback,
  );
}

const KEYS = flag("keys", "1000000");
const CLIENTS = flag("clients", "16");
const SECONDS = flag("seconds", "10");
const SNAPSHOT_ENTRIES = flag("snapshot-entries", "400000");
const PRELOAD_CLIENTS = flag("preload-clients", "256");
const COMPACTION_LAG = 1000;
/** Entries short of the due index the fill stops at, before phases b and c. */
const SHORT_OF_DUE = 3000;
const LOAD_GEN = new URL("./load_gen.ts", import.meta.url).pathname;

interface LoadResult {
  ops: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  elapsedSeconds: number;
}

async function load(url: string, args: string[]): Promise<LoadResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net=127.0.0.1", LOAD_GEN, "--url", url, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  return JSON.parse(
    new TextDecoder().decode(out.stdout).trim().split("\n").pop()!,
  );
}

/** Writes `n` distinct keys from `offset` as fast as the cluster takes them. */
function fill(url: string, n: number, offset: number): Promise<LoadResult> {
  return load(url, [
    "--count",
    String(n),
    "--key-offset",
    String(offset),
    "--clients",
    String(PRELOAD_CLIENTS),
    "--seconds",
    "600",
    "--warmup",
    "0",
  ]);
}

function measured(url: string): Promise<LoadResult> {
  return load(url, [
    "--clients",
    String(CLIENTS),
    "--seconds",
    String(SECONDS),
    "--warmup",
    "0",
    "--keys",
    String(KEYS),
  ]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `/status` of every node every 50 ms until stopped. */
class Watcher {
  readonly samples: { at: number; statuses: (NodeStatus | undefined)[] }[] = [];
  #running = true;
  readonly #done: Promise<void>;
  constructor(cluster: LocalCluster) {
    this.#done = (async () => {
      while (this.#running) {
        const at = performance.now();
        const statuses = await Promise.all(
          cluster.nodes.map((n) =>
            cluster.isPaused(n.id) ? undefined : cluster.status(n.id, 500)
          ),
        );
        this.samples.push({ at, statuses });
        await sleep(Math.max(0, 50 - (performance.now() - at)));
      }
    })();
  }
  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
  }
  maxTerm(): number {
    let t = 0;
    for (const s of this.samples) {
      for (const st of s.statuses) if (st && st.term > t) t = st.term;
    }
    return t;
  }
  /** First sample time at which `pred` holds for node `id`'s status. */
  firstAt(id: number, pred: (st: NodeStatus) => boolean): number | undefined {
    for (const s of this.samples) {
      const st = s.statuses[id - 1];
      if (st && pred(st)) return s.at;
    }
    return undefined;
  }
}

async function statusOf(c: LocalCluster, id: number): Promise<NodeStatus> {
  const st = await c.status(id, 2000);
  if (!st) throw new Error(`node ${id} does not answer /status`);
  return st;
}

const snapIndex = (st: NodeStatus) => Number(st.snapshotIndex ?? 0);

async function snapshotFileBytes(dir: string): Promise<number> {
  let best = 0;
  for await (const e of Deno.readDir(dir)) {
    if (e.name.endsWith(".snap")) {
      best = Math.max(best, (await Deno.stat(`${dir}/${e.name}`)).size);
    }
  }
  return best;
}

interface Phase extends LoadResult {
  phase: string;
  elections: number;
}

async function phase(
  name: string,
  cluster: LocalCluster,
  url: string,
  during?: (w: Watcher) => Promise<void>,
): Promise<{ phase: Phase; watcher: Watcher }> {
  const before = Math.max(
    ...(await cluster.statuses()).map((s) => s?.term ?? 0),
  );
  const watcher = new Watcher(cluster);
  const [result] = await Promise.all([measured(url), during?.(watcher)]);
  await watcher.stop();
  const after = Math.max(
    watcher.maxTerm(),
    ...(await cluster.statuses()).map((s) => s?.term ?? 0),
  );
  const p: Phase = { phase: name, ...result, elections: after - before };
  console.log(JSON.stringify(p));
  return { phase: p, watcher };
}

const cluster = await LocalCluster.start({
  nodes: 3,
  root: `.bench-data/snapshot-${Date.now()}`,
  extraArgs: [
    "--quiet",
    "--snapshot-entries",
    String(SNAPSHOT_ENTRIES),
    "--snapshot-bytes",
    "0",
    "--compaction-lag",
    String(COMPACTION_LAG),
  ],
});
const report: Record<string, unknown> = {};
try {
  const leaderId = (await cluster.waitForLeader()).id;
  const url = cluster.node(leaderId).httpUrl;
  const follower = cluster.nodes.find((n) => n.id !== leaderId)!.id;

  const pre = await fill(url, KEYS, 0);
  console.log(JSON.stringify({
    preload: KEYS,
    seconds: +pre.elapsedSeconds.toFixed(1),
    opsPerSec: Math.round(KEYS / pre.elapsedSeconds),
    errors: pre.errors,
  }));
  let offset = KEYS;

  /** Fills the log to SHORT_OF_DUE entries before the leader's next snapshot; returns the due index. */
  const fillToDue = async (): Promise<number> => {
    const st = await statusOf(cluster, leaderId);
    let due = snapIndex(st) + SNAPSHOT_ENTRIES;
    while (due - st.applied < SHORT_OF_DUE + 1000) due += SNAPSHOT_ENTRIES;
    const n = due - SHORT_OF_DUE - st.applied;
    await fill(url, n, offset);
    offset += n;
    return due;
  };

  const a = await phase("a: no snapshot", cluster, url);

  const dueB = await fillToDue();
  const beforeB = snapIndex(await statusOf(cluster, leaderId));
  const b = await phase("b: leader takes a snapshot", cluster, url);
  // The nodes snapshot a random 0-10 % past the due index (snapshotJitter):
  // the take is timed from the leader's snapshot starting to it landing.
  const dueAt = b.watcher.firstAt(
    leaderId,
    (st) => st.snapshotInProgress === true,
  ) ?? b.watcher.firstAt(leaderId, (st) => st.applied >= dueB);
  const takenAt = b.watcher.firstAt(
    leaderId,
    (st) => snapIndex(st) > beforeB,
  );
  const snapshotBytes = await snapshotFileBytes(cluster.node(leaderId).dataDir);

  // Freeze a follower, then write past the leader's next snapshot so the
  // leader compacts beyond it.
  const frozenAt = (await statusOf(cluster, follower)).applied;
  cluster.pauseNode(follower);
  await fillToDue();
  // Then on, in steps, until the leader's snapshot (a random 0-10 % past the
  // due index) has let it compact beyond the frozen follower.
  const step = 5000;
  for (let i = 0; i < Math.ceil(SNAPSHOT_ENTRIES / step) + 20; i++) {
    const st = await statusOf(cluster, leaderId);
    if (snapIndex(st) > frozenAt + COMPACTION_LAG) break;
    if (st.snapshotInProgress !== true) {
      await fill(url, step, offset);
      offset += step;
    } else {
      await sleep(100);
    }
  }
  const lagging = snapIndex(await statusOf(cluster, leaderId));
  let resumedAt = 0;
  const c = await phase(
    "c: a lagging follower installs a snapshot",
    cluster,
    url,
    async () => {
      await sleep(500);
      resumedAt = performance.now();
      cluster.resumeNode(follower);
    },
  );
  let installedAt = c.watcher.firstAt(
    follower,
    (st) => snapIndex(st) >= lagging,
  );
  // An install that outlasts the phase: wait (bounded) to time it whole.
  for (let i = 0; installedAt === undefined && i < 600; i++) {
    const st = await cluster.status(follower, 1000);
    if (st && snapIndex(st) >= lagging) installedAt = performance.now();
    else await sleep(100);
  }

  Object.assign(report, {
    load:
      `scripts/load_gen.ts raw HTTP, C=${CLIENTS}, 100 B values, ${SECONDS} s per phase`,
    keys: KEYS,
    preloadSeconds: +pre.elapsedSeconds.toFixed(1),
    snapshotBytes,
    snapshotTakeMs: dueAt !== undefined && takenAt !== undefined
      ? Math.round(takenAt - dueAt)
      : null,
    snapshotInstallMs: installedAt !== undefined
      ? Math.round(installedAt - resumedAt)
      : null,
    phases: [a.phase, b.phase, c.phase].map((p) => ({
      phase: p.phase,
      p50Ms: +p.p50Ms.toFixed(2),
      p99Ms: +p.p99Ms.toFixed(2),
      maxMs: +p.maxMs.toFixed(2),
      opsPerSec: Math.round(p.opsPerSec),
      errors: p.errors,
      elections: p.elections,
    })),
  });
  console.log(
    "\n| phase | p50 ms | p99 ms | max ms | ops/s | elections |\n|---|---|---|---|---|---|",
  );
  for (const p of [a.phase, b.phase, c.phase]) {
    console.log(
      `| ${p.phase} | ${p.p50Ms.toFixed(2)} | ${p.p99Ms.toFixed(2)} | ${
        p.maxMs.toFixed(2)
      } | ${Math.round(p.opsPerSec)} | ${p.elections} |`,
    );
  }
  console.log(JSON.stringify(report));
  console.log(JSON.stringify({
    p99RatioSnapshot: +(b.phase.p99Ms / a.phase.p99Ms).toFixed(2),
    p99RatioInstall: +(c.phase.p99Ms / a.phase.p99Ms).toFixed(2),
    snapshotBytes,
    snapshotTakeMs: report.snapshotTakeMs,
    snapshotInstallMs: report.snapshotInstallMs,
    elections: [a.phase.elections, b.phase.elections, c.phase.elections],
  }));
} finally {
  await cluster.destroy();
}
