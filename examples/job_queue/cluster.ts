/**
 * Starts a 3-node job queue on 127.0.0.1 as OS processes with fresh data
 * folders, exercises the API, kills the leader with SIGKILL, shows a new
 * leader serving with every job intact, and stops every process by its pid.
 *
 * ```sh
 * deno task example              # under Deno
 * node npm/examples/job_queue/cluster.js   # under Node, after deno task build:npm
 * ```
 *
 * {@linkcode JobQueueCluster} is also the harness of the example's tests.
 *
 * @module
 */
import process from "node:process";
import { spawn } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";

/** One node of the cluster. */
export interface ClusterNode {
  /** Its id. */
  readonly id: number;
  /** Raft address, `127.0.0.1:port`. */
  readonly raft: string;
  /** HTTP front end, `http://127.0.0.1:port`. */
  readonly url: string;
  /** Its data folder. */
  readonly dataDir: string;
  /** The running process, if any. */
  child: Child | undefined;
  /** The last 64 KiB of its stdout and stderr. */
  output: string;
}

/** Options of {@linkcode JobQueueCluster.start}. */
export interface ClusterOptions {
  /** Folder for data folders and the secret (created; removed by `destroy`). */
  root: string;
  /** Number of nodes. @default {3} */
  size?: number;
  /** Raft tick, ms. @default {50} */
  tickMs?: number;
  /** Extra flags for every node. */
  extraArgs?: string[];
}

/** What an HTTP call answered. */
export interface Answer {
  status: number;
  // deno-lint-ignore no-explicit-any
  body: any;
  headers: Headers;
}

const inDeno = "Deno" in globalThis;
const NODE_SCRIPT = fileURLToPath(
  new URL(
    import.meta.url.endsWith(".ts") ? "./node.ts" : "./node.js",
    import.meta.url,
  ),
);

/** The signals the launcher sends. */
export type Signal = "SIGTERM" | "SIGINT" | "SIGKILL";

/** A child process: its pid, and its exit code (null: killed by a signal). */
export interface Child {
  readonly pid: number;
  readonly exited: Promise<number | null>;
  /** Sends `signal` to the pid (throws when it is gone). */
  kill(signal: Signal): void;
}

/**
 * Runs this runtime's executable with `args`, without the parent's
 * environment, sending its output to `onOutput`. Deno's `Deno.Command`
 * under Deno (its `node:child_process` would need `--allow-env`), Node's
 * `child_process` under Node.
 */
