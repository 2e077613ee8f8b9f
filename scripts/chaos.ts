/**
 * Chaos test of the replicated key-value service with real processes: a
 * cluster of `serve.ts` processes (WAL + TCP + HTTP), concurrent clients
 * doing put/get/cas/delete on a small key set through the HTTP API of random
 * nodes, and a seeded nemesis that kills (SIGKILL) and restarts nodes,
 * pauses them (SIGSTOP/SIGCONT, which looks like a partition to the others),
 * restarts them gracefully (SIGTERM), replaces a member (remove, wipe, rejoin
 * with `--join`, add back as learner then voter) and, with `--partitions`,
 * cuts network links: every node then runs in its own network namespace on a
 * bridge, and a cut is a policy rule that silently drops a peer's TCP
 * packets (minority/majority splits and bridges). The leader is picked as a
 * target half of the time.
 *
 * Every client operation goes into a history (invoke/complete; timeouts and
 * broken connections are indefinite `info` operations, answers that say the
 * request was not carried out are `fail`), checked at the end with the
 * linearizability checker. After healing it also checks that no
 * acknowledged write was lost (on keys written by one client only), that
 * every node converged to the same applied index and holds the same values,
 * and that no node exited on its own.
 *
 * ```sh
 * deno task chaos --seconds 60 --nodes 5 --seed 7 --clients 8
 * deno task chaos --partitions --seconds 120 --faults kill,pause,restart,partition,member
 * ```
 *
 * Prints one summary line, `chaos: seed S, N ops (…), faults …, verdict V, …`,
 * and exits 1 on a non-linearizable history, a lost write, a divergent
 * replica or a node that crashed; 2 on bad usage; 3 when the cluster did not
 * recover or the checker ran out of budget (`unknown`).
 *
 * @module
 */

import { mulberry32 } from "../src/core/random.ts";
import { LocalCluster, type NodeStatus } from "./lib/local_cluster.ts";
import {
  checkHistory,
  type CheckResult,
  formatOperation,
  type KvOperation,
} from "../src/testing/linearizability/mod.ts";

/** Fault kinds the nemesis can apply. */
export type FaultKind =
  | "kill"
  | "pause"
  | "restart"
  | "partition"
  | "member";

/** Options of {@linkcode runChaos}. */
export interface ChaosOptions {
  /** How long clients and the nemesis run, in seconds. */
  seconds: number;
  /** Cluster size (3 or 5). */
  nodes: number;
  /** Seed of the nemesis schedule and the clients' choices. */
  seed: number;
  /** Concurrent clients, each with one request in flight. */
  clients: number;
  /** Keys written by every client (the checker decides on them). */
  sharedKeys: number;
  /** Keys written by one client each (also checked for lost writes). */
  ownKeysPerClient: number;
  /** Client request timeout in ms; past it the operation is indefinite. */
  opTimeoutMs: number;
  /** Which faults to inject (empty: none). */
  faults: FaultKind[];
  /** Pause between faults, ms: uniform in [min, max]. */
  gapMs: [number, number];
  /** How long a fault lasts, ms: uniform in [min, max]. */
  faultMs: [number, number];
  /**
   * Consistency of the clients' reads: `linearizable` (ReadIndex, the
   * default), `lease`, or `stale` (not linearizable: a self-check that the
   * harness catches stale reads).
   */
  reads: "linearizable" | "lease" | "stale";
  /** Raft tick of the nodes in ms. */
  tickMs: number;
  /**
   * Clock skew between processes: each node's clock (ticks, deadlines,
   * lease) runs at a rate drawn from `[1 - skew, 1 + skew]` with a random
   * offset (`--test-clock-rate`/`--test-clock-offset-ms` of serve). Keep it
   * below the lease's assumption (`LEASE_MARGIN_TICKS / electionTick` =
   * 0.2 for the default 10 ticks) when reads are `lease`.
   */
  clockSkew: number;
  /** Nodes snapshot after this many applied entries (small: many installs). */
  snapshotEntries: number;
  /** Folder for data, logs and the history (created, removed afterwards). */
  root: string;
  /** Keep `root` when the run fails (history.jsonl, nemesis.log, node logs). */
  keepOnFailure: boolean;
  /** Keep `root` (history.jsonl, nemesis.log, logs) even when the run passed. */
  keepAlways: boolean;
  /** Time budget of the linearizability checker, ms. */
  checkBudgetMs: number;
  /** Progress lines (default: nothing). */
  log: (line: string) => void;
  /**
   * Name prefix of the network namespaces made by {@linkcode setupNetns}
   * (`PREFIX-1` … `PREFIX-n`); the caller runs inside `PREFIX-hub`. Needed
   * for `partition` faults; empty: every node on 127.0.0.1.
   */
  netns: string;
}

/** What {@linkcode runChaos} found. */
export interface ChaosResult {
  /** True when nothing went wrong. */
  ok: boolean;
  seed: number;
  /** Operations by completion type. */
  ops: { total: number; ok: number; fail: number; info: number };
  /** Operations by function, completed ok. */
  okByFunction: Record<string, number>;
  /** Non-ok operations by status, function and answer (e.g. `info put timeout`). */
  outcomes: Record<string, number>;
  /** Faults applied, in order, as text. */
  faults: string[];
  /** The checker's result. */
  check: CheckResult;
  /** Acknowledged writes not found after healing (`key: expected, got`). */
  lostWrites: string[];
  /** Nodes whose stale reads disagree after convergence. */
  divergence: string[];
  /** Node processes that exited without being told to. */
  crashes: string[];
  /** Whether the healed cluster elected a leader and converged. */
  recovered: boolean;
  /** Leaders seen (by term). */
  terms: number;
  /** Wall time of the whole run, ms. */
  wallMs: number;
  /** The failing history excerpt (illegal) or other problems, as text. */
  problems: string[];
  /** The one-line summary. */
  summary: string;
  /** Where the run's files are (removed unless kept on failure). */
  root: string;
  /** Whether `root` was kept. */
  kept: boolean;
}

