// The job queue example compiled against the npm build
// (npm/examples/job_queue/, made by `deno task build:npm`) as three Node
// processes: enqueue, claim, a rejected complete (4xx APPLY_REJECTED), kill
// the leader with SIGKILL, a new leader serves every acknowledged job.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { JobQueueCluster } from "../../npm/examples/job_queue/cluster.js";

test("the job queue example runs under Node from the npm build and survives losing its leader", async () => {
  mkdirSync(".test-data", { recursive: true });
  const c = await JobQueueCluster.start({
    root: `.test-data/npm-job-queue-${randomUUID()}`,
  });
  try {
    const leader = await c.leader();
    const ids = [];
    for (const payload of ["a", "b", "c"]) {
      const r = await c.call(leader, "POST", "/jobs", { payload });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      ids.push(r.body.job.id);
    }
    const claim = await c.call(leader, "POST", "/jobs/claim", { owner: "w" });
    assert.equal(claim.body.job.id, ids[0]);
    const rejected = await c.call(leader, "POST", "/jobs/999999/complete", {
      owner: "w",
    });
    assert.equal(rejected.status, 404);
    assert.equal(rejected.body.error.code, "APPLY_REJECTED");
    const done = await c.call(leader, "POST", `/jobs/${ids[0]}/complete`, {
      owner: "w",
    });
    assert.equal(done.status, 200);

    assert.equal(await c.stopNode(leader.id, "SIGKILL"), null);
    const next = await c.leader(c.nodes.filter((n) => n !== leader));
    const after = await c.call(next, "GET", "/jobs");
    assert.equal(after.status, 200);
    assert.deepEqual(after.body.jobs.map((j) => j.id), ids);
    assert.equal(after.body.jobs[0].state, "done");
  } catch (e) {
    console.error(c.outputs());
    throw e;
  } finally {
    await c.destroy();
  }
});