function spawnChild(args: string[], onOutput: (text: string) => void): Child {
  const env = { NO_COLOR: "1" };
  if (inDeno) {
    const child = new Deno.Command(Deno.execPath(), {
      args,
      clearEnv: true,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) {
        onOutput(decoder.decode(chunk, { stream: true }));
      }
    };
    const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
    return {
      pid: child.pid,
      // The handle signals its own pid and needs no permission (Deno.kill needs all of --allow-run).
      kill: (signal) => child.kill(signal),
      exited: child.status.then(async (s) => {
        await pumped;
        return s.signal === null ? s.code : null;
      }),
    };
  }
  const child = spawn(process.execPath, args, {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.setEncoding("utf8").on("data", onOutput);
  child.stderr.setEncoding("utf8").on("data", onOutput);
  if (child.pid === undefined) {
    throw new Error(`cannot start ${process.execPath}`);
  }
  const pid = child.pid;
  return {
    pid,
    kill: (signal) => process.kill(pid, signal),
    exited: new Promise((done) => child.once("close", (code) => done(code))),
  };
}

/** A port the kernel handed out a moment ago, on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });
}

/** Sleeps `ms`. */
export const sleep = (ms: number): Promise<void> =>
  new Promise((r) => setTimeout(r, ms));

/** A local cluster of job queue node processes. */
export class JobQueueCluster {
  /** The nodes, by position (`nodes[0]` has id 1). */
  readonly nodes: ClusterNode[];
  /** The root folder. */
  readonly root: string;
  readonly #secretFile: string;
  readonly #tickMs: number;
  readonly #extraArgs: string[];

  private constructor(root: string, nodes: ClusterNode[], o: ClusterOptions) {
    this.root = root;
    this.nodes = nodes;
    this.#secretFile = `${root}/cluster.secret`;
    this.#tickMs = o.tickMs ?? 50;
    this.#extraArgs = o.extraArgs ?? [];
  }

  /** Creates fresh folders and a secret, picks ports, starts every node. */
  static async start(o: ClusterOptions): Promise<JobQueueCluster> {
    const root = resolve(o.root);
    await rm(root, { recursive: true, force: true });
    await mkdir(root, { recursive: true });
    const nodes: ClusterNode[] = [];
    for (let id = 1; id <= (o.size ?? 3); id++) {
      nodes.push({
        id,
        raft: `127.0.0.1:${await freePort()}`,
        url: `http://127.0.0.1:${await freePort()}`,
        dataDir: `${root}/node-${id}`,
        child: undefined,
        output: "",
      });
    }
    const c = new JobQueueCluster(root, nodes, o);
    await writeFile(c.#secretFile, randomBytes(32).toString("hex"));
    for (const n of nodes) c.startNode(n.id);
    return c;
  }

  /** The node with id `id`. */
  node(id: number): ClusterNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Starts (or restarts) node `id` as a child process. */
  startNode(id: number): void {
    const n = this.node(id);
    if (n.child !== undefined) throw new Error(`node ${id} is running`);
    const flags = [
      "--id",
      String(id),
      "--data-dir",
      n.dataDir,
      "--listen",
      n.raft,
      "--http",
      n.url.slice("http://".length),
      "--secret-file",
      this.#secretFile,
      "--tick-ms",
      String(this.#tickMs),
      ...this.#extraArgs,
    ];
    for (const p of this.nodes) {
      if (p.id !== id) flags.push("--peer", `${p.id}=${p.raft}`);
    }
    const args = inDeno
      ? [
        "run",
        "--no-prompt",
        "--allow-net=127.0.0.1",
        `--allow-read=${this.root}`,
        `--allow-write=${this.root}`,
        NODE_SCRIPT,
        ...flags,
      ]
      : [NODE_SCRIPT, ...flags];
    const keep = (text: string) => {
      n.output = (n.output + text).slice(-65536);
    };
    const child = spawnChild(args, keep);
    n.child = child;
  }

  /**
   * Sends `signal` to node `id`'s pid and waits (at most `timeoutMs`) for
   * it to exit; then SIGKILLs it. Resolves with its exit code (null when
   * killed by a signal).
   */
  async stopNode(
    id: number,
    signal: Signal = "SIGTERM",
    timeoutMs = 10_000,
  ): Promise<number | null> {
    const n = this.node(id);
    const child = n.child;
    if (child === undefined) return null;
    n.child = undefined;
    let exited = false;
    const exit = child.exited.finally(() => (exited = true));
    try {
      child.kill(signal);
    } catch (e) {
      if (!exited) throw e; // otherwise it exited already
    }
    const late = await Promise.race([
      exit.then(() => false),
      sleep(timeoutMs).then(() => true),
    ]);
    if (late && !exited) {
      try {
        child.kill("SIGKILL");
      } catch (e) {
        if (!exited) throw e; // otherwise it exited meanwhile
      }
    }
    return await exit;
  }

  /** Stops every running node by pid (SIGTERM, then SIGKILL after 10 s). */
  async stopAll(signal: Signal = "SIGTERM"): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.stopNode(n.id, signal)));
  }

  /** Stops every node and removes the root folder. */
  async destroy(): Promise<void> {
    await this.stopAll("SIGKILL");
    await rm(this.root, { recursive: true, force: true });
  }

  /** One HTTP call (bounded by `timeoutMs`); network errors answer status 0. */
  async call(
    node: ClusterNode,
    method: string,
    path: string,
    body?: unknown,
    options: { redirect?: RequestRedirect; timeoutMs?: number } = {},
  ): Promise<Answer> {
    try {
      const res = await fetch(node.url + path, {
        method,
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: body === undefined
          ? {}
          : { "content-type": "application/json" },
        redirect: options.redirect ?? "follow",
        signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: res.status, body: parsed, headers: res.headers };
    } catch (e) {
      return { status: 0, body: String(e), headers: new Headers() };
    }
  }

  /**
   * Waits (at most `timeoutMs`) until one of `among` is a ready leader
   * that has announced its URL, and every other running node of `among`
   * knows it; resolves with that node.
   */
  async leader(
    among: ClusterNode[] = this.nodes,
    timeoutMs = 15_000,
  ): Promise<ClusterNode> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const running = among.filter((n) => n.child !== undefined);
      const st = await Promise.all(
        running.map((n) =>
          this.call(n, "GET", "/status", undefined, { timeoutMs: 1000 })
        ),
      );
      const leader = running.find((_, i) =>
        st[i].body?.role === "leader" && st[i].body?.leaderReady
      );
      if (
        leader !== undefined &&
        st.every((s) =>
          s.body?.leader === leader.id && s.body?.leaderUrl === leader.url
        )
      ) {
        return leader;
      }
      await sleep(100);
    }
    throw new Error(
      `no leader among ${
        among.map((n) => n.id).join(", ")
      } within ${timeoutMs} ms\n${this.outputs()}`,
    );
  }

  /** Every node's recent output, for a failure message. */
  outputs(): string {
    return this.nodes.map((n) => `--- node ${n.id}\n${n.output}`).join("\n");
  }
}

