/**
 * Three `scripts/serve.ts` OS processes on loopback, with the WAL and the
 * authenticated TCP transport: elect, write, kill -9 the leader, keep every
 * acknowledged write, restart it and catch up (by snapshot), stop cleanly.
 */

import assert from "node:assert/strict";

const SERVE = new URL("../../scripts/serve.ts", import.meta.url).pathname;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

interface Proc {
  id: number;
  http: string;
  child: Deno.ChildProcess | undefined;
  output: Promise<string> | undefined;
}

async function getJson(
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

Deno.test({
  name:
    "a cluster of three serve.ts processes keeps every acknowledged write across kill -9 and restart",
  async fn() {
    const root = `.test-data/kv-cluster-${Date.now()}-${
      Math.floor(Math.random() * 1e6)
    }`;
    await Deno.mkdir(root, { recursive: true });
    const secretFile = `${root}/cluster.secret`;
    await Deno.writeTextFile(
      secretFile,
      crypto.randomUUID() + crypto.randomUUID(),
    );
    const procs: Proc[] = [];
    const peers: string[] = [];
    for (const id of [1, 2, 3]) {
      peers.push("--peer", `${id}=127.0.0.1:${freePort()}`);
      procs.push({
        id,
        http: `127.0.0.1:${freePort()}`,
        child: undefined,
        output: undefined,
      });
    }
    const start = (p: Proc) => {
      const args = [
        "run",
        "--allow-net=127.0.0.1",
        `--allow-read=${root}`,
        `--allow-write=${root}/node-${p.id}`,
        SERVE,
        "--id",
        String(p.id),
        "--data-dir",
        `${root}/node-${p.id}`,
        "--http",
        p.http,
        "--cluster-secret-file",
        secretFile,
        "--tick-ms",
        "30",
        "--snapshot-entries",
        "20",
        "--compaction-lag",
        "5",
        "--quiet",
        ...peers,
      ];
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
    };
    const stop = async (p: Proc, signal: Deno.Signal) => {
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
    };
    const leader = async (among: Proc[]): Promise<Proc> => {
      for (let i = 0; i < 200; i++) {
        for (const p of among) {
          const st = await getJson(`http://${p.http}/status`);
          if (st?.role === "leader") return p;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error("no leader within 10 s");
    };
    const acked = new Map<string, string>();
    const write = async (via: Proc, prefix: string, n: number) => {
      for (let i = 0; i < n; i++) {
        const key = `${prefix}-${i}`;
        for (let attempt = 0; attempt < 50; attempt++) {
          const res = await fetch(`http://${via.http}/kv/${key}`, {
            method: "PUT",
            body: `v-${key}`,
          }).catch(() => undefined);
          await res?.body?.cancel();
          if (res?.status === 204) {
            acked.set(key, `v-${key}`);
            break;
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    try {
      for (const p of procs) start(p);
      const first = await leader(procs);
      const follower = procs.find((p) => p !== first)!;
      await write(follower, "a", 30); // through a follower: forwarded to the leader
      assert.equal(acked.size, 30);

      const killed = await stop(first, "SIGKILL");
      assert.equal(killed?.success, false);
      const rest = procs.filter((p) => p !== first);
      const second = await leader(rest);
      assert.notEqual(second.id, first.id);
      await write(second, "b", 30);
      assert.equal(acked.size, 60);

      start(first);
      // The restarted node catches up (its log is behind the leader's compacted log).
      let caughtUp = false;
      for (let i = 0; i < 200 && !caughtUp; i++) {
        const st = await getJson(`http://${first.http}/status`);
        const lst = await getJson(`http://${second.http}/status`);
        caughtUp = st !== undefined && lst !== undefined &&
          st.leader === second.id &&
          (st.applied as number) >= (lst.commit as number);
        if (!caughtUp) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(caughtUp, "the restarted node did not catch up");
      for (const [key, value] of acked) {
        const res = await fetch(`http://${first.http}/kv/${key}`);
        assert.equal(res.status, 200, `lost ${key}`);
        assert.equal(await res.text(), value);
      }
      const metrics = await (await fetch(`http://${second.http}/metrics`))
        .text();
      assert.match(metrics, /raft_snapshots_taken_total [1-9]/);
      for (const p of procs) {
        const status = await stop(p, "SIGTERM");
        assert.equal(
          status?.success,
          true,
          `node ${p.id} did not stop cleanly`,
        );
      }
    } catch (e) {
      for (const p of procs) {
        await stop(p, "SIGKILL");
        console.error(`--- node ${p.id} output ---\n${(await p.output) ?? ""}`);
      }
      throw e;
    } finally {
      for (const p of procs) await stop(p, "SIGKILL");
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  },
});
