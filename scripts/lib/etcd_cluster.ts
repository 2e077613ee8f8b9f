/**
 * A 3-node etcd cluster on loopback, the baseline of the cluster benchmark
 * (`deno task bench:cluster --baseline etcd`). Needs the `etcd` binary
 * (Debian: `apt-get install etcd-server`); nothing of etcd is committed here.
 *
 * @module
 */

/** A running etcd cluster of child processes. */
export class EtcdCluster {
  readonly clientUrls: string[];
  readonly processes: Deno.ChildProcess[];
  readonly root: string;

  private constructor(
    root: string,
    clientUrls: string[],
    processes: Deno.ChildProcess[],
  ) {
    this.root = root;
    this.clientUrls = clientUrls;
    this.processes = processes;
  }

  /** Whether an `etcd` binary can be started. */
  static async available(): Promise<boolean> {
    try {
      const out = await new Deno.Command("etcd", {
        args: ["--version"],
        stdout: "null",
        stderr: "null",
      })
        .output();
      return out.success;
    } catch {
      return false;
    }
  }

  /** Starts `nodes` etcd members with data under `root`. */
  static async start(root: string, nodes = 3): Promise<EtcdCluster> {
    // Below the ephemeral range (32768+): a member dialing a peer that is not yet
    // listening must never be handed that peer's port as its own source port.
    const base = 30300 + Math.floor(Math.random() * 2300);
    await Deno.mkdir(root, { recursive: true });
    const peer = (i: number) => `http://127.0.0.1:${base + i}`;
    const client = (i: number) => `http://127.0.0.1:${base + 100 + i}`;
    const ids = Array.from({ length: nodes }, (_, i) => i + 1);
    const initial = ids.map((i) => `n${i}=${peer(i)}`).join(",");
    const processes = ids.map((i) =>
      new Deno.Command("etcd", {
        args: [
          "--name",
          `n${i}`,
          "--data-dir",
          `${root}/n${i}`,
          "--listen-client-urls",
          client(i),
          "--advertise-client-urls",
          client(i),
          "--listen-peer-urls",
          peer(i),
          "--initial-advertise-peer-urls",
          peer(i),
          "--initial-cluster",
          initial,
          "--initial-cluster-state",
          "new",
          "--initial-cluster-token",
          `bench-${base}`,
          "--log-level",
          "error",
        ],
        stdout: "null",
        stderr: "null",
      }).spawn()
    );
    return new EtcdCluster(root, ids.map(client), processes);
  }

  /** Waits for a leader and returns its client URL. */
  async leaderUrl(timeoutMs = 20000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const url of this.clientUrls) {
        try {
          const res = await fetch(`${url}/v3/maintenance/status`, {
            method: "POST",
            body: "{}",
            signal: AbortSignal.timeout(1000),
          });
          const s = await res.json() as {
            leader?: string;
            header?: { member_id?: string };
          };
          if (
            s.leader && s.leader !== "0" && s.leader === s.header?.member_id
          ) return url;
        } catch {
          // Not up yet.
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error("etcd elected no leader in time");
  }

  /** Stops every member (by pid) and removes the data. */
  async destroy(): Promise<void> {
    for (const p of this.processes) {
      try {
        p.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await p.status;
    }
    await Deno.remove(this.root, { recursive: true }).catch(() => {});
  }
}
