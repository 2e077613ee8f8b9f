import assert from "node:assert/strict";
import {
  missingWrites,
  request,
  sleep,
  startCluster,
  waitStatus,
  Writers,
} from "./helpers.ts";

Deno.test("a follower killed with SIGKILL during writes restarts, catches up through a snapshot and holds every acknowledged write", async () => {
  // Small snapshot thresholds: the leader compacts past the dead follower's
  // log, so catching up needs a snapshot install.
  const cluster = await startCluster("kill-follower", 3, [
    "--quiet",
    "--snapshot-entries",
    "200",
    "--compaction-lag",
    "20",
  ]);
  try {
    const leader = await cluster.waitForLeader(20_000);
    const victim = cluster.nodes.find((n) => n.id !== leader.id)!.id;
    const writers = new Writers(
      cluster,
      () =>
        cluster.nodes.map((n) => n.id).filter((id) => cluster.isRunning(id)),
    );
    await sleep(700);
    await cluster.stopNode(victim, "SIGKILL");
    const atKill = writers.count;
    const killedStatus = await waitStatus(
      cluster,
      leader.id,
      () => true,
      "status",
    );
    // Write until the leader has snapshotted past what the victim had.
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const s = await cluster.status(leader.id);
      if (s && Number(s.snapshotIndex) > killedStatus.commit + 20) break;
      await sleep(100);
    }
    assert.ok(writers.count > atKill, "writes go on with a follower down");
    cluster.startNode(victim);
    await sleep(700);
    await writers.stop();

    const lst = await waitStatus(cluster, leader.id, () => true, "status");
    const caught = await waitStatus(
      cluster,
      victim,
      (s) => s.applied >= lst.commit && s.leader === leader.id,
      `applied >= ${lst.commit}`,
    );
    assert.equal(caught.role, "follower");
    const metrics = await request(`${cluster.node(victim).httpUrl}/metrics`);
    const restored = Number(
      metrics?.body.match(/^raft_snapshots_restored_total (\d+)/m)?.[1] ?? 0,
    );
    assert.ok(restored >= 1, "the restarted follower installed a snapshot");
    assert.deepEqual(
      await missingWrites(cluster, victim, writers.acked, "stale"),
      [],
      "the restarted follower's state holds every acknowledged write",
    );
    assert.ok(writers.count > 100, `only ${writers.count} writes acknowledged`);
  } finally {
    await cluster.destroy();
  }
});