async function demo(): Promise<void> {
  const show = (what: string, a: Answer) =>
    console.log(`${what}: ${a.status} ${JSON.stringify(a.body)}`);
  const c = await JobQueueCluster.start({
    root: `.demo-data/job_queue-${process.pid}`,
  });
  try {
    const leader = await c.leader();
    const follower = c.nodes.find((n) => n !== leader)!;
    console.log(`leader: node ${leader.id} at ${leader.url}`);
    for (const payload of ["resize photo 1", "resize photo 2", "send mail"]) {
      show(
        `POST /jobs ${payload} (via follower ${follower.id}, 307 followed)`,
        await c.call(follower, "POST", "/jobs", { payload }),
      );
    }
    const claimed = await c.call(leader, "POST", "/jobs/claim", {
      owner: "worker-a",
      leaseMs: 60_000,
    });
    show("POST /jobs/claim", claimed);
    show(
      `POST /jobs/${claimed.body.job.id}/complete`,
      await c.call(leader, "POST", `/jobs/${claimed.body.job.id}/complete`, {
        owner: "worker-a",
        result: "ok",
      }),
    );
    show(
      "POST /jobs/999999/complete (rejected by the state machine)",
      await c.call(leader, "POST", "/jobs/999999/complete", {
        owner: "worker-a",
      }),
    );
    const before = await c.call(follower, "GET", "/jobs");
    show(`GET /jobs on follower ${follower.id} (linearizable)`, before);

    const code = await c.stopNode(leader.id, "SIGKILL");
    console.log(`SIGKILLed the leader, node ${leader.id} (exit ${code})`);
    const next = await c.leader(c.nodes.filter((n) => n !== leader));
    console.log(`new leader: node ${next.id}`);
    const after = await c.call(next, "GET", "/jobs");
    show("GET /jobs on the new leader", after);
    const same =
      JSON.stringify(after.body.jobs) === JSON.stringify(before.body.jobs);
    console.log(same ? "every job is intact" : "JOBS DIFFER");
    show(
      "POST /jobs on the new leader",
      await c.call(next, "POST", "/jobs", { payload: "after failover" }),
    );
    if (!same) process.exitCode = 1;
  } finally {
    await c.stopAll();
    await rm(c.root, { recursive: true, force: true });
    console.log("stopped every node");
  }
}

const isMain = import.meta.main ??
  (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1]));
if (isMain) await demo();
