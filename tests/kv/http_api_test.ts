import assert from "node:assert/strict";
import { serveKvHttpNode } from "../../src/kv/node_http.ts";
import {
  call,
  startKvCluster,
  startKvTestNode,
  stopKvTestNode,
  waitFor,
} from "./helpers.ts";

Deno.test("kv http: put, get, delete and compare-and-set on the leader", async () => {
  const c = await startKvCluster();
  const url = c.leader.url;
  try {
    assert.equal(
      (await call(`${url}/kv/a`, { method: "PUT", body: "one" })).status,
      204,
    );
    const got = await call(`${url}/kv/a`);
    assert.equal(got.status, 200);
    assert.equal(got.text, "one");
    assert.equal((await call(`${url}/kv/missing`)).status, 404);
    const ok = await call(`${url}/kv/a/cas`, {
      method: "POST",
      body: JSON.stringify({ expect: "one", value: "two" }),
    });
    assert.equal(ok.status, 200);
    const bad = await call(`${url}/kv/a/cas`, {
      method: "POST",
      body: JSON.stringify({ expect: "one", value: "three" }),
    });
    assert.equal(bad.status, 409);
    assert.equal(JSON.parse(bad.text).current, "two");
    assert.equal(JSON.parse(bad.text).error.code, "CAS_MISMATCH");
    const create = await call(`${url}/kv/b/cas`, {
      method: "POST",
      body: JSON.stringify({
        expect: null,
        value: btoa("\u0000\u00ff"),
        encoding: "base64",
      }),
    });
    assert.equal(create.status, 200);
    assert.deepEqual(
      new Uint8Array(await (await fetch(`${url}/kv/b`)).arrayBuffer()),
      new Uint8Array([0, 255]),
    );
    assert.equal((await call(`${url}/kv/a`, { method: "DELETE" })).status, 204);
    assert.equal((await call(`${url}/kv/a`, { method: "DELETE" })).status, 404);
    assert.equal((await call(`${url}/kv/a`)).status, 404);
    await waitFor(
      () =>
        c.nodes.every((n) =>
          n.kv.get("b") !== undefined && n.kv.get("a") === undefined
        ),
      "replicas",
    );
  } finally {
    await c.stop();
  }
});

Deno.test("kv http: a follower forwards writes to the leader and serves linearizable reads itself", async () => {
  const c = await startKvCluster();
  const f = c.followers[0];
  try {
    const put = await call(`${f.url}/kv/fw`, {
      method: "PUT",
      body: "via follower",
    });
    assert.equal(put.status, 204);
    assert.equal(put.headers.get("x-raft-served-by"), String(c.leader.id));
    assert.equal(
      new TextDecoder().decode(c.leader.kv.get("fw")),
      "via follower",
    );
    // Written through the leader, read at once from the other follower: linearizable by default.
    for (let i = 0; i < 10; i++) {
      assert.equal(
        (await call(`${c.leader.url}/kv/x`, { method: "PUT", body: `v${i}` }))
          .status,
        204,
      );
      const r = await call(`${c.followers[1].url}/kv/x`);
      assert.equal(r.text, `v${i}`);
    }
    const stale = await call(`${f.url}/kv/fw?consistency=stale`);
    assert.equal(stale.status, 200);
    const lease = await call(`${c.leader.url}/kv/fw?consistency=lease`);
    assert.equal(lease.text, "via follower");
    assert.equal((await call(`${f.url}/kv/fw?consistency=strong`)).status, 400);
  } finally {
    await c.stop();
  }
});

Deno.test("kv http: in redirect mode a follower answers writes and linearizable reads with 307 to the leader", async () => {
  const c = await startKvCluster({ forward: "redirect" });
  try {
    const f = c.followers[0];
    const res = await call(`${f.url}/kv/r`, { method: "PUT", body: "x" });
    assert.equal(res.status, 307);
    assert.equal(res.headers.get("location"), `${c.leader.url}/kv/r`);
    assert.equal(JSON.parse(res.text).error.leaderId, c.leader.id);
    const read = await call(`${f.url}/kv/r`);
    assert.equal(read.status, 307);
    assert.equal(read.headers.get("location"), `${c.leader.url}/kv/r`);
    assert.equal((await call(`${f.url}/kv/r?consistency=stale`)).status, 404);
  } finally {
    await c.stop();
  }
});

