import assert from "node:assert/strict";
import {
  ConfigChangeInProgressError,
  InvalidMembershipChangeError,
  InvalidTransferTargetError,
  NotLeaderError,
  OverloadedError,
  ProposalDroppedError,
  RemovedFromClusterError,
  TransferInProgressError,
} from "../../src/core/errors.ts";
import {
  ApplyError,
  CatchUpTimeoutError,
  InvalidProposalError,
  StoppedError,
  TimeoutError,
  TransferAbandonedError,
} from "../../src/runtime/errors.ts";
import { HTTP_STATUS_BY_CODE } from "../../src/kv/http_api.ts";
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
    await c.leader.server.waitForLeader({ ready: true });
    await call(`${c.leader.url}/kv/before`, { method: "PUT", body: "x" });
    // Through a follower (forwarded to the leader); the default role is
    // voter, reached through a caught-up learner.
    const add = await call(`${c.followers[0].url}/members`, {
      method: "POST",
      body: JSON.stringify({
        id: 4,
        raft: "127.0.0.1:7004",
        http: joiner.http.address,
      }),
    });
    assert.equal(add.status, 200, add.text);
    const membership = JSON.parse(add.text).membership;
    assert.deepEqual(membership.voters, [1, 2, 3, 4]);
    assert.deepEqual(membership.nodes["4"], {
      address: "127.0.0.1:7004",
      metadata: joiner.http.address,
    });
    assert.equal(new TextDecoder().decode(joiner.kv.get("before")), "x");
    // Every node learns node 4's client URL from the configuration alone.
    await waitFor(
      () => c.nodes.every((n) => n.api.httpUrlOf(4) === joiner.url),
      "every node to know node 4's client URL",
    );
    const transfer = await call(`${c.leader.url}/leader/transfer`, {
      method: "POST",
      body: JSON.stringify({ to: 4 }),
    });
    assert.equal(transfer.status, 200, transfer.text);
    assert.deepEqual(JSON.parse(transfer.text), {
      leader: 4,
      leaderUrl: joiner.url,
    });
    assert.equal(joiner.server.role, "leader");
    await joiner.server.waitForLeader({ ready: true });
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