/** Defaults of {@linkcode ChaosOptions}. */
export const CHAOS_DEFAULTS: ChaosOptions = {
  seconds: 30,
  nodes: 3,
  seed: 1,
  clients: 6,
  sharedKeys: 6,
  ownKeysPerClient: 3,
  opTimeoutMs: 3000,
  faults: ["kill", "pause", "restart"],
  gapMs: [500, 2500],
  faultMs: [800, 4000],
  reads: "linearizable",
  tickMs: 100,
  clockSkew: 0.05,
  snapshotEntries: 2000,
  root: `.chaos-data/run-${Date.now()}`,
  keepOnFailure: true,
  keepAlways: false,
  checkBudgetMs: 60_000,
  log: () => {},
  netns: "",
};

/** The subnet of the namespaced cluster: node i is `${NETNS_SUBNET}.i`, the hub `.254`. */
export const NETNS_SUBNET = "10.77.0";

/** Runs `ip ARGS`; throws with its stderr on failure. */
async function ip(args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", {
    args,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
}

/**
 * Makes network namespaces for a partitionable cluster (needs root and
 * iproute2): a hub `PREFIX-hub` with a bridge at `.254`, and `PREFIX-i` for
 * node i with a veth on the bridge at `${NETNS_SUBNET}.i`. Each node
 * namespace consults the local routing table after priority 10, so a
 * `blackhole` rule at 10 can drop a peer's TCP packets silently (see
 * {@linkcode Partitioner}). Removes what it made when a step fails.
 */
export async function setupNetns(prefix: string, nodes: number): Promise<void> {
  const hub = `${prefix}-hub`;
  try {
    await ip(["netns", "add", hub]);
    await ip(["-n", hub, "link", "set", "lo", "up"]);
    await ip(["-n", hub, "link", "add", "br0", "type", "bridge"]);
    await ip([
      "-n",
      hub,
      "addr",
      "add",
      `${NETNS_SUBNET}.254/24`,
      "dev",
      "br0",
    ]);
    await ip(["-n", hub, "link", "set", "br0", "up"]);
    for (let i = 1; i <= nodes; i++) {
      const ns = `${prefix}-${i}`;
      await ip(["netns", "add", ns]);
      await ip([
        "-n",
        hub,
        "link",
        "add",
        `v${i}`,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ns,
      ]);
      await ip(["-n", hub, "link", "set", `v${i}`, "master", "br0"]);
      await ip(["-n", hub, "link", "set", `v${i}`, "up"]);
      await ip([
        "-n",
        ns,
        "addr",
        "add",
        `${NETNS_SUBNET}.${i}/24`,
        "dev",
        "eth0",
      ]);
      await ip(["-n", ns, "link", "set", "eth0", "up"]);
      await ip(["-n", ns, "link", "set", "lo", "up"]);
      await ip(["-n", ns, "rule", "add", "pref", "100", "lookup", "local"]);
      await ip(["-n", ns, "rule", "del", "pref", "0"]);
    }
  } catch (e) {
    await teardownNetns(prefix, nodes);
    throw e;
  }
}

/** Deletes the namespaces of {@linkcode setupNetns} (their links go with them). */
export async function teardownNetns(
  prefix: string,
  nodes: number,
): Promise<void> {
  for (let i = 1; i <= nodes; i++) {
    await ip(["netns", "del", `${prefix}-${i}`]).catch(() => {});
  }
  await ip(["netns", "del", `${prefix}-hub`]).catch(() => {});
}

/**
 * Cuts and heals the links between node namespaces: in node i's namespace a
 * rule drops TCP packets from node j arriving on eth0 (silently, so
 * connections hang as in a real partition; clients on the hub still reach
 * every node).
 */
export class Partitioner {
  readonly #rules = new Set<string>();
  constructor(readonly prefix: string) {}

  #rule(i: number, j: number): string[] {
    return [
      "-n",
      `${this.prefix}-${i}`,
      "rule",
      "pref",
      "10",
      "from",
      `${NETNS_SUBNET}.${j}`,
      "iif",
      "eth0",
      "ipproto",
      "tcp",
      "blackhole",
    ];
  }

  /** Separates `side` from `rest` in both directions. */
  async split(side: number[], rest: number[]): Promise<void> {
    for (const i of side) {
      for (const j of rest) {
        for (const [a, b] of [[i, j], [j, i]]) {
          const r = this.#rule(a, b);
          const [n, ns, , ...spec] = r;
          await ip([n, ns, "rule", "add", ...spec]);
          this.#rules.add(JSON.stringify([a, b]));
        }
      }
    }
  }

  /** Removes every cut. */
  async heal(): Promise<void> {
    for (const key of [...this.#rules]) {
      const [a, b] = JSON.parse(key) as [number, number];
      const [n, ns, , ...spec] = this.#rule(a, b);
      await ip([n, ns, "rule", "del", ...spec]).catch(() => {});
      this.#rules.delete(key);
    }
  }
}