Deno.test("kv http: bad keys, oversized bodies and unknown routes are refused with JSON errors", async () => {
  const c = await startKvCluster({ maxBodyBytes: 1000 });
  const url = c.leader.url;
  try {
    const long = await call(`${url}/kv/${"k".repeat(1025)}`, {
      method: "PUT",
      body: "v",
    });
    assert.equal(long.status, 400);
    assert.equal(JSON.parse(long.text).error.code, "BAD_KEY");
    assert.equal(
      (await call(`${url}/kv/%E0%A4%A`, { method: "PUT", body: "v" })).status,
      400,
    );
    assert.equal(
      (await call(`${url}/kv/`, { method: "PUT", body: "v" })).status,
      400,
    );
    // Percent-encoded and plain keys name the same entry; UTF-8 is counted in bytes.
    assert.equal(
      (await call(`${url}/kv/caf%C3%A9%20a`, { method: "PUT", body: "x" }))
        .status,
      204,
    );
    assert.equal((await call(`${url}/kv/caf%C3%A9%20a`)).text, "x");
    assert.equal(
      (await call(`${url}/kv/${"é".repeat(513)}`, { method: "PUT", body: "v" }))
        .status,
      400,
    );
    assert.equal(
      (await call(`${url}/kv/${"k".repeat(1024)}`, {
        method: "PUT",
        body: "v",
      }))
        .status,
      204,
    );
    const big = await call(`${url}/kv/big`, {
      method: "PUT",
      body: new Uint8Array(1001),
    });
    assert.equal(big.status, 413);
    assert.equal(JSON.parse(big.text).error.code, "BODY_TOO_LARGE");
    // A streamed body without a length is cut off at the limit too.
    const stream = new ReadableStream<Uint8Array>({
      start(ctl) {
        for (let i = 0; i < 5; i++) ctl.enqueue(new Uint8Array(400));
        ctl.close();
      },
    });
    assert.equal(
      (await call(`${url}/kv/big`, { method: "PUT", body: stream })).status,
      413,
    );
    assert.equal(c.leader.kv.get("big"), undefined);
    const nope = await call(`${url}/nope`);
    assert.equal(nope.status, 404);
    assert.equal(JSON.parse(nope.text).error.code, "NOT_FOUND");
    assert.equal((await call(`${url}/kv/a`, { method: "PATCH" })).status, 405);
    assert.equal(
      (await call(`${url}/kv/a/cas`, { method: "POST", body: "not json" }))
        .status,
      400,
    );
    // The node still serves.
    assert.equal(
      (await call(`${url}/kv/after`, { method: "PUT", body: "fine" })).status,
      204,
    );
  } finally {
    await c.stop();
  }
});

Deno.test("kv http: status, leader and metrics describe the cluster", async () => {
  const c = await startKvCluster();
  try {
    await call(`${c.leader.url}/kv/m`, { method: "PUT", body: "1" });
    const st = JSON.parse((await call(`${c.leader.url}/status`)).text);
    assert.equal(st.id, c.leader.id);
    assert.equal(st.role, "leader");
    assert.equal(st.leader, c.leader.id);
    assert.ok(st.commit >= 5 && st.applied === st.commit, JSON.stringify(st));
    assert.deepEqual(st.membership.voters, [1, 2, 3]);
    assert.equal(st.peers.length, 2);
    for (const p of st.peers) {
      assert.ok(typeof p.match === "number" && typeof p.lag === "number");
    }
    const fst = JSON.parse((await call(`${c.followers[0].url}/status`)).text);
    assert.equal(fst.role, "follower");
    const leader = JSON.parse(
      (await call(`${c.followers[0].url}/leader`)).text,
    );
    assert.deepEqual(leader, { leader: c.leader.url, id: c.leader.id });
    const metrics = (await call(`${c.leader.url}/metrics`)).text;
    for (
      const name of [
        "raft_proposals_total",
        "raft_commit_latency_seconds_bucket",
        "raft_fsync_latency_seconds_count",
        "raft_log_bytes_written_total",
        'raft_messages_sent_total{peer="',
        'raft_messages_dropped_total{peer="',
        "raft_elections_total",
        "raft_snapshots_taken_total",
      ]
    ) assert.ok(metrics.includes(name), `metrics lack ${name}`);
    assert.match(metrics, /raft_proposals_committed_total [1-9]/);
  } finally {
    await c.stop();
  }
});