Deno.test("kv http: POST /members refuses a bad request before proposing anything", async () => {
  const c = await startKvCluster();
  const url = c.leader.url;
  try {
    await c.leader.server.waitForLeader({ ready: true });
    const before = c.leader.server.status();
    const ok = { id: 5, raft: "127.0.0.1:7005", http: "127.0.0.1:8005" };
    const cases: [unknown, RegExp][] = [
      [{ ...ok, id: 0 }, /id must be an integer/],
      [{ ...ok, id: 2 ** 31 + 1 }, /id must be an integer/],
      [{ ...ok, id: 1.5 }, /id must be an integer/],
      [{ ...ok, id: "5" }, /id must be an integer/],
      [{ ...ok, raft: "127.0.0.1:0" }, /raft must be/],
      [{ ...ok, raft: "127.0.0.1:65536" }, /raft must be/],
      [{ ...ok, raft: "no port" }, /raft must be/],
      [{ ...ok, raft: undefined }, /raft must be/],
      [{ ...ok, http: "127.0.0.1" }, /http must be/],
      [{ ...ok, http: "http://127.0.0.1:8005" }, /http must be/],
      [{ ...ok, role: "observer" }, /role must be/],
      [{ ...ok, timeoutMs: -1 }, /timeoutMs/],
      [{ ...ok, force: true }, /unknown field "force"/],
      [[ok], /JSON object/],
    ];
    for (const [body, re] of cases) {
      const res = await call(`${url}/members`, {
        method: "POST",
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      const error = JSON.parse(res.text).error;
      assert.equal(error.code, "BAD_REQUEST");
      assert.match(error.message, re, JSON.stringify(body));
    }
    // The same refusal on a follower, without forwarding.
    const viaFollower = await call(`${c.followers[0].url}/members`, {
      method: "POST",
      body: JSON.stringify({ ...ok, raft: "x:99999" }),
    });
    assert.equal(viaFollower.status, 400);
    assert.equal(viaFollower.headers.get("x-raft-served-by"), null);
    const after = c.leader.server.status();
    assert.equal(after.lastIndex, before.lastIndex);
    assert.deepEqual(after.membership, before.membership);
  } finally {
    await c.stop();
  }
});

Deno.test("kv http: adding an existing member answers 409 and changes nothing", async () => {
  const c = await startKvCluster();
  const url = c.leader.url;
  try {
    await c.leader.server.waitForLeader({ ready: true });
    const before = c.leader.server.status();
    const f = c.followers[0];
    for (
      const body of [
        { id: f.id, raft: "127.0.0.1:7999", http: "127.0.0.1:8999" },
        {
          id: f.id,
          raft: "127.0.0.1:7999",
          http: f.http.address,
          role: "learner",
        },
      ]
    ) {
      const res = await call(`${url}/members`, {
        method: "POST",
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 409, res.text);
      const error = JSON.parse(res.text).error;
      assert.equal(error.code, "MEMBER_EXISTS");
      assert.match(error.message, /already a voter.*nothing changed/);
    }
    const after = c.leader.server.status();
    assert.equal(after.lastIndex, before.lastIndex);
    assert.deepEqual(after.membership, before.membership);
    assert.equal(f.api.httpUrlOf(f.id), f.url);
  } finally {
    await c.stop();
  }
});

Deno.test("kv http: a voter that never starts is answered CATCH_UP_TIMEOUT and stays a learner", async () => {
  const c = await startKvCluster();
  try {
    await c.leader.server.waitForLeader({ ready: true });
    const res = await call(`${c.leader.url}/members`, {
      method: "POST",
      body: JSON.stringify({
        id: 9,
        raft: "127.0.0.1:7009",
        http: "127.0.0.1:8009",
        timeoutMs: 300,
      }),
    });
    assert.equal(res.status, 409, res.text);
    const error = JSON.parse(res.text).error;
    assert.equal(error.code, "CATCH_UP_TIMEOUT");
    assert.equal(error.role, "learner");
    assert.match(error.message, /stays a learner/);
    const m = c.leader.server.status().membership;
    assert.deepEqual(m.voters, [1, 2, 3]);
    assert.deepEqual(m.learners, [9]);
    const removed = await call(`${c.leader.url}/members/9`, {
      method: "DELETE",
    });
    assert.equal(removed.status, 200, removed.text);
    assert.deepEqual(JSON.parse(removed.text).membership.learners, []);
    const again = await call(`${c.leader.url}/members/9`, { method: "DELETE" });
    assert.equal(again.status, 404);
    assert.equal(JSON.parse(again.text).error.code, "NOT_A_MEMBER");
  } finally {
    await c.stop();
  }
});

Deno.test("kv http: a removed node answers 410 REMOVED naming the members, and its status says removed", async () => {
  const c = await startKvCluster();
  const victim = c.followers[1];
  try {
    await c.leader.server.waitForLeader({ ready: true });
    const res = await call(`${c.followers[0].url}/members/${victim.id}`, {
      method: "DELETE",
    });
    assert.equal(res.status, 200, res.text);
    await waitFor(
      () => victim.server.isRemoved,
      "the node to learn it is removed",
    );
    const others = c.nodes.filter((n) => n !== victim).map((n) => n.id);
    for (
      const [path, init] of [
        ["/kv/x", { method: "PUT", body: "v" }],
        ["/kv/x", {}],
        ["/kv/x?consistency=stale", {}],
        ["/members/1", { method: "DELETE" }],
      ] as const
    ) {
      const r = await call(`${victim.url}${path}`, init);
      assert.equal(r.status, 410, `${path}: ${r.text}`);
      const error = JSON.parse(r.text).error;
      assert.equal(error.code, "REMOVED");
      assert.deepEqual(error.members, others);
      assert.match(error.message, /removed from the cluster/);
      for (const id of others) {
        assert.equal(
          error.urls[id],
          c.nodes.find((n) => n.id === id)!.url,
        );
      }
    }
    const st = JSON.parse((await call(`${victim.url}/status`)).text);
    assert.equal(st.removed, true);
    // It keeps running (the server is not stopped) so an operator sees why.
    assert.equal(victim.server.isStopped, false);
  } finally {
    await c.stop();
  }
});

Deno.test("kv http: every request error code of the runtime and the core has an HTTP status", () => {
  const errors = [
    new NotLeaderError(1),
    new OverloadedError(10, 5),
    new TransferInProgressError(2),
    new ConfigChangeInProgressError("x"),
    new ProposalDroppedError("x"),
    new InvalidMembershipChangeError("x"),
    new InvalidTransferTargetError(2, "x"),
    new RemovedFromClusterError(3, [1, 2]),
    new TimeoutError("proposal", 1),
    new StoppedError(),
    new ApplyError(1, new Error("x")),
    new InvalidProposalError("too_large", "x"),
    new TransferAbandonedError(2, 1, "x"),
    new CatchUpTimeoutError(4, 0, 10, 1),
  ];
  for (const e of errors) {
    const entry = HTTP_STATUS_BY_CODE[e.code];
    assert.ok(entry !== undefined, `no HTTP status for ${e.code}`);
    assert.ok(entry.status >= 400 && entry.status < 600);
  }
  assert.equal(HTTP_STATUS_BY_CODE.REMOVED.status, 410);
  assert.equal(HTTP_STATUS_BY_CODE.TIMEOUT.status, 504);
  assert.equal(HTTP_STATUS_BY_CODE.CONFIG_CHANGE_IN_PROGRESS.retry, true);
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
