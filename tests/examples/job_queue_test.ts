/**
 * The job queue example (`examples/job_queue/`) as three real Deno
 * processes: jobs go through enqueue, claim and complete; a rejected command
 * is a 4xx with `APPLY_REJECTED` and the cluster keeps serving; after the
 * leader is SIGKILLed a new leader serves every acknowledged job.
 */
import assert from "node:assert/strict";
import {
  type ClusterNode,
  JobQueueCluster,
} from "../../examples/job_queue/cluster.ts";

Deno.test("the job queue example serves jobs, rejects bad commands with a 4xx and survives losing its leader", async () => {
  const c = await JobQueueCluster.start({
    root: `.test-data/job-queue-${crypto.randomUUID()}`,
  });
  try {
    const leader = await c.leader();
    const followers = c.nodes.filter((n) => n !== leader);
    const acked = new Map<number, string>();
    const enqueue = async (via: ClusterNode, payload: string) => {
      const a = await c.call(via, "POST", "/jobs", { payload });
      assert.equal(a.status, 201, JSON.stringify(a.body));
      acked.set(a.body.job.id, payload);
    };
    for (let i = 0; i < 5; i++) await enqueue(leader, `job-${i}`);

    // A follower answers a write with 307 to the leader's URL...
    const direct = await c.call(followers[0], "POST", "/jobs", {
      payload: "x",
    }, { redirect: "manual" });
    assert.equal(direct.status, 307);
    assert.equal(direct.body.error.code, "NOT_LEADER");
    assert.equal(direct.body.error.leaderId, leader.id);
    assert.equal(direct.headers.get("location"), `${leader.url}/jobs`);
    // ...which a client following redirects just uses.
    await enqueue(followers[0], "job-via-follower");

    const claim = await c.call(leader, "POST", "/jobs/claim", {
      owner: "w1",
      leaseMs: 60_000,
    });
    assert.equal(claim.status, 200);
    assert.equal(claim.body.job.payload, "job-0");
    assert.equal(claim.body.job.owner, "w1");
    const id = claim.body.job.id;

    // Rejected by the state machine: a definite 4xx, nothing changed.
    const wrongOwner = await c.call(leader, "POST", `/jobs/${id}/complete`, {
      owner: "w2",
    });
    assert.equal(wrongOwner.status, 409);
    assert.equal(wrongOwner.body.error.code, "APPLY_REJECTED");
    assert.equal(wrongOwner.body.error.reason, "NOT_OWNER");
    const unknown = await c.call(leader, "POST", "/jobs/999999/complete", {
      owner: "w1",
    });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, "APPLY_REJECTED");
    assert.equal(unknown.body.error.reason, "UNKNOWN_JOB");
    assert.equal(unknown.body.error.definite, true);

    // The cluster keeps serving.
    const done = await c.call(leader, "POST", `/jobs/${id}/complete`, {
      owner: "w1",
      result: "ok",
    });
    assert.equal(done.status, 200);
    assert.equal(done.body.job.state, "done");
    const again = await c.call(leader, "POST", `/jobs/${id}/complete`, {
      owner: "w1",
    });
    assert.equal(again.body.error.reason, "ALREADY_DONE");
    await enqueue(leader, "job-after-rejections");

    // A linearizable read on a follower sees every acknowledged job.
    const listed = await c.call(followers[1], "GET", "/jobs");
    assert.equal(listed.status, 200);
    assert.deepEqual(
      new Map(
        listed.body.jobs.map((j: { id: number; payload: string }) => [
          j.id,
          j.payload,
        ]),
      ),
      acked,
    );

    assert.equal(await c.stopNode(leader.id, "SIGKILL"), null);
    const next = await c.leader(followers);
    assert.notEqual(next.id, leader.id);
    await enqueue(next, "job-after-failover");
    const after = await c.call(next, "GET", "/jobs");
    const jobs = new Map(
      after.body.jobs.map((j: { id: number; payload: string }) => [j.id, j]),
    );
    for (const [jid, payload] of acked) {
      assert.equal(
        (jobs.get(jid) as { payload: string } | undefined)?.payload,
        payload,
        `job ${jid} lost`,
      );
    }
    assert.equal((jobs.get(id) as { state: string }).state, "done");
    const st = await c.call(
      followers.find((n) => n !== next)!,
      "GET",
      "/status",
    );
    assert.equal(st.body.leader, next.id);
  } catch (e) {
    console.error(c.outputs());
    throw e;
  } finally {
    await c.stopAll();
    await c.destroy();
  }
});
