/**
 * `scripts/serve.ts` OS processes on loopback, with the WAL and the
 * authenticated TCP transport.
 */

import assert from "node:assert/strict";
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
    c.start(joiner, [...founders, joiner]);
    c.start(intruder, [...founders, intruder]);
    for (
      const [p, role] of [[joiner, "voter"], [intruder, "learner"]] as const
    ) {
      const res = await fetch(
        `http://${founders.find((f) => f !== leader)!.http}/members`,
        {
          method: "POST",
          body: JSON.stringify({ id: p.id, raft: p.raft, http: p.http, role }),
        },
      );
      assert.equal(res.status, 200, await res.text());
    }
    let joined = false;
    for (let i = 0; i < 200 && !joined; i++) {
      const res = await fetch(
        `http://${joiner.http}/kv/before?consistency=stale`,
      ).catch(() => undefined);
      joined = res?.status === 200 && (await res.text()) === "x";
      if (!joined) {
        await res?.body?.cancel();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.ok(joined, "node 4 did not catch up");
    const st = await getJson(`http://${leader.http}/status`);
    assert.deepEqual((st?.membership as { voters: number[] }).voters, [
      1,
      2,
      3,
      4,
    ]);
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
  } catch (e) {
    await c.dump();
    throw e;
  } finally {
    await c.cleanup();
  }
});
