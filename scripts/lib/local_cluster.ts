/**
 * Starts and stops a local raft-io cluster of OS processes on loopback, for
 * the demo, the cluster benchmark and the end-to-end tests. Every process is
 * tracked by its pid and stopped by it; data lives under one root folder.
 *
 * @module
 */

/** What one node's `/status` answers. */
export interface NodeStatus {
  id: number;
  role: string;
  term: number;
  leader: number;
  commit: number;
  applied: number;
  [key: string]: unknown;
}

/** One node of a local cluster. */
export interface LocalNode {
  id: number;
  raftAddress: string;
  httpUrl: string;
  dataDir: string;
  process: Deno.ChildProcess | undefined;
  /** Where the node's stdout/stderr go. */
  logFile: string;
}

/** Options for {@linkcode LocalCluster.start}. */
export interface LocalClusterOptions {
  nodes: number;
  /** Folder for data, logs and the secret (created, removed by `destroy`). */
  root: string;
  /** First Raft port; node i uses basePort + i, HTTP uses basePort + 100 + i. */
  basePort?: number;
  /** Extra flags for `serve.ts` (e.g. snapshot thresholds). */
  extraArgs?: string[];
  /** Run the nodes with `--insecure` instead of the cluster secret (no peer authentication, frames not sealed). */
  insecure?: boolean;
  /**
   * Pick every port by binding port 0 (a port free a moment ago) instead of
   * a random `basePort` range. Ignored when `basePort` is given.
   */
  freePorts?: boolean;
  /** Extra flags for one node only, appended after `extraArgs`. */
  nodeArgs?: (id: number) => string[];
  /**
   * The IP address node `id` listens on (Raft and HTTP; default
   * 127.0.0.1), e.g. one address per network namespace.
   */
  host?: (id: number) => string;
  /**
   * A command that runs node `id`'s Deno process, e.g.
   * `["ip", "netns", "exec", "ns-1"]`; it must exec Deno in place (same pid),
   * since signals go to the pid.
   */
  commandPrefix?: (id: number) => string[];
  /**
   * Extra flags for the Deno runtime of every node, placed before the
   * script (e.g. `["--cpu-prof", "--cpu-prof-dir=prof"]` or V8 flags).
   */
  denoFlags?: string[];
}

const SERVE = new URL("../serve.ts", import.meta.url).pathname;

/** A loopback port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function freePortBase(): number {
  // Pick a random base in a quiet range below Linux's ephemeral ports
  // (32768-60999), where outgoing connections of busy test runs took the
  // ports of whole nodes ("Address already in use"); collisions are retried
  // by the caller.
  return 10000 + Math.floor(Math.random() * 20000);
}

/** A cluster of `serve.ts` processes on 127.0.0.1. */
export class LocalCluster {
  readonly nodes: LocalNode[];
  readonly root: string;
  readonly secretFile: string;
  readonly #extraArgs: string[];
  #insecure = false;
  readonly #nodeArgs: ((id: number) => string[]) | undefined;
  readonly #paused = new Set<number>();
  #prefix: ((id: number) => string[]) | undefined;
  #allowNet = "127.0.0.1";
  #denoFlags: string[] = [];

  private constructor(
    root: string,
    nodes: LocalNode[],
    extraArgs: string[],
    nodeArgs?: (id: number) => string[],
  ) {
    this.root = root;
    this.nodes = nodes;
    this.secretFile = `${root}/cluster.secret`;
    this.#extraArgs = extraArgs;
    this.#nodeArgs = nodeArgs;
  }