/** mulberry32: a small seeded PRNG. */
export function prng(seed: number): () => number {
  return mulberry32(seed);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Microseconds on a monotonic clock (history times). */
const now = () => Math.round(performance.now() * 1000);

/** An operation with the annotations written to history.jsonl. */
export interface RecordedOp extends KvOperation {
  /** Node the request was sent to. */
  node: number;
  /** HTTP status, or the client-side error. */
  detail?: string;
}

/** How one HTTP exchange ended, before it is mapped to a history status. */
export interface HttpOutcome {
  status?: number;
  body?: string;
  error?: string;
}

/**
 * Sends one request with a hard timeout; never throws. The body is always
 * consumed, the timer always cleared.
 */
async function exchange(
  url: string,
  init: RequestInit,
  timeoutMs: number,
  client?: Deno.HttpClient,
): Promise<HttpOutcome> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const res = await fetch(url, { ...init, signal: ac.signal, client });
    const body = await res.text();
    return { status: res.status, body };
  } catch (e) {
    return {
      error: ac.signal.aborted
        ? "timeout"
        : e instanceof Error
        ? (e.cause instanceof Error ? e.cause.message : e.message)
        : String(e),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The error code of a JSON error body, if any. */
function errorCode(body: string | undefined): { code?: string; msg?: string } {
  try {
    const v = JSON.parse(body ?? "");
    return { code: v?.error?.code, msg: v?.error?.message };
  } catch {
    return {};
  }
}

/**
 * Whether a failed write certainly did not take effect. The server's
 * semantics (src/kv/http_api.ts, src/runtime/raft_server.ts): 4xx answers are
 * refused before proposing; `OVERLOADED` and `NOT_LEADER` are raised before
 * the entry is appended (except a failed forward, which may have reached the
 * leader), `PROPOSAL_DROPPED` means another entry took the index. A refused
 * connection never carried the request. Everything else (timeouts, 504,
 * `STOPPED`, 500, broken connections) is indefinite.
 */
export function definitelyFailed(o: HttpOutcome): boolean {
  if (o.error !== undefined) {
    // Connecting failed (refused, unreachable): nothing was sent.
    return /client error \(Connect\)/.test(o.error);
  }
  const s = o.status ?? 0;
  if (s >= 400 && s < 500) return true;
  if (s === 503) {
    const { code, msg } = errorCode(o.body);
    if (code === "OVERLOADED" || code === "PROPOSAL_DROPPED") return true;
    if (code === "NOT_LEADER") return !/forwarding/i.test(msg ?? "");
  }
  return false;
}

interface Client {
  index: number;
  /**
   * A connection per request, never pooled: fetch retries a request whose
   * pooled connection broke on a new connection, so with pooling a refused
   * connect may hide an earlier attempt that reached the server.
   */
  http: Deno.HttpClient;
  /** History process; changes after an indefinite operation. */
  process: string;
  generation: number;
  /** Last value this client saw per key (drives cas expectations). */
  seen: Map<string, string | null>;
  seq: number;
}

/** Runs one client operation against node `node` and records it. */
async function runOp(
  cluster: LocalCluster,
  history: RecordedOp[],
  client: Client,
  node: number,
  f: KvOperation["f"],
  key: string,
  timeoutMs: number,
  opId: () => number,
  reads: ChaosOptions["reads"] = "linearizable",
): Promise<RecordedOp> {
  const base = cluster.node(node).httpUrl;
  const url = `${base}/kv/${encodeURIComponent(key)}`;
  const op: RecordedOp = {
    id: opId(),
    process: client.process,
    f,
    key,
    status: "info",
    invokeTime: 0,
    node,
  };
  let init: RequestInit;
  let path = url;
  if (f === "get") {
    init = { method: "GET" };
    if (reads !== "linearizable") path = `${url}?consistency=${reads}`;
  } else if (f === "put") {
    op.value = `${client.index}.${client.seq++}`;
    init = { method: "PUT", body: op.value };
  } else if (f === "delete") {
    init = { method: "DELETE" };
  } else {
    op.value = `${client.index}.${client.seq++}`;
    // Expect what this client last saw (often current, sometimes stale).
    op.expect = client.seen.get(key) ?? null;
    path = `${url}/cas`;
    init = {
      method: "POST",
      body: JSON.stringify({ expect: op.expect, value: op.value }),
      headers: { "content-type": "application/json" },
    };
  }
  history.push(op);
  op.invokeTime = now();
  const out = await exchange(path, init, timeoutMs, client.http);
  const end = now();
  const ec = errorCode(out.body);
  op.detail = out.error ??
    `${out.status}${
      out.status !== undefined && out.status >= 300
        ? " " + (ec.code ?? "") +
          (/forwarding/.test(ec.msg ?? "") ? ` (${ec.msg})` : "")
        : ""
    }`;
  const okStatus = (() => {
    switch (f) {
      case "get":
        if (out.status === 200) {
          op.value = out.body ?? "";
          return true;
        }
        if (out.status === 404 && errorCode(out.body).code === "NOT_FOUND") {
          op.value = null;
          return true;
        }
        return false;
      case "put":
        return out.status === 204;
      case "delete":
        // 404: the key was absent; the delete still happened (a no-op).
        return out.status === 204 ||
          (out.status === 404 && errorCode(out.body).code === "NOT_FOUND");
      case "cas":
        if (out.status === 200) {
          op.outcome = "ok";
          return true;
        }
        if (out.status === 409 && errorCode(out.body).code === "CAS_MISMATCH") {
          op.outcome = "failed";
          try {
            const cur = JSON.parse(out.body ?? "").current;
            client.seen.set(key, typeof cur === "string" ? cur : null);
          } catch {
            // Keep what we knew.
          }
          return true;
        }
        return false;
    }
  })();
  if (okStatus) {
    op.status = "ok";
    op.returnTime = end;
    if (f === "get") client.seen.set(key, op.value as string | null);
    if (f === "put" || (f === "cas" && op.outcome === "ok")) {
      client.seen.set(key, op.value as string);
    }
    if (f === "delete") client.seen.set(key, null);
  } else if (f === "get" || definitelyFailed(out)) {
    // A read that did not answer has no effect; a refused write never happened.
    op.status = "fail";
    op.returnTime = end;
  } else {
    op.status = "info";
    // The operation stays open forever: later operations of this client get
    // a new process name, as in Jepsen.
    client.generation++;
    client.process = `c${client.index}.${client.generation}`;
  }
  return op;
}

/** The node that leads in the highest term among those answering, if any. */
async function findLeader(
  cluster: LocalCluster,
): Promise<NodeStatus | undefined> {
  const ids = cluster.nodes.filter((n) =>
    n.process !== undefined && !cluster.isPaused(n.id)
  ).map((n) => n.id);
  const st = await Promise.all(ids.map((id) => cluster.status(id, 500)));
  let best: NodeStatus | undefined;
  for (const s of st) {
    if (s && s.role === "leader" && (!best || s.term > best.term)) best = s;
  }
  return best;
}

/** Parses `--flag value` arguments into options. Throws on bad usage. */
export function parseChaosArgs(args: string[]): Partial<ChaosOptions> {
  const out: Partial<ChaosOptions> = {};
  const num = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min) {
      throw new Error(`${flag} needs a number >= ${min}`);
    }
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    switch (a) {
      case "--seconds":
        out.seconds = num(a, args[++i], 1);
        break;
      case "--nodes": {
        const n = num(a, args[++i], 1);
        if (n !== 3 && n !== 5) throw new Error("--nodes must be 3 or 5");
        out.nodes = n;
        break;
      }
      case "--seed":
        out.seed = Math.floor(num(a, args[++i], 0));
        break;
      case "--clients":
        out.clients = Math.floor(num(a, args[++i], 1));
        break;
      case "--keys":
        out.sharedKeys = Math.floor(num(a, args[++i], 1));
        break;
      case "--own-keys":
        out.ownKeysPerClient = Math.floor(num(a, args[++i], 0));
        break;
      case "--timeout-ms":
        out.opTimeoutMs = num(a, args[++i], 50);
        break;
      case "--reads": {
        const r = args[++i];
        if (r !== "linearizable" && r !== "lease" && r !== "stale") {
          throw new Error("--reads must be linearizable, lease or stale");
        }
        out.reads = r;
        break;
      }
      case "--tick-ms":
        out.tickMs = num(a, args[++i], 5);
        break;
      case "--clock-skew":
        out.clockSkew = num(a, args[++i], 0);
        if (out.clockSkew >= 0.5) throw new Error("--clock-skew must be < 0.5");
        break;
      case "--gap-ms":
      case "--fault-ms": {
        const [lo, hi] = (args[++i] ?? "").split(",").map(Number);
        if (!(lo >= 0 && hi >= lo)) throw new Error(`${a} needs MIN,MAX`);
        if (a === "--gap-ms") out.gapMs = [lo, hi];
        else out.faultMs = [lo, hi];
        break;
      }
      case "--snapshot-entries":
        out.snapshotEntries = Math.floor(num(a, args[++i], 1));
        break;
      case "--check-budget-ms":
        out.checkBudgetMs = num(a, args[++i], 100);
        break;
      case "--faults": {
        const list = (args[++i] ?? "").split(",").filter((s) => s !== "");
        for (const f of list) {
          if (
            f !== "kill" && f !== "pause" && f !== "restart" &&
            f !== "partition" && f !== "member"
          ) {
            throw new Error(
              `unknown fault ${f} (kill, pause, restart, partition, member)`,
            );
          }
        }
        out.faults = list as FaultKind[];
        break;
      }
      case "--no-faults":
        out.faults = [];
        break;
      case "--root":
        out.root = args[++i];
        if (!out.root) throw new Error("--root needs a folder");
        break;
      case "--netns":
        out.netns = args[++i] ?? "";
        if (!/^[a-z0-9-]+$/.test(out.netns)) {
          throw new Error("--netns needs a namespace prefix");
        }
        break;
      case "--discard":
        out.keepOnFailure = false;
        break;
      case "--keep":
        out.keepAlways = true;
        break;
      default:
        throw new Error(`unknown flag ${a}`);
    }
  }
  return out;
}

