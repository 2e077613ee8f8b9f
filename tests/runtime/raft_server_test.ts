import assert from "node:assert/strict";
import { NotLeaderError, OverloadedError } from "../../src/core/errors.ts";
import { MemoryLog } from "../../src/log/memory_log.ts";
import { MemoryNetwork } from "../../src/transport/memory_network.ts";
import { type Message, needsDurability } from "../../src/core/messages.ts";
import { RaftServer } from "../../src/runtime/raft_server.ts";
import { StoppedError, TimeoutError } from "../../src/runtime/errors.ts";
import {
  enc,
  ListMachine,
  silent,
  startCluster,
  startNode,
  waitFor,
  waitForLeader,
} from "./helpers.ts";

Deno.test("a single-node server resolves a proposal with the state machine's result", async () => {
  const net = new MemoryNetwork<Message>();
  const sm = new ListMachine();
  const server = await RaftServer.start({
    config: { id: 1 },
    log: new MemoryLog(),
    transport: net.endpoint(1),
    stateMachine: sm,
    tickMs: 5,
    logger: silent,
  });
  try {
    await server.waitForLeader(2000);
    assert.equal(await server.propose(enc("a")), 1);
    assert.equal(await server.propose(enc("b")), 2);
    assert.deepEqual(sm.items, ["a", "b"]);
    assert.equal(server.metrics().proposalsCommitted, 2);
  } finally {
    await server.stop();
    await net.close();
  }
});

Deno.test("a three-node cluster elects one leader and every node applies the same commands in order", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    const results = await Promise.all(
      ["x", "y", "z"].map((s) => leader.server.propose(enc(s))),
    );
    assert.deepEqual(results, [1, 2, 3]);
    await waitFor(
      () => c.nodes.every((n) => n.sm.items.length === 3),
      "all nodes to apply",
    );
    for (const n of c.nodes) assert.deepEqual(n.sm.items, ["x", "y", "z"]);
  } finally {
    await c.stop();
  }
});

Deno.test("a follower rejects a proposal and a transfer with NotLeaderError naming the leader", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    const follower = c.nodes.find((n) => n !== leader)!;
    await assert.rejects(
      () => follower.server.propose(enc("nope")),
      (e: unknown) => e instanceof NotLeaderError && e.leaderId === leader.id,
    );
    await assert.rejects(
      () => follower.server.transferLeadership(leader.id),
      (e: unknown) => e instanceof NotLeaderError && e.leaderId === leader.id,
    );
  } finally {
    await c.stop();
  }
});

Deno.test("proposals made together are persisted with far fewer syncs than proposals (group commit)", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    await leader.server.propose(enc("warm-up"));
    const before = leader.server.metrics().syncs;
    const all = Array.from(
      { length: 200 },
      (_, i) => leader.server.propose(enc(`p${i}`)),
    );
    await Promise.all(all);
    const syncs = leader.server.metrics().syncs - before;
    assert.ok(syncs >= 1 && syncs <= 10, `200 proposals took ${syncs} syncs`);
    assert.equal(leader.sm.items.length, 201);
  } finally {
    await c.stop();
  }
});

Deno.test("a linearizable read on a follower sees every write acknowledged before it started", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    const follower = c.nodes.find((n) => n !== leader)!;
    // Slow the follower's deliveries down so it lags when the write is acknowledged.
    for (let i = 0; i < 20; i++) {
      const applied = await leader.server.propose(enc(`w${i}`));
      const index = await follower.server.read();
      assert.ok(index >= applied, `read index ${index} < write ${applied}`);
      assert.ok(follower.sm.items.includes(`w${i}`), `follower missed w${i}`);
    }
    assert.equal(follower.server.metrics().reads.linearizable, 20);
  } finally {
    await c.stop();
  }
});

Deno.test("a stale read answers at once with what this node applied", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    await leader.server.propose(enc("s"));
    const follower = c.nodes.find((n) => n !== leader)!;
    c.net.isolate(follower.id);
    const applied = follower.server.applied;
    assert.equal(await follower.server.read({ consistency: "stale" }), applied);
  } finally {
    await c.stop();
  }
});