  /** Creates folders and a fresh secret, then starts every node. */
  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    const free = options.basePort === undefined && options.freePorts === true;
    const base = options.basePort ?? freePortBase();
    await Deno.mkdir(options.root, { recursive: true });
    const nodes: LocalNode[] = [];
    const host = options.host ?? (() => "127.0.0.1");
    for (let i = 1; i <= options.nodes; i++) {
      const ip = host(i);
      const dataDir = `${options.root}/node-${i}`;
      await Deno.mkdir(dataDir, { recursive: true });
      nodes.push({
        id: i,
        raftAddress: `${ip}:${free ? freePort() : base + i}`,
        httpUrl: `http://${ip}:${free ? freePort() : base + 100 + i}`,
        dataDir,
        process: undefined,
        logFile: `${options.root}/node-${i}.log`,
      });
    }
    const cluster = new LocalCluster(
      options.root,
      nodes,
      options.extraArgs ?? [],
      options.nodeArgs,
    );
    cluster.#prefix = options.commandPrefix;
    cluster.#insecure = options.insecure === true;
    cluster.#denoFlags = options.denoFlags ?? [];
    cluster.#allowNet = [...new Set(nodes.map((n) => host(n.id)))].join(",");
    const secret = crypto.getRandomValues(new Uint8Array(32));
    await Deno.writeTextFile(
      cluster.secretFile,
      Array.from(secret, (b) => b.toString(16).padStart(2, "0")).join(""),
    );
    for (const node of nodes) cluster.startNode(node.id);
    return cluster;
  }

  node(id: number): LocalNode {
    const node = this.nodes.find((n) => n.id === id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  /** The command line that starts node `id` (also printed for users). */
  serveArgs(id: number): string[] {
    const node = this.node(id);
    const args = [
      "run",
      ...this.#denoFlags,
      `--allow-net=${this.#allowNet}`,
      `--allow-read=${this.root}`,
      `--allow-write=${node.dataDir}`,
      SERVE,
      "--id",
      String(id),
      "--data-dir",
      node.dataDir,
      "--http",
      node.httpUrl.replace("http://", ""),
      ...(this.#insecure
        ? ["--insecure"]
        : ["--cluster-secret-file", this.secretFile]),
    ];
    for (const peer of this.nodes) {
      args.push("--peer", `${peer.id}=${peer.raftAddress}`);
    }
    return [...args, ...this.#extraArgs, ...(this.#nodeArgs?.(id) ?? [])];
  }

  /** Starts (or restarts) node `id` as a child process. */
  startNode(id: number): void {
    const node = this.node(id);
    if (node.process) throw new Error(`node ${id} is already running`);
    const prefix = this.#prefix?.(id) ?? [];
    const [cmd, ...pre] = prefix.length > 0
      ? [...prefix, Deno.execPath()]
      : [Deno.execPath()];
    node.process = new Deno.Command(cmd, {
      args: [...pre, ...this.serveArgs(id)],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const child = node.process;
    const path = node.logFile;
    const drain = async (stream: ReadableStream<Uint8Array>) => {
      const file = await Deno.open(path, { append: true, create: true });
      try {
        for await (const chunk of stream) await file.write(chunk);
      } catch {
        // The stream ends with the process; nothing to keep.
      } finally {
        file.close();
      }
    };
    drains.set(
      child.pid,
      Promise.all([drain(child.stdout), drain(child.stderr)]),
    );
  }

  /** Whether node `id` has a live process (paused or not). */
  isRunning(id: number): boolean {
    return this.node(id).process !== undefined;
  }

  /** Whether node `id` is stopped with SIGSTOP (see {@linkcode pauseNode}). */
  isPaused(id: number): boolean {
    return this.#paused.has(id);
  }

  /**
   * Freezes node `id` with SIGSTOP: its sockets stay open but it answers
   * nothing, which to the others looks like a partition. No-op when it is
   * not running or already paused.
   */
  pauseNode(id: number): void {
    const child = this.node(id).process;
    if (!child || this.#paused.has(id)) return;
    child.kill("SIGSTOP");
    this.#paused.add(id);
  }

  /** Thaws node `id` with SIGCONT. No-op when it is not paused. */
  resumeNode(id: number): void {
    const child = this.node(id).process;
    if (!this.#paused.delete(id) || !child) return;
    try {
      child.kill("SIGCONT");
    } catch {
      // Already gone.
    }
  }

  /** Sends `signal` to node `id` and waits for it to exit. */
  async stopNode(id: number, signal: Deno.Signal = "SIGTERM"): Promise<void> {
    const node = this.node(id);
    const child = node.process;
    if (!child) return;
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
    // A paused process would hold any signal but SIGKILL until it runs again.
    if (this.#paused.has(id)) this.resumeNode(id);
    await child.status;
    await drains.get(child.pid);
    drains.delete(child.pid);
    node.process = undefined;
  }

  /** GET /status of node `id`, or undefined when it does not answer in time. */
  async status(id: number, timeoutMs = 1000): Promise<NodeStatus | undefined> {
    try {
      const res = await fetch(`${this.node(id).httpUrl}/status`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!res.ok) {
        await res.body?.cancel();
        return undefined;
      }
      return await res.json() as NodeStatus;
    } catch {
      return undefined;
    }
  }

  /** Statuses of all running nodes (undefined for silent ones). */
  statuses(): Promise<(NodeStatus | undefined)[]> {
    return Promise.all(
      this.nodes.map((n) =>
        n.process ? this.status(n.id) : Promise.resolve(undefined)
      ),
    );
  }

  /**
   * Waits until the running nodes agree on one leader (optionally with a term
   * above `minTerm`) and returns it. Bounded by `timeoutMs`.
   */
  async waitForLeader(timeoutMs = 20000, minTerm = 0): Promise<NodeStatus> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const statuses = (await this.statuses()).filter((s): s is NodeStatus =>
        !!s
      );
      const leader = statuses.find((s) =>
        s.role === "leader" && s.term > minTerm
      );
      if (
        leader &&
        statuses.every((s) => s.leader === leader.id || s.term < leader.term)
      ) {
        return leader;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `no leader elected within ${timeoutMs} ms; see logs in ${this.root}`,
    );
  }

  /** Stops every process (SIGTERM, then SIGKILL if it lingers). */
  async stopAll(): Promise<void> {
    await Promise.all(this.nodes.map(async (n) => {
      const child = n.process;
      if (!child) return;
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }, 3000);
      try {
        await this.stopNode(n.id, "SIGTERM");
      } finally {
        clearTimeout(timer);
      }
    }));
  }

  /** Stops everything and removes the data folder. */
  async destroy(): Promise<void> {
    await this.stopAll();
    await Deno.remove(this.root, { recursive: true }).catch(() => {});
  }
}

const drains = new Map<number, Promise<unknown>>();
