/** Runs `scripts/serve.ts` processes on loopback for the process-level kv tests. */

const SERVE = new URL("../../scripts/serve.ts", import.meta.url).pathname;

/** A port that was free a moment ago. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** One node process. */
export interface Proc {
  id: number;
  raft: string;
  http: string;
  secretFile: string;
  extra: string[];
  child: Deno.ChildProcess | undefined;
  output: Promise<string> | undefined;
}

/** GET `url` as JSON; undefined on any failure (bounded by 1 s). */
export async function getJson(
  url: string,
): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    return await res.json();
  } catch {
    return undefined;
  }
}

/** A folder, a secret and processes; `cleanup()` kills (by pid) and removes everything. */
export class ProcessCluster {
  readonly root: string;
  readonly secretFile: string;
  readonly procs: Proc[] = [];

  private constructor(root: string) {
    this.root = root;
    this.secretFile = `${root}/cluster.secret`;
  }

  static async create(): Promise<ProcessCluster> {
    const root = `.test-data/kv-procs-${Date.now()}-${
      Math.floor(Math.random() * 1e6)
    }`;
    await Deno.mkdir(root, { recursive: true });
    const c = new ProcessCluster(root);
    await Deno.writeTextFile(
      c.secretFile,
      crypto.randomUUID() + crypto.randomUUID(),
    );
    return c;
  }

  /** Declares nodes `ids` (ports picked now); `start` runs them. */
  add(
    ids: number[],
    options: { secretFile?: string; extra?: string[] } = {},
  ): Proc[] {
    const added = ids.map((id) => ({
      id,
      raft: `127.0.0.1:${freePort()}`,
      http: `127.0.0.1:${freePort()}`,
      secretFile: options.secretFile ?? this.secretFile,
      extra: options.extra ?? [],
      child: undefined,
      output: undefined,
    }));
    this.procs.push(...added);
    return added;
  }

  proc(id: number): Proc {
    const p = this.procs.find((x) => x.id === id);
    if (p === undefined) throw new Error(`no node ${id}`);
    return p;
  }

  /** Starts `p` with `--peer` entries for `peers` (default: every declared node). */
  start(p: Proc, peers: Proc[] = this.procs): void {
    const args = [
      "run",
      "--allow-net=127.0.0.1",
      `--allow-read=${this.root}`,
      `--allow-write=${this.root}/node-${p.id}`,
      SERVE,
      "--id",
      String(p.id),
      "--data-dir",
      `${this.root}/node-${p.id}`,
      "--http",
      p.http,
      "--cluster-secret-file",
      p.secretFile,
      "--tick-ms",
      "30",
      "--quiet",
      ...p.extra,
    ];
    for (const q of peers) args.push("--peer", `${q.id}=${q.raft}`);
    p.child = new Deno.Command(Deno.execPath(), {
      args,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    const c = p.child;
    p.output = (async () => {
      const [o, e] = await Promise.all([
        new Response(c.stdout).text(),
        new Response(c.stderr).text(),
      ]);
      return o + e;
    })();
  }

  /** Sends `signal` to `p` and waits for it to exit. */
  async stop(
    p: Proc,
    signal: Deno.Signal,
  ): Promise<Deno.CommandStatus | undefined> {
    const c = p.child;
    if (c === undefined) return undefined;
    try {
      c.kill(signal);
    } catch {
      // already exited
    }
    const status = await c.status;
    await p.output;
    p.child = undefined;
    return status;
  }

  /** The node among `among` that reports itself leader (bounded: 10 s). */
  async leader(among: Proc[] = this.procs): Promise<Proc> {
    for (let i = 0; i < 200; i++) {
      for (const p of among) {
        if (p.child === undefined) continue;
        const st = await getJson(`http://${p.http}/status`);
        if (st?.role === "leader") return p;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("no leader within 10 s");
  }

  /** PUT with retries (bounded); true when acknowledged. */
  async put(via: Proc, key: string, value: string): Promise<boolean> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const res = await fetch(`http://${via.http}/kv/${key}`, {
        method: "PUT",
        body: value,
      }).catch(() => undefined);
      await res?.body?.cancel();
      if (res?.status === 204) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  /** Linearizable GET with retries (bounded); the value, or undefined. */
  async get(via: Proc, key: string): Promise<string | undefined> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const res = await fetch(`http://${via.http}/kv/${key}`).catch(() =>
        undefined
      );
      if (res?.status === 200) return await res.text();
      await res?.body?.cancel();
      await new Promise((r) => setTimeout(r, 50));
    }
    return undefined;
  }

  /** Prints every node's output (for a failing test). */
  async dump(): Promise<void> {
    for (const p of this.procs) {
      await this.stop(p, "SIGKILL");
      console.error(`--- node ${p.id} output ---\n${(await p.output) ?? ""}`);
    }
  }

  /** Kills every process by pid and removes the folder. */
  async cleanup(): Promise<void> {
    for (const p of this.procs) await this.stop(p, "SIGKILL");
    await Deno.remove(this.root, { recursive: true }).catch(() => {});
  }
}