Deno.test("kv http: members are added and removed through the API and leadership transferred", async () => {
  const c = await startKvCluster();
  const joiner = await startKvTestNode(c.net, 4, [1, 2, 3]);
  try {
    await call(`${c.leader.url}/kv/before`, { method: "PUT", body: "x" });
    // Through a follower: forwarded to the leader.
    const add = await call(`${c.followers[0].url}/members`, {
      method: "POST",
      body: JSON.stringify({
        id: 4,
        raft: "127.0.0.1:1",
        http: joiner.http.address,
        role: "learner",
      }),
    });
    assert.equal(add.status, 200, add.text);
    assert.deepEqual(JSON.parse(add.text).membership.learners, [4]);
    await waitFor(
      () => new TextDecoder().decode(joiner.kv.get("before")) === "x",
      "the learner to catch up",
    );
    const promote = await call(`${c.leader.url}/members`, {
      method: "POST",
      body: JSON.stringify({
        id: 4,
        raft: "127.0.0.1:1",
        http: joiner.http.address,
        role: "voter",
      }),
    });
    assert.equal(promote.status, 200, promote.text);
    assert.deepEqual(JSON.parse(promote.text).membership.voters, [1, 2, 3, 4]);
    const transfer = await call(`${c.leader.url}/leader/transfer`, {
      method: "POST",
      body: JSON.stringify({ to: 4 }),
    });
    assert.equal(transfer.status, 200, transfer.text);
    await waitFor(() => joiner.server.role === "leader", "node 4 to lead");
    const removed = await call(`${joiner.url}/members/${c.leader.id}`, {
      method: "DELETE",
    });
    assert.equal(removed.status, 200, removed.text);
    assert.ok(
      !JSON.parse(removed.text).membership.voters.includes(c.leader.id),
    );
    assert.equal(
      (await call(`${joiner.url}/kv/after`, { method: "PUT", body: "y" }))
        .status,
      204,
    );
    const bad = await call(`${joiner.url}/members`, {
      method: "POST",
      body: JSON.stringify({ id: -1 }),
    });
    assert.equal(bad.status, 400);
  } finally {
    await stopKvTestNode(joiner);
    await c.stop();
  }
});

Deno.test("kv http: a node without a known leader answers writes with 503 NOT_LEADER", async () => {
  const c = await startKvCluster();
  try {
    const f = c.followers[0];
    c.net.isolate(f.id);
    // Without heartbeats the follower eventually campaigns (pre-vote keeps its term) and forgets the leader.
    await waitFor(
      () => f.server.leaderId === 0,
      "the isolated follower to lose the leader",
      5000,
    );
    const res = await call(`${f.url}/kv/z`, { method: "PUT", body: "v" });
    assert.equal(res.status, 503);
    const body = JSON.parse(res.text);
    assert.equal(body.error.code, "NOT_LEADER");
    assert.equal(body.error.leaderId, 0);
    assert.equal(res.headers.get("retry-after"), "1");
  } finally {
    await c.stop();
  }
});

Deno.test("kv http: the same API served by node:http answers the same way", async () => {
  const c = await startKvCluster({ maxBodyBytes: 100 });
  const nodeServer = await serveKvHttpNode(c.leader.api, {
    hostname: "127.0.0.1",
    port: 0,
  });
  const url = `http://${nodeServer.address}`;
  try {
    assert.equal(
      (await call(`${url}/kv/n`, { method: "PUT", body: "via node:http" }))
        .status,
      204,
    );
    const got = await call(`${url}/kv/n`);
    assert.equal(got.status, 200);
    assert.equal(got.text, "via node:http");
    assert.equal(
      (await call(`${url}/kv/n`, { method: "PUT", body: new Uint8Array(101) }))
        .status,
      413,
    );
    assert.equal((await call(`${url}/missing-route`)).status, 404);
    assert.equal(JSON.parse((await call(`${url}/status`)).text).role, "leader");
  } finally {
    await nodeServer.shutdown();
    await c.stop();
  }
});
