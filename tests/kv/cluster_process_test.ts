/**
 * `scripts/serve.ts` OS processes on loopback, with the WAL and the
 * authenticated TCP transport.
 */

import assert from "node:assert/strict";
import {
  encodeMembership,
  simpleMembership,
} from "../../src/core/membership.ts";
import { WalLog } from "../../src/log/wal/wal_log.ts";
import { getJson, ProcessCluster } from "./process_cluster.ts";

Deno.test("a cluster of three serve.ts processes keeps every acknowledged write across kill -9 and restart", async () => {
  const c = await ProcessCluster.create();
  const procs = c.add([1, 2, 3], {
    extra: ["--snapshot-entries", "20", "--compaction-lag", "5"],
  });
  const acked = new Map<string, string>();
  const write = async (
    via: (typeof procs)[number],
    prefix: string,
    n: number,
  ) => {
    for (let i = 0; i < n; i++) {
      const key = `${prefix}-${i}`;
      if (await c.put(via, key, `v-${key}`)) acked.set(key, `v-${key}`);
    }
  };
  try {
    for (const p of procs) c.start(p);
    const first = await c.leader();
    await write(procs.find((p) => p !== first)!, "a", 30); // through a follower: forwarded
    assert.equal(acked.size, 30);

    const killed = await c.stop(first, "SIGKILL");
    assert.equal(killed?.success, false);
    const second = await c.leader(procs.filter((p) => p !== first));
    assert.notEqual(second.id, first.id);
    await write(second, "b", 30);
    assert.equal(acked.size, 60);

    c.start(first);
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
    const metrics = await (await fetch(`http://${second.http}/metrics`)).text();
    assert.match(metrics, /raft_snapshots_taken_total [1-9]/);
    for (const p of procs) {
      const status = await c.stop(p, "SIGTERM");
      assert.equal(status?.success, true, `node ${p.id} did not stop cleanly`);
    }
  } catch (e) {
    await c.dump();
    throw e;
  } finally {
    await c.cleanup();
  }
});

Deno.test("a node joins through POST /members, and a node with the wrong secret is refused", async () => {
  const c = await ProcessCluster.create();
  const founders = c.add([1, 2, 3]);
  const [joiner] = c.add([4], { extra: ["--join"] });
  const wrongSecret = `${c.root}/wrong.secret`;
  await Deno.writeTextFile(
    wrongSecret,
    "a-completely-different-cluster-secret",
  );
  const [intruder] = c.add([5], { secretFile: wrongSecret, extra: ["--join"] });
  try {
    for (const p of founders) c.start(p, founders);
    const leader = await c.leader(founders);
    assert.ok(await c.put(leader, "before", "x"));
    // The joiner gets the founders only as seeds; the founders get no flag
    // about it: they learn its addresses from the configuration.
    c.start(joiner, [...founders, joiner]);
    c.start(intruder, [...founders, intruder]);
    // The default role is voter, through a caught-up learner.
    const add = await fetch(
      `http://${founders.find((f) => f !== leader)!.http}/members`,
      {
        method: "POST",
        body: JSON.stringify({
          id: joiner.id,
          raft: joiner.raft,
          http: joiner.http,
        }),
      },
    );
    assert.equal(add.status, 200, await add.text());
    const asLearner = await fetch(`http://${leader.http}/members`, {
      method: "POST",
      body: JSON.stringify({
        id: intruder.id,
        raft: intruder.raft,
        http: intruder.http,
        role: "learner",
      }),
    });
    assert.equal(asLearner.status, 200, await asLearner.text());
    const st = await getJson(`http://${leader.http}/status`);
    assert.deepEqual((st?.membership as { voters: number[] }).voters, [
      1,
      2,
      3,
      4,
    ]);
    // Writes and reads through node 4 and through the others.
    assert.ok(await c.put(joiner, "via-4", "four"));
    for (const p of [...founders, joiner]) {
      assert.equal(await c.get(p, "via-4"), "four", `read via node ${p.id}`);
    }
    assert.ok(await c.put(founders[0], "via-1", "one"));
    assert.equal(await c.get(joiner, "via-1"), "one");
    // Node 5 is a member on paper but cannot authenticate: it never receives anything.
    let refusals = 0;
    for (let i = 0; i < 100 && refusals === 0; i++) {
      const metrics = await (await fetch(`http://${leader.http}/metrics`))
        .text();
      const m =
        /raft_transport_errors_total\{code="AUTHENTICATION_FAILED"\} (\d+)/
          .exec(metrics);
      refusals = m === null ? 0 : Number(m[1]);
      if (refusals === 0) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(refusals >= 1, "the leader recorded no authentication failure");
    const intruderStatus = await getJson(`http://${intruder.http}/status`);
    assert.equal(intruderStatus?.applied, 0);
    const removed = await fetch(`http://${leader.http}/members/5`, {
      method: "DELETE",
    });
    assert.equal(removed.status, 200, await removed.text());

    // A founder restarted with the founders' flags only still reaches node
    // 4: its address comes back from the log, not from flags. Make node 4
    // lead so the restarted node must forward to it.
    const other = founders.find((f) => f !== leader)!;
    const transfer = await fetch(`http://${leader.http}/leader/transfer`, {
      method: "POST",
      body: JSON.stringify({ to: joiner.id }),
    });
    const transferred = await transfer.text();
    assert.equal(transfer.status, 200, transferred);
    assert.equal(JSON.parse(transferred).leader, joiner.id);
    await c.stop(other, "SIGTERM");
    c.start(other, founders);
    assert.ok(
      await c.put(other, "after-restart", "r"),
      "write via the restarted node",
    );
    const res = await fetch(`http://${other.http}/kv/after-restart`);
    assert.equal(res.headers.get("x-raft-served-by"), null);
    assert.equal(await res.text(), "r");
    const ost = await getJson(`http://${other.http}/status`);
    assert.equal(ost?.leader, joiner.id);
    assert.equal(ost?.leaderUrl, `http://${joiner.http}`);
  } catch (e) {
    await c.dump();
    throw e;
  } finally {
    await c.cleanup();
  }
});

Deno.test("a node whose snapshot does not restore exits non-zero with a clear message", async () => {
  const c = await ProcessCluster.create();
  const [p] = c.add([1], {
    extra: ["--http", "0.0.0.0:18999", "--insecure-client-api"],
  });
  try {
    const dir = `${c.root}/node-1`;
    const log = await WalLog.open(dir);
    log.applySnapshot(
      { index: 5, term: 1, config: encodeMembership(simpleMembership([1])) },
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]),
    );
    await log.sync();
    await log.close();
    c.start(p, [p]);
    const status = await p.child!.status;
    const out = await p.output!;
    p.child = undefined;
    assert.equal(status.code, 1, out);
    assert.match(
      out,
      /\[node 1\] fatal: could not start: restoring the snapshot or replaying the log in .*node-1 failed: /,
    );
    // A client API beyond loopback is announced as unauthenticated.
    assert.match(
      out,
      /warning: --insecure-client-api: the client API on 0\.0\.0\.0:18999 has no authentication/,
    );
  } finally {
    await c.cleanup();
  }
});