Deno.test("a lease read on a cut-off leader is served only within its lease, a linearizable one never", async () => {
  // electionTick 30 x 10 ms: the lease lasts 28 ticks after the last confirmed round.
  const c = await startCluster(3, {}, { electionTick: 30 });
  try {
    const leader = await waitForLeader(c.nodes);
    await leader.server.propose(enc("l"));
    await leader.server.read(); // heartbeat rounds are being acknowledged: the lease holds
    c.net.isolate(leader.id);
    assert.ok(
      (await leader.server.read({ consistency: "lease", timeoutMs: 50 })) >= 1,
    );
    assert.equal(leader.server.metrics().reads.lease, 1);
    await assert.rejects(
      () => leader.server.read({ timeoutMs: 50 }),
      TimeoutError,
      "a linearizable read always needs a round",
    );
    // Past the lease (40 ticks > 28): only a round could confirm, and none gets through.
    await new Promise((r) => setTimeout(r, 400));
    await assert.rejects(
      () => leader.server.read({ consistency: "lease", timeoutMs: 50 }),
      (e: unknown) => e instanceof TimeoutError || e instanceof NotLeaderError,
    );
    assert.equal(leader.server.metrics().reads.lease, 1);
  } finally {
    await c.stop();
  }
});

Deno.test("a leader that started a leadership transfer serves no more lease reads in its term", async () => {
  const c = await startCluster(3, {}, { electionTick: 30 });
  try {
    const leader = await waitForLeader(c.nodes);
    await leader.server.propose(enc("t"));
    await leader.server.read(); // rounds acknowledged now: the lease holds for 28 ticks
    assert.ok(
      (await leader.server.read({ consistency: "lease", timeoutMs: 50 })) >= 1,
    );
    const target = c.nodes.find((n) => n !== leader)!;
    const transfer = leader.server.transferLeadership(target.id).catch((e) =>
      e
    );
    c.net.isolate(leader.id);
    await assert.rejects(
      () => leader.server.read({ consistency: "lease", timeoutMs: 50 }),
      (e: unknown) => e instanceof TimeoutError || e instanceof NotLeaderError,
    );
    await c.stop();
    assert.ok((await transfer) instanceof Error);
  } finally {
    await c.stop();
  }
});

Deno.test("without check-quorum (no leader stickiness) lease reads fall back to ReadIndex", async () => {
  const c = await startCluster(3, {}, {
    checkQuorum: false,
  });
  try {
    const leader = await waitForLeader(c.nodes);
    await leader.server.propose(enc("q"));
    await leader.server.read();
    c.net.isolate(leader.id);
    await assert.rejects(
      () => leader.server.read({ consistency: "lease", timeoutMs: 50 }),
      TimeoutError,
    );
    assert.equal(leader.server.metrics().reads.lease, 0);
  } finally {
    await c.stop();
  }
});

Deno.test("a proposal on a leader cut off from its quorum times out", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    c.net.isolate(leader.id);
    await assert.rejects(
      () => leader.server.propose(enc("lost?"), { timeoutMs: 50 }),
      TimeoutError,
    );
    assert.ok(leader.server.metrics().proposalsFailed >= 1);
  } finally {
    await c.stop();
  }
});

Deno.test("the leader refuses proposals past its uncommitted-bytes cap with OverloadedError", async () => {
  const c = await startCluster(3, {}, {
    maxUncommittedBytes: 1000,
    checkQuorum: false,
  });
  try {
    const leader = await waitForLeader(c.nodes);
    c.net.isolate(leader.id);
    const outcomes = await Promise.all(
      Array.from(
        { length: 20 },
        () =>
          leader.server.propose(new Uint8Array(100).fill(1), { timeoutMs: 100 })
            .catch((e) => e),
      ),
    );
    const overloaded = outcomes.filter((e) =>
      e instanceof OverloadedError
    ).length;
    // 1000 bytes admit about ten 100-byte proposals; the rest are refused at once.
    assert.ok(overloaded >= 9 && overloaded <= 11, `${overloaded} refused`);
    assert.ok(outcomes.every((e) =>
      e instanceof OverloadedError || e instanceof TimeoutError
    ));
  } finally {
    await c.stop();
  }
});

