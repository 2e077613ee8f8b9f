/**
 * Concurrent clients against three `serve.ts` processes (through every node:
 * followers forward writes and serve linearizable reads by ReadIndex), with
 * the leader killed (-9) and restarted mid-run; the recorded history must be
 * linearizable. A quarter of the reads ask for lease reads.
 */

import assert from "node:assert/strict";
import {
  checkHistory,
  type KvOperation,
} from "../../src/testing/linearizability/mod.ts";
import { ProcessCluster } from "./process_cluster.ts";

const KEYS = ["k0", "k1", "k2", "k3"];
const WORKERS = 6;
const RUN_MS = 2500;

/** Runs the workload on a fresh 3-process cluster while `chaos` runs; asserts the history is linearizable. */
async function checkedWorkload(
  chaos: (c: ProcessCluster) => Promise<void>,
): Promise<void> {
  const c = await ProcessCluster.create();
  const procs = c.add([1, 2, 3]);
  const history: KvOperation[] = [];
  let nextId = 0;
  try {
    for (const p of procs) c.start(p);
    await c.leader();
    const started = performance.now();
    let seq = 0;
    const worker = async (w: number) => {
      let rand = w * 7919 + 1;
      const next = (n: number) => {
        rand = (rand * 1103515245 + 12345) & 0x7fffffff;
        return rand % n;
      };
      while (performance.now() - started < RUN_MS) {
        const live = procs.filter((p) => p.child !== undefined);
        if (live.length === 0) break;
        const via = live[next(live.length)];
        const key = KEYS[next(KEYS.length)];
        const kind = next(10);
        const id = nextId++;
        const invokeTime = performance.now();
        const base = `http://${via.http}/kv/${key}`;
        // The value a write sends: a write that times out may still commit
        // it, so its indefinite record must carry the same value.
        let sent = "";
        let expected: string | null = null;
        try {
          if (kind < 4) {
            const value = `w${w}-${seq++}`;
            sent = value;
            const res = await fetch(base, {
              method: "PUT",
              body: value,
              signal: AbortSignal.timeout(1500),
            });
            await res.body?.cancel();
            const ok = res.status === 204;
            history.push({
              id,
              process: w,
              f: "put",
              key,
              value,
              status: ok ? "ok" : "info",
              invokeTime,
              returnTime: ok ? performance.now() : undefined,
            });
          } else if (kind < 8) {
            // Some reads use the leader lease (a follower falls back to ReadIndex).
            const url = next(4) === 0 ? `${base}?consistency=lease` : base;
            const res = await fetch(url, { signal: AbortSignal.timeout(1500) });
            const text = await res.text();
            if (res.status === 200 || res.status === 404) {
              history.push({
                id,
                process: w,
                f: "get",
                key,
                value: res.status === 200 ? text : null,
                status: "ok",
                invokeTime,
                returnTime: performance.now(),
              });
            } // a failed read has no effect: left out
          } else {
            const expect = next(3) === 0
              ? null
              : `w${next(WORKERS)}-${Math.max(0, seq - 1 - next(5))}`;
            const value = `w${w}-${seq++}`;
            sent = value;
            expected = expect;
            const res = await fetch(`${base}/cas`, {
              method: "POST",
              body: JSON.stringify({ expect, value }),
              signal: AbortSignal.timeout(1500),
            });
            await res.body?.cancel();
            const done = res.status === 200 || res.status === 409;
            history.push({
              id,
              process: w,
              f: "cas",
              key,
              expect,
              value,
              outcome: res.status === 200
                ? "ok"
                : res.status === 409
                ? "failed"
                : undefined,
              status: done ? "ok" : "info",
              invokeTime,
              returnTime: done ? performance.now() : undefined,
            });
          }
        } catch {
          // Timeout or connection lost: a write may or may not have happened.
          if (kind < 4 || kind >= 8) {
            history.push(
              kind < 4
                ? {
                  id,
                  process: w,
                  f: "put",
                  key,
                  value: sent,
                  status: "info",
                  invokeTime,
                }
                : {
                  id,
                  process: w,
                  f: "cas",
                  key,
                  expect: expected,
                  value: sent,
                  status: "info",
                  invokeTime,
                },
            );
          }
        }
      }
    };
    const chaosDone = chaos(c);
    await Promise.all([
      ...Array.from({ length: WORKERS }, (_, w) => worker(w)),
      chaosDone,
    ]);
    const completed = history.filter((o) => o.status === "ok").length;
    assert.ok(completed > 50, `only ${completed} operations completed`);
    const result = checkHistory(history, { timeBudgetMs: 20_000 });
    assert.equal(
      result.verdict,
      "ok",
      JSON.stringify(result.illegal ?? result.unknown),
    );
  } catch (e) {
    await c.dump();
    throw e;
  } finally {
    await c.cleanup();
  }
}

Deno.test("a history of puts, gets and compare-and-sets across a leader crash is linearizable", async () => {
  await checkedWorkload(async (c) => {
    await new Promise((r) => setTimeout(r, RUN_MS / 3));
    const leader = await c.leader();
    await c.stop(leader, "SIGKILL");
    await new Promise((r) => setTimeout(r, RUN_MS / 3));
    c.start(leader);
  });
});

Deno.test("a history across a leader frozen (SIGSTOP) past its lease and resumed is linearizable", async () => {
  await checkedWorkload(async (c) => {
    await new Promise((r) => setTimeout(r, RUN_MS / 4));
    const leader = await c.leader();
    leader.child!.kill("SIGSTOP");
    try {
      // Longer than an election timeout (10 ticks of 30 ms): the others elect a new leader meanwhile.
      await new Promise((r) => setTimeout(r, RUN_MS / 3));
    } finally {
      leader.child!.kill("SIGCONT");
    }
  });
});
