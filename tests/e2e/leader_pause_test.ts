import assert from "node:assert/strict";
import {
  missingWrites,
  sleep,
  startCluster,
  waitStatus,
  Writers,
} from "./helpers.ts";

Deno.test("a paused leader is replaced, steps down when resumed, catches up and no acknowledged write is lost", async () => {
  const cluster = await startCluster("pause-leader");
  try {
    const first = await cluster.waitForLeader(20_000);
    const old = first.id;
    const others = cluster.nodes.map((n) => n.id).filter((id) => id !== old);
    // Writers go to the nodes that are not paused (followers forward).
    const writers = new Writers(
      cluster,
      () =>
        cluster.nodes.map((n) => n.id).filter((id) => !cluster.isPaused(id)),
    );
    await sleep(800);
    assert.ok(writers.count > 0, "writes are acknowledged before the pause");

    cluster.pauseNode(old);
    const beforePause = writers.count;
    const second = await cluster.waitForLeader(20_000, first.term);
    assert.ok(others.includes(second.id), "a new leader among the others");
    assert.ok(second.term > first.term);
    await sleep(800);
    assert.ok(
      writers.count > beforePause,
      "writes are acknowledged while the old leader is paused",
    );

    cluster.resumeNode(old);
    // The old leader learns the new term, steps down and follows.
    await waitStatus(
      cluster,
      old,
      (s) =>
        s.role === "follower" && s.term >= second.term && s.leader !== 0 &&
        s.leader !== old,
      "following the new leader",
    );
    await sleep(500);
    await writers.stop();

    const leader = await cluster.waitForLeader(20_000);
    const lst = await waitStatus(cluster, leader.id, () => true, "status");
    // Caught up: applied everything the leader committed.
    await waitStatus(
      cluster,
      old,
      (s) => s.applied >= lst.commit,
      `applied >= ${lst.commit}`,
    );
    assert.deepEqual(
      await missingWrites(cluster, old, writers.acked, "stale"),
      [],
      "the old leader's own state holds every acknowledged write",
    );
    assert.deepEqual(
      await missingWrites(cluster, leader.id, writers.acked, "linearizable"),
      [],
      "linearizable reads return every acknowledged write",
    );
  } finally {
    await cluster.destroy();
  }
});