Deno.test("stop() settles every pending proposal and read with StoppedError and closes the log", async () => {
  const c = await startCluster(3);
  const leader = await waitForLeader(c.nodes);
  c.net.isolate(leader.id);
  const p = leader.server.propose(enc("never"), { timeoutMs: 60_000 });
  const r = leader.server.read({ timeoutMs: 60_000 });
  await leader.server.stop();
  await assert.rejects(() => p, StoppedError);
  await assert.rejects(() => r, StoppedError);
  await assert.rejects(() => leader.server.propose(enc("after")), StoppedError);
  assert.throws(() => leader.log.append([]), /closed/);
  await c.stop();
});

Deno.test("the server snapshots by policy and compacts its log", async () => {
  const c = await startCluster(3, {}, {
    snapshotThreshold: 20,
    compactionLag: 5,
  });
  try {
    const leader = await waitForLeader(c.nodes);
    for (let i = 0; i < 50; i++) await leader.server.propose(enc(`s${i}`));
    await waitFor(
      () => c.nodes.every((n) => n.server.metrics().snapshotsTaken >= 2),
      "snapshots on every node",
    );
    for (const n of c.nodes) {
      assert.ok(
        n.log.snapshotMeta().index >= 40,
        `node ${n.id} snapshot at ${n.log.snapshotMeta().index}`,
      );
      assert.ok(
        n.log.firstIndex() > 30,
        `node ${n.id} log starts at ${n.log.firstIndex()}`,
      );
    }
  } finally {
    await c.stop();
  }
});

Deno.test("a follower that fell behind the compacted log catches up from a snapshot", async () => {
  const c = await startCluster(3, {}, {
    snapshotThreshold: 20,
    compactionLag: 5,
  });
  try {
    const leader = await waitForLeader(c.nodes);
    const lagging = c.nodes.find((n) => n !== leader)!;
    c.net.isolate(lagging.id);
    for (let i = 0; i < 100; i++) await leader.server.propose(enc(`c${i}`));
    assert.ok(
      leader.log.firstIndex() > lagging.log.lastIndex() + 1,
      "the leader's log has passed the follower",
    );
    c.net.heal();
    await waitFor(
      () => lagging.sm.items.length === 100,
      "the lagging follower to catch up",
      10_000,
    );
    assert.ok(lagging.server.metrics().snapshotsRestored >= 1);
    assert.deepEqual(lagging.sm.items, leader.sm.items);
  } finally {
    await c.stop();
  }
});

Deno.test("a restarted node recovers its state machine from its snapshot and log", async () => {
  const c = await startCluster(3, {}, {
    snapshotThreshold: 10,
    compactionLag: 2,
  });
  let restarted: Awaited<ReturnType<typeof startNode>> | undefined;
  try {
    const leader = await waitForLeader(c.nodes);
    for (let i = 0; i < 25; i++) await leader.server.propose(enc(`r${i}`));
    const victim = c.nodes.find((n) => n !== leader)!;
    await waitFor(
      () => victim.sm.items.length === 25,
      "the victim to apply everything",
    );
    await victim.server.stop();
    const recovered = victim.log.crash();
    assert.ok(recovered.snapshotMeta().index > 0, "a snapshot survived");
    restarted = await startNode(c.net, victim.id, [1, 2, 3], recovered, {}, {
      snapshotThreshold: 10,
      compactionLag: 2,
    });
    await leader.server.propose(enc("after-restart"));
    await waitFor(
      () => restarted!.sm.items.length === 26,
      "the restarted node to apply",
    );
    assert.deepEqual(restarted.sm.items, leader.sm.items);
  } finally {
    await restarted?.server.stop();
    await c.stop();
  }
});