/**
 * One chaos run: start a cluster, run clients and the nemesis for
 * `seconds`, heal, check. Always stops its processes (by pid) and removes
 * its folder (unless it failed and `keepOnFailure`).
 *
 * @example
 * ```ts ignore
 * const r = await runChaos({ seconds: 15, seed: 3, root: ".test-data/chaos" });
 * if (!r.ok) console.log(r.problems.join("\n"));
 * ```
 */
export async function runChaos(
  partial: Partial<ChaosOptions> = {},
): Promise<ChaosResult> {
  const o: ChaosOptions = { ...CHAOS_DEFAULTS, ...partial };
  const started = performance.now();
  const log = o.log;
  const rnd = prng(o.seed);
  const nemesisRnd = prng(o.seed ^ 0x5bd1e995);
  if (o.faults.includes("partition") && o.netns === "") {
    throw new Error("partition faults need --partitions (network namespaces)");
  }
  const partitioner = o.netns ? new Partitioner(o.netns) : undefined;
  // One clock per process, kept across its restarts.
  const clocks = new Map<number, string[]>();
  const clockRnd = prng(o.seed ^ 0x2c1b3c6d);
  for (let id = 1; id <= o.nodes + 8; id++) {
    const rate = 1 + (clockRnd() * 2 - 1) * o.clockSkew;
    const offset = Math.floor(clockRnd() * 10_000);
    clocks.set(id, [
      "--test-clock-rate",
      rate.toFixed(4),
      "--test-clock-offset-ms",
      String(offset),
    ]);
  }
  /** Nodes that rejoined with a fresh data folder (they start with --join). */
  const joining = new Set<number>();
  const cluster = await LocalCluster.start({
    nodes: o.nodes,
    root: o.root,
    nodeArgs: (id) => [
      ...(o.clockSkew > 0 ? clocks.get(id) ?? [] : []),
      ...(joining.has(id) ? ["--join"] : []),
    ],
    ...(o.netns
      ? {
        basePort: 7000,
        host: (id: number) => `${NETNS_SUBNET}.${id}`,
        commandPrefix: (
          id: number,
        ) => ["ip", "netns", "exec", `${o.netns}-${id}`],
      }
      : { freePorts: true }),
    extraArgs: [
      "--tick-ms",
      String(o.tickMs),
      "--snapshot-entries",
      String(o.snapshotEntries),
      "--compaction-lag",
      String(Math.max(10, Math.floor(o.snapshotEntries / 10))),
      "--quiet",
    ],
  });
  const history: RecordedOp[] = [];
  const faultLog: string[] = [];
  const nemesisLines: string[] = [];
  const crashes: string[] = [];
  const expectedExit = new Set<number>();
  const problems: string[] = [];
  let opCounter = 0;
  const opId = () => ++opCounter;
  const t0 = performance.now();
  const stamp = () => ((performance.now() - t0) / 1000).toFixed(2);
  const note = (line: string) => {
    nemesisLines.push(`${stamp()} ${line}`);
    log(`  [${stamp()}s] ${line}`);
  };
  const watch = (id: number) => {
    const child = cluster.node(id).process;
    if (!child) return;
    const pid = child.pid;
    child.status.then((s) => {
      if (!expectedExit.has(pid)) {
        crashes.push(
          `node ${id} (pid ${pid}) exited by itself: code ${s.code}${
            s.signal ? ` signal ${s.signal}` : ""
          }`,
        );
        note(`CRASH: node ${id} pid ${pid} exited code ${s.code}`);
      }
    });
  };
  const stop = async (id: number, signal: Deno.Signal) => {
    const child = cluster.node(id).process;
    if (child) expectedExit.add(child.pid);
    if (signal === "SIGTERM") {
      const timer = setTimeout(() => {
        try {
          child?.kill("SIGKILL");
        } catch {
          // Gone.
        }
      }, 5000);
      try {
        await cluster.stopNode(id, signal);
      } finally {
        clearTimeout(timer);
      }
    } else {
      await cluster.stopNode(id, signal);
    }
  };
  const start = (id: number) => {
    if (cluster.isRunning(id)) return;
    cluster.startNode(id);
    watch(id);
  };
  for (const n of cluster.nodes) watch(n.id);

  const sharedKeys = Array.from({ length: o.sharedKeys }, (_, i) => `k${i}`);
  const ownKeys = (c: number) =>
    Array.from({ length: o.ownKeysPerClient }, (_, i) => `own${c}-${i}`);

  let recovered = true;
  let check: CheckResult = {
    verdict: "unknown",
    operations: 0,
    keys: 0,
    keysChecked: 0,
    memoEntries: 0,
    elapsedMs: 0,
  };
  const lostWrites: string[] = [];
  const divergence: string[] = [];
  const termsSeen = new Set<number>();
  let kept = false;
  const finalHttp = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  let adminClient: Deno.HttpClient | undefined;
  try {
    const first = await cluster.waitForLeader(30_000);
    termsSeen.add(first.term);
    note(`leader ${first.id} in term ${first.term}`);
    const end = performance.now() + o.seconds * 1000;

    // ---------------------------------------------------------- clients
    const clientLoop = async (index: number) => {
      const crnd = prng((o.seed * 7919 + index * 104729) >>> 0);
      const client: Client = {
        index,
        http: Deno.createHttpClient({ poolMaxIdlePerHost: 0 }),
        process: `c${index}.0`,
        generation: 0,
        seen: new Map(),
        seq: 0,
      };
      const mine = ownKeys(index);
      // Bounded by time and by count.
      try {
        for (let n = 0; n < 1_000_000 && performance.now() < end; n++) {
          const node = 1 + Math.floor(crnd() * o.nodes);
          let f: KvOperation["f"];
          let key: string;
          if (mine.length > 0 && crnd() < 0.3) {
            key = mine[Math.floor(crnd() * mine.length)];
            const r = crnd();
            f = r < 0.6 ? "put" : r < 0.9 ? "get" : "delete";
          } else {
            key = sharedKeys[Math.floor(crnd() * sharedKeys.length)];
            const r = crnd();
            f = r < 0.4 ? "get" : r < 0.65 ? "put" : r < 0.9 ? "cas" : "delete";
          }
          const op = await runOp(
            cluster,
            history,
            client,
            node,
            f,
            key,
            o.opTimeoutMs,
            opId,
            o.reads,
          );
          if (op.status !== "ok") await sleep(20 + Math.floor(crnd() * 80));
        }
      } finally {
        client.http.close();
      }
    };

    // ---------------------------------------------------------- membership
    const admin = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
    adminClient = admin;
    const adminCall = async (
      via: number,
      method: string,
      path: string,
      body?: unknown,
    ): Promise<HttpOutcome> =>
      await exchange(
        `${cluster.node(via).httpUrl}${path}`,
        {
          method,
          body: body === undefined ? undefined : JSON.stringify(body),
          headers: { "content-type": "application/json" },
        },
        10_000,
        admin,
      );
    /** Adds node `id` back (learner, then voter once caught up). Bounded. */
    const addMember = async (id: number): Promise<boolean> => {
      const n = cluster.node(id);
      const spec = {
        id,
        raft: n.raftAddress,
        http: n.httpUrl.replace("http://", ""),
      };
      for (const role of ["learner", "voter"]) {
        let done = false;
        for (let attempt = 0; attempt < 20 && !done; attempt++) {
          const via = (await findLeader(cluster))?.id ??
            1 + (attempt % o.nodes);
          const out = await adminCall(via, "POST", "/members", {
            ...spec,
            role,
          });
          done = out.status === 200;
          if (!done) await sleep(300);
        }
        if (!done) {
          note(`membership: adding node ${id} as ${role} failed`);
          return false;
        }
        if (role === "learner") {
          // Let it catch up before it votes (bounded).
          for (let i = 0; i < 50; i++) {
            const [me, ld] = [
              await cluster.status(id, 500),
              await findLeader(cluster),
            ];
            if (me && ld && me.applied >= ld.commit) break;
            await sleep(200);
          }
        }
      }
      note(`membership: node ${id} is a voter again`);
      return true;
    };
    const replaceMember = async (victim: number, via: number) => {
      const out = await adminCall(via, "DELETE", `/members/${victim}`);
      if (out.status !== 200) {
        note(
          `membership: removing node ${victim} refused (${
            out.status ?? out.error
          } ${errorCode(out.body).code ?? ""})`,
        );
        return;
      }
      note(`membership: node ${victim} removed`);
      await stop(victim, "SIGKILL");
      await Deno.remove(cluster.node(victim).dataDir, { recursive: true });
      await Deno.mkdir(cluster.node(victim).dataDir, { recursive: true });
      joining.add(victim);
      start(victim);
      await addMember(victim);
    };
    /** Voters per the leader's status. */
    const votersNow = async (): Promise<number[] | undefined> => {
      const ld = await findLeader(cluster);
      const m = ld?.membership as { voters?: number[] } | undefined;
      return m?.voters;
    };

    // ---------------------------------------------------------- nemesis
    const maxDown = Math.floor((o.nodes - 1) / 2);
    const nemesis = async () => {
      for (let n = 0; n < 100_000 && o.faults.length > 0; n++) {
        const gap = o.gapMs[0] + nemesisRnd() * (o.gapMs[1] - o.gapMs[0]);
        if (performance.now() + gap >= end) break;
        await sleep(gap);
        const kind = o.faults[Math.floor(nemesisRnd() * o.faults.length)];
        const count = 1 + Math.floor(nemesisRnd() * maxDown);
        const leader = await findLeader(cluster);
        if (leader) termsSeen.add(leader.term);
        const targets: number[] = [];
        if (leader && nemesisRnd() < 0.5) targets.push(leader.id);
        while (targets.length < count) {
          const id = 1 + Math.floor(nemesisRnd() * o.nodes);
          if (!targets.includes(id)) targets.push(id);
        }
        const lasts = o.faultMs[0] +
          nemesisRnd() * (o.faultMs[1] - o.faultMs[0]);
        const who = targets.map((t) =>
          `${t}${leader?.id === t ? " (leader)" : ""}`
        ).join(", ");
        if (kind === "kill") {
          faultLog.push(`kill ${targets.join("+")}`);
          note(`SIGKILL node ${who} for ${lasts.toFixed(0)} ms`);
          await Promise.all(targets.map((t) => stop(t, "SIGKILL")));
          await sleep(lasts);
          for (const t of targets) start(t);
          note(`restarted node ${targets.join(", ")}`);
        } else if (kind === "pause") {
          faultLog.push(`pause ${targets.join("+")}`);
          note(`SIGSTOP node ${who} for ${lasts.toFixed(0)} ms`);
          for (const t of targets) cluster.pauseNode(t);
          await sleep(lasts);
          for (const t of targets) cluster.resumeNode(t);
          note(`SIGCONT node ${targets.join(", ")}`);
        } else if (kind === "member") {
          const victim = targets.find((t) => t !== leader?.id);
          if (leader && victim !== undefined) {
            faultLog.push(`member ${victim}`);
            note(`membership: remove node ${victim}, wipe it, rejoin it`);
            await replaceMember(victim, leader.id);
          }
        } else if (kind === "partition" && partitioner) {
          const rest = cluster.nodes.map((n) => n.id).filter((id) =>
            !targets.includes(id)
          );
          if (nemesisRnd() < 0.3 && rest.length >= 2) {
            // A bridge: only the link between two nodes is cut; a third
            // node (targets[0]) still sees both.
            const a = rest[0];
            const b = rest[1];
            faultLog.push(`partition ${a}x${b}`);
            note(
              `partition: cut the link ${a} <-> ${b} only (a bridge through ${
                targets[0]
              }) for ${lasts.toFixed(0)} ms`,
            );
            await partitioner.split([a], [b]);
          } else {
            faultLog.push(`partition ${targets.join("+")}|${rest.join("+")}`);
            note(
              `partition {${who}} | {${rest.join(", ")}} for ${
                lasts.toFixed(0)
              } ms`,
            );
            await partitioner.split(targets, rest);
          }
          await sleep(lasts);
          await partitioner.heal();
          note("partition healed");
        } else {
          faultLog.push(`restart ${targets.join("+")}`);
          note(`SIGTERM + restart node ${who}`);
          await Promise.all(targets.map((t) => stop(t, "SIGTERM")));
          for (const t of targets) start(t);
        }
      }
    };

    log(
      `running ${o.clients} clients and the nemesis (${
        o.faults.join(",") || "no faults"
      }) for ${o.seconds} s`,
    );
    await Promise.all([
      nemesis(),
      ...Array.from({ length: o.clients }, (_, i) => clientLoop(i + 1)),
    ]);

    // ---------------------------------------------------------- heal
    note("healing: resume and restart every node");
    await partitioner?.heal();
    for (const n of cluster.nodes) {
      cluster.resumeNode(n.id);
      start(n.id);
    }
    let leader: NodeStatus | undefined;
    try {
      leader = await cluster.waitForLeader(30_000);
      termsSeen.add(leader.term);
      note(`leader ${leader.id} in term ${leader.term} after healing`);
    } catch (e) {
      recovered = false;
      problems.push(`no leader after healing: ${(e as Error).message}`);
    }
    // Every node must be a voter again before the cluster can converge.
    if (leader && o.faults.includes("member")) {
      const voters = await votersNow() ?? [];
      for (const n of cluster.nodes) {
        if (!voters.includes(n.id)) {
          note(`healing: node ${n.id} is not a voter; adding it back`);
          if (!(await addMember(n.id))) {
            recovered = false;
            problems.push(`could not add node ${n.id} back as a voter`);
          }
        }
      }
      leader = await cluster.waitForLeader(30_000).catch(() => leader);
    }
    // Converge: every node applied the same index, equal to the commit index.
    if (leader) {
      // A write through the leader makes sure an entry of its term commits.
      const client: Client = {
        index: 0,
        http: finalHttp,
        process: "final",
        generation: 0,
        seen: new Map(),
        seq: 0,
      };
      for (let attempt = 0; attempt < 20; attempt++) {
        const op = await runOp(
          cluster,
          history,
          client,
          leader.id,
          "put",
          "heal-marker",
          5000,
          opId,
        );
        if (op.status === "ok") break;
        await sleep(250);
        leader = await findLeader(cluster) ?? leader;
      }
      const deadline = performance.now() + 30_000;
      let converged = false;
      while (performance.now() < deadline) {
        const st = await cluster.statuses();
        const applied = st.map((s) => s?.applied ?? -1);
        const commits = st.map((s) => s?.commit ?? -1);
        if (
          st.every((s) => s !== undefined) &&
          applied.every((a) => a === applied[0]) &&
          commits.every((c) => c === applied[0])
        ) {
          converged = true;
          note(`converged at index ${applied[0]}`);
          break;
        }
        await sleep(200);
      }
      if (!converged) {
        recovered = false;
        const st = await cluster.statuses();
        problems.push(
          `nodes did not converge within 30 s: ${
            JSON.stringify(
              st.map((s) =>
                s && { id: s.id, role: s.role, c: s.commit, a: s.applied }
              ),
            )
          }`,
        );
      }

      // Final linearizable reads of every key (part of the history).
      const finals = new Map<string, string | null>();
      const allKeys = [
        ...sharedKeys,
        ...Array.from({ length: o.clients }, (_, i) => ownKeys(i + 1)).flat(),
      ];
      for (const key of allKeys) {
        for (let attempt = 0; attempt < 10; attempt++) {
          const node = 1 + Math.floor(rnd() * o.nodes);
          const op = await runOp(
            cluster,
            history,
            client,
            node,
            "get",
            key,
            5000,
            opId,
          );
          if (op.status === "ok") {
            finals.set(key, op.value as string | null);
            break;
          }
          await sleep(200);
        }
        if (!finals.has(key)) problems.push(`could not read ${key} at the end`);
      }

      // Replica agreement: stale reads of every key on every node.
      if (converged) {
        for (const key of allKeys) {
          const values: string[] = [];
          for (const n of cluster.nodes) {
            const out = await exchange(
              `${n.httpUrl}/kv/${encodeURIComponent(key)}?consistency=stale`,
              { method: "GET" },
              5000,
              finalHttp,
            );
            values.push(
              out.status === 200
                ? JSON.stringify(out.body)
                : out.status === 404
                ? "absent"
                : `error ${out.status ?? out.error}`,
            );
          }
          if (values.some((v) => v !== values[0])) {
            divergence.push(
              `${key}: ${
                values.map((v, i) => `node ${i + 1}=${v}`).join(", ")
              }`,
            );
          }
        }
      }

      // Lost writes: on a key written by one client only, the final value is
      // the last acknowledged write's, or one of its indefinite writes'.
      for (let c = 1; c <= o.clients; c++) {
        for (const key of ownKeys(c)) {
          if (!finals.has(key)) continue;
          const writes = history.filter((op) =>
            op.key === key && op.f !== "get" && op.process !== "final"
          );
          const acked = writes.filter((op) => op.status === "ok");
          const last = acked.at(-1);
          const allowed = new Set<string | null>();
          allowed.add(
            last === undefined
              ? null
              : last.f === "delete"
              ? null
              : last.value as string,
          );
          // An indefinite write may land at any time, even after a later
          // acknowledged one (a forwarded request can arrive late).
          for (const w of writes) {
            if (w.status !== "info") continue;
            allowed.add(w.f === "delete" ? null : w.value as string);
          }
          const got = finals.get(key) ?? null;
          if (!allowed.has(got)) {
            lostWrites.push(
              `${key}: expected ${
                [...allowed].map((v) => v ?? "absent").join(" or ")
              } (last ack ${last ? formatOperation(last) : "none"}), read ${
                got ?? "absent"
              }`,
            );
          }
        }
      }
    }

    // ---------------------------------------------------------- check
    const budget = o.checkBudgetMs;
    check = checkHistory(history, {
      timeBudgetMs: budget,
      explainBudgetMs: 20_000,
    });
    if (check.verdict === "illegal" && check.illegal) {
      problems.push(`NOT LINEARIZABLE on key ${check.illegal.key}:`);
      problems.push(check.illegal.message);
      const ids = new Set(check.illegal.operations.map((op) => op.id));
      for (const op of history) {
        if (ids.has(op.id)) {
          problems.push(
            `  op ${op.id}: node ${op.node} ${op.status} (${op.detail ?? ""}) ${
              formatOperation(op)
            }`,
          );
        }
      }
    } else if (check.verdict === "unknown") {
      problems.push(
        `checker budget ran out on key ${check.unknown?.key} (${check.unknown?.reason})`,
      );
    }
    for (const l of lostWrites) problems.push(`LOST WRITE ${l}`);
    for (const d of divergence) problems.push(`DIVERGENT ${d}`);
    for (const c of crashes) problems.push(`CRASH ${c}`);
  } catch (e) {
    recovered = false;
    problems.push(`run aborted: ${e instanceof Error ? e.stack : String(e)}`);
  } finally {
    finalHttp.close();
    adminClient?.close();
    await partitioner?.heal();
    for (const n of cluster.nodes) {
      if (n.process) expectedExit.add(n.process.pid);
    }
    await cluster.stopAll();
  }

  const counts = { total: history.length, ok: 0, fail: 0, info: 0 };
  const okByFunction: Record<string, number> = {
    put: 0,
    get: 0,
    cas: 0,
    delete: 0,
  };
  const outcomes: Record<string, number> = {};
  for (const op of history) {
    counts[op.status]++;
    if (op.status === "ok") okByFunction[op.f]++;
    else {
      const detail = (op.detail ?? "").replace(
        /^error sending request.*?: /,
        "",
      ).replace(/ \(forwarding.*$/, " (forward failed)")
        .replace(/\s*\(os error.*$/, "").slice(0, 60);
      const k = `${op.status} ${op.f} ${detail}`;
      outcomes[k] = (outcomes[k] ?? 0) + 1;
    }
  }
  const ok = recovered && check.verdict === "ok" && lostWrites.length === 0 &&
    divergence.length === 0 && crashes.length === 0;
  const wallMs = performance.now() - started;
  const summary =
    `chaos: seed ${o.seed}, ${o.nodes} nodes, ${o.clients} clients, ${o.seconds} s, clock skew ±${
      (o.clockSkew * 100).toFixed(0)
    } %, ${counts.total} ops (${counts.ok} ok, ${counts.fail} fail, ${counts.info} info; ok put ${okByFunction.put} get ${okByFunction.get} cas ${okByFunction.cas} delete ${okByFunction.delete}), ${faultLog.length} faults${
      faultKinds(faultLog)
    }, ${termsSeen.size} terms seen, verdict ${check.verdict} (${
      check.elapsedMs.toFixed(0)
    } ms), ${lostWrites.length} lost writes, ${divergence.length} divergent keys, ${crashes.length} crashes, ${
      recovered ? "recovered" : "NOT RECOVERED"
    }, ${(wallMs / 1000).toFixed(1)} s wall: ${ok ? "OK" : "FAILED"}`;

  if ((!ok && o.keepOnFailure) || o.keepAlways) {
    kept = true;
    await Deno.writeTextFile(
      `${o.root}/history.jsonl`,
      historyJsonLines(history),
    );
    await Deno.writeTextFile(
      `${o.root}/nemesis.log`,
      nemesisLines.join("\n") + "\n",
    );
    await Deno.writeTextFile(
      `${o.root}/summary.txt`,
      [summary, ...problems].join("\n") + "\n",
    );
  } else {
    await Deno.remove(o.root, { recursive: true }).catch(() => {});
  }
  return {
    ok,
    seed: o.seed,
    ops: counts,
    okByFunction,
    outcomes,
    faults: faultLog,
    check,
    lostWrites,
    divergence,
    crashes,
    recovered,
    terms: termsSeen.size,
    wallMs,
    problems,
    summary,
    root: o.root,
    kept,
  };
}

/** ` (kill 3, pause 2)`: faults by kind, or nothing. */
function faultKinds(faults: readonly string[]): string {
  const by = new Map<string, number>();
  for (const f of faults) {
    const k = f.split(" ")[0];
    by.set(k, (by.get(k) ?? 0) + 1);
  }
  return by.size === 0
    ? ""
    : ` (${[...by].map(([k, n]) => `${k} ${n}`).join(", ")})`;
}

/** The history as JSON Lines (docs/history_format.md) with `node` and `detail` annotations. */
export function historyJsonLines(history: readonly RecordedOp[]): string {
  const lines: { t: number; o: number; s: string }[] = [];
  let maxT = 0;
  for (const op of history) {
    maxT = Math.max(maxT, op.returnTime ?? op.invokeTime);
  }
  for (const op of history) {
    const inv: Record<string, unknown> = {
      type: "invoke",
      process: op.process,
      id: op.id,
      f: op.f,
      key: op.key,
    };
    if (op.f === "put" || op.f === "cas") inv.value = op.value;
    if (op.f === "cas") inv.expect = op.expect;
    inv.time = op.invokeTime;
    inv.node = op.node;
    lines.push({ t: op.invokeTime, o: 0, s: JSON.stringify(inv) });
    const t = op.status === "info" ? maxT : op.returnTime ?? maxT;
    const done: Record<string, unknown> = {
      type: op.status,
      process: op.process,
      id: op.id,
    };
    if (op.status === "ok" && op.f === "get") done.value = op.value ?? null;
    if (op.status === "ok" && op.f === "cas") done.outcome = op.outcome;
    done.time = t;
    done.node = op.node;
    if (op.detail) done.detail = op.detail;
    lines.push({ t, o: 1, s: JSON.stringify(done) });
  }
  lines.sort((a, b) => a.t - b.t || a.o - b.o);
  return lines.map((l) => l.s).join("\n") + "\n";
}

const USAGE =
  `usage: deno task chaos [--seconds N] [--nodes 3|5] [--seed S] [--clients C]
  [--keys K] [--own-keys K] [--timeout-ms MS] [--tick-ms MS] [--clock-skew F] [--snapshot-entries N]
  [--reads linearizable|lease|stale]
  [--faults kill,pause,restart,partition,member | --no-faults] [--seeds N]
  [--gap-ms MIN,MAX] [--fault-ms MIN,MAX]
  [--partitions] [--root DIR] [--discard | --keep] [--check-budget-ms MS]

  --seeds N      run N seeds in a row, from --seed (default 1)
  member fault   remove a follower (DELETE /members), wipe its data, restart
                 it with --join, add it back as learner then voter
  --partitions   run the cluster in network namespaces (root and iproute2
                 needed) so the nemesis can also cut links; adds the
                 "partition" fault to the default mix`;

/**
 * `--partitions`: makes the namespaces, reruns this script inside the hub
 * namespace with `--netns PREFIX`, and removes the namespaces afterwards.
 */
async function runInNamespaces(args: string[], nodes: number): Promise<number> {
  const prefix = `rchaos-${Deno.pid}`;
  try {
    await setupNetns(prefix, nodes);
  } catch (e) {
    console.error(
      `chaos: cannot make network namespaces (root and iproute2 needed): ${
        (e as Error).message
      }`,
    );
    return 3;
  }
  const inner = [...args];
  if (!inner.includes("--faults") && !inner.includes("--no-faults")) {
    inner.push("--faults", "kill,pause,restart,partition");
  }
  const hosts = Array.from(
    { length: nodes },
    (_, i) => `${NETNS_SUBNET}.${i + 1}`,
  );
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      `${prefix}-hub`,
      Deno.execPath(),
      "run",
      "--allow-read=.",
      "--allow-write=.chaos-data",
      "--allow-run",
      `--allow-net=${hosts.join(",")}`,
      new URL(import.meta.url).pathname,
      ...inner,
      "--netns",
      prefix,
    ],
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const stopChild = () => {
    try {
      child.kill("SIGINT");
    } catch {
      // Gone.
    }
  };
  Deno.addSignalListener("SIGINT", stopChild);
  try {
    return (await child.status).code;
  } finally {
    Deno.removeSignalListener("SIGINT", stopChild);
    await teardownNetns(prefix, nodes);
  }
}

if (import.meta.main) {
  let seeds = 1;
  const args = [...Deno.args];
  if (args.includes("--help")) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const pi = args.indexOf("--partitions");
  if (pi >= 0) {
    args.splice(pi, 1);
    let nodes = 3;
    try {
      nodes = parseChaosArgs(args.filter((_, i) =>
        args[i] !== "--seeds" && args[i - 1] !== "--seeds"
      )).nodes ?? 3;
    } catch (e) {
      console.error(`chaos: ${(e as Error).message}\n${USAGE}`);
      Deno.exit(2);
    }
    Deno.exit(await runInNamespaces(args, nodes));
  }
  const si = args.indexOf("--seeds");
  if (si >= 0) {
    seeds = Number(args[si + 1]);
    args.splice(si, 2);
  }
  let parsed: Partial<ChaosOptions>;
  try {
    parsed = parseChaosArgs(args);
    if (!Number.isSafeInteger(seeds) || seeds < 1) {
      throw new Error("--seeds needs a positive integer");
    }
  } catch (e) {
    console.error(`chaos: ${(e as Error).message}\n${USAGE}`);
    Deno.exit(2);
  }
  const firstSeed = parsed.seed ?? 1;
  let worst = 0;
  const stamp = Date.now();
  for (let s = 0; s < seeds; s++) {
    const seed = firstSeed + s;
    let result: ChaosResult;
    try {
      result = await runChaos({
        ...parsed,
        seed,
        root: parsed.root
          ? `${parsed.root}/seed-${seed}`
          : `.chaos-data/run-${stamp}-seed-${seed}`,
        log: (l) => console.log(l),
      });
    } catch (e) {
      console.error(`chaos: ${(e as Error).message}`);
      Deno.exit(2);
    }
    console.log("non-ok operations:");
    for (
      const [k, v] of Object.entries(result.outcomes).sort((a, b) =>
        b[1] - a[1]
      )
    ) console.log(`  ${String(v).padStart(6)}  ${k}`);
    for (const p of result.problems) console.log(p);
    if (result.kept) console.log(`kept ${result.root} (history.jsonl, logs)`);
    console.log(result.summary);
    const code = result.ok
      ? 0
      : result.check.verdict === "illegal" || result.lostWrites.length > 0 ||
          result.divergence.length > 0 || result.crashes.length > 0
      ? 1
      : 3;
    if (code === 1 || (code === 3 && worst === 0)) worst = code;
  }
  Deno.exit(worst);
}