Deno.test("leadership moves when transferred, and a new leader is elected after the leader stops", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    await leader.server.propose(enc("t"));
    const target = c.nodes.find((n) => n !== leader)!;
    assert.equal(await leader.server.transferLeadership(target.id), target.id);
    assert.equal(target.server.role, "leader");
    await target.server.stop();
    const next = await waitForLeader(c.nodes.filter((n) => n !== target));
    assert.notEqual(next.id, target.id);
    assert.equal(await next.server.propose(enc("u")), 2);
  } finally {
    await c.stop();
  }
});

Deno.test("acknowledgements and votes leave only after the log is synced", async () => {
  const net = new MemoryNetwork<Message>();
  const voters = [1, 2, 3];
  const violations: string[] = [];
  let checked = 0;
  const servers: RaftServer<number>[] = [];
  for (const id of voters) {
    const log = new MemoryLog();
    const inner = net.endpoint(id);
    const transport = {
      id,
      send(to: number, m: Message) {
        if (needsDurability(m)) {
          checked++;
          if (log.durableLastIndex() !== log.lastIndex()) {
            violations.push(`${m.type} from ${id} before sync`);
          }
        }
        inner.send(to, m);
      },
      onMessage: inner.onMessage.bind(inner),
      stats: inner.stats.bind(inner),
      close: inner.close.bind(inner),
    };
    servers.push(
      await RaftServer.start({
        config: { id, voters },
        log,
        transport,
        stateMachine: new ListMachine(),
        tickMs: 10,
        logger: silent,
      }),
    );
  }
  try {
    await waitFor(() => servers.some((s) => s.role === "leader"), "a leader");
    const leader = servers.find((s) => s.role === "leader")!;
    for (let i = 0; i < 20; i++) await leader.propose(enc(`d${i}`));
    assert.ok(checked >= 20, `only ${checked} durable messages checked`);
    assert.deepEqual(violations, []);
  } finally {
    for (const s of servers) await s.stop();
    await net.close();
  }
});

Deno.test("a state machine that applies asynchronously still applies in log order and resolves proposals", async () => {
  const net = new MemoryNetwork<Message>();
  const applied: string[] = [];
  const server = await RaftServer.start<string>({
    config: { id: 1 },
    log: new MemoryLog(),
    transport: net.endpoint(1),
    stateMachine: {
      async apply(entry) {
        await new Promise((r) => setTimeout(r, Math.random() * 3));
        const s = new TextDecoder().decode(entry.data);
        applied.push(s);
        return s.toUpperCase();
      },
      snapshot: () => Promise.resolve(new Uint8Array(0)),
      restore: () => Promise.resolve(),
    },
    tickMs: 5,
    logger: silent,
  });
  try {
    await server.waitForLeader(2000);
    const results = await Promise.all(
      ["a", "b", "c", "d"].map((s) => server.propose(enc(s))),
    );
    assert.deepEqual(results, ["A", "B", "C", "D"]);
    assert.deepEqual(applied, ["a", "b", "c", "d"]);
  } finally {
    await server.stop();
    await net.close();
  }
});

Deno.test("a failing log sync stops the server, rejects pending proposals and reports the failure", async () => {
  const net = new MemoryNetwork<Message>();
  const log = new MemoryLog();
  let failSyncs = false;
  const realSync = log.sync.bind(log);
  log.sync = () =>
    failSyncs ? Promise.reject(new Error("disk on fire")) : realSync();
  let fatal: Error | undefined;
  const server = await RaftServer.start({
    config: { id: 1 },
    log,
    transport: net.endpoint(1),
    stateMachine: new ListMachine(),
    tickMs: 5,
    logger: silent,
  });
  server.on("fatal", (e) => (fatal = e.error));
  try {
    await server.waitForLeader(2000);
    await server.propose(enc("fine"));
    failSyncs = true;
    await assert.rejects(
      () => server.propose(enc("doomed")),
      (e: unknown) =>
        e instanceof StoppedError && /disk on fire/.test(e.message),
    );
    assert.equal(fatal?.message, "disk on fire");
    assert.equal(server.isStopped, true);
    await assert.rejects(() => server.propose(enc("after")), StoppedError);
  } finally {
    await server.stop();
    await net.close();
  }
});
